import { isSluiceError, SluiceError, type ErrorRecord } from './errors.js';
import type { EvalCase, EvalPatch, EvalResult, EvalSummary, NewEvalCase } from './eval-model.js';
import { checkComparator, deepEqual, DEFAULT_COMPARATOR, matches } from './comparators.js';

/** A case as the stores write it: every default filled in, checked. */
export interface CheckedEvalCase {
  id: number | null;
  recordId: string | null;
  input: Record<string, unknown> | null;
  desiredOutput: unknown;
  comparator: string;
  notes: string | null;
}

/** The last result of a case that `passed` is computed from. */
export interface LastResult {
  actualOutput: unknown;
  error: ErrorRecord | null;
  lastRanAt: number | null;
}

/**
 * Checks every case before anything is written: exactly one of record_id and input (a JSON object), a desired
 * output, a comparator that parses and suits the desired output, no id or record id twice. Throws
 * VALIDATION_FAILED naming the case (index, and id when it has one) and what is wrong.
 */
export function checkEvalCases(cases: readonly NewEvalCase[]): CheckedEvalCase[] {
  const ids = new Map<number, number>();
  const records = new Map<string, number>();
  return cases.map((c, index) => {
    const checked = checkEvalCase(c, caseLabel(index, c.id));
    if (checked.id !== null) {
      const first = ids.get(checked.id);
      if (first !== undefined) throw invalid(caseLabel(index, c.id), `id ${checked.id} is also used by eval case ${first}`);
      ids.set(checked.id, index);
    }
    if (checked.recordId !== null) {
      const first = records.get(checked.recordId);
      if (first !== undefined) throw invalid(caseLabel(index, c.id), `record_id "${checked.recordId}" is also used by eval case ${first}`);
      records.set(checked.recordId, index);
    }
    return checked;
  });
}

/** Checks one case; `label` names it in errors (e.g. `eval case 3 (id 12)`). */
export function checkEvalCase(c: NewEvalCase, label: string): CheckedEvalCase {
  if (typeof c !== 'object' || c === null || Array.isArray(c)) throw invalid(label, 'must be an object');
  if (c.id !== undefined && c.id !== null && !(Number.isSafeInteger(c.id) && c.id > 0)) throw invalid(label, `id must be a positive integer, got ${JSON.stringify(c.id)}`);
  const recordId = c.recordId ?? null;
  const input = c.input ?? null;
  if ((recordId === null) === (input === null)) throw invalid(label, 'needs exactly one of record_id and input');
  if (recordId !== null && (typeof recordId !== 'string' || recordId === '')) throw invalid(label, 'record_id must be a non-empty string');
  if (input !== null && (typeof input !== 'object' || Array.isArray(input))) throw invalid(label, 'input must be a JSON object');
  if (c.desiredOutput === undefined) throw invalid(label, 'needs a desired_output');
  if (c.notes !== undefined && c.notes !== null && typeof c.notes !== 'string') throw invalid(label, 'notes must be a string');
  const comparator = checkCaseComparator(c.comparator, c.desiredOutput, label);
  return { id: c.id ?? null, recordId, input, desiredOutput: c.desiredOutput, comparator, notes: c.notes ?? null };
}

/** Applies a patch to a stored case and checks the result; throws VALIDATION_FAILED naming the case. */
export function patchEvalCase(current: CheckedEvalCase & { id: number }, patch: EvalPatch): CheckedEvalCase {
  const label = `eval case (id ${current.id})`;
  const desiredOutput = patch.desiredOutput === undefined ? current.desiredOutput : patch.desiredOutput;
  const comparatorText = patch.comparator === undefined ? current.comparator : patch.comparator;
  const notes = patch.notes === undefined ? current.notes : patch.notes;
  if (notes !== null && typeof notes !== 'string') throw invalid(label, 'notes must be a string');
  return { ...current, desiredOutput, comparator: checkCaseComparator(comparatorText, desiredOutput, label), notes };
}

/**
 * Whether a case passes given its last result: null before it ever ran, false when the pipeline failed on it,
 * else what the comparator says.
 */
export function judgeCase(c: { desiredOutput: unknown; comparator: string }, last: LastResult): boolean | null {
  if (last.lastRanAt === null) return null;
  if (last.error !== null) return false;
  return matches(c.comparator, c.desiredOutput, last.actualOutput);
}

/** Whether two cases read the same thing (same record, or equal input): a kept result still applies. */
export function sameSubject(a: { recordId: string | null; input: unknown }, b: { recordId: string | null; input: unknown }): boolean {
  return a.recordId === b.recordId && deepEqual(a.input, b.input);
}

