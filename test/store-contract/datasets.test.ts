/** Datasets and records on every backend: upserts, paging, all-or-nothing bulk writes, bad input. */
import { afterAll, describe, expect, it } from 'vitest';
import type { NewDataRecord, Store } from '../../src/store/store.js';
import { backends } from '../support/backends.js';

for (const backend of backends()) {
  describe(`datasets on ${backend.name}`, () => {
    afterAll(() => backend.cleanup());
    const fresh = async (): Promise<Store> => {
      const store = await backend.create();
      await store.putDataset('products', {}, 1000);
      return store;
    };

    it('creates datasets, keeps created_at on update and lists them by name', async () => {
      const store = await fresh();
      await store.putDataset('a.first', { ingestPipeline: 'clean' }, 2000);
      const updated = await store.putDataset('a.first', {}, 3000);
      expect(updated).toEqual({ name: 'a.first', createdAt: 2000 });
      expect(await store.getDataset('products')).toEqual({ name: 'products', createdAt: 1000 });
      expect(await store.getDataset('missing')).toBeUndefined();
      expect((await store.listDatasets()).map((d) => d.name)).toEqual(['a.first', 'products']);
      await store.putDataset('a.first', { ingestPipeline: 'clean' }, 4000);
      expect(await store.getDataset('a.first')).toEqual({ name: 'a.first', ingestPipeline: 'clean', createdAt: 2000 });
    });

    it('refuses a dataset name outside [a-z0-9][a-z0-9._-]*', async () => {
      const store = await fresh();
      await expect(store.putDataset('Bad Name', {}, 1)).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
      await expect(store.putDataset('-x', {}, 1)).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    });

    it('upserts records, keeping created_at and moving updated_at; the last of a repeated id wins', async () => {
      const store = await fresh();
      await store.putRecords('products', [{ id: 'p1', data: { title: 'Lamp', tags: ['a'], n: 1.5 } }], 10);
      await store.putRecords('products', [
        { id: 'p1', data: { title: 'Lamp 2' } },
        { id: 'p2', data: { z: 1, a: 2 } },
        { id: 'p2', data: { z: 3, a: 4 } },
      ], 20);
      expect(await store.getRecord('products', 'p1')).toEqual({ id: 'p1', data: { title: 'Lamp 2' }, createdAt: 10, updatedAt: 20 });
      const p2 = await store.getRecord('products', 'p2');
      expect(Object.keys(p2!.data)).toEqual(['z', 'a']);
      expect(p2!.data).toEqual({ z: 3, a: 4 });
      expect(await store.countRecords('products')).toBe(2);
      expect(await store.getRecord('products', 'nope')).toBeUndefined();
    });

    it('pages records by id (bytewise order) until the last page', async () => {
      const store = await fresh();
      const ids = ['b', 'a', 'B', 'a-1', 'ä', 'a_2', '10', '9'];
      await store.putRecords('products', ids.map((id) => ({ id, data: { id } })), 1);
      const seen: string[] = [];
      for (let after: string | undefined; ; ) {
        const page = await store.listRecords('products', { after, limit: 3 });
        seen.push(...page.map((r) => r.id));
        if (page.length < 3) break;
        after = page.at(-1)!.id;
      }
      expect(seen).toEqual([...ids].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
      expect((await store.listRecords('products')).length).toBe(ids.length);
    });

    it('deletes a record and says whether there was one', async () => {
      const store = await fresh();
      await store.putRecords('products', [{ id: 'p1', data: {} }], 1);
      expect(await store.deleteRecord('products', 'p1')).toBe(true);
      expect(await store.deleteRecord('products', 'p1')).toBe(false);
      expect(await store.countRecords('products')).toBe(0);
    });

    it('stores nothing of a bulk write holding a record that is not a JSON object, and names it', async () => {
      const store = await fresh();
      const bad = [{ id: 'ok', data: { a: 1 } }, { id: 'list', data: [1, 2] as unknown as Record<string, unknown> }];
      await expect(store.putRecords('products', bad, 1)).rejects.toMatchObject({ code: 'RECORD_INVALID', message: expect.stringContaining('"list"') });
      const nul = [{ id: 'n', data: null as unknown as Record<string, unknown> }];
      await expect(store.putRecords('products', nul, 1)).rejects.toMatchObject({ code: 'RECORD_INVALID' });
      await expect(store.putRecords('products', [{ id: '', data: {} }], 1)).rejects.toMatchObject({ code: 'RECORD_INVALID' });
      expect(await store.countRecords('products')).toBe(0);
    });

    it('refuses records for a dataset that does not exist', async () => {
      const store = await fresh();
      await expect(store.putRecords('ghost', [{ id: 'x', data: {} }], 1)).rejects.toMatchObject({ code: 'DATASET_NOT_FOUND' });
      expect(await store.listRecords('ghost')).toEqual([]);
    });

    it('writes 12,000 records in one call, all in one transaction', async () => {
      const store = await fresh();
      const records = Array.from({ length: 12_000 }, (_, i) => ({ id: `r${String(i).padStart(5, '0')}`, data: { i, text: 'x'.repeat(20) } }));
      await store.putRecords('products', records, 1);
      expect(await store.countRecords('products')).toBe(12_000);
      expect((await store.getRecord('products', 'r11999'))!.data).toEqual({ i: 11999, text: 'x'.repeat(20) });
      // A bad record at the end: every record is checked before any is written, so nothing of the call is stored.
      const more: NewDataRecord[] = records.map((r) => ({ id: `s${r.id}`, data: r.data }));
      more.push({ id: 'bad', data: 'text' as unknown as Record<string, unknown> });
      await expect(store.putRecords('products', more, 2)).rejects.toMatchObject({ code: 'RECORD_INVALID' });
      expect(await store.countRecords('products')).toBe(12_000);
    });
  });
}
