import { SluiceError } from '../../core/errors.js';
import { DURATION_HINT, parseDuration } from '../../core/duration.js';
import { checkExpression } from '../../core/expressions.js';
import { DEFAULT_LOOKBACK_MS, matchKey, waitMatches, type ReceivedEvent, type StepWait } from '../../core/waits.js';
import type { StepContext, StepType, WaitAccess } from '../step-type.js';
import { StepDirective } from '../step-type.js';

export interface WaitForEventConfig {
  /** The event name, as `sluice emit NAME`, `POST /api/events/NAME` and `engine.emit(NAME)` send it. */
  event: string;
  /** A JSONata condition over `event` (the payload), `input` and `steps`; absent: any event of that name. */
  match?: string;
  /** How long to wait. Default: no limit. */
  timeout?: string | number;
  /** What a timeout does: `fail` the step (WAIT_TIMEOUT), or `continue` with output null. Default: fail. */
  on_timeout?: 'fail' | 'continue';
  /** Events received this long before the wait began still satisfy it. Default: 1h. */
  lookback?: string | number;
}

/** Events of the lookback window looked at when a wait begins (the newest are what a wait usually needs). */
const LOOKBACK_SCAN = 1000;

/**
 * `wait_for_event`: the run waits, durably and holding no worker, until an event named `with.event` whose payload
 * satisfies `with.match` arrives (or arrived within `with.lookback` before); the payload is the step's output.
 * One event may satisfy many waits; a wait takes one event. After `with.timeout` the step fails with
 * WAIT_TIMEOUT, or (`on_timeout: continue`) succeeds with null.
 */
export function createWaitForEventStep(): StepType<WaitForEventConfig> {
  return {
    type: 'wait_for_event',
    waits: true,
    // `match` is a JSONata condition evaluated per event, not a template of the step's config.
    rawConfigKeys: ['match'],
    configSchema: {
      type: 'object',
      additionalProperties: false,
      required: ['event'],
      properties: {
        event: { type: 'string', minLength: 1 },
        match: { type: 'string' },
        timeout: { type: ['string', 'number'] },
        on_timeout: { enum: ['fail', 'continue'] },
        lookback: { type: ['string', 'number'] },
      },
    },
    async execute(ctx, config) {
      const waits = ctx.waits;
      const current = waits?.current;
      // Without a wait port (simulate) the step only says what it would wait for.
      if (!waits || !current) return begin(ctx, config);
      const event = (await waits.matched()) ?? (await scan(ctx, waits, current));
      // A wait that holds its event is over for good: a run retry does not run a succeeded step again, and a
      // rollback starts the step (and a new wait) afresh.
      if (event) return event.payload;
      const now = ctx.now();
      if (current.wakeAt !== null && now >= current.wakeAt) return timedOut(ctx, config, waits);
      return StepDirective.wait({ kind: 'event', wakeAt: current.wakeAt, detail: detailOf(config, current.wakeAt), renew: true });
    },
  };
}

/**
 * A wait begins: it is stored first and its attempt is available at once, so that its first look at the events
 * (the lookback) happens after it is stored; an event stored meanwhile finds it (see deliverEvent).
 */
function begin(ctx: StepContext, config: WaitForEventConfig): StepDirective {
  const now = ctx.now();
  const timeoutMs = durationOf(ctx, config, 'timeout');
  const lookbackMs = durationOf(ctx, config, 'lookback') ?? DEFAULT_LOOKBACK_MS;
  if (config.match !== undefined) {
    const problem = checkExpression(config.match);
    if (problem) throw new SluiceError('VALIDATION_FAILED', `wait_for_event ${ctx.step}: with.match is not a valid expression: ${problem}`, { retryable: false });
  }
  const deadline = timeoutMs === undefined ? null : now + timeoutMs;
  const context = { input: ctx.input, steps: ctx.steps };
  const key = matchKey(config.match, context);
  return StepDirective.wait({
    kind: 'event',
    // Run again at once for the lookback; the deadline is kept with the wait.
    wakeAt: now,
    event: config.event,
    ...(config.match === undefined ? {} : { match: config.match }),
    since: now - lookbackMs,
    context,
    ...(key ? { key } : {}),
    detail: detailOf(config, deadline),
    deadlineAt: deadline,
  });
}

/** The first event of the wait's window that satisfies its match, taken for it (or the one it holds already). */
async function scan(ctx: StepContext, waits: WaitAccess, wait: StepWait): Promise<ReceivedEvent | undefined> {
  for (const event of await waits.eventsSince(wait.event!, wait.since ?? wait.beganAt, LOOKBACK_SCAN)) {
    let matches: boolean;
    try {
      matches = await waitMatches(wait, event.payload);
    } catch (err) {
      throw new SluiceError('EXPRESSION_FAILED', `wait_for_event ${ctx.step}: with.match failed on event ${event.id}: ${(err as Error).message}`, { retryable: false });
    }
    if (matches) return waits.claim(event.id);
  }
  return undefined;
}

async function timedOut(ctx: StepContext, config: WaitForEventConfig, waits: WaitAccess): Promise<unknown> {
  await waits.finish('step.timed_out');
  if (config.on_timeout === 'continue') return null;
  throw new SluiceError('WAIT_TIMEOUT', `wait_for_event ${ctx.step}: no event ${config.event} matched within ${String(config.timeout)}`, { retryable: false });
}

function detailOf(config: WaitForEventConfig, deadline: number | null): Record<string, unknown> {
  return {
    waiting_for: 'event',
    event: config.event,
    ...(config.match === undefined ? {} : { match: config.match }),
    ...(deadline === null ? {} : { until: new Date(deadline).toISOString() }),
  };
}

function durationOf(ctx: StepContext, config: WaitForEventConfig, key: 'timeout' | 'lookback'): number | undefined {
  const value = config[key];
  if (value === undefined) return undefined;
  try {
    return parseDuration(value);
  } catch {
    throw new SluiceError('VALIDATION_FAILED', `wait_for_event ${ctx.step}: with.${key} is ${JSON.stringify(value)}; expected ${DURATION_HINT}`, { retryable: false });
  }
}