function checkCaseComparator(text: unknown, desired: unknown, label: string): string {
  const comparator = text ?? DEFAULT_COMPARATOR;
  if (typeof comparator !== 'string') throw invalid(label, `comparator must be a string, got ${JSON.stringify(comparator)}`);
  try {
    checkComparator(comparator, desired);
  } catch (err) {
    if (isSluiceError(err)) throw invalid(label, err.message, { comparator });
    throw err;
  }
  return comparator.trim();
}

function caseLabel(index: number, id: unknown): string {
  return `eval case ${index}${typeof id === 'number' ? ` (id ${id})` : ''}`;
}

function invalid(label: string, message: string, details: Record<string, unknown> = {}): SluiceError {
  return new SluiceError('VALIDATION_FAILED', `${label}: ${message}`, { details: { case: label, ...details } });
}

/** A case about to be written: `id` null for a new one. */
export type EvalCaseDraft = Omit<EvalCase, 'id'> & { id: number | null };

/**
 * The rows of a replaced set, in order. Kept cases (by id; an id the pipeline does not have is refused) keep
 * their creation time and, unless their record or input changed, their last result with `passed` recomputed.
 */
export function planReplace(pipeline: string, cases: readonly CheckedEvalCase[], existing: readonly EvalCase[], now: number): EvalCaseDraft[] {
  const byId = new Map(existing.map((c) => [c.id, c]));
  return cases.map((c, index) => {
    const kept = c.id === null ? undefined : byId.get(c.id);
    if (c.id !== null && !kept) throw invalid(caseLabel(index, c.id), `pipeline ${pipeline} has no eval case with id ${c.id} (leave id out to add a case)`);
    return kept ? keepCase(kept, c, now) : newCase(pipeline, c, now);
  });
}

/** A stored case changed by a patch, `passed` recomputed from its last result. */
export function planPatch(current: EvalCase, patch: EvalPatch, now: number): EvalCase {
  const next = patchEvalCase(current, patch);
  return { ...current, ...next, id: current.id, passed: judgeCase(next, current), updatedAt: now };
}

/**
 * The case of a record set to a new desired output: created when `current` is undefined, else patched (its
 * comparator and notes change only when given).
 */
export function planRecordEval(pipeline: string, current: EvalCase | undefined, c: NewEvalCase & { recordId: string }, now: number): EvalCaseDraft {
  if (!current) return newCase(pipeline, checkEvalCase({ ...c, id: undefined, input: null }, `eval case of record "${c.recordId}"`), now);
  const patch: EvalPatch = { desiredOutput: c.desiredOutput };
  if (c.comparator !== undefined && c.comparator !== null) patch.comparator = c.comparator;
  if (c.notes !== undefined && c.notes !== null) patch.notes = c.notes;
  return planPatch(current, patch, now);
}

/** A stored case with the result of an eval run; undefined when the case now reads something else. */
export function planResult(current: EvalCase, result: EvalResult, now: number): EvalCase | undefined {
  if (result.subject && !sameSubject(current, result.subject)) return undefined;
  const last: LastResult = { actualOutput: result.error ? null : (result.actualOutput ?? null), error: result.error, lastRanAt: now };
  return {
    ...current,
    ...last,
    justification: result.justification,
    confidence: result.confidence,
    passed: judgeCase(current, last),
  };
}

/** Counts of a set of cases. */
export function summarize(cases: readonly EvalCase[]): EvalSummary {
  const summary: EvalSummary = { total: cases.length, passed: 0, failed: 0, notRun: 0 };
  for (const c of cases) {
    if (c.passed === true) summary.passed += 1;
    else if (c.passed === false) summary.failed += 1;
    else summary.notRun += 1;
  }
  return summary;
}

function newCase(pipeline: string, c: CheckedEvalCase, now: number): EvalCaseDraft {
  return {
    ...c,
    id: null,
    pipeline,
    actualOutput: null,
    justification: null,
    confidence: null,
    passed: null,
    error: null,
    lastRanAt: null,
    createdAt: now,
    updatedAt: now,
  };
}

function keepCase(kept: EvalCase, c: CheckedEvalCase, now: number): EvalCase {
  const unchanged =
    sameSubject(kept, c) && deepEqual(kept.desiredOutput, c.desiredOutput) && kept.comparator === c.comparator && kept.notes === c.notes;
  if (unchanged) return kept;
  if (!sameSubject(kept, c)) return { ...newCase(kept.pipeline, c, kept.createdAt), id: kept.id, updatedAt: now };
  return { ...kept, ...c, id: kept.id, passed: judgeCase(c, kept), updatedAt: now };
}
