/**
 * Artifacts follow the PostgreSQL store: a step output over 256 KiB written by one `sluice worker` is read by the
 * dependent step on another worker that shares no folder with it (each runs in its own temp dir, with
 * SLUICE_ARTIFACTS unset), because both keep artifacts in the database. Needs dist/: `npm run build`.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { exited, runCli, startCli, waitFor } from '../support/cli.js';
import { postgresDisabled } from '../support/postgres.js';
import { usePostgresCli } from '../support/postgres-cli.js';

/** 3 bytes x 120,000 = 360,000 bytes of JSON string: over the 256 KiB inline limit. */
const REPEAT = 120_000;

describe.skipIf(postgresDisabled())('artifacts across sluice workers on postgres', () => {
  const pgCli = usePostgresCli('sluice-pg-artifacts-');

  const worker = (name: string) => {
    const cwd = path.join(pgCli.dir, name);
    mkdirSync(cwd, { recursive: true });
    const proc = startCli(['worker', '--concurrency', '1', '--store', pgCli.url], { cwd, env: { SLUICE_ARTIFACTS: undefined } });
    let stderr = '';
    proc.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    proc.stdout?.resume();
    return { proc, cwd, stderr: () => stderr };
  };

  it('a dependent step on another worker reads the large output of its upstream from the database', async () => {
    // produce -> hold (approval) -> consume: the run waits at `hold` while worker A is stopped and B started.
    const file = path.join(pgCli.dir, 'big.yaml');
    writeFileSync(
      file,
      stringify({
        name: 'big-output',
        steps: {
          produce: { uses: 'code', with: { code: `return { blob: 'abc'.repeat(${REPEAT}), tail: 'end' }` } },
          hold: { needs: ['produce'], uses: 'approval' },
          consume: { needs: ['produce', 'hold'], uses: 'code', with: { code: 'return { length: steps.produce.blob.length, ok: /^(abc)+$/.test(steps.produce.blob), tail: steps.produce.tail }' } },
        },
      }),
    );
    const c = new pg.Client({ connectionString: pgCli.url });
    const a = worker('host-a');
    try {
      await waitFor('worker A to start', () => a.stderr().includes(' on '), 30_000);
      const started = await runCli(['run', file, '--detach', '--json', '--store', pgCli.url], { cwd: a.cwd });
      expect(started.code, started.stderr).toBe(0);
      const runId = (JSON.parse(started.stdout) as { id: string }).id;

      await c.connect();
      const stepStatus = async (name: string) => (await c.query<{ status: string }>('SELECT status FROM steps WHERE run_id = $1 AND name = $2', [runId, name])).rows[0]?.status;
      await waitFor('produce to succeed on worker A', async () => (await stepStatus('produce')) === 'succeeded', 60_000, 100);
      const produced = (await c.query<{ output: string }>('SELECT output::text AS output FROM steps WHERE run_id = $1 AND name = $2', [runId, 'produce'])).rows[0]!;
      const ref = JSON.parse(produced.output) as { $artifact: string; size: number };
      expect(ref).toMatchObject({ $artifact: expect.stringMatching(/^[0-9a-f]{64}$/), size: expect.any(Number) });
      expect(ref.size).toBeGreaterThan(256 * 1024);
      const runStatus = async () => (await c.query<{ status: string }>('SELECT status FROM runs WHERE id = $1', [runId])).rows[0]!.status;
      await waitFor('the run to wait for approval', async () => (await runStatus()) === 'waiting', 30_000, 100);
      a.proc.kill('SIGTERM');
      await exited(a.proc);

      const b = worker('host-b');
      await waitFor('worker B to start', () => b.stderr().includes(' on '), 30_000);
      const approved = await runCli(['approve', runId, 'hold', '--store', pgCli.url], { cwd: b.cwd });
      expect(approved.code, approved.stderr).toBe(0);
      await waitFor('the run to finish', async () => ['succeeded', 'failed'].includes(await runStatus()), 60_000, 100);

      const consumed = (await c.query<{ status: string; output: unknown; error: unknown }>('SELECT status, output, error FROM steps WHERE run_id = $1 AND name = $2', [runId, 'consume'])).rows[0]!;
      expect(consumed.error).toBeNull();
      expect(consumed.status).toBe('succeeded');
      expect(consumed.output).toEqual({ length: 3 * REPEAT, ok: true, tail: 'end' });
      // Each step ran where we meant it to, and the artifact lives in the database, not in either folder.
      const owners = (await c.query<{ step: string; owner: string }>("SELECT step, owner FROM all_attempts WHERE run_id = $1 AND status = 'succeeded' AND step IN ('produce', 'consume')", [runId])).rows;
      expect(Object.fromEntries(owners.map((o) => [o.step, o.owner.split(':')[1]]))).toEqual({ produce: String(a.proc.pid), consume: String(b.proc.pid) });
      expect((await c.query('SELECT sha256, size::int AS size FROM artifacts WHERE sha256 = $1', [ref.$artifact])).rows).toEqual([{ sha256: ref.$artifact, size: ref.size }]);
      for (const dir of [a.cwd, b.cwd]) expect(existsSync(path.join(dir, '.sluice', 'artifacts')) ? readdirSync(path.join(dir, '.sluice', 'artifacts')) : []).toEqual([]);

      b.proc.kill('SIGTERM');
      await exited(b.proc);
    } finally {
      await c.end().catch(() => undefined);
    }
  }, 120_000);
});
