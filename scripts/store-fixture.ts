/**
 * Makes the store fixtures that test/store-contract/migrate-in-place.test.ts opens with the current code: a store
 * created by a built release of Sluice (its dist/ folder), holding one run in each state a run can be left in,
 * each made by real means (the release's engine, worker and store API), on SQLite and on PostgreSQL.
 *
 *   npx tsx scripts/store-fixture.ts --dist /path/to/release/dist --release 0f4d4d9 \
 *     --postgres postgres://postgres:postgres@127.0.0.1:5432/postgres [--out test/fixtures/stores]
 *
 * Writes to --out:
 * - `release-<release>.sqlite`: the SQLite database file (its WAL checkpointed into it), and
 *   `release-<release>.sqlite.json`: what the release read of each run there (status, steps, events);
 * - `release-<release>.pg.json`: the same for PostgreSQL, plus the migrations the release applied, every row of
 *   every table and the sequences' values, from a database made on the server of --postgres (its URL names an
 *   admin database) and dropped afterwards. Without --postgres (nor SLUICE_TEST_POSTGRES_URL) it is not written.
 *
 * The release's clock is injected (a fixed time moved on by hand), so times and the order of events are the same
 * on every generation; run ids and worker owners are not.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import {
  FIXTURE_STATES,
  migrationHash,
  quoteIdent,
  type FixtureFacts,
  type FixtureMigration,
  type FixtureRun,
  type FixtureSequence,
  type FixtureState,
  type FixtureTable,
  type PostgresStoreFixture,
  type StoreFixture,
} from '../test/support/store-fixture.js';

/** The release's public API (`sluice`) and its PostgreSQL module (`sluice/postgres`), typed as this checkout's. */
type Sluice = typeof import('../src/index.js');
type SluicePostgres = typeof import('../src/postgres.js');
type Engine = InstanceType<Sluice['Engine']>;
type Store = Engine['store'];

interface Release {
  sluice: Sluice;
  postgres: SluicePostgres;
  /** The PostgreSQL migrations of the release, as its migrator applies them. */
  pgMigrations: ReadonlyArray<{ id: number; name: string; sql: string }>;
}

/** The fixture's clock: 2026-02-02 10:00 UTC, moved only by the scenarios. */
const T0 = Date.parse('2026-02-02T10:00:00Z');
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** A worker of another machine (its boot id is not this one's), so no process here judges it dead: its lease must expire. */
const OTHER_OWNER = 'worker-elsewhere:4242:a1b2c3:00000000-0000-4000-8000-000000000000:4026531836:987654';

const PIPELINES = [
  `name: fixture-cached
steps:
  total: { uses: code, with: { code: "return input.items.reduce((a, b) => a + b, 0)" } }
  label: { uses: code, needs: [total], with: { code: "return 'total ' + steps.total" } }
`,
  `name: fixture-failed
steps:
  load: { uses: function, with: { name: echo, args: load } }
  transform: { uses: function, needs: [load], with: { name: broken } }
`,
  `name: fixture-exhausted
steps:
  call: { uses: function, with: { name: flaky }, retry: { attempts: 2, delay: 1s, backoff: fixed, jitter: false } }
`,
  `name: fixture-paused
steps:
  first: { uses: function, with: { name: hold } }
  second: { uses: function, needs: [first], with: { name: echo, args: second } }
`,
  `name: fixture-approval
steps:
  draft: { uses: function, with: { name: echo, args: draft } }
  review: { uses: approval, needs: [draft], with: { message: Publish the draft? } }
  publish: { uses: function, needs: [review], with: { name: echo, args: publish } }
`,
  `name: fixture-sleep
steps:
  nap: { uses: sleep, with: { for: 2h } }
  after: { uses: function, needs: [nap], with: { name: echo, args: after } }
`,
  `name: fixture-event
steps:
  paid: { uses: wait_for_event, with: { event: order.paid, match: "event.order_id = input.order_id" } }
  ship: { uses: function, needs: [paid], with: { name: echo, args: "\${{ steps.paid.amount }}" } }
`,
  `name: fixture-child
steps:
  double: { uses: function, with: { name: double } }
`,
  `name: fixture-parent
steps:
  sub: { uses: pipeline, with: { pipeline: fixture-child, input: { n: "\${{ input.n }}" } } }
  after: { uses: function, needs: [sub], with: { name: echo, args: "\${{ steps.sub.outputs.double }}" } }
`,
  `name: fixture-queued
steps:
  first: { uses: function, with: { name: echo, args: first } }
  second: { uses: function, needs: [first], with: { name: echo, args: second } }
`,
  `name: fixture-leased
steps:
  work: { uses: function, with: { name: echo, args: work } }
`,
];

const FACTS: FixtureFacts = {
  lease: { owner: OTHER_OWNER, step: 'work', expiresAt: 0 },
  sleep: { step: 'nap', wakeAt: 0 },
  event: { step: 'paid', name: 'order.paid', payload: { order_id: 'A-1', amount: 12 } },
  approval: { step: 'review' },
  cached: { input: { items: [1, 2, 3] } },
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dist: { type: 'string' },
      release: { type: 'string' },
      postgres: { type: 'string' },
      out: { type: 'string', default: 'test/fixtures/stores' },
    },
  });
  if (!values.dist || !values.release) throw new Error('usage: store-fixture --dist RELEASE/dist --release COMMIT [--postgres ADMIN_URL] [--out DIR]');
  const release = await loadRelease(resolve(values.dist));
  const out = resolve(values.out);
  mkdirSync(out, { recursive: true });
  const base = join(out, `release-${values.release}`);
  await writeSqliteFixture(release, values.release, base);
  const adminUrl = values.postgres ?? process.env['SLUICE_TEST_POSTGRES_URL'];
  if (adminUrl) await writePostgresFixture(release, values.release, base, adminUrl);
  else console.log('no --postgres: the PostgreSQL fixture is not written');
}

