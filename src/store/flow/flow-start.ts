import { SluiceError } from '../../core/errors.js';
import type { FlowRuleName } from '../../core/flow-control.js';
import type { CreateRunRequest, CreatedRun } from '../store.js';
import type { Rule } from '../ledger/effects.js';
import { debounceSlot, EMPTY_BUCKET, rateLimitSlot, throttleSlot, type BucketState } from './flow-decide.js';
import { absorbRun, createRun, delayRun, existingRun, lockBucket, markRun, runState, saveBucket, type FlowDriver } from './flow-ops.js';
import { idempotentRun } from '../ledger/run-create.js';

// The flow rules of one run start, written once for both drivers: a ledger rule that each driver runs inside the
// transaction that creates the run (flow-ops.ts has what it reads and writes); it decides with the pure functions
// of flow-decide.ts.

/** Start time of a run that waits for another to end (singleton queue): released by releaseHeldRuns (flow-ops.ts). */
export const HELD_RUN_AT = 8.64e15;

/** True when `runAt` is {@link HELD_RUN_AT}: the run has no start time until the run it waits for ends. */
export const isHeldRunAt = (runAt: number): boolean => runAt >= HELD_RUN_AT;

/** What a start became under its pipeline's flow rules, returned with the run. */
export interface FlowOutcome {
  /** The rule that gave the run a later start time (its `run_at`), if any. */
  delayedBy?: FlowRuleName;
  /** debounce: the requests this run stands for, this one included. */
  absorbed?: number;
  /** singleton skip: nothing was started; the run answered is the active one. */
  skipped?: boolean;
  /** singleton cancel_running: the active run to cancel now that this one is created. */
  cancels?: string;
  /** singleton queue: the run this one starts after. */
  after?: string;
}

const ACTIVE = new Set(['queued', 'running', 'paused', 'waiting']);

/** The flow rules of `req` (which must carry `flow`), then its creation by the driver. */
export function* startWithFlow(d: FlowDriver, req: CreateRunRequest, now: number): Rule<CreatedRun> {
  const { rules } = req.flow!;
  const pipeline = req.pipeline.name;
  // A repeated request answers its run as before: it is not a new start, so no rule counts or refuses it.
  const existing = yield* idempotentRun(req, now);
  if (existing) return existing;
  const outcome: FlowOutcome = {};
  const active = rules.singleton ? yield* singletonActive(req) : null;
  if (active !== null && rules.singleton?.mode === 'skip') return { ...(yield* existingRun(active)), flow: { skipped: true } };
  if (active !== null && rules.singleton?.mode === 'cancel_running') outcome.cancels = active;
  const after = active !== null && rules.singleton?.mode === 'queue' ? active : null;
  if (after !== null) Object.assign(outcome, { after, delayedBy: 'singleton' });
  const joined = rules.debounce ? yield* joinDebounced(d, req, now) : null;
  if (joined && 'run' in joined) return joined.run;
  let runAt = Math.max(req.runAt ?? now, now);
  runAt = yield* rateLimitStart(req, runAt, outcome);
  runAt = yield* throttleStart(req, runAt, outcome);
  if (joined && rules.debounce) {
    runAt = Math.max(runAt, now + Math.min(rules.debounce.periodMs, rules.debounce.maxWaitMs ?? Infinity));
    Object.assign(outcome, { delayedBy: 'debounce', absorbed: 1 });
  }
  if (after !== null) runAt = HELD_RUN_AT;
  // Created as requested (its idempotency hash is of the request as sent), then moved to the rules' start time.
  const created = yield* createRun(d, req);
  const id = created.run.id;
  if (runAt > created.run.runAt) created.run = yield* delayRun(id, runAt);
  if (joined) yield* saveBucket(pipeline, 'debounce', joined.key, { ...joined.bucket, runId: id, firstAt: now, count: 1 });
  if (rules.singleton) yield* saveBucket(pipeline, 'singleton', req.flow!.keys.singleton ?? '', { ...EMPTY_BUCKET, firstAt: now, runId: id });
  if (joined || after !== null) yield* markRun(id, joined ? 1 : null, after);
  return { ...created, flow: outcome };
}

