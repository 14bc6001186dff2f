import type { ErrorRecord } from './errors.js';

/**
 * An eval case of a pipeline: a record (by id) or an input, the desired output and how to compare, plus the
 * result of its last eval run. Glossary: `passed` is null until the case ran; a case whose pipeline call failed
 * has `error` set and counts as failed.
 */
export interface EvalCase {
  id: number;
  pipeline: string;
  /** The record the pipeline reads (its dataset is the pipeline's); exactly one of recordId and input is set. */
  recordId: string | null;
  /** The pipeline input (an attribute pipeline's source fields). */
  input: Record<string, unknown> | null;
  desiredOutput: unknown;
  /** `exact` | `number:<tolerance>` | `subset` | `regex`. */
  comparator: string;
  notes: string | null;
  /** What the pipeline produced at the last eval run (null before the first run, or when it failed). */
  actualOutput: unknown;
  justification: string | null;
  confidence: number | null;
  passed: boolean | null;
  error: ErrorRecord | null;
  lastRanAt: number | null;
  createdAt: number;
  updatedAt: number;
}

/** A case to write. `id` names an existing case of the pipeline to keep (with its last result). */
export interface NewEvalCase {
  id?: number | undefined;
  recordId?: string | null | undefined;
  input?: Record<string, unknown> | null | undefined;
  desiredOutput: unknown;
  /** Default: `exact`. */
  comparator?: string | null | undefined;
  notes?: string | null | undefined;
}

/** What one eval run produced for a case. */
export interface EvalResult {
  id: number;
  actualOutput: unknown;
  justification: string | null;
  confidence: number | null;
  error: ErrorRecord | null;
  /**
   * The record or input the output was computed from: a result whose case meanwhile reads something else is
   * dropped. Default: not checked.
   */
  subject?: { recordId: string | null; input: Record<string, unknown> | null } | undefined;
}

/** Changes to a case; absent keys stay as they are. */
export interface EvalPatch {
  desiredOutput?: unknown;
  comparator?: string | null | undefined;
  notes?: string | null | undefined;
}

export interface EvalSummary {
  total: number;
  passed: number;
  failed: number;
  notRun: number;
}
