import type pg from 'pg';
import { checkEvalCases, planPatch, planRecordEval, planReplace, planResult, type EvalCaseDraft } from '../../core/eval-cases.js';
import type { EvalCase, EvalPatch, EvalResult, EvalSummary, NewEvalCase } from '../evals.js';
import { evalColumns, toEvalCase, type EvalRow } from '../eval-rows.js';
import type { RunTransaction } from './pg-datasets.js';
import { encodePgJson, toPgText } from './pg-json.js';

/** SQL of eval cases on PostgreSQL; each statement lists its parameters. */
const SQL = {
  // $1 pipeline: serializes writers of one pipeline's set (a replace reads, deletes and inserts)
  lock: `SELECT pg_advisory_xact_lock(hashtextextended('sluice-evals:' || $1, 0))`,
  // $1 pipeline
  list: `SELECT * FROM pipeline_evals WHERE pipeline = $1 ORDER BY position, id`,
  // $1 pipeline $2 id
  get: `SELECT * FROM pipeline_evals WHERE pipeline = $1 AND id = $2`,
  // $1 pipeline $2 record_id
  byRecord: `SELECT * FROM pipeline_evals WHERE pipeline = $1 AND record_id = $2`,
  // $1 pipeline
  deleteAll: `DELETE FROM pipeline_evals WHERE pipeline = $1`,
  // $1 pipeline
  nextPosition: `SELECT COALESCE(MAX(position), -1) + 1 AS n FROM pipeline_evals WHERE pipeline = $1`,
  // $1 id (NULL = a new one) $2 pipeline $3 position $4 record_id $5 input $6 desired_output $7 comparator $8 notes
  // $9 actual_output $10 justification $11 confidence $12 passed $13 error $14 last_ran_at $15 created_at $16 updated_at
  insert: `INSERT INTO pipeline_evals (id, pipeline, position, record_id, input, desired_output, comparator, notes, actual_output,
             justification, confidence, passed, error, last_ran_at, created_at, updated_at)
           VALUES (COALESCE($1::bigint, nextval(pg_get_serial_sequence('pipeline_evals', 'id'))), $2, $3, $4, $5::json, $6::json, $7, $8,
             $9::json, $10, $11, $12, $13::json, $14, $15, $16) RETURNING *`,
  // $1 id $2 pipeline $3 record_id $4 input $5 desired_output $6 comparator $7 notes $8 actual_output $9 justification
  // $10 confidence $11 passed $12 error $13 last_ran_at $14 updated_at
  update: `UPDATE pipeline_evals SET record_id = $3, input = $4::json, desired_output = $5::json, comparator = $6, notes = $7,
             actual_output = $8::json, justification = $9, confidence = $10, passed = $11, error = $12::json, last_ran_at = $13,
             updated_at = $14
           WHERE id = $1 AND pipeline = $2 RETURNING *`,
  // $1 pipeline
  summary: `SELECT count(*) AS total, count(*) FILTER (WHERE passed) AS passed, count(*) FILTER (WHERE NOT passed) AS failed,
              count(*) FILTER (WHERE passed IS NULL) AS not_run FROM pipeline_evals WHERE pipeline = $1`,
  // (none)
  pipelines: `SELECT DISTINCT pipeline FROM pipeline_evals ORDER BY pipeline`,
} as const;

type Client = pg.PoolClient;

/** Eval cases of the PostgreSQL store; every method is one transaction. */
export class PgEvals {
  constructor(private readonly tx: RunTransaction) {}

  async listEvals(pipeline: string): Promise<EvalCase[]> {
    return this.tx((c) => list(c, pipeline));
  }

  async replaceEvals(pipeline: string, cases: NewEvalCase[], now: number): Promise<EvalCase[]> {
    const checked = checkEvalCases(cases);
    return this.tx(async (c) => {
      await query(c, 'lock', [pipeline]);
      const drafts = planReplace(pipeline, checked, await list(c, pipeline), now);
      await query(c, 'deleteAll', [pipeline]);
      const out: EvalCase[] = [];
      for (const [position, d] of drafts.entries()) out.push(await insert(c, d, position));
      return out;
    });
  }

