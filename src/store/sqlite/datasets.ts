import type Database from 'better-sqlite3';
import { Statements } from './statements.js';
import { SluiceError } from '../../core/errors.js';
import { assertDatasetName, checkRecords } from '../../core/record-checks.js';
import type { DataRecord, DatasetRecord, NewDataRecord, RecordPage } from '../store.js';
import { DEFAULT_RECORD_PAGE, toDataRecord, toDatasetRecord, type DatasetRow, type RecordRow } from '../dataset-rows.js';

/** SQL of datasets and records; each statement lists its named parameters. */
const SQL = {
  // @name @ingest_pipeline @created_at
  putDataset: `INSERT INTO datasets (name, ingest_pipeline, created_at) VALUES (@name, @ingest_pipeline, @created_at)
               ON CONFLICT (name) DO UPDATE SET ingest_pipeline = excluded.ingest_pipeline RETURNING *`,
  // @name
  dataset: `SELECT * FROM datasets WHERE name = @name`,
  datasets: `SELECT * FROM datasets ORDER BY name`,
  // @dataset @id @data @now @rev
  putRecord: `INSERT INTO dataset_records (dataset, id, data, created_at, updated_at, rev) VALUES (@dataset, @id, @data, @now, @now, @rev)
              ON CONFLICT (dataset, id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at, rev = excluded.rev`,
  // @dataset
  nextRev: `UPDATE datasets SET rev = rev + 1 WHERE name = @dataset RETURNING rev`,
  // @dataset @id
  record: `SELECT * FROM dataset_records WHERE dataset = @dataset AND id = @id`,
  // @dataset @id
  deleteRecord: `DELETE FROM dataset_records WHERE dataset = @dataset AND id = @id`,
  // @dataset @id
  deleteValues: `DELETE FROM attribute_values WHERE dataset = @dataset AND record_id = @id
                 AND field IN (SELECT field FROM attribute_fields WHERE dataset = @dataset)`,
  // @dataset @after @limit
  records: `SELECT * FROM dataset_records WHERE dataset = @dataset AND id > @after ORDER BY id LIMIT @limit`,
  // @dataset
  countRecords: `SELECT COUNT(*) AS n FROM dataset_records WHERE dataset = @dataset`,
} as const;

/** Datasets and records of the SQLite store, over the store's connection and write transactions. */
export class SqliteDatasets {
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

  putDataset(name: string, options: { ingestPipeline?: string | undefined }, now: number): DatasetRecord {
    assertDatasetName(name);
    const row = this.write(() => this.stmt('putDataset').get({ name, ingest_pipeline: options.ingestPipeline ?? null, created_at: now }) as DatasetRow);
    return toDatasetRecord(row);
  }

  getDataset(name: string): DatasetRecord | undefined {
    const row = this.stmt('dataset').get({ name }) as DatasetRow | undefined;
    return row && toDatasetRecord(row);
  }

  listDatasets(): DatasetRecord[] {
    return (this.stmt('datasets').all() as DatasetRow[]).map(toDatasetRecord);
  }

  putRecords(dataset: string, records: NewDataRecord[], now: number): void {
    const checked = checkRecords(records);
    this.write(() => {
      const next = this.stmt('nextRev').get({ dataset }) as { rev: number } | undefined;
      if (!next) throw new SluiceError('DATASET_NOT_FOUND', `no dataset ${dataset}`);
      const put = this.stmt('putRecord');
      for (const r of checked) put.run({ dataset, id: r.id, data: JSON.stringify(r.data), now, rev: next.rev });
    });
  }

  getRecord(dataset: string, id: string): DataRecord | undefined {
    const row = this.stmt('record').get({ dataset, id }) as RecordRow | undefined;
    return row && toDataRecord(row);
  }

  deleteRecord(dataset: string, id: string): boolean {
    return this.write(() => {
      this.stmt('deleteValues').run({ dataset, id });
      return this.stmt('deleteRecord').run({ dataset, id }).changes > 0;
    });
  }

  listRecords(dataset: string, page: RecordPage = {}): DataRecord[] {
    const rows = this.stmt('records').all({ dataset, after: page.after ?? '', limit: page.limit ?? DEFAULT_RECORD_PAGE }) as RecordRow[];
    return rows.map(toDataRecord);
  }

  countRecords(dataset: string): number {
    return (this.stmt('countRecords').get({ dataset }) as { n: number }).n;
  }
}
