/**
 * Durable waits: what a `sleep` or `wait_for_event` step asks the ledger to record, and what it finds again when
 * it is woken. No I/O here.
 */
import { evaluateCondition } from './expressions.js';

/** Default lookback of a `wait_for_event` step: events received this long before the wait began still match. */
export const DEFAULT_LOOKBACK_MS = 60 * 60 * 1000;

/** The wake time of a wait with no deadline (an event wait without `timeout`): far enough never to come. */
export const NEVER = 8_640_000_000_000_000;

/** What a step asks when it begins (or goes on) waiting: the step is not leased while it waits. */
export interface WaitRequest {
  /** `approval`: the deadline of a step blocked for a human (it has no attempt; the engine decides at the deadline). */
  kind: 'sleep' | 'event' | 'approval';
  /** Epoch ms when the step is to be run again: a sleep's end, an event wait's deadline; null: no deadline. */
  wakeAt: number | null;
  /** The deadline stored with the wait when it differs from `wakeAt` (an event wait looking back first). */
  deadlineAt?: number | null;
  /** The event name (event waits). */
  event?: string;
  /** A JSONata condition over `event`, `input` and `steps` (event waits); absent: any event of that name. */
  match?: string;
  /** Events received from this time on (epoch ms) may satisfy the wait (event waits). */
  since?: number;
  /** What `match` reads besides the event: the run's input and the step's upstream outputs. */
  context?: { input: unknown; steps: Record<string, unknown> };
  /** For a match `event.PATH = VALUE`: PATH and VALUE as JSON, so an event finds its waits by index. */
  key?: { path: string; value: string };
  /** Kept on the step as its output while it waits (what `sluice status` and the API show). */
  detail: Record<string, unknown>;
  /** A wait going on after an early wake-up keeps the event that may have satisfied it meanwhile. */
  renew?: boolean;
}

/** A wait as stored, as the woken step sees it. */
export interface StepWait {
  runId: string;
  step: string;
  kind: 'sleep' | 'event' | 'approval';
  /** The attempt that wakes it. */
  attempt: number;
  beganAt: number;
  wakeAt: number | null;
  event: string | null;
  match: string | null;
  since: number | null;
  context: { input: unknown; steps: Record<string, unknown> } | null;
  /** The event that satisfied it, once one did. */
  eventId: number | null;
  matchedAt: number | null;
  done: boolean;
}

/** An approval whose deadline passed, still blocked: the engine records `decision` for it. */
export interface DueApproval {
  runId: string;
  step: string;
  decision: 'approve' | 'reject';
  deadline: number;
}

/** An event kept by the store. */
export interface ReceivedEvent {
  id: number;
  name: string;
  payload: unknown;
  receivedAt: number;
}

// `event.a.b = input.c` (either side first): a correlation the store can look up instead of evaluating.
const PATH = '[A-Za-z_][A-Za-z0-9_]*(?:\\.[A-Za-z_][A-Za-z0-9_]*)*';
const EQUALITY = new RegExp(`^\\s*(${PATH})\\s*=\\s*(${PATH})\\s*$`);

/**
 * The correlation key of a match that compares one field of the event to one value of the run (`event.order_id =
 * input.order_id`): the event's path and the run's value as JSON. Undefined when the match is anything else or
 * the value is not a string, number or boolean (such matches are evaluated per event).
 */
export function matchKey(match: string | undefined, context: Record<string, unknown>): { path: string; value: string } | undefined {
  const m = match === undefined ? null : EQUALITY.exec(match);
  if (!m) return undefined;
  const [left, right] = [m[1]!, m[2]!];
  const eventSide = left.startsWith('event.') ? left : right.startsWith('event.') ? right : null;
  const other = eventSide === left ? right : left;
  if (eventSide === null || other.startsWith('event.') || other === 'event') return undefined;
  const value = pathValue(context, other);
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') return undefined;
  return { path: eventSide.slice('event.'.length), value: JSON.stringify(value) };
}

/** The value at a dotted path, or undefined. */
export function pathValue(root: unknown, path: string): unknown {
  let v: unknown = root;
  for (const name of path.split('.')) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[name];
  }
  return v;
}

/** The key value of an event for a key path (as {@link matchKey} stores it), or undefined when it has none. */
export function eventKey(payload: unknown, path: string): string | undefined {
  const value = pathValue(payload, path);
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? JSON.stringify(value) : undefined;
}

/** Whether an event's payload satisfies a wait: its match over the event, the run input and the step's upstream outputs. */
export async function waitMatches(w: Pick<StepWait, 'match' | 'context' | 'runId'>, payload: unknown): Promise<boolean> {
  if (w.match === null || w.match.trim() === '') return true;
  const context = w.context ?? { input: null, steps: {} };
  const run = { id: w.runId, attempt: 0, pipeline: '', version: 0 };
  return evaluateCondition(w.match, { input: context.input, steps: context.steps, run, secrets: {}, event: payload });
}
