import type { ErrorRecord } from '../../core/errors.js';
import { checkEvalCases, planPatch, planRecordEval, planReplace, planResult, type EvalCaseDraft } from '../../core/eval-cases.js';
import type { EvalCase, EvalPatch, EvalResult, EvalStore, EvalSummary, NewEvalCase } from '../evals.js';
import { all, get, run, sql, type Rule } from '../ledger/effects.js';
import { Datasets } from './datasets.js';
import type { FeatureRunner } from './feature-runner.js';

/** A row of pipeline_evals; JSON columns are JSON text (SQLite) or parsed-later text (PostgreSQL). */
interface EvalRow {
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

function toEvalCase(row: EvalRow): EvalCase {
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
function evalColumns(c: EvalCaseDraft): Omit<EvalRow, 'position' | 'id' | 'passed'> & { id: number | null; passed: boolean | null } {
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

const S = {
  // PostgreSQL only: serializes writers of one pipeline's set (a replace reads, deletes and inserts). SQLite has
  // one writer at a time.
  lock: sql('evLock', `SELECT pg_advisory_xact_lock(hashtextextended('sluice-evals:' || $1, 0))`),
  list: sql('evList', `SELECT * FROM pipeline_evals WHERE pipeline = $1 ORDER BY position, id`),
  get: sql('evGet', `SELECT * FROM pipeline_evals WHERE pipeline = $1 AND id = $2`),
  byRecord: sql('evByRecord', `SELECT * FROM pipeline_evals WHERE pipeline = $1 AND record_id = $2`),
  deleteAll: sql('evDeleteAll', `DELETE FROM pipeline_evals WHERE pipeline = $1`),
  nextPosition: sql('evNextPosition', `SELECT COALESCE(MAX(position), -1) + 1 AS n FROM pipeline_evals WHERE pipeline = $1`),
  // $1 id (NULL = a new one) $2 pipeline $3 position $4 record_id $5 input $6 desired_output $7 comparator $8 notes
  // $9 actual_output $10 justification $11 confidence $12 passed $13 error $14 last_ran_at $15 created_at $16 updated_at
  insert: sql('evInsert', {
    sqlite: `INSERT INTO pipeline_evals (id, pipeline, position, record_id, input, desired_output, comparator, notes, actual_output,
               justification, confidence, passed, error, last_ran_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING *`,
    pg: `INSERT INTO pipeline_evals (id, pipeline, position, record_id, input, desired_output, comparator, notes, actual_output,
           justification, confidence, passed, error, last_ran_at, created_at, updated_at)
         VALUES (COALESCE($1::bigint, nextval(pg_get_serial_sequence('pipeline_evals', 'id'))), $2, $3, $4, $5::json, $6::json, $7, $8,
           $9::json, $10, $11, $12, $13::json, $14, $15, $16) RETURNING *`,
  }),
  // $1 id $2 pipeline $3 record_id $4 input $5 desired_output $6 comparator $7 notes $8 actual_output $9 justification
  // $10 confidence $11 passed $12 error $13 last_ran_at $14 updated_at
  update: sql(
    'evUpdate',
    `UPDATE pipeline_evals SET record_id = $3, input = $4::json, desired_output = $5::json, comparator = $6, notes = $7,
       actual_output = $8::json, justification = $9, confidence = $10, passed = $11, error = $12::json, last_ran_at = $13,
       updated_at = $14
     WHERE id = $1 AND pipeline = $2 RETURNING *`,
  ),
  summary: sql(
    'evSummary',
    `SELECT count(*) AS total, count(*) FILTER (WHERE passed) AS passed, count(*) FILTER (WHERE NOT passed) AS failed,
       count(*) FILTER (WHERE passed IS NULL) AS not_run FROM pipeline_evals WHERE pipeline = $1`,
  ),
  pipelines: sql('evPipelines', `SELECT DISTINCT pipeline FROM pipeline_evals ORDER BY pipeline`),
};

/**
 * Eval cases, written once for both backends over a driver's {@link FeatureRunner}. Cases are checked and planned
 * by core/eval-cases.ts; `passed` is computed in the transaction that changes what it depends on.
 */
export abstract class EvalCases extends Datasets implements EvalStore {
  async listEvals(pipeline: string): Promise<EvalCase[]> {
    return this.features.read(() => list(pipeline));
  }

  async replaceEvals(pipeline: string, cases: NewEvalCase[], now: number): Promise<EvalCase[]> {
    const checked = checkEvalCases(cases);
    const r = this.features;
    return r.write(() =>
      (function* () {
        yield* lock(r, pipeline);
        const drafts = planReplace(pipeline, checked, yield* list(pipeline), now);
        yield* run(S.deleteAll, [pipeline]);
        const out: EvalCase[] = [];
        for (const [position, d] of drafts.entries()) out.push(yield* insert(r, d, position));
        return out;
      })(),
    );
  }

  async putRecordEval(pipeline: string, recordEval: NewEvalCase & { recordId: string }, now: number): Promise<EvalCase> {
    const r = this.features;
    return r.write(() =>
      (function* () {
        yield* lock(r, pipeline);
        const row = yield* get<EvalRow>(S.byRecord, [pipeline, recordEval.recordId]);
        const draft = planRecordEval(pipeline, row && toEvalCase(row), recordEval, now);
        if (row) return yield* update(r, draft);
        const next = yield* get<{ n: number }>(S.nextPosition, [pipeline]);
        return yield* insert(r, draft, Number(next?.n ?? 0));
      })(),
    );
  }

  async updateEval(pipeline: string, id: number, patch: EvalPatch, now: number): Promise<EvalCase | undefined> {
    const r = this.features;
    return r.write(() =>
      (function* () {
        yield* lock(r, pipeline);
        const row = yield* get<EvalRow>(S.get, [pipeline, id]);
        return row && (yield* update(r, planPatch(toEvalCase(row), patch, now)));
      })(),
    );
  }

  async saveEvalResults(pipeline: string, results: EvalResult[], now: number): Promise<void> {
    const r = this.features;
    await r.write(() =>
      (function* () {
        yield* lock(r, pipeline);
        const current = new Map((yield* list(pipeline)).map((c) => [c.id, c]));
        for (const result of results) {
          const c = current.get(result.id);
          const next = c && planResult(c, result, now);
          if (next) yield* update(r, next);
        }
      })(),
    );
  }

  async evalSummary(pipeline: string): Promise<EvalSummary> {
    const row = await this.features.read(() => get<{ total: number; passed: number; failed: number; not_run: number }>(S.summary, [pipeline]));
    return { total: Number(row?.total ?? 0), passed: Number(row?.passed ?? 0), failed: Number(row?.failed ?? 0), notRun: Number(row?.not_run ?? 0) };
  }

  async listEvalPipelines(): Promise<string[]> {
    return (await this.features.read(() => all<{ pipeline: string }>(S.pipelines, []))).map((row) => row.pipeline);
  }
}

function* lock(r: FeatureRunner, pipeline: string): Rule<void> {
  if (r.dialect === 'pg') yield* get(S.lock, [pipeline]);
}

function* list(pipeline: string): Rule<EvalCase[]> {
  return (yield* all<EvalRow>(S.list, [pipeline])).map(toEvalCase);
}

function* insert(r: FeatureRunner, d: EvalCaseDraft, position: number): Rule<EvalCase> {
  const v = columns(r, d);
  const args = [v.id, v.pipeline, position, v.record_id, v.input, v.desired_output, v.comparator, v.notes, v.actual_output];
  args.push(v.justification, v.confidence, v.passed, v.error, v.last_ran_at, v.created_at, v.updated_at);
  return toEvalCase((yield* get<EvalRow>(S.insert, args))!);
}

function* update(r: FeatureRunner, d: EvalCaseDraft): Rule<EvalCase> {
  const v = columns(r, d);
  const args = [v.id, v.pipeline, v.record_id, v.input, v.desired_output, v.comparator, v.notes, v.actual_output, v.justification];
  args.push(v.confidence, v.passed, v.error, v.last_ran_at, v.updated_at);
  return toEvalCase((yield* get<EvalRow>(S.update, args))!);
}

/** {@link evalColumns} as the driver's columns take them; `passed` is 1, 0 or NULL on SQLite (no booleans). */
function columns(r: FeatureRunner, d: EvalCaseDraft): Record<string, unknown> {
  const v = evalColumns(d);
  const json = (text: string | null) => (text === null ? null : r.jsonText(text));
  return {
    ...v,
    input: json(v.input),
    desired_output: json(v.desired_output),
    actual_output: json(v.actual_output),
    error: json(v.error),
    notes: r.text(v.notes),
    justification: r.text(v.justification),
    passed: r.dialect === 'pg' || v.passed === null ? v.passed : v.passed ? 1 : 0,
  };
}
