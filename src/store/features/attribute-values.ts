import { SluiceError } from '../../core/errors.js';
import type { AttributeStatus, AttributeSummary, AttributeValue, AttributeValueStore, AttributeWorkItem, AttributeWorkSelection, ComputedAttributeValue } from '../attributes.js';
import { all, get, run, sql, type Rule } from '../ledger/effects.js';
import { EvalCases } from './evals.js';
import { inList, perDialect, type FeatureRunner } from './feature-runner.js';

/** A record whose value may be out of date: none yet, another version's, or computed from an older rev. */
const CHANGED = (version: string) =>
  `AND (v.record_id IS NULL OR (v.status <> 'overridden' AND (v.pipeline_version IS DISTINCT FROM ${version} OR v.source_rev IS DISTINCT FROM r.rev)))`;
const WORK_COLUMNS = `r.id, r.rev, r.data, v.value, v.confidence, v.justification, v.input_hash, v.pipeline, v.pipeline_version, v.run_id,
  v.status, v.note, v.updated_at`;
const WORK_FROM = `FROM dataset_records r LEFT JOIN attribute_values v ON v.dataset = r.dataset AND v.field = $2 AND v.record_id = r.id`;

/** One value of a batch: the columns that vary per record. */
const COMPUTED_COLUMNS = `value, confidence, justification, input_hash, pipeline, pipeline_version, run_id, source_rev, status, note, updated_at`;
/** A run never replaces an override; an approved value stays approved (with its note) when the run wrote it again. */
const ON_COMPUTED_CONFLICT = `ON CONFLICT (dataset, field, record_id) DO UPDATE SET value = excluded.value, confidence = excluded.confidence,
    justification = excluded.justification, input_hash = excluded.input_hash, pipeline = excluded.pipeline,
    pipeline_version = excluded.pipeline_version, run_id = excluded.run_id, source_rev = excluded.source_rev,
    status = CASE WHEN attribute_values.status = 'approved' AND attribute_values.value::text = excluded.value::text THEN 'approved' ELSE 'proposed' END,
    note = CASE WHEN attribute_values.status = 'approved' AND attribute_values.value::text = excluded.value::text THEN attribute_values.note END,
    updated_at = excluded.updated_at
  WHERE attribute_values.status <> 'overridden'
  RETURNING record_id`;

