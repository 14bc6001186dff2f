/**
 * Durable waits, written once for both backends: a `sleep` or `wait_for_event` step that waits holds no lease.
 * Its step is `waiting` (still counted active in its run) with one queued attempt that becomes available at its
 * wake time, as a retry's does after its delay; an event that satisfies the wait makes that attempt available at
 * once. Each wait takes at most one event: the event is set by a conditional update.
 */
import { eventKey, NEVER, type DueApproval, type ReceivedEvent, type StepWait, type WaitRequest } from '../../core/waits.js';
import type { RunRow } from '../rows.js';
import type { AttemptResult, RunEvent } from '../store.js';
import { all, get, run as exec, sql, type Rule } from './effects.js';
import type { LedgerTx } from './ledger-tx.js';
import { pipelineOf } from './transitions.js';
import { insertAttempt } from './attempt-rows.js';

// A wait belongs to one start of its step: a step reset to pending (rollback, rewind) gets a new started_at.
const CURRENT = `JOIN steps s ON s.run_id = w.run_id AND s.name = w.step AND s.started_at = w.step_started_at`;

const S = {
  waitStep: sql(
    'waitStep',
    `UPDATE steps SET status = 'waiting', output = $3::jsonb, attempts = attempts + 1
     WHERE run_id = $1 AND name = $2 AND status = 'running' RETURNING attempts, force, feedback, started_at`,
  ),
  beginWait: sql(
    'beginWait',
    `INSERT INTO step_waits (run_id, step, kind, attempt, step_started_at, began_at, wake_at, event, match, key_path, key_value, since, context, event_id, matched_at, done)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, NULL, NULL, 0)
     ON CONFLICT (run_id, step) DO UPDATE SET kind = excluded.kind, attempt = excluded.attempt, step_started_at = excluded.step_started_at,
       began_at = excluded.began_at, wake_at = excluded.wake_at, event = excluded.event, match = excluded.match, key_path = excluded.key_path,
       key_value = excluded.key_value, since = excluded.since, context = excluded.context, event_id = NULL, matched_at = NULL, done = 0`,
  ),
  renewWait: sql('renewWait', `UPDATE step_waits SET attempt = $3, wake_at = $4 WHERE run_id = $1 AND step = $2 RETURNING event_id`),
  current: sql('currentWait', `SELECT w.* FROM step_waits w ${CURRENT} WHERE w.run_id = $1 AND w.step = $2 AND w.done = 0`),
  claim: sql('claimWait', `UPDATE step_waits SET event_id = $3, matched_at = $4 WHERE run_id = $1 AND step = $2 AND event_id IS NULL AND done = 0`),
  wakeAttempt: sql(
    'wakeWaitAttempt',
    `UPDATE steps SET available_at = $3 WHERE run_id = $1 AND name = $2 AND attempt_status IN ('queued', 'held') AND available_at > $3`,
  ),
  finish: sql('finishWait', `UPDATE step_waits SET done = 1 WHERE run_id = $1 AND step = $2 AND done = 0`),
  recordEvent: sql('recordEvent', `INSERT INTO events_received (name, payload, received_at) VALUES ($1, $2::jsonb, $3) RETURNING id`),
  event: sql('receivedEvent', `SELECT * FROM events_received WHERE id = $1`),
  eventsSince: sql('eventsSince', `SELECT * FROM events_received WHERE name = $1 AND received_at >= $2 ORDER BY id LIMIT $3`),
  // The distinct key paths, one index probe each, in one statement (a DISTINCT would scan every open wait of the event).
  keyPaths: sql(
    'openWaitKeyPaths',
    `WITH RECURSIVE p(key_path) AS (
       SELECT (SELECT MIN(w.key_path) FROM step_waits w WHERE w.event = $1 AND w.event_id IS NULL AND w.done = 0 AND w.key_path > '')
       UNION ALL
       SELECT (SELECT MIN(w.key_path) FROM step_waits w WHERE w.event = $1 AND w.event_id IS NULL AND w.done = 0 AND w.key_path > p.key_path)
       FROM p WHERE p.key_path IS NOT NULL)
     SELECT key_path FROM p WHERE key_path IS NOT NULL`,
  ),
  keyedWaits: sql(
    'openKeyedWaits',
    `SELECT w.*, r.pipeline AS run_pipeline FROM step_waits w ${CURRENT} JOIN runs r ON r.id = w.run_id
     WHERE w.event = $1 AND w.key_path = $2 AND w.key_value = $3 AND w.event_id IS NULL AND w.done = 0 AND s.status IN ('waiting', 'running')`,
  ),
  anyUnkeyed: sql(
    'anyOpenUnkeyedWait',
    `SELECT 1 AS found FROM step_waits w WHERE w.event = $1 AND w.key_path IS NULL AND w.event_id IS NULL AND w.done = 0 LIMIT 1`,
  ),
  unkeyedWaits: sql(
    'openUnkeyedWaits',
    `SELECT w.* FROM step_waits w ${CURRENT}
     WHERE w.event = $1 AND w.key_path IS NULL AND w.event_id IS NULL AND w.done = 0 AND s.status IN ('waiting', 'running')
     ORDER BY w.began_at LIMIT $2`,
  ),
  stepStart: sql('waitStepStart', `SELECT started_at, attempts FROM steps WHERE run_id = $1 AND name = $2`),
  dueApprovals: sql(
    'dueApprovals',
    `SELECT w.* FROM step_waits w ${CURRENT}
     WHERE w.kind = 'approval' AND w.done = 0 AND w.wake_at <= $1 AND s.status = 'blocked' ORDER BY w.wake_at LIMIT $2`,
  ),
  pruneEvents: sql('pruneReceivedEvents', `DELETE FROM events_received WHERE received_at < $1`),
  pruneOrphanWaits: sql('pruneOrphanWaits', `DELETE FROM step_waits WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = step_waits.run_id)`),
  waitingSteps: sql('waitingStepsOfRun', `SELECT w.* FROM step_waits w ${CURRENT} WHERE w.run_id = $1 AND w.done = 0 AND s.status = 'waiting'`),
};

