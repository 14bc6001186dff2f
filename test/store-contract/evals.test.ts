/** Eval cases on every backend: all-or-nothing replace, kept results, unique records, results and summaries. */
import { afterAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/store.js';
import { backends } from '../support/backends.js';

for (const backend of backends()) {
  describe(`evals on ${backend.name}`, () => {
    afterAll(() => backend.cleanup());
    const fresh = (): Promise<Store> => backend.create();

    it('replaces a set of cases in order with defaults, and lists each pipeline apart', async () => {
      const store = await fresh();
      const cases = await store.replaceEvals('price', [
        { recordId: 'r1', desiredOutput: 10, comparator: 'number:0.5', notes: 'from the catalog' },
        { input: { title: 'Lamp' }, desiredOutput: { color: 'red' } },
      ], 100);
      expect(cases).toMatchObject([
        { pipeline: 'price', recordId: 'r1', input: null, desiredOutput: 10, comparator: 'number:0.5', notes: 'from the catalog', passed: null, actualOutput: null, lastRanAt: null, createdAt: 100, updatedAt: 100 },
        { pipeline: 'price', recordId: null, input: { title: 'Lamp' }, desiredOutput: { color: 'red' }, comparator: 'exact', notes: null, passed: null },
      ]);
      await store.replaceEvals('other', [{ input: {}, desiredOutput: null }], 100);
      expect(await store.listEvals('price')).toEqual(cases);
      expect((await store.listEvals('other'))[0]).toMatchObject({ input: {}, desiredOutput: null });
      expect(await store.listEvalPipelines()).toEqual(['other', 'price']);
      expect(await store.listEvals('none')).toEqual([]);
    });

    it('stores nothing of a replace with a bad comparator, naming the case and the comparator', async () => {
      const store = await fresh();
      const before = await store.replaceEvals('p', [{ recordId: 'r1', desiredOutput: 1 }], 100);
      for (const [comparator, desired] of [['number:abc', 1], ['fuzzy', 1], ['regex', '(unclosed'], ['number:0.1', 'ten']] as const) {
        const bad = store.replaceEvals('p', [{ recordId: 'r2', desiredOutput: 2 }, { input: { a: 1 }, desiredOutput: desired, comparator }], 200);
        await expect(bad).rejects.toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringMatching(/^eval case 1: /) });
        await expect(bad).rejects.toThrow(comparator === 'number:0.1' ? /number/ : comparator);
      }
      expect(await store.listEvals('p')).toEqual(before);
    });

    it('refuses a case without exactly one of record and input, a repeated record, and an unknown id', async () => {
      const store = await fresh();
      await expect(store.replaceEvals('p', [{ desiredOutput: 1 }], 1)).rejects.toThrow(/eval case 0: needs exactly one of record_id and input/);
      await expect(store.replaceEvals('p', [{ recordId: 'a', input: {}, desiredOutput: 1 }], 1)).rejects.toThrow(/exactly one/);
      await expect(store.replaceEvals('p', [{ recordId: 'a', desiredOutput: 1 }, { recordId: 'a', desiredOutput: 2 }], 1)).rejects.toThrow(
        /eval case 1: record_id "a" is also used by eval case 0/,
      );
      await expect(store.replaceEvals('p', [{ input: {} } as never], 1)).rejects.toThrow(/desired_output/);
      await store.replaceEvals('p', [{ recordId: 'a', desiredOutput: 1 }], 1);
      await expect(store.replaceEvals('p', [{ id: 999_999, recordId: 'b', desiredOutput: 1 }], 2)).rejects.toThrow(/eval case 0 \(id 999999\): pipeline p has no eval case with id 999999/);
      expect(await store.listEvals('p')).toHaveLength(1);
    });

    it('saves results, computes passed from the comparator and counts the summary', async () => {
      const store = await fresh();
      const [a, b, c, d] = await store.replaceEvals('p', [
        { recordId: 'a', desiredOutput: 10, comparator: 'number:0.5' },
        { recordId: 'b', desiredOutput: { k: 1 }, comparator: 'subset' },
        { recordId: 'c', desiredOutput: 'x' },
        { recordId: 'd', desiredOutput: 'never run' },
      ], 1);
      await store.saveEvalResults('p', [
        { id: a!.id, actualOutput: 10.4, justification: 'close', confidence: 0.9, error: null },
        { id: b!.id, actualOutput: { k: 1, other: true }, justification: null, confidence: null, error: null },
        { id: c!.id, actualOutput: null, justification: null, confidence: null, error: { code: 'STEP_FAILED', message: 'boom' } },
        { id: 424_242, actualOutput: 1, justification: null, confidence: null, error: null },
      ], 50);
      const cases = await store.listEvals('p');
      expect(cases.map((x) => x.passed)).toEqual([true, true, false, null]);
      expect(cases[0]).toMatchObject({ actualOutput: 10.4, justification: 'close', confidence: 0.9, lastRanAt: 50, error: null });
      expect(cases[2]).toMatchObject({ actualOutput: null, error: { code: 'STEP_FAILED', message: 'boom' }, lastRanAt: 50 });
      expect(cases[3]!.id).toBe(d!.id);
      expect(await store.evalSummary('p')).toEqual({ total: 4, passed: 2, failed: 1, notRun: 1 });
      expect(await store.evalSummary('none')).toEqual({ total: 0, passed: 0, failed: 0, notRun: 0 });

      // A JSON null output is an output, not "not run".
      await store.saveEvalResults('p', [{ id: d!.id, actualOutput: null, justification: null, confidence: null, error: null }], 60);
      expect((await store.listEvals('p'))[3]).toMatchObject({ passed: false, actualOutput: null, lastRanAt: 60 });
    });

    it('patches a case and recomputes passed from the stored actual output', async () => {
      const store = await fresh();
      const [a] = await store.replaceEvals('p', [{ recordId: 'a', desiredOutput: 10 }], 1);
      expect(await store.updateEval('p', a!.id, { desiredOutput: 11 }, 2)).toMatchObject({ desiredOutput: 11, passed: null, updatedAt: 2 });
      await store.saveEvalResults('p', [{ id: a!.id, actualOutput: 10.2, justification: null, confidence: null, error: null }], 3);
      expect((await store.listEvals('p'))[0]!.passed).toBe(false);
      expect(await store.updateEval('p', a!.id, { comparator: 'number:1' }, 4)).toMatchObject({ passed: true, desiredOutput: 11, actualOutput: 10.2 });
      expect(await store.updateEval('p', a!.id, { notes: 'checked by hand' }, 5)).toMatchObject({ passed: true, notes: 'checked by hand' });
      await expect(store.updateEval('p', a!.id, { comparator: 'number:-1' }, 6)).rejects.toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringContaining(`id ${a!.id}`) });
      expect(await store.updateEval('p', 999_999, { notes: 'x' }, 6)).toBeUndefined();
      expect(await store.updateEval('other', a!.id, { notes: 'x' }, 6)).toBeUndefined();
      expect((await store.listEvals('p'))[0]).toMatchObject({ comparator: 'number:1', notes: 'checked by hand', updatedAt: 5 });
    });

    it('keeps the results of kept ids on replace (passed recomputed) unless the record changed', async () => {
      const store = await fresh();
      const [a, b] = await store.replaceEvals('p', [{ recordId: 'a', desiredOutput: 1 }, { recordId: 'b', desiredOutput: 2 }], 1);
      await store.saveEvalResults('p', [
        { id: a!.id, actualOutput: 1, justification: 'j', confidence: 0.5, error: null },
        { id: b!.id, actualOutput: 2, justification: null, confidence: null, error: null },
      ], 2);
      const replaced = await store.replaceEvals('p', [
        { id: b!.id, recordId: 'a', desiredOutput: 2 },
        { id: a!.id, recordId: 'b', desiredOutput: 1 },
        { recordId: 'c', desiredOutput: 3 },
      ], 3);
      expect(replaced.map((x) => [x.id, x.recordId, x.passed, x.lastRanAt])).toEqual([
        [b!.id, 'a', null, null],
        [a!.id, 'b', null, null],
        [expect.any(Number), 'c', null, null],
      ]);
      await store.saveEvalResults('p', replaced.map((x) => ({ id: x.id, actualOutput: 2, justification: null, confidence: null, error: null })), 4);
      const again = await store.replaceEvals('p', [{ id: a!.id, recordId: 'b', desiredOutput: 2, notes: 'fixed' }], 5);
      expect(again).toEqual([expect.objectContaining({ id: a!.id, desiredOutput: 2, actualOutput: 2, passed: true, lastRanAt: 4, notes: 'fixed', createdAt: 1, updatedAt: 5 })]);
      expect(await store.evalSummary('p')).toEqual({ total: 1, passed: 1, failed: 0, notRun: 0 });
    });

    it('drops a result computed for what a case read before it was changed', async () => {
      const store = await fresh();
      const [a] = await store.replaceEvals('p', [{ input: { n: 1 }, desiredOutput: 2 }], 1);
      await store.replaceEvals('p', [{ id: a!.id, input: { n: 2 }, desiredOutput: 4 }], 2);
      const stale = { id: a!.id, subject: { recordId: null, input: { n: 1 } }, actualOutput: 2, justification: null, confidence: null, error: null };
      await store.saveEvalResults('p', [stale], 3);
      expect((await store.listEvals('p'))[0]).toMatchObject({ passed: null, lastRanAt: null });
      await store.saveEvalResults('p', [{ ...stale, subject: { recordId: null, input: { n: 2 } }, actualOutput: 4 }], 4);
      expect((await store.listEvals('p'))[0]).toMatchObject({ passed: true, lastRanAt: 4 });
    });

    it('creates or updates the case of a record', async () => {
      const store = await fresh();
      const made = await store.putRecordEval('p', { recordId: 'r1', desiredOutput: 'red', notes: 'override' }, 1);
      expect(made).toMatchObject({ recordId: 'r1', desiredOutput: 'red', comparator: 'exact', notes: 'override' });
      await store.updateEval('p', made.id, { comparator: 'regex', desiredOutput: '^re' }, 2);
      await store.saveEvalResults('p', [{ id: made.id, actualOutput: 'blue', justification: null, confidence: null, error: null }], 3);
      const updated = await store.putRecordEval('p', { recordId: 'r1', desiredOutput: '^bl' }, 4);
      expect(updated).toMatchObject({ id: made.id, desiredOutput: '^bl', comparator: 'regex', notes: 'override', passed: true });
      const second = await store.putRecordEval('p', { recordId: 'r2', desiredOutput: 1 }, 5);
      expect((await store.listEvals('p')).map((x) => x.id)).toEqual([made.id, second.id]);
    });
  });
}
