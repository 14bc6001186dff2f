/**
 * The hot paths of the PostgreSQL backend, each run inside a transaction of PostgresStore: creating a run,
 * claiming attempts and recording results.
 */
import type pg from 'pg';
import { toRunRecord, type ClaimedAttemptRow } from '../rows.js';
import type { AttemptResult, ClaimBatch, ClaimedAttempt, CreateRunRequest, CreatedRun, RunEvent } from '../store.js';
import { packEvents, type EventRows, type PgRunTransitions, type SettledStep } from './pg-run-transitions.js';
import { sql, type SqlKey } from './pg-store-sql.js';
import type { WrittenOutputs } from '../ledger/written-outputs.js';
import { createRun, planNewRun, spawnChild, type PlannedRun } from '../ledger/run-create.js';
import { recordCache, writesCache } from '../ledger/cache.js';
import { toClaimedAttempt } from '../ledger/claims.js';
import { completeSupervised, recordFailure } from '../ledger/outcomes.js';
import { recordDecision } from '../ledger/supervision.js';
import type { RunState } from '../ledger/transitions.js';
import { pgJson } from './pg-json.js';

/** One transaction's view: its client and its run transitions (which buffer its events). */
export interface Tx {
  client: pg.PoolClient;
  t: PgRunTransitions;
  /** Set when the transaction made attempts available that nobody in it claimed: NOTIFY at commit. */
  wake: boolean;
}

/**
 * A claimed row with its run. A picked attempt with a concurrency key, not leased yet, has `concurrency_key` set and
 * every other column but `id` null.
 */
export interface ClaimedRow extends ClaimedAttemptRow {
  pipeline: string;
  version: number;
  input: string;
  run_started: boolean;
}

/**
 * A row of a claim that writes its events: a claimed row (with its place in the claim's order, best first), a picked
 * row, or (id null) the ids of the events.
 */
interface LoggedRow extends ClaimedRow {
  event_ids: number[] | null;
  rank: number | null;
}

/**
 * Rows of runs created in one transaction that are not written yet: {@link insertNewRows} writes them with one
 * statement (a bulk create makes one round trip instead of three per run).
 */
export class NewRows {
  readonly runs: unknown[][] = Array.from({ length: 16 }, () => []);
  readonly steps: unknown[][] = Array.from({ length: 12 }, () => []);
  count = 0;
}

const pushRow = (cols: unknown[][], values: readonly unknown[]) => values.forEach((v, i) => cols[i]!.push(v));

/** Writes the rows collected in `rows` (runs, then steps) and empties it. */
export async function insertNewRows(tx: Tx, rows: NewRows): Promise<void> {
  if (rows.count === 0) return;
  await sql(tx.client, 'insertRunRows', [...rows.runs, ...rows.steps]);
  for (const cols of [rows.runs, rows.steps]) for (const c of cols) c.length = 0;
  rows.count = 0;
}

/** Collects the rows of a planned run (one without an idempotency key or concurrency keys) into `rows`. */
function collectRows(rows: NewRows, { run, runValues, planned, ready, statuses }: PlannedRun): void {
  pushRow(rows.runs, runValues);
  rows.count += 1;
  const readyNames = new Set(ready.map((s) => s.name));
  // A new run is never paused: the first attempts of its ready steps are queued on their rows (as insertAttempt
  // would queue them); the other steps have no attempt yet.
  planned.forEach((s, i) => {
    const row = [run.id, s.name, s.seq, statuses[i], s.waitingOn, s.priority];
    pushRow(rows.steps, readyNames.has(s.name) ? [...row, 1, 'queued', run.priority + s.priority, run.force, run.run_at, run.created_at] : [...row, 0, null, 0, 0, null, null]);
  });
}

/**
 * Runs that {@link createRunsAlone} can create: no idempotency key, no concurrency keys, something to run. Returns
 * their plans, or null when any of them needs a transaction.
 */
export function planPlainRuns(requests: CreateRunRequest[], now: number): PlannedRun[] | null {
  const plans: PlannedRun[] = [];
  for (const req of requests) {
    if (req.idempotencyKey !== undefined || req.traceparent !== undefined) return null;
    const plan = planNewRun(req, now, pgJson);
    if (plan.keys !== null || plan.run.remaining === 0) return null;
    plans.push(plan);
  }
  return plans;
}

/**
 * Creates planned runs with one statement outside a transaction block (one round trip): their rows, their events
 * and the wake-up notification, all committed (durably) together.
 */
