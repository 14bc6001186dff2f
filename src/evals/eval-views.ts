import type { EvalCase, EvalSummary, NewEvalCase } from '../store/evals.js';
import { SluiceError } from '../core/errors.js';
import type { EvalReport } from './run-evals.js';

/** JSON shape of a case in the HTTP API and `sluice eval --json`: snake_case keys, times in epoch ms. */
export function evalCaseView(c: EvalCase): Record<string, unknown> {
  return {
    id: c.id,
    record_id: c.recordId,
    input: c.input,
    desired_output: c.desiredOutput,
    comparator: c.comparator,
    notes: c.notes,
    actual_output: c.actualOutput,
    justification: c.justification,
    confidence: c.confidence,
    passed: c.passed,
    error: c.error,
    last_ran_at: c.lastRanAt,
    created_at: c.createdAt,
    updated_at: c.updatedAt,
  };
}

export function evalSummaryView(s: EvalSummary): Record<string, number> {
  return { total: s.total, passed: s.passed, failed: s.failed, not_run: s.notRun };
}

export function evalReportView(report: EvalReport): { pipeline: string; evals: Array<Record<string, unknown>>; summary: Record<string, number> } {
  return { pipeline: report.pipeline, evals: report.evals.map(evalCaseView), summary: evalSummaryView(report.summary) };
}

/** Keys a written case may have (HTTP bodies, `sluice eval --set` files). */
const CASE_KEYS = new Set(['id', 'record_id', 'input', 'desired_output', 'comparator', 'notes']);

/**
 * A written case (snake_case keys) as the store takes it. Throws VALIDATION_FAILED naming the case (`label`)
 * for an unknown key or a case that is not an object; the store checks the rest.
 */
export function evalCaseFromJson(value: unknown, label: string): NewEvalCase {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new SluiceError('VALIDATION_FAILED', `${label}: must be an object`);
  const o = value as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !CASE_KEYS.has(k));
  if (unknown.length > 0) {
    throw new SluiceError('VALIDATION_FAILED', `${label}: unknown key ${unknown.map((k) => `"${k}"`).join(', ')} (expected ${[...CASE_KEYS].join(', ')})`);
  }
  return {
    id: o['id'] as number | undefined,
    recordId: o['record_id'] as string | null | undefined,
    input: o['input'] as Record<string, unknown> | null | undefined,
    desiredOutput: o['desired_output'],
    comparator: o['comparator'] as string | null | undefined,
    notes: o['notes'] as string | null | undefined,
  };
}

/** One line for a person: `evals of price: 3 passed, 1 failed, 0 not run (4 cases)`. */
export function formatEvalSummary(pipeline: string, s: EvalSummary): string {
  return `evals of ${pipeline}: ${s.passed} passed, ${s.failed} failed, ${s.notRun} not run (${s.total} case${s.total === 1 ? '' : 's'})`;
}