/** A row of `step_waits`. */
interface WaitRow {
  run_id: string;
  step: string;
  kind: string;
  attempt: number;
  began_at: number | string;
  wake_at: number | string | null;
  event: string | null;
  match: string | null;
  since: number | string | null;
  context: unknown;
  event_id: number | string | null;
  matched_at: number | string | null;
  done: number;
}

interface EventRow {
  id: number | string;
  name: string;
  payload: unknown;
  received_at: number | string;
}

const num = (v: number | string | null): number | null => (v === null ? null : Number(v));
const parsed = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);

function toWait(r: WaitRow): StepWait {
  return {
    runId: r.run_id,
    step: r.step,
    kind: r.kind === 'event' || r.kind === 'approval' ? r.kind : 'sleep',
    attempt: Number(r.attempt),
    beganAt: Number(r.began_at),
    wakeAt: num(r.wake_at),
    event: r.event,
    match: r.match,
    since: num(r.since),
    context: (parsed(r.context) ?? null) as StepWait['context'],
    eventId: num(r.event_id),
    matchedAt: num(r.matched_at),
    done: Number(r.done) === 1,
  };
}

function toEvent(r: EventRow): ReceivedEvent {
  return { id: Number(r.id), name: r.name, payload: parsed(r.payload) ?? null, receivedAt: Number(r.received_at) };
}

/**
 * The attempt ended `waiting`: the step waits holding no lease (it stays counted active in its run), with its next
 * attempt queued for the wake time. A wait that goes on after an early wake-up keeps an event that satisfied it
 * meanwhile, and then its attempt is available at once.
 */