export async function createRunsAlone(client: pg.PoolClient, plans: PlannedRun[]): Promise<CreatedRun[]> {
  const rows = new NewRows();
  for (const plan of plans) collectRows(rows, plan);
  const events = plans.flatMap((p) => p.events);
  const packed = packEvents(events);
  const ids = (await sql<{ id: number | null }>(client, 'insertRunRowsNotify', [...rows.runs, ...rows.steps, ...packed.cols]))
    .filter((r) => r.id !== null)
    .map((r) => Number(r.id))
    .sort((a, b) => a - b);
  packed.fill(ids);
  return plans.map((p) => ({ run: toRunRecord(p.run), created: true, events: p.events }));
}

/**
 * Creates one run (the ledger's rule), or returns the run its idempotency key names. With `later`, the rows of a
 * run without an idempotency key, concurrency keys or trace are only collected there; the caller writes them with
 * {@link insertNewRows}.
 */
export function createRunIn(tx: Tx, req: CreateRunRequest, now: number, later?: NewRows): Promise<CreatedRun> {
  if (!later) return tx.t.run(createRun(tx.t, req, now));
  return tx.t.run(
    createRun(tx.t, req, now, {
      // The attempts of keyed steps read the run's keys when they are inserted: such a run is written at once.
      defer: (plan, r) => r.idempotencyKey === undefined && plan.keys === null && r.traceparent === undefined && (collectRows(later, plan), true),
      flush: () => insertNewRows(tx, later),
    }),
  );
}

/** Leases up to `limit` available attempts (SKIP LOCKED), starting their steps and runs. */
export async function claimIn(tx: Tx, owner: string, limit: number, leaseMs: number, now: number, only: { runId?: string }): Promise<ClaimBatch> {
  // The claim writes its events itself, after those emitted before it in this transaction.
  const { batch, keyed } = await claimLogged(tx.client, tx.t.takeEvents(), owner, limit, leaseMs, now, only);
  if (keyed.length === 0) return batch;
  const more = await claimKeyed(tx, owner, keyed, leaseMs, now);
  return { attempts: [...batch.attempts, ...more.attempts], events: [...batch.events, ...more.events] };
}

/**
 * A claim as one statement outside a transaction block (one round trip, no WAL flush wait): it leases the attempts
 * without a concurrency key and writes their events itself. Picked attempts with a key are returned unleased, for
 * {@link claimKeyed} in a transaction of its own.
 */
export function claimAlone(client: pg.PoolClient, owner: string, limit: number, leaseMs: number, now: number, only: { runId?: string }): Promise<{ batch: ClaimBatch; keyed: ClaimedRow[] }> {
  return claimLogged(client, null, owner, limit, leaseMs, now, only);
}

/**
 * Runs a claim that writes its events: alone (`pending` null), or inside a transaction, writing `pending` (events
 * emitted before it in the transaction) first and filling in their ids.
 */
async function claimLogged(client: pg.PoolClient, pending: RunEvent[] | null, owner: string, limit: number, leaseMs: number, now: number, only: { runId?: string; ids?: number[] }): Promise<{ batch: ClaimBatch; keyed: ClaimedRow[] }> {
  const until = now + leaseMs;
  const values: unknown[] = [owner, now, until, limit];
  let key: SqlKey;
  let pendingRows: EventRows | null = null;
  if (pending === null) {
    key = only.runId === undefined ? 'claimLogged' : 'claimLoggedForRun';
  } else {
    key = only.ids ? 'claimLoggedInIds' : only.runId === undefined ? 'claimLoggedIn' : 'claimLoggedInForRun';
    pendingRows = packEvents(pending);
    values.push(...pendingRows.cols);
  }
  if (only.ids ?? only.runId) values.push(only.ids ?? only.runId);
  const rows = await sql<LoggedRow>(client, key, values);
  const keyed = rows.filter((r) => r.concurrency_key !== null);
  const claimed = rows.filter((r) => r.id !== null && r.concurrency_key === null).sort((a, b) => a.rank! - b.rank!);
  // The event rows' ids ascend in the order the statement wrote them: the pending rows, then one row per claimed
  // attempt in the claim's order (its rank), holding its events (run.started, step.woken, step.started) with the ids
  // up to the row's.
  const ids = (rows.find((r) => r.id === null)?.event_ids ?? []).map(Number);
  pendingRows?.fill(ids);
  let next = pendingRows?.cols[0]!.length ?? 0;
  const attempts: ClaimedAttempt[] = [];
  const events: RunEvent[] = [];
  for (const r of claimed) {
    let id = ids[next++]! - Number(r.run_started) - Number(r.woke);
    if (r.run_started) events.push({ id: id++, runId: r.run_id, pipeline: r.pipeline, step: null, type: 'run.started', data: null, at: now });
    if (r.woke) events.push({ id: id++, runId: r.run_id, pipeline: r.pipeline, step: r.step, type: 'step.woken', data: null, at: now });
    events.push({ id, runId: r.run_id, pipeline: r.pipeline, step: r.step, type: 'step.started', data: { attempt: r.number }, at: now });
    attempts.push(toClaimedAttempt(r, { id: r.run_id, pipeline: r.pipeline, version: r.version, input: r.input }, until));
  }
  return { batch: { attempts, events }, keyed };
}

