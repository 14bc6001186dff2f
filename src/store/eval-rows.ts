import type { ErrorRecord } from '../core/errors.js';
import type { EvalCaseDraft } from '../core/eval-cases.js';
import type { EvalCase } from './evals.js';

/** A row of pipeline_evals; JSON columns are JSON text (SQLite) or parsed-later text (PostgreSQL). */
export interface EvalRow {
  id: number;
  pipeline: string;
  position: number;
  record_id: string | null;
  input: string | null;
  desired_output: string;
  comparator: string;
  notes: string | null;
  actual_output: string | null;
  justification: string | null;
  confidence: number | null;
  passed: number | boolean | null;
  error: string | null;
  last_ran_at: number | null;
  created_at: number;
  updated_at: number;
}

export function toEvalCase(row: EvalRow): EvalCase {
  return {
    id: Number(row.id),
    pipeline: row.pipeline,
    recordId: row.record_id,
    input: row.input === null ? null : (JSON.parse(row.input) as Record<string, unknown>),
    desiredOutput: JSON.parse(row.desired_output),
    comparator: row.comparator,
    notes: row.notes,
    actualOutput: row.actual_output === null ? null : JSON.parse(row.actual_output),
    justification: row.justification,
    confidence: row.confidence,
    passed: row.passed === null ? null : Boolean(row.passed),
    error: row.error === null ? null : (JSON.parse(row.error) as ErrorRecord),
    lastRanAt: row.last_ran_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** The column values of a case (without position); `passed` as SQLite stores it (1, 0, NULL). */
export function evalColumns(c: EvalCaseDraft): Omit<EvalRow, 'position' | 'id' | 'passed'> & { id: number | null; passed: boolean | null } {
  const ran = c.lastRanAt !== null && c.error === null;
  return {
    id: c.id,
    pipeline: c.pipeline,
    record_id: c.recordId,
    input: c.input === null ? null : JSON.stringify(c.input),
    desired_output: JSON.stringify(c.desiredOutput) ?? 'null',
    comparator: c.comparator,
    notes: c.notes,
    actual_output: ran ? (JSON.stringify(c.actualOutput) ?? 'null') : null,
    justification: c.justification,
    confidence: c.confidence,
    passed: c.passed,
    error: c.error === null ? null : JSON.stringify(c.error),
    last_ran_at: c.lastRanAt,
    created_at: c.createdAt,
    updated_at: c.updatedAt,
  };
}
