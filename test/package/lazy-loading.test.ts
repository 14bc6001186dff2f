import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, createServer, openStore } from '../../src/index.js';
import { importOptional } from '../../src/core/optional-package.js';
import { REPO_ROOT, SLUICE_BIN } from '../support/cli.js';

/** Packages the engine and SQLite do without: the server, PostgreSQL, the model client, the TS loader, QuickJS. */
const HEAVY = ['fastify', '@fastify/swagger', '@fastify/swagger-ui', '@fastify/websocket', 'pg', 'openai', 'tsx', 'esbuild', 'quickjs-emscripten-core', 'ajv', 'yaml', 'jsonata'];

const dir = mkdtempSync(path.join(tmpdir(), 'sluice-lazy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs node with a hook that names every package it loads (ES imports and CommonJS requires), built code only. */
function packagesLoaded(args: string[]): string[] {
  const hook = path.join(dir, 'hook.mjs');
  writeFileSync(
    hook,
    `import { register, createRequire } from 'node:module';
const seen = new Set();
const note = (url) => { const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(url); if (m) seen.add(m[1]); };
register('data:text/javascript,' + encodeURIComponent('export async function resolve(s, c, next) { const r = await next(s, c); process.stderr.write("LOADED " + r.url + "\\\\n"); return r; }'));
process.on('exit', () => { for (const k of Object.keys(createRequire(import.meta.url).cache)) note(k); for (const p of seen) process.stderr.write('PACKAGE ' + p + '\\n'); });
`,
  );
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(hook).href, ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  const names = new Set([...r.stderr.matchAll(/^PACKAGE (\S+)$/gm)].map((m) => m[1]!));
  for (const m of r.stderr.matchAll(/^LOADED .*?node_modules\/((?:@[^/]+\/)?[^/]+)/gm)) names.add(m[1]!);
  return [...names].sort();
}

describe('what loading Sluice costs', () => {
  it("import('sluice') loads the engine and SQLite without the server, pg, openai, tsx, QuickJS, Ajv, yaml or JSONata", () => {
    const index = pathToFileURL(path.join(REPO_ROOT, 'dist', 'index.js')).href;
    const loaded = packagesLoaded(['--input-type=module', '-e', `const s = await import(${JSON.stringify(index)}); if (typeof s.createEngine !== 'function') process.exit(3);`]);
    expect(loaded).toContain('better-sqlite3');
    expect(loaded.filter((p) => HEAVY.includes(p))).toEqual([]);
  });

  it('sluice --help loads no verb: neither the engine nor the server', () => {
    const loaded = packagesLoaded([SLUICE_BIN, '--help']);
    expect(loaded).toContain('commander');
    expect(loaded.filter((p) => HEAVY.includes(p) || p === 'better-sqlite3')).toEqual([]);
  });

  it('createServer from sluice loads the server at its first call and serves', async () => {
    const engine = createEngine({ store: await openStore('sqlite::memory:') });
    try {
      const app = await createServer({ engine, auth: 'off' });
      const res = await app.inject({ method: 'GET', url: '/healthz' });
      expect(res.statusCode).toBe(200);
      await app.close();
    } finally {
      await engine.close();
    }
  });

  it('names a missing optional package, what needs it and how to install it', async () => {
    const missing = importOptional('sluice-absent-package', 'the test step', () => import('sluice-absent-package' as string));
    await expect(missing).rejects.toMatchObject({
      code: 'DEPENDENCY_MISSING',
      message: 'the test step needs the package sluice-absent-package, which is not installed; install it with: npm install sluice-absent-package',
    });
  });
});