/**
 * Leases those of `picked` (attempts with a concurrency key, picked by {@link claimAlone}) that fit under their keys'
 * limits, writing their events after those emitted before in the transaction.
 */
export async function claimKeyed(tx: Tx, owner: string, picked: ClaimedRow[], leaseMs: number, now: number): Promise<ClaimBatch> {
  const ids = await admitKeyed(tx.client, picked);
  if (ids.length === 0) return { attempts: [], events: [] };
  return (await claimLogged(tx.client, tx.t.takeEvents(), owner, ids.length, leaseMs, now, { ids })).batch;
}

/**
 * The ids of picked keyed attempts that fit under their keys' limits. Each key is decided under its advisory lock,
 * held until commit, so claimers of one key count one after another and each sees the leases of those before it
 * (committed before their lock was released). A key whose lock another transaction holds is skipped: that claimer
 * decides for it now, and these attempts stay queued for a later claim.
 */
async function admitKeyed(client: pg.PoolClient, picked: ClaimedRow[]): Promise<number[]> {
  const byKey = new Map<string, ClaimedRow[]>();
  for (const r of picked) (byKey.get(r.concurrency_key!) ?? byKey.set(r.concurrency_key!, []).get(r.concurrency_key!)!).push(r);
  const admitted: number[] = [];
  for (const key of [...byKey.keys()].sort()) {
    const [lock] = await sql<{ locked: boolean }>(client, 'tryKeyLock', [key]);
    if (!lock?.locked) continue;
    const [running] = await sql<{ n: number }>(client, 'runningWithKey', [key]);
    const candidates = byKey.get(key)!.sort((a, b) => a.id - b.id);
    const room = (candidates[0]!.concurrency_limit ?? 1) - (running?.n ?? 0);
    for (const r of candidates.slice(0, Math.max(0, room))) admitted.push(r.id);
  }
  return admitted;
}

/** A locked run as its lock read it: what settling a step needs. */
export type RunHeader = RunState;

/** A run locked for a result, as `lockAttemptRuns` returns it: with the result's attempt id and step. */
export type LockedRun = RunHeader & { attempt_id: number; attempt_step: string; keyed: boolean };

/** Applies one result if its fence still holds (the caller locked the run); false when it is stale. */
async function completeIn(tx: Tx, r: AttemptResult, now: number, events: RunEvent[], runs: ReadonlyMap<string, RunHeader>, written: WrittenOutputs): Promise<boolean> {
  const { client, t } = tx;
  const status = r.outcome;
  const error = r.error ? pgJson(r.error) : null;
  const usage = r.usage ? pgJson(r.usage) : null;
  const attemptValues = [r.attemptId, r.fence, r.owner, status, now, r.processingMs, error, usage];
  if (status === 'succeeded' || status === 'cached' || status === 'skipped') {
    const output = pgJson(r.output);
    const [fin] = await sql<{ run_id: string; step: string; number: number; output: string | null }>(client, 'finishAttemptAndStep', [...attemptValues, output, r.cacheKey ?? null]);
    if (!fin) return false;
    if (r.decision) written.spoil(fin.run_id);
    else if (fin.output !== null) written.record(fin.run_id, fin.step, fin.output);
    const run = runs.get(fin.run_id) ?? (await t.getRun(fin.run_id))!;
    // A gate that decided `proceed` succeeds; its decision goes to the audit table first.
    if (r.decision) await t.run(recordDecision(t, run, fin.step, fin.number, r.decision, null, now, events));
    if (writesCache(r)) await t.run(recordCache(t, run, fin.step, r, output, now));
    t.emit(events, run, `step.${status}`, fin.step, now, { attempt: fin.number, duration_ms: r.processingMs });
    await t.settle(events, run, fin.step, now);
    return true;
  }
  const [fin] = await sql<{ run_id: string; step: string; number: number }>(client, 'finishAttempt', attemptValues);
  if (!fin) return false;
  written.spoil(fin.run_id);
  const run = (await t.getRun(fin.run_id))!;
  if (status === 'failed') await tx.t.run(recordFailure(tx.t, run, fin.step, fin.number, r, now, events));
  else if (status === 'spawned') await tx.t.run(spawnChild(tx.t, run, fin.step, fin.number, r, now, events));
  else await tx.t.run(completeSupervised(tx.t, run, fin.step, fin.number, r, now, events));
  return true;
}

