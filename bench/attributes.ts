/**
 * Attribute pipeline speed on embedded SQLite: N records (default 1,000,000) through a `code` attribute
 * pipeline (batch_size 200: one QuickJS sandbox entry per 200 records), then a re-run with nothing changed
 * (hash skipping), then a run after changing one record (exactly one processed). Peak memory is the process's
 * maximum resident set size, sampled while the runs go.
 *
 * Side by side, the hand-written loop an attribute job is usually built as (read a page, run the function
 * over it with node:vm — no isolation, no input hashes, no provenance — and upsert the values): the floor of
 * what the same work costs without the engine.
 *
 *   npx tsx bench/attributes.ts [--records 1000000] [--keep]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import vm from 'node:vm';
import Database from 'better-sqlite3';
import { normalizePipeline } from '../src/core/validate.js';
import { Engine } from '../src/engine/engine.js';
import { builtinStepTypes } from '../src/steps/builtin.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { AttributeRunStats } from '../src/attributes/attribute-step.js';

const { values } = parseArgs({ options: { records: { type: 'string', default: '1000000' }, keep: { type: 'boolean', default: false } } });
const RECORDS = Number(values.records);
const CODE = "return { value: $json.price >= 500 ? 'premium' : $json.price >= 100 ? 'mainstream' : 'budget', confidence: 0.9, justification: 'price ' + $json.price }";

const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-attributes-'));
let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 25);

function record(i: number): { id: string; data: Record<string, unknown> } {
  return { id: `r${String(i).padStart(7, '0')}`, data: { title: `Product ${i}`, description: `Description of product ${i}`, price: (i * 37) % 1000 } };
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const out = await fn();
  return [out, performance.now() - start];
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function sluice(): Promise<Array<[string, string]>> {
  const store = new SqliteStore({ path: join(dir, 'sluice.db') });
  await store.migrate();
  const engine = new Engine({ store, steps: builtinStepTypes(), artifactsDir: join(dir, 'artifacts'), onError: (e) => console.error(e) });
  await store.putDataset('products', {}, Date.now());
  const [, importMs] = await timed(async () => {
    for (let i = 0; i < RECORDS; i += 10_000) {
      await store.putRecords('products', Array.from({ length: Math.min(10_000, RECORDS - i) }, (_, k) => record(i + k)), Date.now());
    }
  });
  const spec = { name: 'price-band', dataset: 'products', target: 'band', source: { fields: ['title', 'price'] }, steps: { band: { uses: 'code', with: { code: CODE, timeout: '30s' } } } };
  await engine.registerPipeline(normalizePipeline(spec, { stepTypes: engine.steps }));
  engine.startWorker();
  const run = async () => {
    const { run: created } = await engine.startRun('price-band', { input: {} });
    const done = await engine.waitForRun(created.id, { pollMs: 20 });
    if (done.status !== 'succeeded') throw new Error(`run ${done.id} ${done.status}: ${JSON.stringify(done.error)}`);
    return (await store.getStepOutputs(done.id, ['attribute']))['attribute'] as AttributeRunStats;
  };
  peakRss = process.memoryUsage().rss;
  const [first, firstMs] = await timed(run);
  const firstPeak = peakRss;
  const [again, againMs] = await timed(run);
  await store.putRecords('products', [{ id: record(4242).id, data: { ...record(4242).data, price: 999 } }], Date.now());
  const [one, oneMs] = await timed(run);
  await engine.close();
  return [
    ['import (store.putRecords, 10,000 per transaction)', `${s(importMs)} (${Math.round(RECORDS / (importMs / 1000)).toLocaleString('en-US')} records/s)`],
    ['first run: processed / skipped / batches', `${first.processed} / ${first.skipped} / ${first.batches}`],
    ['first run: wall time', `${s(firstMs)} (${Math.round(RECORDS / (firstMs / 1000)).toLocaleString('en-US')} records/s)`],
    ['first run: peak RSS of the process', mb(firstPeak)],
    ['re-run, nothing changed: processed / skipped', `${again.processed} / ${again.skipped}`],
    ['re-run, nothing changed: wall time', s(againMs)],
    ['after changing one record: processed / skipped', `${one.processed} / ${one.skipped}`],
    ['after changing one record: wall time', s(oneMs)],
    ['peak RSS over everything', mb(peakRss)],
  ];
}

/** The same job written by hand: page through the rows, node:vm over each page, upsert the values. */
function handWritten(): Array<[string, string]> {
  const db = new Database(join(dir, 'sluice.db'));
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE IF NOT EXISTS plain_values (id TEXT PRIMARY KEY, value TEXT, confidence REAL, justification TEXT) WITHOUT ROWID');
  const page = db.prepare("SELECT id, data FROM dataset_records WHERE dataset = 'products' AND id > ? ORDER BY id LIMIT 200");
  const put = db.prepare('INSERT INTO plain_values (id, value, confidence, justification) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET value = excluded.value, confidence = excluded.confidence, justification = excluded.justification');
  const fn = vm.runInNewContext(`(function ($json) { ${CODE} })`) as (json: unknown) => { value: string; confidence: number; justification: string };
  const start = performance.now();
  let after = '';
  let n = 0;
  for (;;) {
    const rows = page.all(after) as Array<{ id: string; data: string }>;
    if (rows.length === 0) break;
    const results = rows.map((r) => {
      const data = JSON.parse(r.data) as { title: string; price: number };
      return fn({ title: data.title, price: data.price });
    });
    db.transaction(() => rows.forEach((r, i) => put.run(r.id, JSON.stringify(results[i]!.value), results[i]!.confidence, results[i]!.justification)))();
    n += rows.length;
    after = rows.at(-1)!.id;
  }
  const ms = performance.now() - start;
  db.close();
  return [['hand-written loop (node:vm, no hashes, no provenance): wall time', `${s(ms)} for ${n.toLocaleString('en-US')} records`]];
}

try {
  console.log(`attribute pipeline, ${RECORDS.toLocaleString('en-US')} records, embedded SQLite (${dir})`);
  const rows = [...(await sluice()), ...handWritten()];
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
  console.log(`goals: first run < 60 s with peak memory < 500 MB; re-run < 5 s; one change -> exactly 1 processed`);
} finally {
  clearInterval(sampler);
  if (!values.keep) rmSync(dir, { recursive: true, force: true });
}
