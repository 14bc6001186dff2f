import type { ErrorRecord } from '../core/errors.js';

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

/**
 * Eval cases (SQLite: sqlite/evals.ts, PostgreSQL: postgres/pg-evals.ts). Cases are checked before anything is
 * written (VALIDATION_FAILED naming the case and its comparator); `passed` is always computed by the store from
 * the case's comparator, desired output and last actual output, in the transaction that changes any of them.
 */
export interface EvalStore {
  /** The cases of a pipeline in their written order. */
  listEvals(pipeline: string): Promise<EvalCase[]>;
  /**
   * Replaces the whole set of cases of a pipeline in one transaction (all or nothing). A case with the `id` of
   * an existing case keeps its last result (passed recomputed) unless its record or input changed.
   */
  replaceEvals(pipeline: string, cases: NewEvalCase[], now: number): Promise<EvalCase[]>;
  /**
   * Creates the case of a record or, when the pipeline has one for that record already, sets its desired output
   * (and comparator and notes when given).
   */
  putRecordEval(pipeline: string, recordEval: NewEvalCase & { recordId: string }, now: number): Promise<EvalCase>;
  /** Changes one case; undefined when the pipeline has no case with this id. */
  updateEval(pipeline: string, id: number, patch: EvalPatch, now: number): Promise<EvalCase | undefined>;
  /**
   * Records results of an eval run (`lastRanAt` = now; `passed` from the case's current desired output and
   * comparator). Results of cases deleted meanwhile, or now reading another record or input, are dropped.
   */
  saveEvalResults(pipeline: string, results: EvalResult[], now: number): Promise<void>;
  evalSummary(pipeline: string): Promise<EvalSummary>;
  /** Names of the pipelines that have at least one case. */
  listEvalPipelines(): Promise<string[]>;
}
