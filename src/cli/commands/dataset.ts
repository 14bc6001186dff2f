import { createWriteStream, type WriteStream } from 'node:fs';
import { attributeTriggersOf } from '../../attributes/extension.js';
import { once } from 'node:events';
import { isSluiceError, SluiceError } from '../../core/errors.js';
import { putDataset, requireDataset, streamRecords, writeRecords } from '../../datasets/datasets.js';
import { DEFAULT_ID_FIELD, readJsonlFile } from '../../datasets/jsonl.js';
import type { Engine } from '../../engine/engine.js';
import type { DataRecord, NewDataRecord } from '../../store/store.js';
import { formatTime, openEngine, printJson, table, type GlobalOptions } from '../context.js';
import { valuesTable } from './attributes.js';
import { datasetView, recordView } from '../../server/views.js';

/** Records per write transaction of `dataset import`, and per page of `dataset export`. */
export const IMPORT_BATCH = 1000;

async function withEngine<T>(opts: GlobalOptions, fn: (engine: Engine) => Promise<T>): Promise<T> {
  const engine = await openEngine(opts);
  try {
    return await fn(engine);
  } finally {
    await engine.close();
  }
}

/** `sluice dataset create NAME [--ingest PIPELINE]`: creates the dataset, or sets its ingest pipeline. */
export async function datasetCreateCommand(name: string, opts: GlobalOptions & { ingest?: string }): Promise<number> {
  return withEngine(opts, async (engine) => {
    const dataset = await putDataset(engine, name, { ingestPipeline: opts.ingest });
    if (opts.json) printJson(datasetView(dataset));
    else process.stdout.write(`dataset ${dataset.name}${dataset.ingestPipeline ? ` (ingest pipeline ${dataset.ingestPipeline})` : ''}\n`);
    return 0;
  });
}

/** `sluice dataset list`: every dataset with its record count. */
export async function datasetListCommand(opts: GlobalOptions): Promise<number> {
  return withEngine(opts, async (engine) => {
    const rows = [];
    for (const d of await engine.store.listDatasets()) rows.push({ ...d, records: await engine.store.countRecords(d.name) });
    if (opts.json) printJson(rows.map((d) => datasetView(d, d.records)));
    else if (rows.length === 0) process.stdout.write('no datasets yet\n');
    else process.stdout.write(`${table(['DATASET', 'RECORDS', 'INGEST', 'CREATED'], rows.map((d) => [d.name, String(d.records), d.ingestPipeline ?? '-', formatTime(d.createdAt)]))}\n`);
    return 0;
  });
}

/** `sluice dataset get NAME ID`: one record's data as JSON, then its derived values with their provenance. */
export async function datasetGetCommand(name: string, id: string, opts: GlobalOptions): Promise<number> {
  return withEngine(opts, async (engine) => {
    await requireDataset(engine, name);
    const record = await engine.store.getRecord(name, id);
    if (!record) throw new SluiceError('RECORD_NOT_FOUND', `dataset ${name} has no record ${id}`);
    const values = await engine.store.getAttributeValues(name, id);
    if (opts.json) {
      printJson(recordView(record, values));
      return 0;
    }
    printJson(record.data);
    if (Object.keys(values).length > 0) process.stdout.write(`\n${valuesTable(values)}\n`);
    return 0;
  });
}

/**
 * `sluice dataset import NAME FILE.jsonl [--id-field id]`. The file is read twice, a line at a time: first
 * every line is checked (JSON object with an id), so a bad line (named by its number) stores nothing at all;
 * then records are written in batches of {@link IMPORT_BATCH}, each batch one transaction through the ingest
 * pipeline. An ingest failure rejects its whole batch; earlier batches stay stored and the message says how
 * many, so the import can be re-run (writes are upserts).
 */
export async function datasetImportCommand(name: string, file: string, opts: GlobalOptions & { idField?: string }): Promise<number> {
  const idField = opts.idField ?? DEFAULT_ID_FIELD;
  return withEngine(opts, async (engine) => {
    await requireDataset(engine, name);
    let lines = 0;
    for await (const _ of readJsonlFile(file, idField)) lines += 1;
    const written = await importBatches(engine, name, file, idField);
    const triggers = attributeTriggersOf(engine);
    const triggered = triggers?.waiting ?? [];
    await triggers?.flush();
    if (opts.json) printJson({ dataset: name, written, triggered });
    else {
      process.stdout.write(`dataset ${name}: ${written} record(s) imported from ${lines} line(s)\n`);
      if (triggered.length > 0) process.stdout.write(`queued runs of ${triggered.join(', ')} for the changed records (a worker runs them: sluice worker, or sluice serve)\n`);
    }
    return 0;
  });
}

async function importBatches(engine: Engine, name: string, file: string, idField: string): Promise<number> {
  let batch: NewDataRecord[] = [];
  let firstLine = 0;
  let written = 0;
  const flush = async () => {
    try {
      written += await writeRecords(engine, name, batch);
    } catch (err) {
      if (!isSluiceError(err)) throw err;
      const message = `${err.message} (batch starting at line ${firstLine} rejected; ${written} record(s) of earlier batches stored)`;
      throw new SluiceError(err.code, message, { details: err.details, cause: err });
    }
    batch = [];
  };
  for await (const { line, record } of readJsonlFile(file, idField)) {
    if (batch.length === 0) firstLine = line;
    batch.push(record);
    if (batch.length >= IMPORT_BATCH) await flush();
  }
  if (batch.length > 0) await flush();
  return written;
}

/**
 * `sluice dataset export NAME [FILE] [--id-field id]`: JSONL to FILE or stdout, read page by page in id order.
 * Each line is the record's data; the id is added under `--id-field` when the data lacks it, so the file
 * imports back unchanged.
 */
export async function datasetExportCommand(name: string, file: string | undefined, opts: GlobalOptions & { idField?: string }): Promise<number> {
  const idField = opts.idField ?? DEFAULT_ID_FIELD;
  return withEngine(opts, async (engine) => {
    await requireDataset(engine, name);
    const out = file ? createWriteStream(file) : process.stdout;
    let count = 0;
    try {
      for await (const page of streamRecords(engine.store, name, IMPORT_BATCH)) {
        await writeChunk(out, page.map((r) => `${JSON.stringify(exportedData(r, idField))}\n`).join(''));
        count += page.length;
      }
    } finally {
      if (out !== process.stdout) await new Promise<void>((resolve, reject) => (out as WriteStream).end((err?: Error | null) => (err ? reject(err) : resolve())));
    }
    if (file) process.stderr.write(`dataset ${name}: ${count} record(s) exported to ${file}\n`);
    return 0;
  });
}

function exportedData(r: DataRecord, idField: string): Record<string, unknown> {
  return idField in r.data ? r.data : { [idField]: r.id, ...r.data };
}

/** Writes and waits for the stream to drain when its buffer is full (memory stays one page). */
async function writeChunk(out: NodeJS.WritableStream, chunk: string): Promise<void> {
  if (!out.write(chunk)) await once(out, 'drain');
}
