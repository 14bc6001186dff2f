import { SluiceError } from '../../core/errors.js';
import type { FlowRuleName } from '../../core/flow-control.js';
import type { CreateRunRequest, CreatedRun } from '../store.js';
import { debounceSlot, rateLimitSlot, throttleSlot, type BucketState } from './flow-decide.js';

// The flow rules of one run start, written once for both drivers: a generator that yields the operations it needs
// (each driver runs them inside the transaction that creates the run, after locking the rule's bucket) and
// decides with the pure functions of flow-decide.ts.

/** Start time of a run that waits for another to end (singleton queue): released by {@link FlowDriver}. */
export const HELD_RUN_AT = 8.64e15;

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

/** A run as the flow rules see it. */
export interface FlowRunState {
  status: string;
  runAt: number;
}

/** The operations the flow rules ask of a driver, each with what it answers. */
export type FlowOp =
  | { op: 'bucket'; rule: FlowRuleName; key: string } // -> BucketState, locked until the transaction ends
  | { op: 'save'; rule: FlowRuleName; key: string; state: BucketState } // -> void
  | { op: 'run'; id: string } // -> FlowRunState | undefined
  | { op: 'existing'; id: string } // -> CreatedRun of that run, created: false
  | { op: 'idempotent'; req: CreateRunRequest } // -> CreatedRun of the run its idempotency key names, or undefined
  | { op: 'absorb'; id: string; input: unknown; runAt: number; absorbed: number; previous?: { input: unknown } } // -> CreatedRun | undefined (undefined: it had started, or its input is no longer `previous`)
  | { op: 'create'; req: CreateRunRequest } // -> CreatedRun
  | { op: 'delay'; id: string; runAt: number } // -> RunRecord of the run, queued until runAt
  | { op: 'mark'; id: string; absorbed: number | null; after: string | null }; // -> void

export type FlowSteps = Generator<FlowOp, CreatedRun, unknown>;

const ACTIVE = new Set(['queued', 'running', 'paused', 'waiting']);

/** The flow rules of `req` (which must carry `flow`), then its creation; yields what it needs of the store. */
export function* startWithFlow(req: CreateRunRequest, now: number): FlowSteps {
  const { rules, keys } = req.flow!;
  // A repeated request answers its run as before: it is not a new start, so no rule counts or refuses it.
  if (req.idempotencyKey !== undefined) {
    const existing = (yield { op: 'idempotent', req }) as CreatedRun | undefined;
    if (existing) return existing;
  }
  const outcome: FlowOutcome = {};
  let after: string | null = null;
  if (rules.singleton) {
    const key = keys.singleton ?? '';
    const bucket = (yield { op: 'bucket', rule: 'singleton', key }) as BucketState;
    const active = bucket.runId === null ? undefined : ((yield { op: 'run', id: bucket.runId }) as FlowRunState | undefined);
    if (active && ACTIVE.has(active.status)) {
      if (rules.singleton.mode === 'skip') return { ...((yield { op: 'existing', id: bucket.runId! }) as CreatedRun), flow: { skipped: true } };
      if (rules.singleton.mode === 'cancel_running') outcome.cancels = bucket.runId!;
      else {
        after = bucket.runId;
        outcome.after = after!;
        outcome.delayedBy = 'singleton';
      }
    }
  }
  let debounced: { key: string; bucket: BucketState } | null = null;
  if (rules.debounce) {
    const key = keys.debounce ?? '';
    const bucket = (yield { op: 'bucket', rule: 'debounce', key }) as BucketState;
    const slot = debounceSlot(bucket, rules.debounce, now);
    if (slot.absorbInto !== null) {
      const merged = rules.debounce.merge === null ? null : req.flow!.merged;
      if (rules.debounce.merge !== null && merged?.runId !== slot.absorbInto) {
        // The merge was computed against another run (or none): unless this one has started, compute it again.
        const state = (yield { op: 'run', id: slot.absorbInto }) as FlowRunState | undefined;
        if (state?.status === 'queued') throw flowConflict(req);
      }
      const input = merged && merged.runId === slot.absorbInto ? merged.input : req.input;
      const previous = merged && merged.runId === slot.absorbInto ? { previous: { input: merged.previous } } : {};
      const absorbed = (yield { op: 'absorb', id: slot.absorbInto, input, runAt: slot.runAt, absorbed: slot.state.count, ...previous }) as CreatedRun | undefined;
      if (!absorbed && merged?.runId === slot.absorbInto) throw flowConflict(req);
      if (absorbed) {
        yield { op: 'save', rule: 'debounce', key, state: slot.state };
        return { ...absorbed, flow: { delayedBy: 'debounce', absorbed: slot.state.count } };
      }
    }
    debounced = { key, bucket };
  }
  let runAt = Math.max(req.runAt ?? now, now);
  if (rules.rateLimit) {
    const key = keys.rate_limit ?? '';
    const bucket = (yield { op: 'bucket', rule: 'rate_limit', key }) as BucketState;
    const slot = rateLimitSlot(bucket, rules.rateLimit, runAt);
    if (slot.refuseForMs !== null) throw rateLimited(req, key, slot.refuseForMs, rules.rateLimit.limit, rules.rateLimit.periodMs);
    if (slot.runAt > runAt) outcome.delayedBy = 'rate_limit';
    runAt = slot.runAt;
    yield { op: 'save', rule: 'rate_limit', key, state: slot.state };
  }
  if (rules.throttle) {
    const key = keys.throttle ?? '';
    const bucket = (yield { op: 'bucket', rule: 'throttle', key }) as BucketState;
    const slot = throttleSlot(bucket, rules.throttle, runAt);
    if (slot.runAt > runAt) outcome.delayedBy = 'throttle';
    runAt = slot.runAt;
    yield { op: 'save', rule: 'throttle', key, state: slot.state };
  }
  if (debounced && rules.debounce) {
    const { periodMs, maxWaitMs } = rules.debounce;
    runAt = Math.max(runAt, now + Math.min(periodMs, maxWaitMs ?? Infinity));
    outcome.delayedBy = 'debounce';
    outcome.absorbed = 1;
  }
  if (after !== null) runAt = HELD_RUN_AT;
  // Created as requested (its idempotency hash is of the request as sent), then moved to the rules' start time.
  const created = (yield { op: 'create', req }) as CreatedRun;
  const id = created.run.id;
  if (runAt > created.run.runAt) created.run = (yield { op: 'delay', id, runAt }) as CreatedRun['run'];
  if (debounced) yield { op: 'save', rule: 'debounce', key: debounced.key, state: { ...debounced.bucket, runId: id, firstAt: now, count: 1 } };
  if (rules.singleton) yield { op: 'save', rule: 'singleton', key: keys.singleton ?? '', state: { windowStart: 0, count: 0, nextAt: 0, firstAt: now, runId: id } };
  if (debounced || after !== null) yield { op: 'mark', id, absorbed: debounced ? 1 : null, after };
  return { ...created, flow: outcome };
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

/** Runs the flow steps synchronously (SQLite: inside its write transaction). */
export function runFlowSync(steps: FlowSteps, exec: (op: FlowOp) => unknown): CreatedRun {
  let next = steps.next();
  while (!next.done) next = steps.next(exec(next.value));
  return next.value;
}

/** Runs the flow steps with an async driver (PostgreSQL: inside its transaction). */
export async function runFlowAsync(steps: FlowSteps, exec: (op: FlowOp) => Promise<unknown>): Promise<CreatedRun> {
  let next = steps.next();
  while (!next.done) next = steps.next(await exec(next.value));
  return next.value;
}
