import { SluiceError } from '../core/errors.js';
import type { AttributeStatus, AttributeSummary, AttributeValue, AttributeWorkItem } from './attributes.js';

/** A row of attribute_values; `value` is JSON text on both backends. */
export interface AttributeValueRow {
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

export function toAttributeValue(row: AttributeValueRow): AttributeValue {
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
export type WorkRow = { id: string; rev: number; data: string } & { [K in keyof AttributeValueRow]: AttributeValueRow[K] | null };

export function toWorkItem(row: WorkRow, derived: Map<string, Record<string, unknown>>): AttributeWorkItem {
  return {
    id: row.id,
    rev: Number(row.rev),
    data: JSON.parse(row.data) as Record<string, unknown>,
    derived: derived.get(row.id) ?? {},
    current: row.status === null ? null : toAttributeValue(row as AttributeValueRow),
  };
}

/** Groups `(record_id, field, value)` rows into record id -> field -> parsed value. */
export function groupDerived(rows: Array<{ record_id: string; field: string; value: string }>): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  for (const r of rows) {
    let fields = out.get(r.record_id);
    if (!fields) out.set(r.record_id, (fields = {}));
    fields[r.field] = JSON.parse(r.value) as unknown;
  }
  return out;
}

export function groupValues(rows: Array<AttributeValueRow & { record_id: string; field: string }>): Map<string, Record<string, AttributeValue>> {
  const out = new Map<string, Record<string, AttributeValue>>();
  for (const r of rows) {
    let fields = out.get(r.record_id);
    if (!fields) out.set(r.record_id, (fields = {}));
    fields[r.field] = toAttributeValue(r);
  }
  return out;
}

export function toSummary(rows: Array<{ status: AttributeStatus; n: number; avg_confidence: number | null; with_confidence: number }>): AttributeSummary {
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

export function recordNotFound(dataset: string, recordId: string): SluiceError {
  return new SluiceError('RECORD_NOT_FOUND', `dataset ${dataset} has no record "${recordId}"`);
}

export function valueNotFound(dataset: string, recordId: string, field: string): SluiceError {
  return new SluiceError('VALUE_NOT_FOUND', `record "${recordId}" of dataset ${dataset} has no value of ${field} to approve`);
}
