/**
 * The package as users get it: `npm pack` (of the built dist/), installed into a fresh project in a temp folder
 * (dependencies from the npm cache first, at the versions of this repository's lockfile where the consumer names
 * them), a typed pipeline type-checked there with tsc, run with node, and `npx sluice --version`. Needs dist/:
 * `npm run build`. Skipped, saying why, when npm cannot install (no registry and an empty cache).
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, tempDir } from '../support/cli.js';

const run = promisify(execFile);
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const NPX = process.platform === 'win32' ? 'npx.cmd' : 'npx';
const INSTALL_TIMEOUT_MS = 240_000;

const lock = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string }> };
const locked = (name: string) => `${name}@${lock.packages[`node_modules/${name}`]!.version}`;
const { version } = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };

const CONSUMER = `import { command, createEngine, openStore, pipeline } from 'sluice';
import { z } from 'zod';

const users = pipeline('users', { input: z.object({ team: z.string() }) })
  .step('fetch', async ({ input }) => ({ users: [\`\${input.team}-1\`, \`\${input.team}-2\`] }))
  .step('score', { needs: ['fetch'] }, ({ steps }) => steps.fetch.users.length * 10)
  .step('echo', command({ run: ['node', '-e', 'process.stdout.write("ok")'] }), { needs: ['fetch'] })
  .output(({ steps, input }) => ({ team: input.team, score: steps.score, echoed: steps.echo.stdout }));

const engine = createEngine({ store: await openStore('sqlite:out/sluice.db') });
const out = await engine.run(users, { team: 'core' });
const score: number = out.score;
// @ts-expect-error the declared output has no key 'fetch'
out.fetch;
console.log(JSON.stringify({ ...out, score }));
await engine.close();
`;

describe('the packed package in a fresh project', () => {
  const tmp = tempDir('sluice-pack-');
  afterAll(() => tmp.cleanup());

  it('installs, type-checks a typed pipeline with tsc, runs it and answers npx sluice --version', { timeout: 600_000 }, async (ctx) => {
    if (!existsSync(path.join(REPO_ROOT, 'dist', 'index.d.ts'))) throw new Error('dist/ is missing: run `npm run build` first');
    // --ignore-scripts: dist/ is built already (prepare would build the dashboard too).
    await run(NPM, ['pack', '--ignore-scripts', '--silent', '--pack-destination', tmp.dir], { cwd: REPO_ROOT, timeout: 120_000 });
    const tarball = path.join(tmp.dir, `sluice-${version}.tgz`);
    const project = path.join(tmp.dir, 'consumer');
    mkdirSync(project);
    writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    try {
      await run(NPM, ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error', tarball, locked('zod'), locked('typescript'), locked('@types/node')], {
        cwd: project,
        timeout: INSTALL_TIMEOUT_MS,
      });
    } catch (err) {
      console.warn(`skipped: npm install of the packed package failed (no registry and no cached copy?): ${(err as Error).message.split('\n')[0]}`);
      ctx.skip();
    }
    // Install scripts were skipped: give better-sqlite3 the native build of this repository (the same locked version).
    const addon = path.join('better-sqlite3', 'build', 'Release', 'better_sqlite3.node');
    mkdirSync(path.dirname(path.join(project, 'node_modules', addon)), { recursive: true });
    copyFileSync(path.join(REPO_ROOT, 'node_modules', addon), path.join(project, 'node_modules', addon));

    writeFileSync(path.join(project, 'main.ts'), CONSUMER);
    writeFileSync(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: true, outDir: 'out', types: ['node'] }, include: ['main.ts'] }),
    );
    const tsc = await run(process.execPath, [path.join(project, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], { cwd: project, timeout: 120_000 }).catch((err: { stdout?: string }) => ({ stdout: `tsc failed:\n${err.stdout ?? String(err)}` }));
    expect(tsc.stdout).toBe('');

    const ran = await run(process.execPath, ['out/main.js'], { cwd: project, timeout: 60_000 });
    expect(JSON.parse(ran.stdout)).toEqual({ team: 'core', score: 20, echoed: 'ok' });

    const cli = await run(NPX, ['--no-install', 'sluice', '--version'], { cwd: project, timeout: 60_000 });
    expect(cli.stdout.trim()).toBe(version);
  });
});
