import type { EvalCase, EvalPatch, EvalResult, EvalSummary, NewEvalCase } from '../core/eval-model.js';

export type { EvalCase, EvalPatch, EvalResult, EvalSummary, NewEvalCase } from '../core/eval-model.js';

/**
 * Eval cases (written once for both backends in features/evals.ts). Cases are checked before anything is
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