const S = {
  // $1 dataset $2 field $3 after $4 limit
  workPage: sql('avWorkPage', `SELECT ${WORK_COLUMNS} ${WORK_FROM} WHERE r.dataset = $1 AND r.id > $3 ORDER BY r.id LIMIT $4`),
  // $1 dataset $2 field $3 after $4 limit $5 version: the same, without what a run of that version would skip
  changedPage: sql('avChangedPage', `SELECT ${WORK_COLUMNS} ${WORK_FROM} WHERE r.dataset = $1 AND r.id > $3 ${CHANGED('$5::int')} ORDER BY r.id LIMIT $4`),
  // $1 dataset $2 field $3 ids (a list)
  workIds: sql('avWorkIds', perDialect((d) => `SELECT ${WORK_COLUMNS} ${WORK_FROM} WHERE r.dataset = $1 AND r.id ${inList(d, '$3')} ORDER BY r.id`)),
  // $1 dataset $2 field $3 ids (a list) $4 version
  changedIds: sql('avChangedIds', perDialect((d) => `SELECT ${WORK_COLUMNS} ${WORK_FROM} WHERE r.dataset = $1 AND r.id ${inList(d, '$3')} ${CHANGED('$4::int')} ORDER BY r.id`)),
  // $1 dataset $2 fields (a list) $3 first $4 last
  derivedRange: sql('avDerivedRange', perDialect((d) => `SELECT record_id, field, value FROM attribute_values WHERE dataset = $1 AND field ${inList(d, '$2')} AND record_id BETWEEN $3 AND $4`)),
  // $1 dataset $2 fields (a list) $3 ids (a list)
  derivedIds: sql('avDerivedIds', perDialect((d) => `SELECT record_id, field, value FROM attribute_values WHERE dataset = $1 AND field ${inList(d, '$2')} AND record_id ${inList(d, '$3')}`)),
  // $1 dataset $2 record_id
  recordValues: sql(
    'avRecordValues',
    `SELECT * FROM attribute_values WHERE dataset = $1 AND record_id = $2
       AND field IN (SELECT field FROM attribute_fields WHERE dataset = $1) ORDER BY field`,
  ),
  // $1 dataset $2 ids (a list)
  manyValues: sql(
    'avManyValues',
    perDialect(
      (d) => `SELECT * FROM attribute_values WHERE dataset = $1 AND record_id ${inList(d, '$2')}
                AND field IN (SELECT field FROM attribute_fields WHERE dataset = $1) ORDER BY record_id, field`,
    ),
  ),
  addField: sql('avAddField', `INSERT INTO attribute_fields (dataset, field) VALUES ($1, $2) ON CONFLICT DO NOTHING`),
  // $1 dataset $2 id: on PostgreSQL the record is locked against a concurrent delete until commit
  recordExists: sql('avRecordExists', perDialect((d) => `SELECT 1 AS found FROM dataset_records WHERE dataset = $1 AND id = $2${d === 'pg' ? ' FOR SHARE' : ''}`)),
  // $1 dataset $2 field $3 record_id $4 value (JSON) $5 note $6 now
  override: sql(
    'avOverride',
    `INSERT INTO attribute_values (dataset, field, record_id, value, status, note, updated_at)
     VALUES ($1, $2, $3, $4::json, 'overridden', $5, $6)
     ON CONFLICT (dataset, field, record_id) DO UPDATE SET value = excluded.value, status = 'overridden',
       note = excluded.note, confidence = NULL, justification = NULL,
       input_hash = NULL, pipeline = NULL, pipeline_version = NULL, run_id = NULL, source_rev = NULL, updated_at = excluded.updated_at
     RETURNING *`,
  ),
  // $1 dataset $2 field $3 record_id $4 note $5 now
  approve: sql(
    'avApprove',
    `UPDATE attribute_values SET status = 'approved', note = COALESCE($4, note), updated_at = $5
     WHERE dataset = $1 AND field = $2 AND record_id = $3 AND status = 'proposed'`,
  ),
  value: sql('avValue', `SELECT * FROM attribute_values WHERE dataset = $1 AND field = $2 AND record_id = $3`),
  summary: sql(
    'avSummary',
    `SELECT status, count(*)::integer AS n, avg(confidence) AS avg_confidence, count(confidence)::integer AS with_confidence
     FROM attribute_values WHERE dataset = $1 AND field = $2 GROUP BY status`,
  ),
};

/** Per dialect: a batch of computed values, and of unchanged records whose source rev moves on. */
const BATCH = {
  // SQLite: one row per statement (prepared once). $1 dataset $2 field $3 record_id $4 value ... $11 source_rev $12 now
  saveOne: sql(
    'avSaveComputed',
    `INSERT INTO attribute_values (dataset, field, record_id, ${COMPUTED_COLUMNS})
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'proposed', NULL, $12) ${ON_COMPUTED_CONFLICT}`,
  ),
  touchOne: sql('avTouch', `UPDATE attribute_values SET source_rev = $4 WHERE dataset = $1 AND field = $2 AND record_id = $3`),
  // PostgreSQL: the whole batch as arrays. $1 dataset $2 field $3 pipeline $4 now; $5 ids $6 values (JSON)
  // $7 confidences $8 justifications $9 hashes $10 versions $11 run ids $12 source revs
  saveMany: sql(
    'avSaveComputedMany',
    `INSERT INTO attribute_values (dataset, field, record_id, ${COMPUTED_COLUMNS})
     SELECT $1, $2, u.id, u.value::json, u.confidence, u.justification, u.input_hash, $3, u.version, u.run_id, u.rev, 'proposed', NULL, $4
     FROM unnest($5::text[], $6::text[], $7::float8[], $8::text[], $9::text[], $10::int[], $11::text[], $12::bigint[])
       AS u (id, value, confidence, justification, input_hash, version, run_id, rev)
     ${ON_COMPUTED_CONFLICT}`,
  ),
  // $1 dataset $2 field $3 ids $4 source revs
  touchMany: sql(
    'avTouchMany',
    `UPDATE attribute_values v SET source_rev = u.rev FROM unnest($3::text[], $4::bigint[]) AS u (id, rev)
     WHERE v.dataset = $1 AND v.field = $2 AND v.record_id = u.id`,
  ),
};

type ValueRow = AttributeValueRow & { record_id: string; field: string };

