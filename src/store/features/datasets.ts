import { SluiceError } from '../../core/errors.js';
import { assertDatasetName, checkRecords } from '../../core/record-checks.js';
import { all, get, run, sql, type Rule } from '../ledger/effects.js';
import type { DataRecord, DatasetRecord, NewDataRecord, RecordPage } from '../store.js';
import type { FeatureRunner } from './feature-runner.js';

interface DatasetRow {
  name: string;
  ingest_pipeline: string | null;
  created_at: number;
}

interface RecordRow {
  dataset: string;
  id: string;
  data: string;
  created_at: number;
  updated_at: number;
}

/** Default page size of `listRecords`. */
const DEFAULT_RECORD_PAGE = 100;

function toDatasetRecord(row: DatasetRow): DatasetRecord {
  const out: DatasetRecord = { name: row.name, createdAt: row.created_at };
  if (row.ingest_pipeline !== null) out.ingestPipeline = row.ingest_pipeline;
  return out;
}

function toDataRecord(row: RecordRow): DataRecord {
  return { id: row.id, data: JSON.parse(row.data) as Record<string, unknown>, createdAt: row.created_at, updatedAt: row.updated_at };
}

const S = {
  putDataset: sql(
    'dsPutDataset',
    `INSERT INTO datasets (name, ingest_pipeline, created_at) VALUES ($1, $2, $3)
     ON CONFLICT (name) DO UPDATE SET ingest_pipeline = excluded.ingest_pipeline RETURNING *`,
  ),
  dataset: sql('dsDataset', `SELECT * FROM datasets WHERE name = $1`),
  datasets: sql('dsDatasets', `SELECT * FROM datasets ORDER BY name`),
  record: sql('dsRecord', `SELECT * FROM dataset_records WHERE dataset = $1 AND id = $2`),
  deleteRecord: sql('dsDeleteRecord', `DELETE FROM dataset_records WHERE dataset = $1 AND id = $2`),
  // The record's derived values (of fields an attribute pipeline writes) go with it.
  deleteValues: sql(
    'dsDeleteValues',
    `DELETE FROM attribute_values WHERE dataset = $1 AND record_id = $2
     AND field IN (SELECT field FROM attribute_fields WHERE dataset = $1)`,
  ),
  records: sql('dsRecords', `SELECT * FROM dataset_records WHERE dataset = $1 AND id > $2 ORDER BY id LIMIT $3`),
  countRecords: sql('dsCountRecords', `SELECT count(*) AS n FROM dataset_records WHERE dataset = $1`),
};

/** Per dialect: how a write finds its dataset and takes the rev its records are stamped with. */
const REV = {
  // SQLite: one writer at a time; the dataset's own counter.
  sqlite: sql('dsNextRev', `UPDATE datasets SET rev = rev + 1 WHERE name = $1 RETURNING rev`),
  // PostgreSQL: the dataset row is locked against a concurrent delete while records are written; one rev per write
  // transaction from a sequence, so concurrent writers never wait on the dataset row.
  lock: sql('dsLockDataset', `SELECT name FROM datasets WHERE name = $1 FOR SHARE`),
  pg: sql('dsNextRevPg', `SELECT nextval('dataset_record_rev') AS rev`),
};

/** Records per statement. */
const PUT = {
  // SQLite: one row per statement (prepared once).
  sqlite: sql(
    'dsPutRecord',
    `INSERT INTO dataset_records (dataset, id, data, created_at, updated_at, rev) VALUES ($1, $2, $3, $4, $4, $5)
     ON CONFLICT (dataset, id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at, rev = excluded.rev`,
  ),
  // PostgreSQL: up to PUT_CHUNK rows as arrays; $2 ids, $3 data (JSON text).
  pg: sql(
    'dsPutRecords',
    `INSERT INTO dataset_records (dataset, id, data, created_at, updated_at, rev)
     SELECT $1, u.id, u.data::json, $4, $4, $5 FROM unnest($2::text[], $3::text[]) AS u (id, data)
     ON CONFLICT (dataset, id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at, rev = excluded.rev`,
  ),
};