/** singleton: the key's active run (queued, running, paused or waiting), or null. */
function* singletonActive(req: CreateRunRequest): Rule<string | null> {
  const bucket = yield* lockBucket(req.pipeline.name, 'singleton', req.flow!.keys.singleton ?? '');
  if (bucket.runId === null) return null;
  const state = yield* runState(bucket.runId);
  return state && ACTIVE.has(state.status) ? bucket.runId : null;
}

/**
 * debounce: joins the bucket's pending run when there is one that has not started (`run`: the answer), else says
 * a new run is due (`key` and `bucket` to record it under). With `merge`, the merged input is applied only to the
 * run it was computed from, while its input is unchanged; otherwise FLOW_CONFLICT asks the engine to merge again.
 */
function* joinDebounced(d: FlowDriver, req: CreateRunRequest, now: number): Rule<{ run: CreatedRun } | { key: string; bucket: BucketState }> {
  const rule = req.flow!.rules.debounce!;
  const key = req.flow!.keys.debounce ?? '';
  const bucket = yield* lockBucket(req.pipeline.name, 'debounce', key);
  const slot = debounceSlot(bucket, rule, now);
  if (slot.absorbInto === null) return { key, bucket };
  const merged = rule.merge !== null && req.flow!.merged?.runId === slot.absorbInto ? req.flow!.merged : null;
  if (rule.merge !== null && !merged) {
    // The merge was computed against another run (or none): unless this one has started, compute it again.
    const state = yield* runState(slot.absorbInto);
    if (state?.status === 'queued') throw flowConflict(req);
  }
  const input = merged ? merged.input : req.input;
  const absorbed = yield* absorbRun(d, slot.absorbInto, input, slot.runAt, slot.state.count, merged ? { input: merged.previous } : undefined);
  if (!absorbed && merged) throw flowConflict(req);
  if (!absorbed) return { key, bucket };
  yield* saveBucket(req.pipeline.name, 'debounce', key, slot.state);
  return { run: { ...absorbed, flow: { delayedBy: 'debounce', absorbed: slot.state.count } } };
}

/** rate_limit: the run's start time in its window, or RATE_LIMITED (mode refuse). */
function* rateLimitStart(req: CreateRunRequest, runAt: number, outcome: FlowOutcome): Rule<number> {
  const rule = req.flow!.rules.rateLimit;
  if (!rule) return runAt;
  const key = req.flow!.keys.rate_limit ?? '';
  const bucket = yield* lockBucket(req.pipeline.name, 'rate_limit', key);
  const slot = rateLimitSlot(bucket, rule, runAt);
  if (slot.refuseForMs !== null) throw rateLimited(req, key, slot.refuseForMs, rule.limit, rule.periodMs);
  if (slot.runAt > runAt) outcome.delayedBy = 'rate_limit';
  yield* saveBucket(req.pipeline.name, 'rate_limit', key, slot.state);
  return slot.runAt;
}

/** throttle: the run's evenly spaced start time. */
function* throttleStart(req: CreateRunRequest, runAt: number, outcome: FlowOutcome): Rule<number> {
  const rule = req.flow!.rules.throttle;
  if (!rule) return runAt;
  const key = req.flow!.keys.throttle ?? '';
  const bucket = yield* lockBucket(req.pipeline.name, 'throttle', key);
  const slot = throttleSlot(bucket, rule, runAt);
  if (slot.runAt > runAt) outcome.delayedBy = 'throttle';
  yield* saveBucket(req.pipeline.name, 'throttle', key, slot.state);
  return slot.runAt;
}

function flowConflict(req: CreateRunRequest): SluiceError {
  return new SluiceError('FLOW_CONFLICT', `the pending debounced run of pipeline ${req.pipeline.name} changed while this start merged its input; try again`, { retryable: true });
}

function rateLimited(req: CreateRunRequest, key: string, retryAfterMs: number, limit: number, periodMs: number): SluiceError {
  const bucket = key === '' ? '' : ` for key "${key}"`;
  return new SluiceError(
    'RATE_LIMITED',
    `pipeline ${req.pipeline.name} is rate limited${bucket}: at most ${limit} runs per ${periodMs} ms (rate_limit); retry in ${Math.ceil(retryAfterMs / 1000)} s`,
    { retryable: true, details: { pipeline: req.pipeline.name, key, limit, period_ms: periodMs, retry_after_ms: retryAfterMs } },
  );
}
