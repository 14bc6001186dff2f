import type { DataRecord, DatasetRecord } from './store.js';

/** Dataset and record rows as both backends read them, and their records. */

export interface DatasetRow {
  name: string;
  ingest_pipeline: string | null;
  created_at: number;
}

export interface RecordRow {
  dataset: string;
  id: string;
  data: string;
  created_at: number;
  updated_at: number;
}

/** Default page size of `listRecords`. */
export const DEFAULT_RECORD_PAGE = 100;

export function toDatasetRecord(row: DatasetRow): DatasetRecord {
  const out: DatasetRecord = { name: row.name, createdAt: row.created_at };
  if (row.ingest_pipeline !== null) out.ingestPipeline = row.ingest_pipeline;
  return out;
}

export function toDataRecord(row: RecordRow): DataRecord {
  return { id: row.id, data: JSON.parse(row.data) as Record<string, unknown>, createdAt: row.created_at, updatedAt: row.updated_at };
}
