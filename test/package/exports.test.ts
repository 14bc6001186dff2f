import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/cli.js';

/** Runs an ES module snippet inside the package, where `sluice/...` resolves through package.json `exports`. */
function runInPackage(code: string): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, ['--no-warnings', '--input-type=module', '-e', code], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
}

describe('package entry points', () => {
  it('sluice, sluice/server, sluice/postgres and the pipeline schema resolve to what they promise', () => {
    const r = runInPackage(`
      const root = await import('sluice');
      const server = await import('sluice/server');
      const postgres = await import('sluice/postgres');
      const schema = await import('sluice/schema/pipeline.schema.json', { with: { type: 'json' } });
      console.log(JSON.stringify({
        root: [typeof root.createEngine, typeof root.openStore, typeof root.createServer],
        server: [typeof server.createServer, typeof server.createApiToken],
        postgres: [typeof postgres.PostgresStore, typeof postgres.PostgresArtifactStore],
        schema: schema.default.type,
      }));
    `);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      root: ['function', 'function', 'function'],
      server: ['function', 'function'],
      postgres: ['function', 'function'],
      schema: 'object',
    });
  });
});
