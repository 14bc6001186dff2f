/**
 * A store made by a release (test/fixtures/stores/release-<commit>.*, written by scripts/store-fixture.ts from that
 * release's build) holds a run in every state. The current code opens it, applies its newer migrations in place,
 * reads every run as the release left it, and moves every run that can go on to its end: the queued one runs, the
 * one whose lease expires is taken over, the sleeping one wakes, the one waiting for an event gets it, the paused
 * one resumes, the blocked one is approved, the failed ones are retried, the succeeded one's outputs serve a new
 * run from the cache, and the parent ends with its child. Times come from an injected clock, never the wall.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { isOwnerDead } from '../../src/engine/owner.js';
import { builtinStepTypes, type StepFunction } from '../../src/steps/builtin.js';
import { migrations as pgMigrations } from '../../src/store/postgres/migrations/index.js';
import { SQL } from '../../src/store/postgres/pg-store-sql.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { migrations as sqliteMigrations } from '../../src/store/sqlite/migrations/index.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { RunEvent, Store } from '../../src/store/store.js';
import { acquirePostgres, createDatabase, postgresDisabled, releasePostgres } from '../support/postgres.js';
import { admin } from '../support/postgres-server.js';
import { sqliteTemplate } from '../support/sqlite-template.js';
import { FIXTURE_STATES, migrationHash, restorePostgresFixture, type FixtureRun, type FixtureState, type PostgresStoreFixture, type StoreFixture } from '../support/store-fixture.js';

/** The releases whose stores are fixtures: c227d2a is the last before a step row held its live attempt. */
const RELEASES = ['0f4d4d9', 'c227d2a'];
const FIXTURES = new URL('../fixtures/stores/', import.meta.url).pathname;
const DAY = 24 * 60 * 60_000;

/** The release's runs failed on `broken` and `flaky`; their causes are fixed now. */
const FUNCTIONS: Record<string, StepFunction> = {
  echo: (ctx) => ({ echoed: ctx.args ?? null }),
  double: (ctx) => (ctx.input as { n: number }).n * 2,
  broken: () => ({ fixed: true }),
  flaky: () => ({ answered: 200 }),
  hold: () => ({ held: true }),
};

/** A fixture put back and opened (so migrated) by the current store. */
interface Opened {
  store: Store;
  fixture: StoreFixture;
  /** A temp folder of this store (artifacts, copies). */
  dir: string;
  /** The migrations the ledger lists once the current store opened it. */
  appliedIds(): Promise<number[]>;
  /** Its tables, columns, indexes, constraints and sequences, as {@link FixtureBackend.freshSchema} lists them. */
  schema(): Promise<unknown>;
  cleanup(): Promise<void>;
}

interface FixtureBackend {
  name: string;
  skip: boolean;
  open(release: string): Promise<Opened>;
  /** The ids of the current code's migrations of this backend. */
  currentIds: number[];
  /** The schema of a store the current code creates. */
  freshSchema(dir: string): Promise<unknown>;
}

/** A SQLite file's schema: every table, index and trigger with its SQL. */
function sqliteSchema(file: string): unknown {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(`SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name`).all();
  } finally {
    db.close();
  }
}

/** A PostgreSQL database's schema: columns, indexes, constraints, sequences (not their values), functions, triggers. */
async function postgresSchema(url: string): Promise<unknown> {
  return admin(url, async (c) => {
    const rows = async (sql: string) => (await c.query(sql)).rows;
    return {
      columns: await rows(`SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns
                           WHERE table_schema = 'public' ORDER BY table_name, column_name`),
      indexes: await rows(`SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname`),
      constraints: await rows(`SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
                               WHERE connamespace = 'public'::regnamespace ORDER BY conname`),
      sequences: await rows(`SELECT sequencename, data_type, increment_by, min_value, max_value, cycle FROM pg_sequences
                             WHERE schemaname = 'public' ORDER BY sequencename`),
      functions: await rows(`SELECT proname, pg_get_functiondef(oid) AS def FROM pg_proc WHERE pronamespace = 'public'::regnamespace ORDER BY proname`),
      triggers: await rows(`SELECT tgrelid::regclass::text AS tbl, tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY tgname`),
    };
  });
}

/** A database the current code creates (a clone of the migrated template), migrated by the store, and its schema. */
async function freshPostgresSchema(): Promise<unknown> {
  const db = await createDatabase(await acquirePostgres());
  try {
    const store = new PostgresStore({ url: db.url, poolSize: 1 });
    await store.migrate();
    await store.close();
    return await postgresSchema(db.url);
  } finally {
    await db.drop();
    await releasePostgres();
  }
}