const SETTLING = new Set(['succeeded', 'cached', 'skipped']);

/**
 * Records a batch of results: those that settle their step (succeeded, cached, skipped), one per run, in a few
 * set-based statements; the others (failures, gates, several results of one run) one by one, as SQLite does.
 * The caller locked the runs; `runOf` maps attempt ids to their runs. Returns the ids applied.
 */
export async function completeBatch(tx: Tx, results: AttemptResult[], now: number, events: RunEvent[], runOf: ReadonlyMap<number, LockedRun>, written: WrittenOutputs): Promise<Set<number>> {
  const perRun = new Map<string, number>();
  for (const r of results) {
    const run = runOf.get(r.attemptId);
    if (run) perRun.set(run.id, (perRun.get(run.id) ?? 0) + 1);
  }
  const together = results.filter((r) => SETTLING.has(r.outcome) && !r.decision && perRun.get(runOf.get(r.attemptId)?.id ?? '') === 1);
  const accepted = await completeSettling(tx, together, now, events, runOf, written);
  const batched = new Set(together);
  const runs = new Map([...runOf.values()].map((r) => [r.id, r]));
  for (const r of results) {
    if (batched.has(r)) continue;
    if (await completeIn(tx, r, now, events, runs, written)) accepted.add(r.attemptId);
  }
  return accepted;
}

async function completeSettling(tx: Tx, results: AttemptResult[], now: number, events: RunEvent[], runOf: ReadonlyMap<number, LockedRun>, written: WrittenOutputs): Promise<Set<number>> {
  if (results.length === 0) return new Set();
  const { client, t } = tx;
  const json = (v: unknown) => (v === undefined ? null : pgJson(v));
  const outputs = results.map((r) => pgJson(r.output));
  const cols = [
    results.map((r) => r.attemptId),
    results.map((r) => r.fence),
    results.map((r) => r.owner),
    results.map((r) => r.outcome),
    results.map((r) => r.processingMs),
    results.map((r) => json(r.error)),
    results.map((r) => json(r.usage)),
    outputs,
    results.map((r) => r.cacheKey ?? null),
  ];
  // The stored outputs come back only where a step of the same run may need them: for runs of one-step pipelines
  // (W1) they are not asked for.
  const versions = new Map(results.map((r) => runOf.get(r.attemptId)!).map((run) => [`${run.pipeline}@${run.version}`, run]));
  let needed = false;
  for (const run of versions.values()) if (!needed) needed = [...(await t.pipelineOf(run)).dependents.values()].some((d) => d.length > 0);
  // The statement releases the dependents of the steps it finishes.
  const released: [number[], string[]] = [[], []];
  for (const r of results) {
    const run = runOf.get(r.attemptId)!;
    for (const d of (await t.pipelineOf(run)).dependents.get(run.attempt_step) ?? []) {
      released[0].push(r.attemptId);
      released[1].push(d);
    }
  }
  const rows = await sql<{ id: number; run_id: string; step: string; number: number; output?: string | null }>(client, needed ? 'finishAttemptsAndStepsWithOutputs' : 'finishAttemptsAndSteps', [...cols, now, ...released]);
  for (const row of rows) if (row.output != null) written.record(row.run_id, row.step, row.output);
  const done = new Map(rows.map((row) => [row.id, row]));
  const settled: SettledStep[] = [];
  for (const [i, r] of results.entries()) {
    const fin = done.get(r.attemptId);
    if (!fin) continue;
    const run = runOf.get(r.attemptId)!;
    if (writesCache(r)) await t.run(recordCache(t, run, fin.step, r, outputs[i] ?? null, now));
    const type = `step.${r.outcome as 'succeeded' | 'cached' | 'skipped'}` as const;
    settled.push({ run, step: fin.step, event: { type, data: { attempt: fin.number, duration_ms: r.processingMs } } });
  }
  await t.settleMany(events, settled, now, true);
  return new Set(done.keys());
}
