/**
 * Faults on PostgreSQL, bounded and on loopback: racing workers, stale results after a lost lease, and a
 * server restart in the middle of runs. Each "process" is its own PostgresStore (its own pool).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import type { PipelineSpec } from '../../src/core/model.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import type { AttemptResult, ClaimedAttempt } from '../../src/store/store.js';
import { acquirePrivatePostgres, createDatabase, postgresDisabled, releasePrivatePostgres, type PostgresServer } from '../support/postgres.js';
import { sleep, testSteps, type TestFn } from '../support/test-steps.js';

describe.skipIf(postgresDisabled())('postgres faults', () => {
  let server: PostgresServer;
  const stores: PostgresStore[] = [];
  const drops: Array<() => Promise<void>> = [];
  const engines: Engine[] = [];

  // A server of this file alone: one test restarts it.
  beforeAll(async () => {
    server = await acquirePrivatePostgres();
  });
  afterEach(async () => {
    for (const e of engines.splice(0)) await e.close();
    for (const s of stores.splice(0)) await s.close();
    for (const d of drops.splice(0)) await d();
  });
  afterAll(() => releasePrivatePostgres());

  /** A fresh database and `n` stores on it, as if opened by `n` processes. */
  async function openStores(n: number, onError: (err: unknown) => void = () => undefined): Promise<PostgresStore[]> {
    const db = await createDatabase(server);
    drops.push(db.drop);
    const opened = Array.from({ length: n }, () => new PostgresStore({ url: db.url, poolSize: 4, onError }));
    stores.push(...opened);
    // Every process migrates at start; the advisory lock lets them all do so at once.
    await Promise.all(opened.map((s) => s.migrate()));
    return opened;
  }

  function engineOn(store: PostgresStore, fns: Record<string, TestFn>): Engine {
    const engine = new Engine({ store, steps: testSteps(fns), onError: () => undefined });
    engines.push(engine);
    return engine;
  }

  async function register(engine: Engine, spec: PipelineSpec) {
    return engine.registerPipeline(normalizePipeline(spec, { stepTypes: engine.steps }));
  }

  const result = (a: ClaimedAttempt, owner: string, output: unknown, fence = a.fence): AttemptResult => ({
    attemptId: a.id,
    fence,
    owner,
    outcome: 'succeeded',
    output,
    processingMs: 1,
  });

  it('two workers racing for the same attempts: each is leased once and its result recorded once', async () => {
    const [s1, s2] = await openStores(2);
    const engine = engineOn(s1!, { x: () => 1 });
    await register(engine, { name: 'race', steps: { a: { uses: 'function', with: { fn: 'x' } } } });
    const runs = await engine.startRuns('race', Array.from({ length: 30 }, () => ({})));
    const now = Date.now();
    // Both claim at once, in small batches, until nothing is left.
    const leased = new Map<number, { a: ClaimedAttempt; owner: string }>();
    const claimAll = async (store: PostgresStore, owner: string) => {
      for (;;) {
        const batch = await store.claimAttempts(owner, 3, 30_000, now);
        if (batch.attempts.length === 0) return;
        for (const a of batch.attempts) {
          expect(leased.has(a.id)).toBe(false);
          leased.set(a.id, { a, owner });
        }
      }
    };
    await Promise.all([claimAll(s1!, 'w1'), claimAll(s2!, 'w2'), claimAll(s1!, 'w3'), claimAll(s2!, 'w4')]);
    expect(leased.size).toBe(30);
    // The holder and an impostor (same attempt and fence, another owner) submit at once, through both stores;
    // the holder also submits twice. Exactly one result per attempt is applied.
    const submissions = [...leased.values()].flatMap(({ a, owner }) => [
      s1!.completeAttempts([result(a, owner, `${owner}-1`)], now + 1),
      s2!.completeAttempts([result(a, owner, `${owner}-2`)], now + 1),
      s2!.completeAttempts([result(a, 'impostor', 'impostor')], now + 1),
    ]);
    const batches = await Promise.all(submissions);
    expect(batches.flatMap((b) => b.accepted)).toHaveLength(30);
    expect(batches.flatMap((b) => b.rejected)).toHaveLength(60);
    for (const { run } of runs) {
      const [step] = await s2!.listSteps(run.id);
      expect(step?.status).toBe('succeeded');
      expect(String(step?.output)).not.toBe('impostor');
      const events = await s2!.listEvents({ runId: run.id });
      expect(events.filter((e) => e.type === 'step.succeeded')).toHaveLength(1);
      expect((await s2!.getRun(run.id))?.status).toBe('succeeded');
    }
  });

  it("rejects a stale worker's late result after its lease expired and another worker completed", async () => {
    const [s1, s2] = await openStores(2);
    const engine = engineOn(s1!, { x: () => 1 });
    await register(engine, { name: 'stale', steps: { a: { uses: 'function', with: { fn: 'x' } }, b: { uses: 'function', needs: ['a'], with: { fn: 'x' } } } });
    const { run } = await engine.startRun('stale');
    const now = Date.now();
    const [stale] = (await s1!.claimAttempts('slow-worker', 10, 100, now)).attempts;
    expect(stale).toBeDefined();
    // Another process reaps the expired lease and takes the step over.
    expect((await s2!.reap(now + 1000)).expired).toBe(1);
    const [fresh] = (await s2!.claimAttempts('fast-worker', 10, 30_000, now + 1000)).attempts;
    expect(fresh?.step).toBe('a');
    expect(fresh!.fence).toBeGreaterThan(0);
    // Both results arrive at the same moment, through different processes.
    const [late, ok] = await Promise.all([
      s1!.completeAttempts([result(stale!, 'slow-worker', 'stale')], now + 1001),
      s2!.completeAttempts([result(fresh!, 'fast-worker', 'fresh')], now + 1001),
    ]);
    expect(late.rejected).toEqual([stale!.id]);
    expect(ok.accepted).toEqual([fresh!.id]);
    // Late again, after the run moved on.
    expect((await s1!.completeAttempts([result(stale!, 'slow-worker', 'stale')], now + 1002)).rejected).toEqual([stale!.id]);
    const steps = await s1!.listSteps(run.id);
    expect(steps[0]?.output).toBe('fresh');
    expect(steps[1]?.status).toBe('queued');
    const attempts = await s1!.listAttempts(run.id, 'a');
    expect(attempts.map((a) => [a.status, a.owner])).toEqual([
      ['expired', 'slow-worker'],
      ['succeeded', 'fast-worker'],
    ]);
  });

  it('an idle worker in another process is woken by NOTIFY, not by its next poll', async () => {
    const [s1, s2] = await openStores(2);
    const worker = engineOn(s1!, { x: () => 'done' });
    const client = engineOn(s2!, { x: () => 'done' });
    await register(client, { name: 'wake', steps: { a: { uses: 'function', with: { fn: 'x' } } } });
    // A poll interval far beyond the test's patience: only a wake-up can start the run in time.
    worker.startWorker({ pollMs: 600_000, reapMs: 600_000 });
    await waitFor(() => listening(server, s1!));
    for (let i = 0; i < 3; i++) {
      const { run } = await client.startRun('wake');
      // Generous for a loaded machine, and still far under the 600 s poll.
      const done = await Promise.race([client.waitForRun(run.id, { pollMs: 20 }), sleep(30_000).then(() => null)]);
      expect(done?.status, `run ${i} was not picked up within 30 s`).toBe('succeeded');
      await sleep(200);
    }
  });

  it('a run completes when PostgreSQL restarts (or every connection drops) in the middle of it', async () => {
    let connectionErrors = 0;
    const [s1, s2] = await openStores(2, () => (connectionErrors += 1));
    const executions = new Map<string, number>();
    const work: TestFn = async (ctx) => {
      const key = `${ctx.run.id}:${ctx.step}`;
      executions.set(key, (executions.get(key) ?? 0) + 1);
      await sleep(250);
      return ctx.step;
    };
    const worker = engineOn(s1!, { work });
    const client = engineOn(s2!, { work });
    const step = (needs: string[]) => ({ uses: 'function', needs, with: { fn: 'work' } });
    await register(client, { name: 'survive', max_parallel: 2, steps: { a: step([]), b: step(['a']), c: step(['a']), d: step(['b', 'c']) } });
    let wakeups = 0;
    const unsubscribe = await s1!.subscribeWakeups(() => (wakeups += 1));
    worker.startWorker({ pollMs: 100, reapMs: 200, leaseMs: 30_000 });
    const runs = await client.startRuns('survive', Array.from({ length: 20 }, (_, i) => ({ input: { i } })));
    await waitFor(async () => (await s2!.listRuns({ status: 'running' })).length > 0);
    await sleep(200);
    await interrupt(server, s2!);
    // The interruption hit runs in flight, and the stores saw (and retried) lost connections.
    expect((await s2!.listRuns({ status: 'succeeded' })).length).toBeLessThan(runs.length);
    expect(connectionErrors).toBeGreaterThan(0);
    // Runs started after the interruption are worked too, and the LISTEN connection came back.
    const before = wakeups;
    const later = await client.startRuns('survive', Array.from({ length: 5 }, (_, i) => ({ input: { later: i } })));
    for (const { run } of [...runs, ...later]) expect((await worker.waitForRun(run.id)).status).toBe('succeeded');
    await waitFor(() => wakeups > before);
    await unsubscribe();
    for (const { run } of [...runs, ...later]) {
      const steps = await s2!.listSteps(run.id);
      expect(steps.map((s) => s.status)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
      const events = await s2!.listEvents({ runId: run.id });
      for (const name of ['a', 'b', 'c', 'd']) expect(events.filter((e) => e.type === 'step.succeeded' && e.step === name)).toHaveLength(1);
    }
    // Nothing was lost and, with a 30 s lease, nothing had to run twice.
    expect(executions.size).toBe(25 * 4);
    expect([...executions.values()].every((n) => n === 1)).toBe(true);
  });
});

/** Restarts the embedded server; on an external server, terminates every connection to the test database. */
async function interrupt(server: PostgresServer, store: PostgresStore): Promise<void> {
  if (server.embedded) {
    await server.restart();
    return;
  }
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: server.adminUrl });
  await c.connect();
  try {
    const db = new URL(store.url).pathname.slice(1);
    await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [db]);
  } finally {
    await c.end();
  }
}

/** Whether a connection to the store's database has run LISTEN (the worker's wake-up listener is in place). */
async function listening(server: PostgresServer, store: PostgresStore): Promise<boolean> {
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: server.adminUrl });
  await c.connect();
  try {
    const db = new URL(store.url).pathname.slice(1);
    const { rows } = await c.query("SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'LISTEN %'", [db]);
    return rows.length > 0;
  } finally {
    await c.end();
  }
}

async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}