/** Rows per PostgreSQL INSERT: keeps each statement's parameters well below protocol limits. */
const PUT_CHUNK = 5000;

/**
 * Datasets and their records, written once for both backends over a driver's {@link FeatureRunner}: the first link
 * of the chain of feature classes a store extends (see store-features.ts).
 */
export abstract class Datasets {
  /** The driver's runner of the feature rules. */
  protected abstract readonly features: FeatureRunner;

  async putDataset(name: string, options: { ingestPipeline?: string | undefined }, now: number): Promise<DatasetRecord> {
    assertDatasetName(name);
    return this.features.write(() => putDataset(name, options.ingestPipeline ?? null, now));
  }

  async getDataset(name: string): Promise<DatasetRecord | undefined> {
    const row = await this.features.read(() => get<DatasetRow>(S.dataset, [name]));
    return row && toDatasetRecord(row);
  }

  async listDatasets(): Promise<DatasetRecord[]> {
    return (await this.features.read(() => all<DatasetRow>(S.datasets, []))).map(toDatasetRecord);
  }

  async putRecords(dataset: string, records: NewDataRecord[], now: number): Promise<void> {
    const checked = checkRecords(records);
    await this.features.write(() => putRecords(this.features, dataset, checked, now));
  }

  async getRecord(dataset: string, id: string): Promise<DataRecord | undefined> {
    const row = await this.features.read(() => get<RecordRow>(S.record, [dataset, id]));
    return row && toDataRecord(row);
  }

  async deleteRecord(dataset: string, id: string): Promise<boolean> {
    return this.features.write(() => deleteRecord(dataset, id));
  }

  async listRecords(dataset: string, page: RecordPage = {}): Promise<DataRecord[]> {
    return (await this.features.read(() => all<RecordRow>(S.records, [dataset, page.after ?? '', page.limit ?? DEFAULT_RECORD_PAGE]))).map(toDataRecord);
  }

  async countRecords(dataset: string): Promise<number> {
    return Number((await this.features.read(() => get<{ n: number }>(S.countRecords, [dataset])))?.n ?? 0);
  }
}

function* putDataset(name: string, ingestPipeline: string | null, now: number): Rule<DatasetRecord> {
  return toDatasetRecord((yield* get<DatasetRow>(S.putDataset, [name, ingestPipeline, now]))!);
}

function* putRecords(r: FeatureRunner, dataset: string, records: NewDataRecord[], now: number): Rule<void> {
  const rev = yield* nextRev(r, dataset);
  if (rev === undefined) throw new SluiceError('DATASET_NOT_FOUND', `no dataset ${dataset}`);
  if (r.dialect === 'sqlite') {
    for (const rec of records) yield* run(PUT.sqlite, [dataset, rec.id, JSON.stringify(rec.data), now, rev]);
    return;
  }
  for (let i = 0; i < records.length; i += PUT_CHUNK) {
    const chunk = records.slice(i, i + PUT_CHUNK);
    yield* run(PUT.pg, [dataset, chunk.map((rec) => rec.id), chunk.map((rec) => r.jsonText(JSON.stringify(rec.data))), now, rev]);
  }
}

/** The rev of this write; undefined when there is no such dataset. */
function* nextRev(r: FeatureRunner, dataset: string): Rule<number | undefined> {
  if (r.dialect === 'sqlite') return (yield* get<{ rev: number }>(REV.sqlite, [dataset]))?.rev;
  if (!(yield* get(REV.lock, [dataset]))) return undefined;
  return Number((yield* get<{ rev: number }>(REV.pg, []))!.rev);
}

function* deleteRecord(dataset: string, id: string): Rule<boolean> {
  yield* run(S.deleteValues, [dataset, id]);
  return (yield* run(S.deleteRecord, [dataset, id])) > 0;
}