  async putRecordEval(pipeline: string, recordEval: NewEvalCase & { recordId: string }, now: number): Promise<EvalCase> {
    return this.tx(async (c) => {
      await query(c, 'lock', [pipeline]);
      const [row] = await query<EvalRow>(c, 'byRecord', [pipeline, recordEval.recordId]);
      const draft = planRecordEval(pipeline, row && toEvalCase(row), recordEval, now);
      if (row) return update(c, draft);
      const [next] = await query<{ n: number }>(c, 'nextPosition', [pipeline]);
      return insert(c, draft, Number(next?.n ?? 0));
    });
  }

  async updateEval(pipeline: string, id: number, patch: EvalPatch, now: number): Promise<EvalCase | undefined> {
    return this.tx(async (c) => {
      await query(c, 'lock', [pipeline]);
      const [row] = await query<EvalRow>(c, 'get', [pipeline, id]);
      return row && update(c, planPatch(toEvalCase(row), patch, now));
    });
  }

  async saveEvalResults(pipeline: string, results: EvalResult[], now: number): Promise<void> {
    await this.tx(async (c) => {
      await query(c, 'lock', [pipeline]);
      const current = new Map((await list(c, pipeline)).map((e) => [e.id, e]));
      for (const r of results) {
        const e = current.get(r.id);
        const next = e && planResult(e, r, now);
        if (next) await update(c, next);
      }
    });
  }

  async evalSummary(pipeline: string): Promise<EvalSummary> {
    const [row] = await this.tx((c) => query<{ total: string; passed: string; failed: string; not_run: string }>(c, 'summary', [pipeline]));
    return { total: Number(row?.total ?? 0), passed: Number(row?.passed ?? 0), failed: Number(row?.failed ?? 0), notRun: Number(row?.not_run ?? 0) };
  }

  async listEvalPipelines(): Promise<string[]> {
    return (await this.tx((c) => query<{ pipeline: string }>(c, 'pipelines', []))).map((r) => r.pipeline);
  }
}

async function query<R extends pg.QueryResultRow>(c: Client, key: keyof typeof SQL, values: unknown[]): Promise<R[]> {
  return (await c.query<R>({ name: `ev_${key}`, text: SQL[key], values })).rows;
}

async function list(c: Client, pipeline: string): Promise<EvalCase[]> {
  return (await query<EvalRow>(c, 'list', [pipeline])).map(toEvalCase);
}

async function insert(c: Client, d: EvalCaseDraft, position: number): Promise<EvalCase> {
  const v = pgEvalColumns(d);
  const values: unknown[] = [v.id, v.pipeline, position, v.record_id, v.input, v.desired_output, v.comparator, v.notes, v.actual_output];
  values.push(v.justification, v.confidence, v.passed, v.error, v.last_ran_at, v.created_at, v.updated_at);
  const [row] = await query<EvalRow>(c, 'insert', values);
  return toEvalCase(row!);
}

async function update(c: Client, d: EvalCaseDraft): Promise<EvalCase> {
  const v = pgEvalColumns(d);
  const values: unknown[] = [v.id, v.pipeline, v.record_id, v.input, v.desired_output, v.comparator, v.notes, v.actual_output, v.justification];
  values.push(v.confidence, v.passed, v.error, v.last_ran_at, v.updated_at);
  const [row] = await query<EvalRow>(c, 'update', values);
  return toEvalCase(row!);
}

/** {@link evalColumns} as PostgreSQL holds them: JSON encoded by pg-json.ts, text without U+0000. */
function pgEvalColumns(d: EvalCaseDraft): ReturnType<typeof evalColumns> {
  const v = evalColumns(d);
  return {
    ...v,
    input: encodePgJson(v.input),
    desired_output: encodePgJson(v.desired_output),
    actual_output: encodePgJson(v.actual_output),
    error: encodePgJson(v.error),
    notes: toPgText(v.notes),
    justification: toPgText(v.justification),
  };
}
