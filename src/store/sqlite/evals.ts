import type Database from 'better-sqlite3';
import { Statements } from './statements.js';
import { checkEvalCases, planPatch, planRecordEval, planReplace, planResult, type EvalCaseDraft } from '../../core/eval-cases.js';
import type { EvalCase, EvalPatch, EvalResult, EvalSummary, NewEvalCase } from '../evals.js';
import { evalColumns, toEvalCase, type EvalRow } from '../eval-rows.js';

/** SQL of eval cases; each statement lists its named parameters. */
const SQL = {
  // @pipeline
  list: `SELECT * FROM pipeline_evals WHERE pipeline = @pipeline ORDER BY position, id`,
  // @pipeline @id
  get: `SELECT * FROM pipeline_evals WHERE pipeline = @pipeline AND id = @id`,
  // @pipeline @record_id
  byRecord: `SELECT * FROM pipeline_evals WHERE pipeline = @pipeline AND record_id = @record_id`,
  // @pipeline
  deleteAll: `DELETE FROM pipeline_evals WHERE pipeline = @pipeline`,
  // @pipeline
  nextPosition: `SELECT COALESCE(MAX(position), -1) + 1 AS n FROM pipeline_evals WHERE pipeline = @pipeline`,
  // every column of pipeline_evals (@id NULL = a new id)
  insert: `INSERT INTO pipeline_evals (id, pipeline, position, record_id, input, desired_output, comparator, notes, actual_output,
             justification, confidence, passed, error, last_ran_at, created_at, updated_at)
           VALUES (@id, @pipeline, @position, @record_id, @input, @desired_output, @comparator, @notes, @actual_output,
             @justification, @confidence, @passed, @error, @last_ran_at, @created_at, @updated_at) RETURNING *`,
  // every column of pipeline_evals but position and created_at
  update: `UPDATE pipeline_evals SET record_id = @record_id, input = @input, desired_output = @desired_output, comparator = @comparator,
             notes = @notes, actual_output = @actual_output, justification = @justification, confidence = @confidence, passed = @passed,
             error = @error, last_ran_at = @last_ran_at, updated_at = @updated_at
           WHERE pipeline = @pipeline AND id = @id RETURNING *`,
  // @pipeline
  summary: `SELECT COUNT(*) AS total, COALESCE(SUM(passed = 1), 0) AS passed, COALESCE(SUM(passed = 0), 0) AS failed,
              COALESCE(SUM(passed IS NULL), 0) AS not_run FROM pipeline_evals WHERE pipeline = @pipeline`,
  pipelines: `SELECT DISTINCT pipeline FROM pipeline_evals ORDER BY pipeline`,
} as const;

/** Eval cases of the SQLite store, over the store's connection and write transactions. */
export class SqliteEvals {
  private readonly statements: Statements<keyof typeof SQL>;

  constructor(
    private readonly db: Database.Database,
    private readonly write: <T>(fn: () => T) => T,
  ) {
    this.statements = new Statements(db, SQL);
  }

  private stmt(key: keyof typeof SQL): Database.Statement {
    return this.statements.get(key);
  }

  listEvals(pipeline: string): EvalCase[] {
    return (this.stmt('list').all({ pipeline }) as EvalRow[]).map(toEvalCase);
  }

  replaceEvals(pipeline: string, cases: NewEvalCase[], now: number): EvalCase[] {
    const checked = checkEvalCases(cases);
    return this.write(() => {
      const drafts = planReplace(pipeline, checked, this.listEvals(pipeline), now);
      this.stmt('deleteAll').run({ pipeline });
      return drafts.map((d, position) => this.insert(d, position));
    });
  }

  putRecordEval(pipeline: string, recordEval: NewEvalCase & { recordId: string }, now: number): EvalCase {
    return this.write(() => {
      const row = this.stmt('byRecord').get({ pipeline, record_id: recordEval.recordId }) as EvalRow | undefined;
      const draft = planRecordEval(pipeline, row && toEvalCase(row), recordEval, now);
      if (row) return this.update(draft);
      return this.insert(draft, (this.stmt('nextPosition').get({ pipeline }) as { n: number }).n);
    });
  }

  updateEval(pipeline: string, id: number, patch: EvalPatch, now: number): EvalCase | undefined {
    return this.write(() => {
      const row = this.stmt('get').get({ pipeline, id }) as EvalRow | undefined;
      return row && this.update(planPatch(toEvalCase(row), patch, now));
    });
  }

  saveEvalResults(pipeline: string, results: EvalResult[], now: number): void {
    this.write(() => {
      const current = new Map(this.listEvals(pipeline).map((c) => [c.id, c]));
      for (const r of results) {
        const c = current.get(r.id);
        const next = c && planResult(c, r, now);
        if (next) this.update(next);
      }
    });
  }

  evalSummary(pipeline: string): EvalSummary {
    const row = this.stmt('summary').get({ pipeline }) as { total: number; passed: number; failed: number; not_run: number };
    return { total: row.total, passed: row.passed, failed: row.failed, notRun: row.not_run };
  }

  listEvalPipelines(): string[] {
    return (this.stmt('pipelines').all() as Array<{ pipeline: string }>).map((r) => r.pipeline);
  }

  private insert(draft: EvalCaseDraft, position: number): EvalCase {
    return toEvalCase(this.stmt('insert').get({ ...sqliteColumns(draft), position }) as EvalRow);
  }

  private update(draft: EvalCaseDraft): EvalCase {
    return toEvalCase(this.stmt('update').get(sqliteColumns(draft)) as EvalRow);
  }
}

function sqliteColumns(draft: EvalCaseDraft): Record<string, unknown> {
  const cols = evalColumns(draft);
  return { ...cols, passed: cols.passed === null ? null : cols.passed ? 1 : 0 };
}