/** Derived values of attribute pipelines, written once for both backends over a driver's {@link FeatureRunner}. */
export abstract class AttributeValues extends EvalCases implements AttributeValueStore {
  async loadAttributeWork(dataset: string, field: string, derivedFields: string[], selection: AttributeWorkSelection): Promise<AttributeWorkItem[]> {
    return this.features.read(() => loadWork(this.features, dataset, field, derivedFields, selection));
  }

  async saveAttributeValues(dataset: string, field: string, pipeline: string, values: ComputedAttributeValue[], now: number, unchanged: Array<{ recordId: string; sourceRev: number }> = []): Promise<string[]> {
    if (values.length === 0 && unchanged.length === 0) return [];
    return this.features.write(() => save(this.features, { dataset, field, pipeline, now }, values, unchanged));
  }

  async getAttributeValues(dataset: string, recordId: string): Promise<Record<string, AttributeValue>> {
    return groupValues(await this.features.read(() => all<ValueRow>(S.recordValues, [dataset, recordId]))).get(recordId) ?? {};
  }

  async listAttributeValues(dataset: string, recordIds: string[]): Promise<Map<string, Record<string, AttributeValue>>> {
    if (recordIds.length === 0) return new Map();
    return groupValues(await this.features.read(() => all<ValueRow>(S.manyValues, [dataset, this.features.list(recordIds)])));
  }

  async overrideAttributeValue(dataset: string, recordId: string, field: string, override: { value: unknown; note?: string | undefined }, now: number): Promise<AttributeValue> {
    const value = this.features.jsonText(JSON.stringify(override.value ?? null));
    const note = this.features.text(override.note ?? null);
    return this.features.write(() =>
      (function* () {
        if (!(yield* get(S.recordExists, [dataset, recordId]))) throw recordNotFound(dataset, recordId);
        yield* run(S.addField, [dataset, field]);
        return toAttributeValue((yield* get<ValueRow>(S.override, [dataset, field, recordId, value, note, now]))!);
      })(),
    );
  }

  async approveAttributeValue(dataset: string, recordId: string, field: string, note: string | undefined, now: number): Promise<AttributeValue> {
    const text = this.features.text(note ?? null);
    return this.features.write(() =>
      (function* () {
        yield* run(S.approve, [dataset, field, recordId, text, now]);
        const row = yield* get<ValueRow>(S.value, [dataset, field, recordId]);
        if (!row) throw valueNotFound(dataset, recordId, field);
        return toAttributeValue(row);
      })(),
    );
  }

  async attributeSummary(dataset: string, field: string): Promise<AttributeSummary> {
    return toSummary(await this.features.read(() => all<Parameters<typeof toSummary>[0][number]>(S.summary, [dataset, field])));
  }
}

function* loadWork(r: FeatureRunner, dataset: string, field: string, derivedFields: string[], selection: AttributeWorkSelection): Rule<AttributeWorkItem[]> {
  const changed = selection.changedOnly;
  const version = changed ? [changed.version] : [];
  const rows =
    'ids' in selection
      ? yield* all<WorkRow>(changed ? S.changedIds : S.workIds, [dataset, field, r.list(selection.ids), ...version])
      : yield* all<WorkRow>(changed ? S.changedPage : S.workPage, [dataset, field, selection.after ?? '', selection.limit, ...version]);
  if (derivedFields.length === 0 || rows.length === 0) return rows.map((row) => toWorkItem(row, new Map()));
  const fields = r.list(derivedFields);
  const found =
    'ids' in selection
      ? yield* all<{ record_id: string; field: string; value: string }>(S.derivedIds, [dataset, fields, r.list(rows.map((row) => row.id))])
      : yield* all<{ record_id: string; field: string; value: string }>(S.derivedRange, [dataset, fields, rows[0]!.id, rows.at(-1)!.id]);
  const derived = groupDerived(found);
  return rows.map((row) => toWorkItem(row, derived));
}

interface Target {
  dataset: string;
  field: string;
  pipeline: string;
  now: number;
}