async function loadRelease(dist: string): Promise<Release> {
  const load = (file: string) => import(pathToFileURL(join(dist, file)).href);
  if (!existsSync(join(dist, 'index.js'))) throw new Error(`${dist} holds no build (index.js): run npm run build in its checkout`);
  return {
    sluice: (await load('index.js')) as Sluice,
    postgres: (await load('postgres.js')) as SluicePostgres,
    pgMigrations: ((await load('store/postgres/migrations/index.js')) as { migrations: Release['pgMigrations'] }).migrations,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The runs

/** Functions of the fixture's `function` steps; `hold` waits at `paused` until let go. */
function stepFunctions(sluice: Sluice, paused: Barrier) {
  return {
    echo: (ctx: { args: unknown }) => ({ echoed: ctx.args ?? null }),
    double: (ctx: { input: unknown }) => (ctx.input as { n: number }).n * 2,
    broken: () => {
      throw new sluice.SluiceError('STEP_FAILED', 'the transform broke', { retryable: false });
    },
    flaky: () => {
      throw new Error('the remote end answered 503');
    },
    hold: async () => {
      paused.entered();
      await paused.released;
      return { held: true };
    },
  };
}

interface Barrier {
  entered(): void;
  reached: Promise<void>;
  release(): void;
  released: Promise<void>;
}

function barrier(): Barrier {
  let entered = () => {};
  let release = () => {};
  const reached = new Promise<void>((r) => (entered = r));
  const released = new Promise<void>((r) => (release = r));
  return { entered: () => entered(), reached, release: () => release(), released };
}

/** Polls `probe` until it holds (the release's own worker moves the runs on meanwhile). */
async function until(probe: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 3000; i++) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Works one run with a worker of its own until `done` holds and the run is at rest (no attempt of it running, none
 * of its pipeline ready now), then stops the worker.
 */
async function workRun(engine: Engine, runId: string, done: (store: Store) => Promise<boolean>, what: string): Promise<void> {
  engine.startWorker({ runId, pollMs: 5, reapMs: 3_600_000, leaseMs: HOUR });
  try {
    await until(async () => (await done(engine.store)) && (await atRest(engine, runId)), what);
  } finally {
    await engine.stopWorker();
  }
}

/**
 * Whether no attempt of the run is running and none of its pipeline is ready now. The reads are not one snapshot:
 * the run's last event, read before and after them, says nothing moved in between (every transition writes one).
 */
async function atRest(engine: Engine, runId: string): Promise<boolean> {
  const { store } = engine;
  const lastEvent = async () => (await allEvents(store, runId)).at(-1)?.id;
  const before = await lastEvent();
  const run = await store.getRun(runId);
  if (!run) return false;
  if ((await store.listAttempts(runId)).some((a) => a.status === 'running')) return false;
  const queue = (await store.queueStats(engine.clock.now())).find((q) => q.pipeline === run.pipeline);
  if (queue && queue.oldestReadyAt !== null) return false;
  return (await lastEvent()) === before;
}

const runIs = (runId: string, status: string) => async (store: Store) => (await store.getRun(runId))?.status === status;
const stepIs = (runId: string, step: string, status: string) => async (store: Store) => (await store.listSteps(runId)).some((s) => s.name === step && s.status === status);

/**
 * Registers the fixture's pipelines on `store` and leaves one run in each state; returns the runs by state and
 * the facts the test needs. Each scenario starts a minute after the one before, on the injected clock.
 */
async function makeRuns(sluice: Sluice, store: Store, artifactsDir: string): Promise<{ now: number; facts: FixtureFacts; runs: Map<FixtureState, string> }> {
  const clock = { t: T0, now: () => clock.t };
  const paused = barrier();
  const steps = sluice.builtinStepTypes({ functions: stepFunctions(sluice, paused) });
  const errors: unknown[] = [];
  const engine = new sluice.Engine({ store, steps, clock, artifactsDir, onError: (e) => errors.push(e) });
  const runs = new Map<FixtureState, string>();
  const facts: FixtureFacts = structuredClone(FACTS);
  const start = async (pipeline: string, input: unknown = null) => (await engine.startRun(pipeline, { input })).run.id;
  const next = () => (clock.t += MINUTE);
  try {
    for (const text of PIPELINES) {
      const { spec } = sluice.parsePipelineText(text, 'fixture.yaml');
      await engine.registerPipeline(sluice.normalizePipeline(spec, { stepTypes: steps }), { text });
    }

    next();
    runs.set('succeeded', await start('fixture-cached', facts.cached.input));
    await workRun(engine, runs.get('succeeded')!, runIs(runs.get('succeeded')!, 'succeeded'), 'the cached run to succeed');

    next();
    runs.set('failed', await start('fixture-failed', { batch: 7 }));
    await workRun(engine, runs.get('failed')!, runIs(runs.get('failed')!, 'failed'), 'the failing run to fail');

    next();
    const exhausted = await start('fixture-exhausted', { endpoint: 'https://example.invalid/ingest' });
    runs.set('dead-lettered', exhausted);
    // Each retry waits 1 s of the clock: the clock moves on whenever the run is at rest and has not failed yet.
    engine.startWorker({ runId: exhausted, pollMs: 5, reapMs: 3_600_000, leaseMs: HOUR });
    try {
      for (let tries = 0; ; tries++) {
        await until(() => atRest(engine, exhausted), 'a try of the flaky run');
        if (await runIs(exhausted, 'failed')(store)) break;
        if (tries === 5) throw new Error('the flaky run did not fail for good');
        clock.t += 1000;
      }
    } finally {
      await engine.stopWorker();
    }

    next();
    const held = await start('fixture-paused', { note: 'paused after its first step started' });
    runs.set('paused', held);
    engine.startWorker({ runId: held, pollMs: 5, reapMs: 3_600_000, leaseMs: HOUR });
    await paused.reached;
    await engine.pause(held);
    paused.release();
    await until(async () => (await stepIs(held, 'first', 'succeeded')(store)) && (await atRest(engine, held)), 'the paused run to settle');
    await engine.stopWorker();

    next();
    runs.set('blocked', await start('fixture-approval', { doc: 'release notes' }));
    await workRun(engine, runs.get('blocked')!, stepIs(runs.get('blocked')!, facts.approval.step, 'blocked'), 'the approval to block');

    next();
    runs.set('sleeping', await start('fixture-sleep', null));
    facts.sleep.wakeAt = clock.t + 2 * HOUR;
    await workRun(engine, runs.get('sleeping')!, stepIs(runs.get('sleeping')!, facts.sleep.step, 'waiting'), 'the sleep to wait');

    next();
    runs.set('waiting-for-event', await start('fixture-event', { order_id: facts.event.payload['order_id'] }));
    await workRun(engine, runs.get('waiting-for-event')!, stepIs(runs.get('waiting-for-event')!, facts.event.step, 'waiting'), 'the event wait to wait');

    next();
    const parent = await start('fixture-parent', { n: 21 });
    runs.set('parent', parent);
    // The worker takes the parent's attempts only: the child run it spawns stays queued.
    await workRun(engine, parent, async (s) => (await s.listRuns({ pipeline: 'fixture-child' })).some((r) => r.parentRunId === parent), 'the child run to be spawned');
    runs.set('child', (await store.listRuns({ pipeline: 'fixture-child' })).find((r) => r.parentRunId === parent)!.id);

    next();
    runs.set('queued', await start('fixture-queued', { n: 1 }));

    next();
    const leased = await start('fixture-leased', { n: 2 });
    runs.set('running', leased);
    const claim = await store.claimAttempts(OTHER_OWNER, 1, HOUR, clock.t, { runId: leased });
    if (claim.attempts.length !== 1) throw new Error('the leased run had no attempt to claim');
    facts.lease.expiresAt = claim.attempts[0]!.leaseExpiresAt;

    next();
    if (errors.length > 0) throw new AggregateError(errors, 'the release reported errors while making the runs');
    return { now: clock.t, facts, runs };
  } finally {
    await engine.stopWorker();
  }
}

/** What the release reads of each run: its status, its steps' statuses and every event, in id order. */
async function describeRuns(store: Store, runs: Map<FixtureState, string>): Promise<FixtureRun[]> {
  const described: FixtureRun[] = [];
  for (const state of FIXTURE_STATES) {
    const runId = runs.get(state);
    if (!runId) throw new Error(`no run was made in state ${state}`);
    const run = (await store.getRun(runId))!;
    const steps = Object.fromEntries((await store.listSteps(runId)).map((s) => [s.name, s.status]));
    described.push({ state, runId, pipeline: run.pipeline, status: run.status, steps, events: await allEvents(store, runId) });
  }
  return described;
}

async function allEvents(store: Store, runId: string): Promise<FixtureRun['events']> {
  const events: FixtureRun['events'] = [];
  for (;;) {
    const page = await store.listEvents({ runId, afterId: events.at(-1)?.id ?? 0, limit: 500 });
    events.push(...page);
    if (page.length < 500) return events;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// SQLite

async function writeSqliteFixture(release: Release, name: string, base: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-fixture-'));
  try {
    const path = join(dir, 'sluice.db');
    const store = new release.sluice.SqliteStore({ path });
    await store.migrate();
    let fixture: StoreFixture;
    try {
      const made = await makeRuns(release.sluice, store, join(dir, 'artifacts'));
      fixture = { release: name, backend: 'sqlite', now: made.now, facts: made.facts, runs: await describeRuns(store, made.runs) };
    } finally {
      await store.close();
    }
    // The file alone must hold everything: fold the WAL back into it.
    const db = new Database(path);
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    if (existsSync(`${path}-wal`) && statSync(`${path}-wal`).size > 0) throw new Error('the WAL was not folded into the database file');
    copyFileSync(path, `${base}.sqlite`);
    writeJson(`${base}.sqlite.json`, fixture);
    console.log(`wrote ${base}.sqlite (${statSync(`${base}.sqlite`).size} bytes) and ${base}.sqlite.json`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// PostgreSQL

async function writePostgresFixture(release: Release, name: string, base: string, adminUrl: string): Promise<void> {
  const database = `sluice_fixture_${randomBytes(6).toString('hex')}`;
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  await onClient(adminUrl, (c) => c.query(`CREATE DATABASE ${database}`));
  const dir = mkdtempSync(join(tmpdir(), 'sluice-fixture-'));
  try {
    const store = new release.postgres.PostgresStore({ url: url.toString(), poolSize: 4 });
    let made: Awaited<ReturnType<typeof makeRuns>>;
    let runs: FixtureRun[];
    try {
      await store.migrate();
      made = await makeRuns(release.sluice, store, join(dir, 'artifacts'));
      runs = await describeRuns(store, made.runs);
    } finally {
      await store.close();
    }
    const dump = await onClient(url.toString(), (c) => dumpDatabase(c, release.pgMigrations));
    const fixture: PostgresStoreFixture = { release: name, backend: 'postgres', now: made.now, facts: made.facts, runs, ...dump };
    writeJson(`${base}.pg.json`, fixture);
    console.log(`wrote ${base}.pg.json (${statSync(`${base}.pg.json`).size} bytes)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await onClient(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
  }
}

async function onClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** The migrations applied, every row of every table (but the migrations' own) and every sequence's state. */
async function dumpDatabase(c: pg.Client, migrations: Release['pgMigrations']): Promise<Pick<PostgresStoreFixture, 'migrations' | 'tables' | 'sequences'>> {
  const applied = (await c.query<{ id: number; name: string; applied_at: string }>('SELECT id, name, applied_at::text FROM sluice_migrations ORDER BY id')).rows;
  const sqlOf = (id: number) => migrations.find((m) => m.id === id)?.sql;
  const fixtureMigrations: FixtureMigration[] = applied.map((m) => {
    const sql = sqlOf(m.id);
    if (sql === undefined) throw new Error(`migration ${m.id} is applied but not in the release's list`);
    return { id: m.id, name: m.name, appliedAt: Number(m.applied_at), sha256: migrationHash(sql) };
  });
  const tables: FixtureTable[] = [];
  for (const table of await tablesInInsertOrder(c)) tables.push(await dumpTable(c, table));
  return { migrations: fixtureMigrations, tables, sequences: await dumpSequences(c) };
}

/** The tables of the public schema, each after the tables its foreign keys name. */
async function tablesInInsertOrder(c: pg.Client): Promise<string[]> {
  const names = (await c.query<{ name: string }>(`SELECT relname AS name FROM pg_class WHERE relkind IN ('r', 'p') AND relnamespace = 'public'::regnamespace AND relname <> 'sluice_migrations' ORDER BY relname`)).rows.map((r) => r.name);
  const refs = (await c.query<{ child: string; parent: string }>(
    `SELECT conrelid::regclass::text AS child, confrelid::regclass::text AS parent FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace`,
  )).rows;
  const ordered: string[] = [];
  const visit = (name: string, path: string[]) => {
    if (ordered.includes(name)) return;
    if (path.includes(name)) throw new Error(`foreign keys form a cycle: ${[...path, name].join(' -> ')}`);
    for (const r of refs) if (r.child === name && r.parent !== name) visit(r.parent, [...path, name]);
    ordered.push(name);
  };
  for (const name of names) visit(name, []);
  return ordered;
}

/** A table's insertable columns and its rows, each value as text, in primary-key order (else by every column). */
async function dumpTable(c: pg.Client, name: string): Promise<FixtureTable> {
  const columns = (await c.query<{ name: string; type: string }>(
    `SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute
      WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum`,
    [quoteIdent(name)],
  )).rows;
  const key = (await c.query<{ name: string }>(
    `SELECT a.attname AS name FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY k.n`,
    [quoteIdent(name)],
  )).rows.map((r) => r.name);
  const orderBy = (key.length > 0 ? key : columns.map((col) => col.name)).map(quoteIdent).join(', ');
  const values = columns.map((col) => `${quoteIdent(col.name)}::text`).join(', ');
  const rows = (await c.query<{ r: Array<string | null> }>(`SELECT ARRAY[${values}] AS r FROM ${quoteIdent(name)} ORDER BY ${orderBy}`)).rows.map((row) => row.r);
  return { name, columns, rows };
}

async function dumpSequences(c: pg.Client): Promise<FixtureSequence[]> {
  const names = (await c.query<{ name: string }>(`SELECT oid::regclass::text AS name FROM pg_class WHERE relkind = 'S' AND relnamespace = 'public'::regnamespace ORDER BY relname`)).rows;
  const sequences: FixtureSequence[] = [];
  for (const { name } of names) {
    const s = (await c.query<{ value: string; is_called: boolean }>(`SELECT last_value::text AS value, is_called FROM ${name}`)).rows[0]!;
    sequences.push({ name, value: s.value, isCalled: s.is_called });
  }
  return sequences;
}

function writeJson(path: string, value: unknown): void {
  writeFileSync(path, `${formatJson(value)}\n`);
}

/** JSON indented down to an event or a row, each of which takes one line: small, and a diff shows what changed. */
function formatJson(value: unknown, depth = 0): string {
  const flat = JSON.stringify(value);
  if (depth >= 4 || value === null || typeof value !== 'object' || flat.length <= 80) return flat;
  const pad = ' '.repeat(depth + 1);
  const items = Array.isArray(value) ? value.map((v) => formatJson(v, depth + 1)) : Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${formatJson(v, depth + 1)}`);
  const [open, close] = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
  return `${open}\n${items.map((item) => pad + item).join(',\n')}\n${' '.repeat(depth)}${close}`;
}

await main();
