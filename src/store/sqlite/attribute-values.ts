import type Database from 'better-sqlite3';
import { Statements } from './statements.js';
import type {
  AttributeSummary,
  AttributeValue,
  AttributeWorkItem,
  AttributeWorkSelection,
  ComputedAttributeValue,
} from '../attributes.js';
import { groupDerived, groupValues, recordNotFound, toAttributeValue, toSummary, toWorkItem, valueNotFound, type AttributeValueRow, type WorkRow } from '../attribute-rows.js';

/** A record whose value may be out of date: none yet, another version's, or computed from an older rev. */
const CHANGED = `AND (v.record_id IS NULL OR (v.status <> 'overridden' AND (v.pipeline_version IS NOT @version OR v.source_rev IS NOT r.rev)))`;

/** SQL of derived values; each statement lists its named parameters. JSON arrays are read with json_each. */
const SQL = {
  // @dataset @field @after @limit
  workPage: `SELECT r.id, r.rev, r.data, v.*
             FROM dataset_records r
             LEFT JOIN attribute_values v ON v.dataset = r.dataset AND v.field = @field AND v.record_id = r.id
             WHERE r.dataset = @dataset AND r.id > @after ORDER BY r.id LIMIT @limit`,
  // @dataset @field @after @limit @version: the same, without what a run of that version would skip
  changedPage: `SELECT r.id, r.rev, r.data, v.*
                FROM dataset_records r
                LEFT JOIN attribute_values v ON v.dataset = r.dataset AND v.field = @field AND v.record_id = r.id
                WHERE r.dataset = @dataset AND r.id > @after ${CHANGED} ORDER BY r.id LIMIT @limit`,
  // @dataset @field @ids (JSON array)
  workIds: `SELECT r.id, r.rev, r.data, v.*
            FROM dataset_records r
            LEFT JOIN attribute_values v ON v.dataset = r.dataset AND v.field = @field AND v.record_id = r.id
            WHERE r.dataset = @dataset AND r.id IN (SELECT value FROM json_each(@ids)) ORDER BY r.id`,
  // @dataset @field @ids (JSON array) @version
  changedIds: `SELECT r.id, r.rev, r.data, v.*
               FROM dataset_records r
               LEFT JOIN attribute_values v ON v.dataset = r.dataset AND v.field = @field AND v.record_id = r.id
               WHERE r.dataset = @dataset AND r.id IN (SELECT value FROM json_each(@ids)) ${CHANGED} ORDER BY r.id`,
  // @dataset @fields (JSON array) @first @last
  derivedRange: `SELECT record_id, field, value FROM attribute_values
                 WHERE dataset = @dataset AND field IN (SELECT value FROM json_each(@fields)) AND record_id BETWEEN @first AND @last`,
  // @dataset @fields @ids (JSON arrays)
  derivedIds: `SELECT record_id, field, value FROM attribute_values
               WHERE dataset = @dataset AND field IN (SELECT value FROM json_each(@fields)) AND record_id IN (SELECT value FROM json_each(@ids))`,
  // @dataset @field @record_id @value @confidence @justification @input_hash @pipeline @pipeline_version @run_id @source_rev @now
  saveComputed: `INSERT INTO attribute_values (dataset, field, record_id, value, confidence, justification, input_hash, pipeline,
                   pipeline_version, run_id, source_rev, status, note, updated_at)
                 VALUES (@dataset, @field, @record_id, @value, @confidence, @justification, @input_hash, @pipeline,
                   @pipeline_version, @run_id, @source_rev, 'proposed', NULL, @now)
                 ON CONFLICT (dataset, field, record_id) DO UPDATE SET value = excluded.value, confidence = excluded.confidence,
                   justification = excluded.justification, input_hash = excluded.input_hash, pipeline = excluded.pipeline,
                   pipeline_version = excluded.pipeline_version, run_id = excluded.run_id, source_rev = excluded.source_rev,
                   status = CASE WHEN attribute_values.status = 'approved' AND attribute_values.value = excluded.value THEN 'approved' ELSE 'proposed' END,
                   note = CASE WHEN attribute_values.status = 'approved' AND attribute_values.value = excluded.value THEN attribute_values.note END,
                   updated_at = excluded.updated_at
                 WHERE attribute_values.status <> 'overridden'`,
  // @dataset @field @record_id @source_rev
  touch: `UPDATE attribute_values SET source_rev = @source_rev WHERE dataset = @dataset AND field = @field AND record_id = @record_id`,
  // @dataset @record_id
  recordValues: `SELECT * FROM attribute_values WHERE dataset = @dataset AND record_id = @record_id
                   AND field IN (SELECT field FROM attribute_fields WHERE dataset = @dataset) ORDER BY field`,
  // @dataset @ids (JSON array)
  manyValues: `SELECT * FROM attribute_values WHERE dataset = @dataset AND record_id IN (SELECT value FROM json_each(@ids))
                 AND field IN (SELECT field FROM attribute_fields WHERE dataset = @dataset) ORDER BY record_id, field`,
  // @dataset @field
  addField: `INSERT INTO attribute_fields (dataset, field) VALUES (@dataset, @field) ON CONFLICT DO NOTHING`,
  // @dataset @field @record_id
  value: `SELECT * FROM attribute_values WHERE dataset = @dataset AND field = @field AND record_id = @record_id`,
  // @dataset @id
  recordExists: `SELECT 1 FROM dataset_records WHERE dataset = @dataset AND id = @id`,
  // @dataset @field @record_id @value @note @now
  override: `INSERT INTO attribute_values (dataset, field, record_id, value, status, note, updated_at)
             VALUES (@dataset, @field, @record_id, @value, 'overridden', @note, @now)
             ON CONFLICT (dataset, field, record_id) DO UPDATE SET value = excluded.value, status = 'overridden',
               note = excluded.note, confidence = NULL, justification = NULL,
               input_hash = NULL, pipeline = NULL, pipeline_version = NULL, run_id = NULL, source_rev = NULL, updated_at = excluded.updated_at`,
  // @dataset @field @record_id @note @now
  approve: `UPDATE attribute_values SET status = 'approved', note = COALESCE(@note, note), updated_at = @now
            WHERE dataset = @dataset AND field = @field AND record_id = @record_id AND status = 'proposed'`,
  // @dataset @field
  summary: `SELECT status, COUNT(*) AS n, AVG(confidence) AS avg_confidence, COUNT(confidence) AS with_confidence
            FROM attribute_values WHERE dataset = @dataset AND field = @field GROUP BY status`,
} as const;

