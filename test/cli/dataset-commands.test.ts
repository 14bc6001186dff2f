/**
 * `sluice dataset ...` commands in-process (the e2e suite drives the built CLI): a 1,000-record import /
 * export round trip on both backends, bad lines, and an ingest pipeline that transforms or rejects records.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  datasetCreateCommand,
  datasetExportCommand,
  datasetGetCommand,
  datasetImportCommand,
  datasetListCommand,
} from '../../src/cli/commands/dataset.js';
import { openEngine } from '../../src/cli/context.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import { storeTargets } from '../support/store-targets.js';

vi.setConfig({ testTimeout: 60_000 });

const products = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `p${String(i).padStart(4, '0')}`, title: ` Product ${i} `, price: i * 1.25, tags: i % 2 ? ['odd'] : [] }));
const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

for (const target of storeTargets()) {
  describe(`sluice dataset on ${target.name}`, () => {
    let dir: string;
    let opts: { store: string };
    let out: string[];
    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-dataset-'));
      opts = { store: await target.url(dir) };
      out = [];
      vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (out.push(String(chunk)), true));
      vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    });
    afterEach(() => {
      vi.restoreAllMocks();
      rmSync(dir, { recursive: true, force: true });
    });
    afterAll(() => target.cleanup());

    it('imports 1,000 records from JSONL and exports them back identical, in id order', async () => {
      const rows = products(1000).reverse();
      writeFileSync(join(dir, 'in.jsonl'), jsonl(rows));
      expect(await datasetCreateCommand('products', opts)).toBe(0);
      expect(await datasetImportCommand('products', join(dir, 'in.jsonl'), opts)).toBe(0);
      expect(out.join('')).toContain('1000 record(s) imported');
      expect(await datasetExportCommand('products', join(dir, 'out.jsonl'), opts)).toBe(0);
      const exported = readFileSync(join(dir, 'out.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as unknown);
      expect(exported).toEqual([...rows].reverse());
      out.length = 0;
      expect(await datasetGetCommand('products', 'p0042', opts)).toBe(0);
      expect(JSON.parse(out.join(''))).toEqual(rows.find((r) => r.id === 'p0042'));
      out.length = 0;
      expect(await datasetListCommand({ ...opts, json: true })).toBe(0);
      expect(JSON.parse(out.join(''))).toMatchObject([{ name: 'products', records: 1000 }]);
    });

    it('checks the whole file first: a bad line is named and nothing is imported', async () => {
      const lines = jsonl(products(1500)).split('\n');
      lines[1203] = '["not", "an", "object"]';
      writeFileSync(join(dir, 'bad.jsonl'), lines.join('\n'));
      await datasetCreateCommand('products', opts);
      await expect(datasetImportCommand('products', join(dir, 'bad.jsonl'), opts)).rejects.toMatchObject({
        code: 'RECORD_INVALID',
        message: 'line 1204: the record is not a JSON object',
      });
      writeFileSync(join(dir, 'bad.jsonl'), '{"id": "a"}\n{"id": "b",\n');
      await expect(datasetImportCommand('products', join(dir, 'bad.jsonl'), opts)).rejects.toThrow(/^line 2: not valid JSON/);
      writeFileSync(join(dir, 'bad.jsonl'), '{"sku": "a"}\n');
      await expect(datasetImportCommand('products', join(dir, 'bad.jsonl'), opts)).rejects.toThrow('line 1: the record has no "id"');
      expect(await datasetImportCommand('products', join(dir, 'bad.jsonl'), { ...opts, idField: 'sku' })).toBe(0);
      const engine = await openEngine(opts);
      try {
        expect(await engine.store.countRecords('products')).toBe(1);
      } finally {
        await engine.close();
      }
    });

    it('runs imported records through the ingest pipeline; a failing record rejects its batch', async () => {
      const engine = await openEngine(opts);
      try {
        const spec = {
          name: 'clean',
          steps: {
            trim: { uses: 'code', with: { code: "if (input.price > 1250) throw new Error('too expensive: ' + input.id); return { ...input, title: input.title.trim() }" } },
          },
        };
        await engine.registerPipeline(normalizePipeline(spec, { stepTypes: builtinStepTypes() }));
      } finally {
        await engine.close();
      }
      await datasetCreateCommand('products', { ...opts, ingest: 'clean' });
      writeFileSync(join(dir, 'in.jsonl'), jsonl(products(1000)));
      expect(await datasetImportCommand('products', join(dir, 'in.jsonl'), opts)).toBe(0);
      out.length = 0;
      await datasetGetCommand('products', 'p0007', opts);
      expect(JSON.parse(out.join(''))).toMatchObject({ id: 'p0007', title: 'Product 7' });

      // 1,500 records in two batches: the first is stored, the second holds p1001 (price 1251.25) and is rejected.
      writeFileSync(join(dir, 'more.jsonl'), jsonl(products(1500).map((p) => ({ ...p, batch: 2 }))));
      const failed = datasetImportCommand('products', join(dir, 'more.jsonl'), opts);
      await expect(failed).rejects.toMatchObject({ code: 'INGEST_FAILED', details: { step: 'trim', record: 'p1001' } });
      await expect(failed).rejects.toThrow('batch starting at line 1001 rejected; 1000 record(s) of earlier batches stored');
      out.length = 0;
      await datasetGetCommand('products', 'p0999', opts);
      expect(JSON.parse(out.join(''))).toMatchObject({ batch: 2, title: 'Product 999' });
      await expect(datasetGetCommand('products', 'p1000', opts)).rejects.toMatchObject({ code: 'RECORD_NOT_FOUND' });
    });
  });
}
