import type pg from 'pg';
import type { AttributeSummary, AttributeValue, AttributeWorkItem, AttributeWorkSelection, ComputedAttributeValue } from '../attributes.js';
import {
  groupDerived,
  groupValues,
  recordNotFound,
  toAttributeValue,
  toSummary,
  toWorkItem,
  valueNotFound,
  type AttributeValueRow,
  type WorkRow,
} from '../attribute-rows.js';
import type { RunTransaction } from './pg-datasets.js';
import { pgJson, toPgText } from './pg-json.js';

/** A record whose value may be out of date: none yet, another version's, or computed from an older rev. */
const CHANGED = (version: string) =>
  `AND (v.record_id IS NULL OR (v.status <> 'overridden' AND (v.pipeline_version IS DISTINCT FROM ${version} OR v.source_rev IS DISTINCT FROM r.rev)))`;
const WORK_COLUMNS = `r.id, r.rev, r.data, v.value, v.confidence, v.justification, v.input_hash, v.pipeline, v.pipeline_version, v.run_id,
               v.status, v.note, v.updated_at`;
const WORK_FROM = `FROM dataset_records r LEFT JOIN attribute_values v ON v.dataset = r.dataset AND v.field = $2 AND v.record_id = r.id`;

/** SQL of derived values on PostgreSQL; each statement lists its parameters. */
const SQL = {
  // $1 dataset $2 field $3 after $4 limit
  workPage: `SELECT ${WORK_COLUMNS} ${WORK_FROM} WHERE r.dataset = $1 AND r.id > $3 ORDER BY r.id LIMIT $4`,
  // $1 dataset $2 field $3 after $4 limit $5 version: the same, without what a run of that version would skip
  changedPage: `SELECT ${WORK_COLUMNS} ${WORK_FROM} WHERE r.dataset = $1 AND r.id > $3 ${CHANGED('$5::int')} ORDER BY r.id LIMIT $4`,
  // $1 dataset $2 field $3 ids (text[])
  workIds: `SELECT ${WORK_COLUMNS} ${WORK_FROM} WHERE r.dataset = $1 AND r.id = ANY ($3::text[]) ORDER BY r.id`,
  // $1 dataset $2 field $3 ids (text[]) $4 version
  changedIds: `SELECT ${WORK_COLUMNS} ${WORK_FROM} WHERE r.dataset = $1 AND r.id = ANY ($3::text[]) ${CHANGED('$4::int')} ORDER BY r.id`,
  // $1 dataset $2 fields (text[]) $3 first $4 last
  derivedRange: `SELECT record_id, field, value FROM attribute_values
                 WHERE dataset = $1 AND field = ANY ($2::text[]) AND record_id BETWEEN $3 AND $4`,
  // $1 dataset $2 fields (text[]) $3 ids (text[])
  derivedIds: `SELECT record_id, field, value FROM attribute_values WHERE dataset = $1 AND field = ANY ($2::text[]) AND record_id = ANY ($3::text[])`,
  // $1 dataset $2 field $3 pipeline $4 now; then arrays $5 ids $6 values (JSON) $7 confidences $8 justifications $9 hashes
  // $10 versions $11 run ids $12 source revs
  saveComputed: `INSERT INTO attribute_values (dataset, field, record_id, value, confidence, justification, input_hash, pipeline,
                   pipeline_version, run_id, source_rev, status, note, updated_at)
                 SELECT $1, $2, u.id, u.value::json, u.confidence, u.justification, u.input_hash, $3, u.version, u.run_id, u.rev, 'proposed', NULL, $4
                 FROM unnest($5::text[], $6::text[], $7::float8[], $8::text[], $9::text[], $10::int[], $11::text[], $12::bigint[])
                   AS u (id, value, confidence, justification, input_hash, version, run_id, rev)
                 ON CONFLICT (dataset, field, record_id) DO UPDATE SET value = excluded.value, confidence = excluded.confidence,
                   justification = excluded.justification, input_hash = excluded.input_hash, pipeline = excluded.pipeline,
                   pipeline_version = excluded.pipeline_version, run_id = excluded.run_id, source_rev = excluded.source_rev,
                   status = CASE WHEN attribute_values.status = 'approved' AND attribute_values.value::text = excluded.value::text THEN 'approved' ELSE 'proposed' END,
                   note = CASE WHEN attribute_values.status = 'approved' AND attribute_values.value::text = excluded.value::text THEN attribute_values.note END,
                   updated_at = excluded.updated_at
                 WHERE attribute_values.status <> 'overridden'
                 RETURNING record_id`,
  // $1 dataset $2 field $3 ids (text[]) $4 source revs (bigint[])
  touch: `UPDATE attribute_values v SET source_rev = u.rev FROM unnest($3::text[], $4::bigint[]) AS u (id, rev)
          WHERE v.dataset = $1 AND v.field = $2 AND v.record_id = u.id`,
  // $1 dataset $2 record_id
  recordValues: `SELECT * FROM attribute_values WHERE dataset = $1 AND record_id = $2
                   AND field IN (SELECT field FROM attribute_fields WHERE dataset = $1) ORDER BY field`,
  // $1 dataset $2 ids (text[])
  manyValues: `SELECT * FROM attribute_values WHERE dataset = $1 AND record_id = ANY ($2::text[])
                 AND field IN (SELECT field FROM attribute_fields WHERE dataset = $1) ORDER BY record_id, field`,
  // $1 dataset $2 field
  addField: `INSERT INTO attribute_fields (dataset, field) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
  // $1 dataset $2 id
  lockRecord: `SELECT 1 FROM dataset_records WHERE dataset = $1 AND id = $2 FOR SHARE`,
  // $1 dataset $2 field $3 record_id $4 value (JSON) $5 note $6 now
  override: `INSERT INTO attribute_values (dataset, field, record_id, value, status, note, updated_at)
             VALUES ($1, $2, $3, $4::json, 'overridden', $5, $6)
             ON CONFLICT (dataset, field, record_id) DO UPDATE SET value = excluded.value, status = 'overridden',
               note = excluded.note, confidence = NULL, justification = NULL,
               input_hash = NULL, pipeline = NULL, pipeline_version = NULL, run_id = NULL, source_rev = NULL, updated_at = excluded.updated_at
             RETURNING *`,
  // $1 dataset $2 field $3 record_id $4 note $5 now
  approve: `UPDATE attribute_values SET status = 'approved', note = COALESCE($4, note), updated_at = $5
            WHERE dataset = $1 AND field = $2 AND record_id = $3 AND status = 'proposed'`,
  // $1 dataset $2 field $3 record_id
  value: `SELECT * FROM attribute_values WHERE dataset = $1 AND field = $2 AND record_id = $3`,
  // $1 dataset $2 field
  summary: `SELECT status, count(*)::int AS n, avg(confidence) AS avg_confidence, count(confidence)::int AS with_confidence
            FROM attribute_values WHERE dataset = $1 AND field = $2 GROUP BY status`,
} as const;

type ValueRow = AttributeValueRow & { record_id: string; field: string };

/** Derived values of the PostgreSQL store. */
export class PgAttributeValues {
  constructor(private readonly tx: RunTransaction) {}

  private async rows<R extends pg.QueryResultRow>(key: keyof typeof SQL, values: unknown[]): Promise<R[]> {
    return this.tx(async (c) => (await c.query<R>({ name: `av_${key}`, text: SQL[key], values })).rows);
  }

  async loadWork(dataset: string, field: string, derivedFields: string[], selection: AttributeWorkSelection): Promise<AttributeWorkItem[]> {
    return this.tx(async (c) => {
      const byIds = 'ids' in selection;
      const changed = selection.changedOnly;
      const key: keyof typeof SQL = byIds ? (changed ? 'changedIds' : 'workIds') : changed ? 'changedPage' : 'workPage';
      const values: unknown[] = byIds ? [dataset, field, selection.ids] : [dataset, field, selection.after ?? '', selection.limit];
      if (changed) values.push(changed.version);
      const rows = (await c.query<WorkRow>({ name: `av_${key}`, text: SQL[key], values })).rows;
      let derived = new Map<string, Record<string, unknown>>();
      if (derivedFields.length > 0 && rows.length > 0) {
        const found = byIds
          ? await c.query({ name: 'av_derivedIds', text: SQL.derivedIds, values: [dataset, derivedFields, rows.map((r) => r.id)] })
          : await c.query({ name: 'av_derivedRange', text: SQL.derivedRange, values: [dataset, derivedFields, rows[0]!.id, rows.at(-1)!.id] });
        derived = groupDerived(found.rows as Array<{ record_id: string; field: string; value: string }>);
      }
      return rows.map((r) => toWorkItem(r, derived));
    });
  }

  async save(dataset: string, field: string, pipeline: string, values: ComputedAttributeValue[], now: number, unchanged: Array<{ recordId: string; sourceRev: number }> = []): Promise<string[]> {
    if (values.length === 0 && unchanged.length === 0) return [];
    const params = [
      dataset,
      field,
      pipeline,
      now,
      values.map((v) => v.recordId),
      values.map((v) => pgJson(v.value ?? null)),
      values.map((v) => v.confidence),
      values.map((v) => toPgText(v.justification)),
      values.map((v) => v.inputHash),
      values.map((v) => v.pipelineVersion),
      values.map((v) => v.runId),
      values.map((v) => v.sourceRev),
    ];
    return this.tx(async (c) => {
      await c.query({ name: 'av_addField', text: SQL.addField, values: [dataset, field] });
      if (unchanged.length > 0) {
        const touch = [dataset, field, unchanged.map((u) => u.recordId), unchanged.map((u) => u.sourceRev)];
        await c.query({ name: 'av_touch', text: SQL.touch, values: touch });
      }
      if (values.length === 0) return [];
      return (await c.query<{ record_id: string }>({ name: 'av_saveComputed', text: SQL.saveComputed, values: params })).rows.map((r) => r.record_id);
    });
  }

  async recordValues(dataset: string, recordId: string): Promise<Record<string, AttributeValue>> {
    return groupValues(await this.rows<ValueRow>('recordValues', [dataset, recordId])).get(recordId) ?? {};
  }

  async manyValues(dataset: string, recordIds: string[]): Promise<Map<string, Record<string, AttributeValue>>> {
    if (recordIds.length === 0) return new Map();
    return groupValues(await this.rows<ValueRow>('manyValues', [dataset, recordIds]));
  }

  async override(dataset: string, recordId: string, field: string, override: { value: unknown; note?: string | undefined }, now: number): Promise<AttributeValue> {
    return this.tx(async (c) => {
      const found = await c.query({ name: 'av_lockRecord', text: SQL.lockRecord, values: [dataset, recordId] });
      if (found.rowCount === 0) throw recordNotFound(dataset, recordId);
      await c.query({ name: 'av_addField', text: SQL.addField, values: [dataset, field] });
      const values = [dataset, field, recordId, pgJson(override.value ?? null), toPgText(override.note ?? null), now];
      const { rows } = await c.query<ValueRow>({ name: 'av_override', text: SQL.override, values });
      return toAttributeValue(rows[0]!);
    });
  }

  async approve(dataset: string, recordId: string, field: string, note: string | undefined, now: number): Promise<AttributeValue> {
    return this.tx(async (c) => {
      await c.query({ name: 'av_approve', text: SQL.approve, values: [dataset, field, recordId, note ?? null, now] });
      const { rows } = await c.query<ValueRow>({ name: 'av_value', text: SQL.value, values: [dataset, field, recordId] });
      if (rows.length === 0) throw valueNotFound(dataset, recordId, field);
      return toAttributeValue(rows[0]!);
    });
  }

  async summary(dataset: string, field: string): Promise<AttributeSummary> {
    return toSummary(await this.rows('summary', [dataset, field]));
  }
}
