import { parseDuration } from './duration.js';
import { checkExpression, parseTemplate } from './expressions.js';
import { isRecord, type KeyPath } from './key-path.js';
import type { RawIssue } from './schema-issues.js';

/**
 * Flow control of runs (PRODUCT.md "Flow control of runs"): rules a pipeline puts on its own run starts, each per
 * pipeline or per rendered `key`. They are applied where every start passes (the store's run creation), so the
 * API, the library, events, cron and record triggers all obey them, on every process sharing the store.
 *
 * Glossary: a **bucket** is one (pipeline, rule, rendered key); a **slot** is the start time a rule gives a run.
 */

/** `rate_limit`: at most `limit` runs start per fixed window of `periodMs`; over it a start is refused or queued. */
export interface RateLimitRule {
  limit: number;
  periodMs: number;
  /** refuse: RATE_LIMITED with a retry delay. queue: the run starts in the next window with room. Default: refuse. */
  mode: 'refuse' | 'queue';
  /** Template of the bucket key; null: one bucket per pipeline. */
  key: string | null;
}

/** `throttle`: starts are spaced evenly, one every `periodMs / limit`; over it a run is delayed, never dropped. */
export interface ThrottleRule {
  limit: number;
  periodMs: number;
  key: string | null;
}

/**
 * `debounce`: a burst of starts becomes one run with the last input; it starts `periodMs` after the last request,
 * or `maxWaitMs` after the first, whichever is sooner.
 */
export interface DebounceRule {
  periodMs: number;
  /** Default: none (a steady stream of requests keeps delaying the run). */
  maxWaitMs: number | null;
  key: string | null;
  /**
   * Template of the pending run's new input, over `previous` (its input so far) and `input` (this request's), e.g.
   * `${{ $append(previous, input) }}`. Default: none (the last input wins).
   */
  merge: string | null;
}

/** `singleton`: at most one active (queued, running, paused or waiting) run per key. */
export interface SingletonRule {
  /** skip: answer the active run. queue: start after it ends. cancel_running: cancel it and start. */
  mode: 'skip' | 'queue' | 'cancel_running';
  key: string | null;
}

/** The flow rules of a pipeline, normalized; present on a `Pipeline` only when it has at least one. */
export interface FlowControl {
  rateLimit?: RateLimitRule;
  throttle?: ThrottleRule;
  debounce?: DebounceRule;
  singleton?: SingletonRule;
}

/** Flow rules as written in a pipeline file. */
export interface FlowSpec {
  rate_limit?: { limit: number; period: string | number; mode?: 'refuse' | 'queue'; key?: string };
  throttle?: { limit: number; period: string | number; key?: string };
  debounce?: { period: string | number; max_wait?: string | number; key?: string; merge?: string };
  singleton?: { mode: 'skip' | 'queue' | 'cancel_running'; key?: string };
}

/** The YAML key of each rule, in the order a start meets them. */
export const FLOW_RULE_KEYS = ['singleton', 'debounce', 'rate_limit', 'throttle'] as const;
export type FlowRuleName = (typeof FLOW_RULE_KEYS)[number];

/** What a run request carries to the store: each rule of its pipeline with its key rendered for this run. */
export interface FlowRequest {
  rules: FlowControl;
  /** Rendered key of each rule present in `rules` ('' for a rule without `key`). */
  keys: Partial<Record<FlowRuleName, string>>;
  /**
   * debounce with `merge`: the input the pending run `runId` gets if this request joins it, computed from its input
   * `previous` as read before the transaction; the store applies it only while that run's input is still `previous`.
   */
  merged?: { runId: string; previous: unknown; input: unknown };
}

/** Builds the normalized rules from a spec that passed {@link flowIssues} and the schema; undefined when none. */
export function buildFlowControl(spec: FlowSpec): FlowControl | undefined {
  const flow: FlowControl = {};
  const r = spec.rate_limit;
  if (r) flow.rateLimit = { limit: r.limit, periodMs: parseDuration(r.period), mode: r.mode ?? 'refuse', key: r.key ?? null };
  const t = spec.throttle;
  if (t) flow.throttle = { limit: t.limit, periodMs: parseDuration(t.period), key: t.key ?? null };
  const d = spec.debounce;
  if (d) flow.debounce = { periodMs: parseDuration(d.period), maxWaitMs: d.max_wait === undefined ? null : parseDuration(d.max_wait), key: d.key ?? null, merge: d.merge ?? null };
  const s = spec.singleton;
  if (s) flow.singleton = { mode: s.mode, key: s.key ?? null };
  return Object.keys(flow).length > 0 ? flow : undefined;
}

/**
 * Checks a schema cannot express: periods above zero, `max_wait` not below `period`, and keys that are valid
 * templates reading only `input` and `run` (a key is rendered when the run is requested, before any step ran).
 */
export function flowIssues(spec: Record<string, unknown>): RawIssue[] {
  const issues: RawIssue[] = [];
  for (const rule of FLOW_RULE_KEYS) {
    const value = spec[rule];
    if (!isRecord(value)) continue;
    issues.push(...positivePeriod(value, [rule, 'period']), ...keyIssues(value.key, [rule, 'key']));
    if (rule === 'debounce') issues.push(...keyIssues(value.merge, [rule, 'merge']));
  }
  const debounce = spec.debounce;
  if (isRecord(debounce) && debounce.max_wait !== undefined) {
    const period = durationOrNull(debounce.period);
    const maxWait = durationOrNull(debounce.max_wait);
    if (period !== null && maxWait !== null && maxWait < period) {
      issues.push({ path: ['debounce', 'max_wait'], target: 'value', message: `max_wait (${maxWait} ms) must not be shorter than period (${period} ms): the run would always start at max_wait` });
    }
  }
  return issues;
}

function positivePeriod(rule: Record<string, unknown>, path: KeyPath): RawIssue[] {
  if (rule.period === undefined) return [];
  const ms = durationOrNull(rule.period);
  return ms === 0 ? [{ path, target: 'value', message: 'period must be longer than 0: a window of no time holds no start' }] : [];
}

function durationOrNull(value: unknown): number | null {
  if (typeof value !== 'string' && typeof value !== 'number') return null;
  try {
    return parseDuration(value);
  } catch {
    return null;
  }
}

/** Roots a flow key cannot read: it is rendered when the run is requested, before any step, and is stored. */
const UNKNOWN_AT_REQUEST = /(?:^|[^\w$.`])(steps|secrets)\s*[.[]/;

function keyIssues(key: unknown, path: KeyPath): RawIssue[] {
  if (typeof key !== 'string') return [];
  const parsed = parseTemplate(key);
  if (parsed.error) return [{ path, target: 'value', message: `${String(path.at(-1))} is not a valid template: ${parsed.error}` }];
  for (const part of parsed.parts) {
    if (!('expr' in part)) continue;
    const problem = checkExpression(part.expr);
    if (problem) return [{ path, target: 'value', message: `${String(path.at(-1))} has an invalid expression \${{ ${part.expr} }}: ${problem}` }];
    const root = UNKNOWN_AT_REQUEST.exec(part.expr)?.[1];
    if (root !== undefined) {
      return [{ path, target: 'value', message: `${String(path.at(-1))} reads ${root}: a flow ${String(path.at(-1))} is rendered when the run is requested, from input and run only` }];
    }
  }
  return [];
}
