import type pg from 'pg';
import { SluiceError } from '../../core/errors.js';
import { assertDatasetName, checkRecords } from '../../core/record-checks.js';
import { DEFAULT_RECORD_PAGE, toDataRecord, toDatasetRecord, type DatasetRow, type RecordRow } from '../dataset-rows.js';
import type { DataRecord, DatasetRecord, NewDataRecord, RecordPage } from '../store.js';
import { pgJson } from './pg-json.js';

/** SQL of datasets and records on PostgreSQL; each statement lists its parameters. */
const SQL = {
  // $1 name $2 ingest_pipeline $3 created_at
  putDataset: `INSERT INTO datasets (name, ingest_pipeline, created_at) VALUES ($1, $2, $3)
               ON CONFLICT (name) DO UPDATE SET ingest_pipeline = excluded.ingest_pipeline RETURNING *`,
  // $1 name
  dataset: `SELECT * FROM datasets WHERE name = $1`,
  // $1 name (locks the dataset row against a concurrent delete while records are written)
  lockDataset: `SELECT name FROM datasets WHERE name = $1 FOR SHARE`,
  // (none)
  datasets: `SELECT * FROM datasets ORDER BY name`,
  // $1 dataset $2 ids (text[]) $3 data (text[], JSON) $4 now $5 rev
  putRecords: `INSERT INTO dataset_records (dataset, id, data, created_at, updated_at, rev)
               SELECT $1, u.id, u.data::json, $4, $4, $5 FROM unnest($2::text[], $3::text[]) AS u (id, data)
               ON CONFLICT (dataset, id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at, rev = excluded.rev`,
  // (none): one rev per write transaction
  nextRev: `SELECT nextval('dataset_record_rev') AS rev`,
  // $1 dataset $2 id
  record: `SELECT * FROM dataset_records WHERE dataset = $1 AND id = $2`,
  // $1 dataset $2 id
  deleteRecord: `DELETE FROM dataset_records WHERE dataset = $1 AND id = $2`,
  // $1 dataset $2 id
  deleteValues: `DELETE FROM attribute_values WHERE dataset = $1 AND record_id = $2
                 AND field IN (SELECT field FROM attribute_fields WHERE dataset = $1)`,
  // $1 dataset $2 after $3 limit
  records: `SELECT * FROM dataset_records WHERE dataset = $1 AND id > $2 ORDER BY id LIMIT $3`,
  // $1 dataset
  countRecords: `SELECT count(*) AS n FROM dataset_records WHERE dataset = $1`,
} as const;

/** Rows per INSERT statement: keeps each statement's parameters well below protocol limits. */
const INSERT_CHUNK = 5000;

/** Runs `fn` in one transaction, retrying transient failures (the store's `transaction`). */
export type RunTransaction = <T>(fn: (client: pg.PoolClient) => Promise<T>) => Promise<T>;

/** Datasets and records of the PostgreSQL store. */
export class PgDatasets {
  constructor(private readonly tx: RunTransaction) {}

  private async rows<R extends pg.QueryResultRow>(key: keyof typeof SQL, values: unknown[]): Promise<R[]> {
    return this.tx(async (c) => (await c.query<R>({ name: `ds_${key}`, text: SQL[key], values })).rows);
  }

  async putDataset(name: string, options: { ingestPipeline?: string | undefined }, now: number): Promise<DatasetRecord> {
    assertDatasetName(name);
    const [row] = await this.rows<DatasetRow>('putDataset', [name, options.ingestPipeline ?? null, now]);
    return toDatasetRecord(row as DatasetRow);
  }

  async getDataset(name: string): Promise<DatasetRecord | undefined> {
    const [row] = await this.rows<DatasetRow>('dataset', [name]);
    return row && toDatasetRecord(row);
  }

  async listDatasets(): Promise<DatasetRecord[]> {
    return (await this.rows<DatasetRow>('datasets', [])).map(toDatasetRecord);
  }

  async putRecords(dataset: string, records: NewDataRecord[], now: number): Promise<void> {
    const checked = checkRecords(records);
    await this.tx(async (c) => {
      const found = await c.query({ name: 'ds_lockDataset', text: SQL.lockDataset, values: [dataset] });
      if (found.rowCount === 0) throw new SluiceError('DATASET_NOT_FOUND', `no dataset ${dataset}`);
      const { rows } = await c.query<{ rev: number }>({ name: 'ds_nextRev', text: SQL.nextRev });
      for (let i = 0; i < checked.length; i += INSERT_CHUNK) {
        const chunk = checked.slice(i, i + INSERT_CHUNK);
        const values = [dataset, chunk.map((r) => r.id), chunk.map((r) => pgJson(r.data)), now, rows[0]!.rev];
        await c.query({ name: 'ds_putRecords', text: SQL.putRecords, values });
      }
    });
  }

  async getRecord(dataset: string, id: string): Promise<DataRecord | undefined> {
    const [row] = await this.rows<RecordRow>('record', [dataset, id]);
    return row && toDataRecord(row);
  }

  async deleteRecord(dataset: string, id: string): Promise<boolean> {
    return this.tx(async (c) => {
      await c.query({ name: 'ds_deleteValues', text: SQL.deleteValues, values: [dataset, id] });
      return ((await c.query({ name: 'ds_deleteRecord', text: SQL.deleteRecord, values: [dataset, id] })).rowCount ?? 0) > 0;
    });
  }

  async listRecords(dataset: string, page: RecordPage = {}): Promise<DataRecord[]> {
    return (await this.rows<RecordRow>('records', [dataset, page.after ?? '', page.limit ?? DEFAULT_RECORD_PAGE])).map(toDataRecord);
  }

  async countRecords(dataset: string): Promise<number> {
    const [row] = await this.rows<{ n: number }>('countRecords', [dataset]);
    return row?.n ?? 0;
  }
}