export function* beginWait(tx: LedgerTx, run: RunRow, step: string, number: number, r: AttemptResult, now: number, events: RunEvent[]): Rule<void> {
  const w = r.wait!;
  const row = yield* get<{ attempts: number; force: number; feedback: string | null; started_at: number | string | null }>(S.waitStep, [run.id, step, tx.json(w.detail)]);
  if (!row) return;
  const wakeAt = w.wakeAt ?? NEVER;
  let availableAt = wakeAt;
  if (w.renew) {
    const kept = yield* get<{ event_id: number | null }>(S.renewWait, [run.id, step, row.attempts, w.wakeAt]);
    if (kept?.event_id != null) availableAt = now;
  } else {
    const context = w.context === undefined ? null : tx.json(w.context);
    const stored = w.deadlineAt === undefined ? w.wakeAt : w.deadlineAt;
    const values = [run.id, step, w.kind, row.attempts, num(row.started_at), now, stored, w.event ?? null, tx.text(w.match ?? null), w.key?.path ?? null, tx.text(w.key?.value ?? null), w.since ?? null, context];
    yield* exec(S.beginWait, values);
  }
  const priority = (yield* pipelineOf(tx, run)).byName.get(step)?.priority ?? 0;
  yield* insertAttempt(tx, run, step, { number: row.attempts, at: now, availableAt, priority, force: row.force === 1, feedback: row.feedback });
  if (!w.renew) {
    const until = w.deadlineAt === undefined ? w.wakeAt : w.deadlineAt;
    const data: Record<string, unknown> = { attempt: number, kind: w.kind, ...(until === null ? {} : { until }), ...(w.event ? { event: w.event } : {}) };
    tx.emit(events, run, 'step.waiting', step, now, data);
  }
  if (availableAt <= now) tx.wake();
}

/** A step blocked for a human until a deadline: the engine decides for it when the deadline passes. */
export function* recordDeadline(tx: LedgerTx, run: RunRow, step: string, w: WaitRequest, now: number): Rule<void> {
  const row = yield* get<{ started_at: number | string | null; attempts: number }>(S.stepStart, [run.id, step]);
  if (!row) return;
  const context = w.context === undefined ? null : tx.json(w.context);
  yield* exec(S.beginWait, [run.id, step, 'approval', row.attempts, num(row.started_at), now, w.wakeAt, null, null, null, null, null, context]);
}

/** Approvals past their deadline and still blocked, oldest deadline first, with the decision their step asks for then. */
export function* dueApprovals(now: number, limit: number): Rule<DueApproval[]> {
  return (yield* all<WaitRow>(S.dueApprovals, [now, limit])).map((r) => {
    const onTimeout = (parsed(r.context) as { on_timeout?: string } | null)?.on_timeout;
    return { runId: r.run_id, step: r.step, decision: onTimeout === 'approve' ? 'approve' : 'reject', deadline: Number(r.wake_at) };
  });
}

/** The wait a step was woken from, if it is current (not over, and of this start of the step). */
export function* currentWait(runId: string, step: string): Rule<StepWait | undefined> {
  const row = yield* get<WaitRow>(S.current, [runId, step]);
  return row ? toWait(row) : undefined;
}

/** The waiting steps of a run and what they wait for. */
export function* waitsOfRun(runId: string): Rule<StepWait[]> {
  return (yield* all<WaitRow>(S.waitingSteps, [runId])).map(toWait);
}

/**
 * Gives event `eventId` to the wait of `step` unless it holds one already, and makes its attempt available now
 * (`step.woken`). Returns the event the wait holds after this.
 */
export function* claimWait(tx: LedgerTx, run: Pick<RunRow, 'id' | 'pipeline'>, step: string, eventId: number, now: number, events: RunEvent[]): Rule<ReceivedEvent | undefined> {
  yield* takeWait(tx, run, step, eventId, now, events);
  const wait = yield* get<WaitRow>(S.current, [run.id, step]);
  const held = wait ? num(wait.event_id) : null;
  return held === null ? undefined : yield* eventById(held);
}

/** Gives event `eventId` to the wait of `step` unless it holds one already, waking its attempt; true when it took it. */
function* takeWait(tx: LedgerTx, run: Pick<RunRow, 'id' | 'pipeline'>, step: string, eventId: number, now: number, events: RunEvent[]): Rule<boolean> {
  const took = (yield* exec(S.claim, [run.id, step, eventId, now])) > 0;
  if (took) {
    yield* exec(S.wakeAttempt, [run.id, step, now]);
    tx.emit(events, run, 'step.woken', step, now, { event_id: eventId });
    tx.wake();
  }
  return took;
}

