import { attributePipelinesOf } from '../attributes/ordering.js';
import { attributeTriggersOf } from '../attributes/extension.js';
import { SluiceError } from '../core/errors.js';
import { stableStringify } from '../core/hash.js';
import type { Engine } from '../engine/engine.js';
import { simulatePipeline, type SimulatedRun } from '../engine/simulate.js';
import type { DataRecord, DatasetRecord, NewDataRecord, Store, StoredPipeline } from '../store/store.js';
import { assertDatasetName, checkRecords, isJsonObject } from '../core/record-checks.js';

/**
 * Datasets over an engine: what the HTTP routes and the CLI call. Writes go through the dataset's ingest
 * pipeline (when it names one) before they reach the store.
 */

/** Creates or updates a dataset. The ingest pipeline, when given, must be registered. */
export async function putDataset(engine: Engine, name: string, options: { ingestPipeline?: string | undefined } = {}): Promise<DatasetRecord> {
  assertDatasetName(name);
  if (options.ingestPipeline !== undefined) await engine.requirePipeline(options.ingestPipeline);
  return engine.store.putDataset(name, options, engine.clock.now());
}

/** The dataset, or DATASET_NOT_FOUND. */
export async function requireDataset(engine: Engine, name: string): Promise<DatasetRecord> {
  const dataset = await engine.store.getDataset(name);
  if (!dataset) throw new SluiceError('DATASET_NOT_FOUND', `no dataset named ${name}`);
  return dataset;
}

/**
 * Writes records (upsert) in one transaction: every record is checked and passed through the ingest pipeline
 * first, so a bad record or a failing pipeline stores nothing of the write. Returns how many were written.
 */
export async function writeRecords(engine: Engine, dataset: string, records: NewDataRecord[]): Promise<number> {
  const target = await requireDataset(engine, dataset);
  let checked = checkRecords(records);
  if (target.ingestPipeline !== undefined) checked = await ingest(engine, await engine.requirePipeline(target.ingestPipeline), checked);
  const changed = await changedFields(engine, dataset, checked);
  await engine.store.putRecords(dataset, checked, engine.clock.now());
  if (changed) await attributeTriggersOf(engine)?.recordsWritten(dataset, changed);
  return checked.length;
}

/** Records compared field by field with what is stored, in a write this small; larger writes count as all changed. */
const COMPARED_WRITE = 100;

/**
 * Which fields each written record changes, for the attribute pipelines that read them; undefined when the
 * dataset has no attribute pipeline (nothing to trigger).
 */
async function changedFields(engine: Engine, dataset: string, records: NewDataRecord[]): Promise<Map<string, Set<string> | 'all'> | undefined> {
  const readers = attributePipelinesOf(await engine.store.listPipelines(), dataset);
  if (readers.length === 0) return undefined;
  const out = new Map<string, Set<string> | 'all'>();
  for (const r of records) {
    const before = records.length <= COMPARED_WRITE ? await engine.store.getRecord(dataset, r.id) : undefined;
    if (!before) {
      out.set(r.id, 'all');
      continue;
    }
    const keys = new Set([...Object.keys(before.data), ...Object.keys(r.data)]);
    const fields = new Set([...keys].filter((k) => stableStringify(before.data[k]) !== stableStringify(r.data[k])));
    if (fields.size > 0) out.set(r.id, fields);
  }
  return out;
}

/** Every record of a dataset in id order, read `pageSize` at a time (memory holds one page). Default: 1000. */
export async function* streamRecords(store: Store, dataset: string, pageSize = 1000): AsyncGenerator<DataRecord[]> {
  for (let after: string | undefined; ; ) {
    const page = await store.listRecords(dataset, { after, limit: pageSize });
    if (page.length > 0) yield page;
    if (page.length < pageSize) return;
    after = page.at(-1)!.id;
  }
}

/**
 * Runs the ingest pipeline inline on each record (`input` = the record's data; no run is persisted) and keeps
 * the output of its last step: the step no other step needs. When several steps have no dependents, the one
 * written last in the definition wins.
 */
async function ingest(engine: Engine, stored: StoredPipeline, records: NewDataRecord[]): Promise<NewDataRecord[]> {
  const baseDir = stored.sourceFile ? stored.sourceFile.replace(/\/[^/]*$/, '') || '/' : process.cwd();
  const options = { steps: engine.steps, secrets: { ...engine.secrets }, baseDir, version: stored.version, now: () => engine.clock.now(), artifacts: engine.artifacts };
  const out: NewDataRecord[] = [];
  for (const record of records) {
    const [run] = await simulatePipeline(stored.definition, [record.data], options);
    out.push({ id: record.id, data: ingestedData(stored, record.id, run as SimulatedRun) });
  }
  return out;
}

function ingestedData(stored: StoredPipeline, id: string, run: SimulatedRun): Record<string, unknown> {
  const pipeline = stored.name;
  const failed = Object.entries(run.steps).find(([, s]) => s.status === 'failed' || s.status === 'blocked');
  if (run.status !== 'succeeded' || failed) {
    const [step, result] = failed ?? ['?', undefined];
    const reason = result?.error?.message ?? (result?.status === 'blocked' ? 'the step is waiting for a decision' : 'the pipeline did not finish');
    throw ingestError(`ingest pipeline ${pipeline} rejected record "${id}": step ${step} failed: ${reason}`, { pipeline, step, record: id, error: result?.error ?? null });
  }
  const sinks = Object.keys(run.output);
  const last = stored.definition.steps.filter((s) => sinks.includes(s.name)).at(-1)?.name ?? '?';
  const data = run.output[last];
  if (!isJsonObject(data)) {
    throw ingestError(`ingest pipeline ${pipeline} rejected record "${id}": the output of its last step ${last} is not a JSON object`, { pipeline, step: last, record: id });
  }
  return data;
}

function ingestError(message: string, details: { pipeline: string; step: string; record: string; error?: unknown }): SluiceError {
  return new SluiceError('INGEST_FAILED', message, { details });
}