/** Derived values on the SQLite store, over its connection and write transactions. */
export class SqliteAttributeValues {
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

  loadWork(dataset: string, field: string, derivedFields: string[], selection: AttributeWorkSelection): AttributeWorkItem[] {
    const byIds = 'ids' in selection;
    const changed = selection.changedOnly;
    const version = changed?.version;
    const rows = (
      byIds
        ? this.stmt(changed ? 'changedIds' : 'workIds').all({ dataset, field, ids: JSON.stringify(selection.ids), ...(changed ? { version } : {}) })
        : this.stmt(changed ? 'changedPage' : 'workPage').all({ dataset, field, after: selection.after ?? '', limit: selection.limit, ...(changed ? { version } : {}) })
    ) as WorkRow[];
    let derived = new Map<string, Record<string, unknown>>();
    if (derivedFields.length > 0 && rows.length > 0) {
      const fields = JSON.stringify(derivedFields);
      const found = byIds
        ? this.stmt('derivedIds').all({ dataset, fields, ids: JSON.stringify(rows.map((r) => r.id)) })
        : this.stmt('derivedRange').all({ dataset, fields, first: rows[0]!.id, last: rows.at(-1)!.id });
      derived = groupDerived(found as Array<{ record_id: string; field: string; value: string }>);
    }
    return rows.map((r) => toWorkItem(r, derived));
  }

  save(dataset: string, field: string, pipeline: string, values: ComputedAttributeValue[], now: number, unchanged: Array<{ recordId: string; sourceRev: number }> = []): string[] {
    return this.write(() => {
      this.stmt('addField').run({ dataset, field });
      const touch = this.stmt('touch');
      for (const u of unchanged) touch.run({ dataset, field, record_id: u.recordId, source_rev: u.sourceRev });
      const put = this.stmt('saveComputed');
      const written: string[] = [];
      for (const v of values) {
        const params = {
          dataset,
          field,
          record_id: v.recordId,
          value: JSON.stringify(v.value ?? null),
          confidence: v.confidence,
          justification: v.justification,
          input_hash: v.inputHash,
          pipeline,
          pipeline_version: v.pipelineVersion,
          run_id: v.runId,
          source_rev: v.sourceRev,
          now,
        };
        if (put.run(params).changes > 0) written.push(v.recordId);
      }
      return written;
    });
  }

  recordValues(dataset: string, recordId: string): Record<string, AttributeValue> {
    const rows = this.stmt('recordValues').all({ dataset, record_id: recordId }) as Array<AttributeValueRow & { record_id: string; field: string }>;
    return groupValues(rows).get(recordId) ?? {};
  }

  manyValues(dataset: string, recordIds: string[]): Map<string, Record<string, AttributeValue>> {
    if (recordIds.length === 0) return new Map();
    const rows = this.stmt('manyValues').all({ dataset, ids: JSON.stringify(recordIds) }) as Array<AttributeValueRow & { record_id: string; field: string }>;
    return groupValues(rows);
  }

  override(dataset: string, recordId: string, field: string, override: { value: unknown; note?: string | undefined }, now: number): AttributeValue {
    return this.write(() => {
      if (!this.stmt('recordExists').get({ dataset, id: recordId })) throw recordNotFound(dataset, recordId);
      const params = { dataset, field, record_id: recordId, value: JSON.stringify(override.value ?? null), note: override.note ?? null, now };
      this.stmt('addField').run({ dataset, field });
      this.stmt('override').run(params);
      return toAttributeValue(this.stmt('value').get({ dataset, field, record_id: recordId }) as AttributeValueRow);
    });
  }

  approve(dataset: string, recordId: string, field: string, note: string | undefined, now: number): AttributeValue {
    return this.write(() => {
      this.stmt('approve').run({ dataset, field, record_id: recordId, note: note ?? null, now });
      const row = this.stmt('value').get({ dataset, field, record_id: recordId }) as AttributeValueRow | undefined;
      if (!row) throw valueNotFound(dataset, recordId, field);
      return toAttributeValue(row);
    });
  }

  summary(dataset: string, field: string): AttributeSummary {
    return toSummary(this.stmt('summary').all({ dataset, field }) as Parameters<typeof toSummary>[0]);
  }
}