/** The wait is over: its step returns its output now (`step.woken` or `step.timed_out` when `emit` says so). */
export function* finishWait(tx: LedgerTx, run: Pick<RunRow, 'id' | 'pipeline'>, step: string, now: number, events: RunEvent[], emit?: 'step.woken' | 'step.timed_out'): Rule<void> {
  const changed = (yield* exec(S.finish, [run.id, step])) > 0;
  if (changed && emit) tx.emit(events, run, emit, step, now);
}

/** Keeps an event for waits that begin later (within their lookback); returns its id. */
export function* recordEvent(tx: LedgerTx, name: string, payload: unknown, now: number): Rule<number> {
  return Number((yield* get<{ id: number | string }>(S.recordEvent, [name, tx.json(payload ?? null), now]))!.id);
}

export function* eventById(id: number): Rule<ReceivedEvent | undefined> {
  const row = yield* get<EventRow>(S.event, [id]);
  return row ? toEvent(row) : undefined;
}

export function* eventsSince(name: string, since: number, limit: number): Rule<ReceivedEvent[]> {
  return (yield* all<EventRow>(S.eventsSince, [name, since, limit])).map(toEvent);
}

/** The key paths that open waits on `name` correlate on. */
export function* openKeyPaths(name: string): Rule<string[]> {
  return (yield* all<{ key_path: string }>(S.keyPaths, [name])).map((r) => r.key_path);
}

/** Open waits on `name` whose key at `path` is `value` (JSON). */
export function* openKeyedWaits(name: string, path: string, value: string): Rule<StepWait[]> {
  return (yield* all<WaitRow>(S.keyedWaits, [name, path, value])).map(toWait);
}

/** Open waits on `name` whose match is evaluated per event, oldest first, at most `limit`. */
export function* openUnkeyedWaits(name: string, limit: number): Rule<StepWait[]> {
  return (yield* all<WaitRow>(S.unkeyedWaits, [name, limit])).map(toWait);
}

/** Those of `names` that open waits with a match evaluated per event (not by key) wait on: one index probe each. */
export function* namesWithUnkeyedWaits(names: readonly string[]): Rule<Set<string>> {
  const found = new Set<string>();
  for (const name of new Set(names)) if (yield* get(S.anyUnkeyed, [name])) found.add(name);
  return found;
}

/**
 * Keeps an event and gives it to every open wait that correlates on a key the event has (`event.PATH = VALUE`
 * matches), in one transaction. Returns the event's id and the waits it took. Waits with other matches are
 * evaluated by the caller, per event.
 */
export function* deliverKeyed(tx: LedgerTx, name: string, payload: unknown, now: number, events: RunEvent[]): Rule<{ id: number; woke: Array<{ runId: string; step: string }> }> {
  const id = yield* recordEvent(tx, name, payload, now);
  const woke: Array<{ runId: string; step: string }> = [];
  for (const path of yield* openKeyPaths(name)) {
    const key = eventKey(payload, path);
    if (key === undefined) continue;
    // The waits come with their run's pipeline, and the event just stored is the one a wait holds if it takes it:
    // three statements per woken wait in all (find, take, wake its attempt).
    for (const w of yield* all<WaitRow & { run_pipeline: string }>(S.keyedWaits, [name, path, key])) {
      if (yield* takeWait(tx, { id: w.run_id, pipeline: w.run_pipeline }, w.step, id, now, events)) woke.push({ runId: w.run_id, step: w.step });
    }
  }
  return { id, woke };
}

/** Forgets events received before `before`, and the waits of runs pruned; returns how many of each. */
export function* pruneEvents(before: number): Rule<{ events: number; waits: number }> {
  const events = yield* exec(S.pruneEvents, [before]);
  const waits = yield* exec(S.pruneOrphanWaits, []);
  return { events, waits };
}
