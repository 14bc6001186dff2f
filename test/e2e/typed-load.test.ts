/**
 * Pipelines defined in TypeScript code, served by real `sluice` processes: `sluice worker --load FILE` runs them on
 * PostgreSQL for runs started elsewhere, `sluice run FILE.ts#NAME` runs one on SQLite. Needs dist/: `npm run build`.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, openStore } from '../../src/index.js';
import { killSpawned, REPO_ROOT, runCli, startCli, tempDir, waitFor } from '../support/cli.js';
import { postgresDisabled } from '../support/postgres.js';
import { usePostgresCli } from '../support/postgres-cli.js';

const FIXTURE = join(REPO_ROOT, 'test', 'fixtures', 'typed', 'pipelines.ts');

describe('sluice run|graph FILE.ts#NAME', () => {
  afterEach(() => killSpawned());

  it('runs a typed pipeline of a module, checking its input with the zod schema', async () => {
    const tmp = tempDir('sluice-typed-run-');
    try {
      const store = `sqlite:${join(tmp.dir, 's.db')}`;
      const ok = await runCli(['--store', store, '--json', 'run', `${FIXTURE}#typed-greet`, '--input', '{"name":"ada"}']);
      expect(ok.code, ok.stderr).toBe(0);
      const run = JSON.parse(ok.stdout) as { id: string; status: string; input: unknown };
      expect(run.status).toBe('succeeded');
      // The zod default (times: 2) was applied before the run started.
      expect(run.input).toEqual({ name: 'ada', times: 2 });
      const status = JSON.parse((await runCli(['--store', store, '--json', 'status', run.id])).stdout) as { steps: Array<{ name: string; output: unknown }> };
      expect(status.steps.find((s) => s.name === 'count')?.output).toBe('hello ada'.length * 2);
      const bad = await runCli(['--store', store, 'run', `${FIXTURE}#typed-greet`, '--input', '{"name":""}']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('INPUT_INVALID: input of pipeline typed-greet is invalid:\n  name: ');
      const graph = await runCli(['graph', `${FIXTURE}#typed-greet`]);
      expect(graph.stdout).toContain('count  function  <- hello');
      const unknown = await runCli(['--store', store, 'run', `${FIXTURE}#typed-nope`]);
      expect(unknown.code).not.toBe(0);
      expect(unknown.stderr).toContain('exports no pipeline named typed-nope (it exports: typed-greet, typed-shell)');
    } finally {
      tmp.cleanup();
    }
  });
});

describe.skipIf(postgresDisabled())('sluice worker --load on postgres', () => {
  const pg = usePostgresCli('sluice-typed-pg-');

  it('registers the module pipelines and runs their inline functions for runs started by another process', async () => {
    const worker = startCli(['--store', pg.url, 'worker', '--load', FIXTURE, '--concurrency', '4']);
    let stderr = '';
    worker.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    await waitFor('the worker to load its pipelines', () => stderr.includes('loaded typed-greet, typed-shell'), 60_000);
    // This process runs no worker: only the CLI worker can execute the inline functions.
    const engine = createEngine({ store: await openStore(pg.url), onError: () => undefined });
    try {
      const { run } = await engine.startRun('typed-greet', { input: { name: 'bo', times: 3 } });
      const done = await engine.waitForRun(run.id, { timeout: 30_000 });
      expect(done.status).toBe('succeeded');
      const outputs = await engine.store.getStepOutputs(run.id, ['hello', 'count']);
      expect(outputs['count']).toBe('hello bo'.length * 3);
      expect((outputs['hello'] as { pid: number }).pid).toBe(worker.pid);
    } finally {
      await engine.close();
    }
  });
});