function freshSqliteSchema(dir: string): Promise<unknown> {
  const template = join(dir, 'template.db');
  copyFileSync(sqliteTemplate(), template);
  return Promise.resolve(sqliteSchema(template));
}

const fixtureBackends: FixtureBackend[] = [
  { name: 'sqlite', skip: false, open: openSqliteFixture, currentIds: sqliteMigrations.map((m) => m.id), freshSchema: freshSqliteSchema },
  { name: 'postgres', skip: postgresDisabled(), open: openPostgresFixture, currentIds: pgMigrations.map((m) => m.id), freshSchema: freshPostgresSchema },
];

function readFixture<T extends StoreFixture>(release: string, suffix: string): T {
  return JSON.parse(readFileSync(join(FIXTURES, `release-${release}.${suffix}`), 'utf8')) as T;
}

/** The release's SQLite file, copied to a temp folder and opened: the store applies its newer migrations. */
async function openSqliteFixture(release: string): Promise<Opened> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-migrate-'));
  const path = join(dir, 'sluice.db');
  copyFileSync(join(FIXTURES, `release-${release}.sqlite`), path);
  const store = new SqliteStore({ path });
  await store.migrate();
  const read = <T>(file: string, query: string) => {
    const db = new Database(file, { readonly: true });
    try {
      return db.prepare(query).all() as T[];
    } finally {
      db.close();
    }
  };
  return {
    store,
    fixture: readFixture(release, 'sqlite.json'),
    dir,
    appliedIds: async () => read<{ id: number }>(path, 'SELECT id FROM sluice_migrations ORDER BY id').map((r) => r.id),
    schema: async () => sqliteSchema(path),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * The release's PostgreSQL database rebuilt in a fresh, empty one: exactly the release's migrations (their current
 * SQL texts, which must be the ones the release ran), its rows and its sequences; then the store opens it and
 * applies the newer migrations.
 */
async function openPostgresFixture(release: string): Promise<Opened> {
  const fixture = readFixture<PostgresStoreFixture>(release, 'pg.json');
  const db = await createDatabase(await acquirePostgres(), { empty: true });
  await admin(db.url, (c) => restorePostgresFixture(c, fixture, pgMigrations, { create: SQL.ledger, record: SQL.recordMigration }));
  const store = new PostgresStore({ url: db.url, poolSize: 4 });
  await store.migrate();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-migrate-'));
  return {
    store,
    fixture,
    dir,
    appliedIds: () => admin(db.url, async (c) => (await c.query<{ id: number }>('SELECT id FROM sluice_migrations ORDER BY id')).rows.map((r) => r.id)),
    schema: () => postgresSchema(db.url),
    cleanup: async () => {
      rmSync(dir, { recursive: true, force: true });
      await db.drop();
      await releasePostgres();
    },
  };
}

async function allEvents(store: Store, filter: { runId?: string; afterId?: number }): Promise<RunEvent[]> {
  const events: RunEvent[] = [];
  for (;;) {
    const page = await store.listEvents({ ...filter, afterId: events.at(-1)?.id ?? filter.afterId ?? 0, limit: 200 });
    events.push(...page);
    if (page.length < 200) return events;
  }
}

for (const [release, backend] of RELEASES.flatMap((r) => fixtureBackends.map((b) => [r, b] as const))) {
  describe.skipIf(backend.skip)(`a store of release ${release} migrated in place on ${backend.name}`, () => {
    let opened: Opened;
    let store: Store;
    let fixture: StoreFixture;
    let engine: Engine;
    let working = false;
    let lastFixtureId = 0;
    const clock = { t: 0, now: () => clock.t };
    const published: RunEvent[] = [];
    const errors: unknown[] = [];

    beforeAll(async () => {
      opened = await backend.open(release);
      ({ store, fixture } = opened);
      clock.t = fixture.now;
      lastFixtureId = Math.max(...fixture.runs.flatMap((r) => r.events.map((e) => e.id)));
      engine = new Engine({ store, steps: builtinStepTypes({ functions: FUNCTIONS }), clock, artifactsDir: join(opened.dir, 'artifacts'), onError: (e) => errors.push(e) });
      engine.subscribe((e) => published.push(e));
    });
    afterAll(async () => {
      await engine?.close();
      await opened?.cleanup();
    });

    const runOf = (state: FixtureState): FixtureRun => fixture.runs.find((r) => r.state === state)!;
    const stepsOf = async (runId: string) => Object.fromEntries((await store.listSteps(runId)).map((s) => [s.name, s]));

    /** Starts the worker once, after the reads of the store as the release left it. Its leases outlast any clock move. */
    function work(): void {
      if (working) return;
      working = true;
      engine.startWorker({ pollMs: 10, reapMs: 20, leaseMs: DAY });
    }

    /** Waits for the run to succeed; its events are the release's, then new ones (ids past the fixture's), to run.succeeded. */
    async function succeeds(state: FixtureState): Promise<RunEvent[]> {
      const run = runOf(state);
      work();
      expect((await engine.waitForRun(run.runId, { timeout: 30_000 })).status).toBe('succeeded');
      const events = await allEvents(store, { runId: run.runId });
      expect(events.slice(0, run.events.length)).toEqual(run.events);
      const added = events.slice(run.events.length);
      expect(added.filter((e) => e.id <= lastFixtureId)).toEqual([]);
      expect(added.at(-1)?.type).toBe('run.succeeded');
      return added;
    }

    it('applies every current migration on top of the release', async () => {
      if (backend.name === 'postgres') {
        // The rows were written under the SQL the release ran: the current texts of those migrations must be it.
        for (const m of (fixture as PostgresStoreFixture).migrations) {
          expect(migrationHash(pgMigrations.find((x) => x.id === m.id)?.sql ?? ''), `migration ${m.id} (${m.name}) was edited since the release`).toBe(m.sha256);
        }
      }
      expect(await opened.appliedIds()).toEqual(backend.currentIds);
    });

    it('leaves the same schema as a store the current code creates', async () => {
      const fresh = await backend.freshSchema(opened.dir);
      expect(JSON.stringify(fresh).length).toBeGreaterThan(1000);
      expect(await opened.schema()).toEqual(fresh);
    });

    it('reads every run, its steps and its events as the release left them', async () => {
      expect(fixture.runs.map((r) => r.state)).toEqual([...FIXTURE_STATES]);
      for (const run of fixture.runs) {
        expect((await store.getRun(run.runId))?.status, run.state).toBe(run.status);
        expect(Object.fromEntries(Object.entries(await stepsOf(run.runId)).map(([name, s]) => [name, s.status])), run.state).toEqual(run.steps);
        expect(await allEvents(store, { runId: run.runId }), run.state).toEqual(run.events);
      }
      // The fixture's runs hold every event of the store.
      expect(await allEvents(store, {})).toEqual(fixture.runs.flatMap((r) => r.events).sort((a, b) => a.id - b.id));
      expect((await store.listDeadLetters(50)).map((r) => r.id).sort()).toEqual([runOf('failed').runId, runOf('dead-lettered').runId].sort());
    });

    it('keeps the live lease of another worker until it expires', async () => {
      const { runId } = runOf('running');
      const { lease } = fixture.facts;
      expect(clock.now()).toBeLessThan(lease.expiresAt);
      expect(await store.reap(clock.now(), isOwnerDead)).toMatchObject({ expired: 0 });
      expect((await store.listAttempts(runId, lease.step)).map((a) => [a.status, a.owner])).toEqual([['running', lease.owner]]);
    });

    it('runs the queued run', async () => {
      const added = await succeeds('queued');
      expect(added[0]?.type).toBe('run.started');
      const steps = await stepsOf(runOf('queued').runId);
      expect([steps['first']?.output, steps['second']?.output]).toEqual([{ echoed: 'first' }, { echoed: 'second' }]);
    });

    it('finishes the parent once its spawned child finishes', async () => {
      const parent = runOf('parent');
      const child = runOf('child');
      const added = await succeeds('parent');
      expect((await engine.waitForRun(child.runId)).status).toBe('succeeded');
      const childEnd = (await allEvents(store, { runId: child.runId })).find((e) => e.type === 'run.succeeded')!;
      const subEnd = added.find((e) => e.step === 'sub' && e.type === 'step.succeeded')!;
      expect(childEnd.id).toBeLessThan(subEnd.id);
      const steps = await stepsOf(parent.runId);
      expect(steps['sub']?.output).toMatchObject({ child_run: child.runId, status: 'succeeded', outputs: { double: 42 } });
      expect(steps['after']?.output).toEqual({ echoed: 42 });
    });

    it('takes over the running attempt once its lease has expired', async () => {
      const { runId } = runOf('running');
      const { lease } = fixture.facts;
      clock.t = lease.expiresAt + 1;
      const added = await succeeds('running');
      expect(added[0]).toMatchObject({ step: lease.step, type: 'step.queued', data: { reason: 'lease expired' } });
      const attempts = await store.listAttempts(runId, lease.step);
      expect(attempts.map((a) => a.status)).toEqual(['expired', 'succeeded']);
      expect(attempts[0]?.owner).toBe(lease.owner);
      expect(attempts[1]?.owner).not.toBe(lease.owner);
    });

    it('wakes the sleeping run at its time', async () => {
      const { runId } = runOf('sleeping');
      const { sleep } = fixture.facts;
      // Its time has not come (the lease above expired earlier): it still waits.
      expect(clock.now()).toBeLessThan(sleep.wakeAt);
      expect((await stepsOf(runId))[sleep.step]?.status).toBe('waiting');
      clock.t = sleep.wakeAt;
      const added = await succeeds('sleeping');
      expect(added.filter((e) => e.step === sleep.step).map((e) => e.type)).toEqual(['step.woken', 'step.started', 'step.succeeded']);
      expect((await stepsOf(runId))[sleep.step]?.output).toEqual({ until: new Date(sleep.wakeAt).toISOString(), woke_at: new Date(sleep.wakeAt).toISOString() });
    });

    it('wakes the run waiting for an event when the event comes', async () => {
      const { runId } = runOf('waiting-for-event');
      const { event } = fixture.facts;
      expect((await stepsOf(runId))[event.step]?.status).toBe('waiting');
      await engine.emit(event.name, event.payload);
      const added = await succeeds('waiting-for-event');
      expect(added.some((e) => e.step === event.step && e.type === 'step.woken')).toBe(true);
      const steps = await stepsOf(runId);
      expect(steps[event.step]?.output).toEqual(event.payload);
      expect(steps['ship']?.output).toEqual({ echoed: event.payload['amount'] });
    });

    it('resumes the paused run', async () => {
      const { runId } = runOf('paused');
      expect((await engine.resume(runId)).run.status).toBe('running');
      const added = await succeeds('paused');
      expect(added[0]?.type).toBe('run.resumed');
      // The step the release finished is not run again.
      expect((await store.listAttempts(runId, 'first')).map((a) => a.status)).toEqual(['succeeded']);
      expect((await stepsOf(runId))['second']?.output).toEqual({ echoed: 'second' });
    });

    it('goes on once the blocked step is approved', async () => {
      const { runId } = runOf('blocked');
      const { approval } = fixture.facts;
      await engine.decide(runId, approval.step, { decision: 'approve', comment: 'ship it', by: 'reviewer' });
      await succeeds('blocked');
      const steps = await stepsOf(runId);
      expect(steps[approval.step]?.output).toMatchObject({ approved: true, decision: 'approve', comment: 'ship it', by: 'reviewer' });
      expect(steps['publish']?.output).toEqual({ echoed: 'publish' });
      expect((await store.listDecisions(runId)).map((d) => [d.kind, d.decision])).toEqual([['human', 'approve']]);
    });

    it('retries the failed run and the dead letter, re-running only what failed', async () => {
      const failed = runOf('failed');
      const dead = runOf('dead-lettered');
      await engine.retry(failed.runId);
      await engine.retry(dead.runId);
      await succeeds('failed');
      await succeeds('dead-lettered');
      expect((await store.listAttempts(failed.runId, 'load')).map((a) => a.status)).toEqual(['succeeded']);
      expect((await stepsOf(failed.runId))['transform']?.output).toEqual({ fixed: true });
      expect((await stepsOf(dead.runId))['call']?.output).toEqual({ answered: 200 });
      expect(await store.listDeadLetters(50)).toEqual([]);
    });

    it("serves a new run with the succeeded run's input from the cache", async () => {
      const done = runOf('succeeded');
      work();
      const { run } = await engine.startRun(done.pipeline, { input: fixture.facts.cached.input });
      expect((await engine.waitForRun(run.id, { timeout: 30_000 })).status).toBe('succeeded');
      const before = await stepsOf(done.runId);
      const steps = await stepsOf(run.id);
      expect(Object.values(steps).map((s) => [s.name, s.status])).toEqual(Object.keys(done.steps).map((name) => [name, 'cached']));
      for (const name of Object.keys(done.steps)) expect(steps[name]?.output).toEqual(before[name]?.output);
      expect((await allEvents(store, { runId: run.id })).filter((e) => e.type === 'step.cached').map((e) => e.step)).toEqual(Object.keys(done.steps));
      expect(await allEvents(store, { runId: done.runId })).toEqual(done.events);
    });

    it('writes new events after every event of the release; paging after its last id returns exactly them', async () => {
      const added = await allEvents(store, { afterId: lastFixtureId });
      expect(added.length).toBeGreaterThan(0);
      expect(added.map((e) => e.id)).toEqual([...new Set(published.map((e) => e.id))].sort((a, b) => a - b));
      expect(added).toEqual([...new Map(published.map((e) => [e.id, e])).values()].sort((a, b) => a.id - b.id));
      const all = await allEvents(store, {});
      expect(all.slice(0, all.length - added.length)).toEqual(fixture.runs.flatMap((r) => r.events).sort((a, b) => a.id - b.id));
      expect(errors).toEqual([]);
    });
  });
}