/** Writes a batch; returns the ids of the records whose value it wrote (an override is never replaced). */
function* save(r: FeatureRunner, t: Target, values: ComputedAttributeValue[], unchanged: Array<{ recordId: string; sourceRev: number }>): Rule<string[]> {
  yield* run(S.addField, [t.dataset, t.field]);
  const json = (v: ComputedAttributeValue) => r.jsonText(JSON.stringify(v.value ?? null));
  if (r.dialect === 'sqlite') {
    for (const u of unchanged) yield* run(BATCH.touchOne, [t.dataset, t.field, u.recordId, u.sourceRev]);
    const written: string[] = [];
    for (const v of values) {
      const args = [t.dataset, t.field, v.recordId, json(v), v.confidence, v.justification, v.inputHash, t.pipeline, v.pipelineVersion, v.runId, v.sourceRev, t.now];
      if (yield* get(BATCH.saveOne, args)) written.push(v.recordId);
    }
    return written;
  }
  if (unchanged.length > 0) yield* run(BATCH.touchMany, [t.dataset, t.field, unchanged.map((u) => u.recordId), unchanged.map((u) => u.sourceRev)]);
  if (values.length === 0) return [];
  const columns = [values.map((v) => v.recordId), values.map(json), values.map((v) => v.confidence), values.map((v) => r.text(v.justification))];
  columns.push(values.map((v) => v.inputHash), values.map((v) => v.pipelineVersion), values.map((v) => v.runId), values.map((v) => v.sourceRev));
  return (yield* all<{ record_id: string }>(BATCH.saveMany, [t.dataset, t.field, t.pipeline, t.now, ...columns])).map((row) => row.record_id);
}

/** A row of attribute_values; `value` is JSON text on both backends. */
interface AttributeValueRow {
  value: string;
  confidence: number | null;
  justification: string | null;
  input_hash: string | null;
  pipeline: string | null;
  pipeline_version: number | null;
  run_id: string | null;
  status: AttributeStatus;
  note: string | null;
  updated_at: number;
}

function toAttributeValue(row: AttributeValueRow): AttributeValue {
  return {
    value: JSON.parse(row.value) as unknown,
    confidence: row.confidence,
    justification: row.justification,
    inputHash: row.input_hash,
    pipeline: row.pipeline,
    pipelineVersion: row.pipeline_version,
    runId: row.run_id,
    status: row.status,
    note: row.note,
    updatedAt: row.updated_at,
  };
}

/** A work row: the record's id, rev and data, and the value columns (all null when the record has no value yet). */
type WorkRow = { id: string; rev: number; data: string } & { [K in keyof AttributeValueRow]: AttributeValueRow[K] | null };

function toWorkItem(row: WorkRow, derived: Map<string, Record<string, unknown>>): AttributeWorkItem {
  return {
    id: row.id,
    rev: Number(row.rev),
    data: JSON.parse(row.data) as Record<string, unknown>,
    derived: derived.get(row.id) ?? {},
    current: row.status === null ? null : toAttributeValue(row as AttributeValueRow),
  };
}

/** Groups `(record_id, field, value)` rows into record id -> field -> parsed value. */
function groupDerived(rows: Array<{ record_id: string; field: string; value: string }>): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  for (const r of rows) {
    let fields = out.get(r.record_id);
    if (!fields) out.set(r.record_id, (fields = {}));
    fields[r.field] = JSON.parse(r.value) as unknown;
  }
  return out;
}

function groupValues(rows: Array<AttributeValueRow & { record_id: string; field: string }>): Map<string, Record<string, AttributeValue>> {
  const out = new Map<string, Record<string, AttributeValue>>();
  for (const r of rows) {
    let fields = out.get(r.record_id);
    if (!fields) out.set(r.record_id, (fields = {}));
    fields[r.field] = toAttributeValue(r);
  }
  return out;
}

function toSummary(rows: Array<{ status: AttributeStatus; n: number; avg_confidence: number | null; with_confidence: number }>): AttributeSummary {
  const byStatus: Record<AttributeStatus, number> = { proposed: 0, approved: 0, overridden: 0 };
  let weighted = 0;
  let withConfidence = 0;
  for (const r of rows) {
    byStatus[r.status] = Number(r.n);
    if (r.avg_confidence !== null) {
      weighted += Number(r.avg_confidence) * Number(r.with_confidence);
      withConfidence += Number(r.with_confidence);
    }
  }
  const values = byStatus.proposed + byStatus.approved + byStatus.overridden;
  return { values, avgConfidence: withConfidence === 0 ? null : weighted / withConfidence, byStatus };
}

function recordNotFound(dataset: string, recordId: string): SluiceError {
  return new SluiceError('RECORD_NOT_FOUND', `dataset ${dataset} has no record "${recordId}"`);
}

function valueNotFound(dataset: string, recordId: string, field: string): SluiceError {
  return new SluiceError('VALUE_NOT_FOUND', `record "${recordId}" of dataset ${dataset} has no value of ${field} to approve`);
}
