import type { HumanDecision } from './store.js';

/** A person's decision on a blocked step, as the step's output keeps it (`human`). */
export interface HumanVerdict {
  decision: HumanDecision['decision'];
  comment?: string;
  by?: string;
  /** The reviewer's data (an approval with `with.response`). */
  response?: unknown;
  at: number;
}

/** The verdict of `d`, taken at `at` (epoch ms). */
export function humanVerdict(d: HumanDecision, at: number): HumanVerdict {
  return { decision: d.decision, ...(d.comment ? { comment: d.comment } : {}), ...(d.by ? { by: d.by } : {}), ...(d.response === undefined ? {} : { response: d.response }), at };
}

/**
 * The output of a step a person approved: what the step held while blocked (a gate's report, an approval's
 * message) stays as it was, with `approved: true` and `human: { decision, comment, by, at }` added. The flat
 * `decision`, `comment` and `by` of earlier versions stay where the held output has no such key (an approval step).
 */
export function approvedOutput(held: unknown, verdict: HumanVerdict): Record<string, unknown> {
  const { at: _at, ...flat } = verdict;
  const prior = typeof held === 'object' && held !== null && !Array.isArray(held) ? (held as Record<string, unknown>) : {};
  return { ...flat, ...prior, approved: true, human: verdict };
}
