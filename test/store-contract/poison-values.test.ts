/**
 * Values that PostgreSQL's jsonb and text columns refuse as such (U+0000, lone surrogates) go through every step
 * type and are read back equal on both backends; a run queued behind them still runs. Log lines are text: there
 * U+0000 becomes U+FFFD on PostgreSQL.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineSpec } from '../../src/core/model.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { createServer } from '../../src/server/create-server.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import pg from 'pg';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import type { Store } from '../../src/store/store.js';
import { backends } from '../support/backends.js';
import { attributePipelines } from '../../src/attributes/extension.js';

const NUL = 'a\u0000b';
const LONE = 'x\ud800y';
/**
 * A second store on the same database whose PostgreSQL sessions have the smallest stack PostgreSQL allows, so it
 * refuses deeply nested JSON (the same store on SQLite).
 */
async function refusingStore(store: Store): Promise<{ store: Store }> {
  if (!(store instanceof PostgresStore)) return { store };
  const url = (store as unknown as { connectionString: string }).connectionString;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  const { rows } = await admin.query<{ db: string }>('SELECT current_database() AS db');
  await admin.query(`ALTER DATABASE ${rows[0]!.db} SET max_stack_depth = '100kB'`);
  await admin.end();
  // The setting applies to sessions opened from now on: a store of its own, closed with its engine.
  await store.close();
  return { store: new PostgresStore({ url, poolSize: 2 }) };
}

const POISON = { nul: NUL, lone: LONE, low: '\udc00', mark: '\uFDD0\uFDD00', [`key${'\u0000'}`]: ['\ud83d\ude00', '\\u0000'] };

let http: Server;
let base = '';
beforeAll(async () => {
  http = createHttpServer((req, res) => {
    if (req.url === '/json') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(POISON));
    } else {
      res.setHeader('content-type', 'text/plain');
      res.end(NUL);
    }
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => http.close(() => r())));

for (const backend of backends()) {
  describe(`poison values on ${backend.name}`, () => {
    let store: Store;
    let engine: Engine;
    const dir = mkdtempSync(join(tmpdir(), 'sluice-poison-'));
    beforeAll(async () => {
      store = await backend.create();
      const steps = builtinStepTypes({
        functions: {
          poison: () => POISON,
          fails: () => {
            throw new Error(`failed ${NUL} ${LONE}`);
          },
        },
      });
      engine = new Engine({ store, steps, onError: () => undefined, artifactsDir: dir, extensions: [attributePipelines()] });
      const register = (spec: PipelineSpec) => engine.registerPipeline(normalizePipeline(spec, { stepTypes: steps }));
      await register({
        name: 'poison',
        steps: {
          code: { uses: 'code', with: { code: 'return { echo: input, made: "c\\u0000d", lone: "\\ud800", [`k\\u0000`]: 1 };' } },
          fn: { uses: 'function', with: { name: 'poison' } },
          http_text: { uses: 'http', with: { url: `${base}/text` } },
          http_json: { uses: 'http', with: { url: `${base}/json` } },
          command: { uses: 'command', with: { run: "printf 'p\\000q\\n'" } },
        },
      });
      await register({ name: 'code-throws', steps: { boom: { uses: 'code', with: { code: 'throw new Error("thrown \\u0000 \\ud800");' } } } });
      await register({ name: 'fn-throws', steps: { boom: { uses: 'function', with: { name: 'fails' } } } });
      await register({ name: 'canary', steps: { ok: { uses: 'code', with: { code: 'return { ok: input.n };' } } } });
    });
    afterAll(async () => {
      await engine.close();
      await backend.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    it('stores every poison value faithfully and still runs the run queued behind them', async () => {
      // Queued before the worker starts, so one worker slot takes them in this order and the canary comes last.
      const poison = await engine.startRun('poison', { input: { text: NUL, lone: LONE } });
      const codeThrows = await engine.startRun('code-throws');
      const fnThrows = await engine.startRun('fn-throws');
      const canary = await engine.startRun('canary', { input: { n: 7 } });
      engine.startWorker({ concurrency: 1, pollMs: 20, reapMs: 50 });

      expect((await engine.waitForRun(canary.run.id)).status).toBe('succeeded');
      expect((await store.listSteps(canary.run.id))[0]?.output).toEqual({ ok: 7 });

      const done = await engine.waitForRun(poison.run.id);
      expect(done.status).toBe('succeeded');
      expect(done.input).toEqual({ text: NUL, lone: LONE });
      const out = Object.fromEntries((await store.listSteps(poison.run.id)).map((s) => [s.name, s.output]));
      expect(out['code']).toEqual({ echo: { text: NUL, lone: LONE }, made: 'c\u0000d', lone: '\ud800', 'k\u0000': 1 });
      expect(out['fn']).toEqual(POISON);
      expect(out['http_text']).toMatchObject({ status: 200, body: NUL });
      expect(out['http_json']).toMatchObject({ status: 200, body: POISON });
      expect(out['command']).toEqual({ exit_code: 0, stdout: 'p\u0000q' });
      expect(await store.getStepOutputs(poison.run.id, ['fn'])).toEqual({ fn: POISON });

      const logs = (await store.listLogs(poison.run.id, 'command')).map((l) => l.line);
      expect(logs).toEqual([backend.name === 'postgres' ? 'p\uFFFDq' : 'p\u0000q']);

      for (const [run, message] of [
        [codeThrows.run.id, 'thrown \u0000 \ud800'],
        [fnThrows.run.id, `failed ${NUL} ${LONE}`],
      ] as const) {
        expect((await engine.waitForRun(run)).status).toBe('failed');
        const [attempt] = await store.listAttempts(run, 'boom');
        expect(attempt?.error?.message).toContain(message);
        const failed = (await store.listEvents({ runId: run })).find((e) => e.type === 'step.failed');
        expect((failed?.data as { error: { message: string } }).error.message).toContain(message);
      }
    });

    it('takes a run input with U+0000 and lone surrogates over the HTTP API and returns it equal', async () => {
      const app = await createServer({ engine, webRoot: false });
      try {
        const created = await app.inject({ method: 'POST', url: '/api/pipelines/canary/runs', payload: { input: { n: NUL, lone: LONE } } });
        expect(created.statusCode, created.body).toBe(201);
        const id = created.json().id as string;
        expect((await engine.waitForRun(id)).status).toBe('succeeded');
        const run = (await app.inject({ url: `/api/runs/${id}` })).json();
        expect(run.input).toEqual({ n: NUL, lone: LONE });
        expect(run.steps.find((st: { name: string }) => st.name === 'ok').output).toEqual({ ok: NUL });
      } finally {
        await app.close();
      }
    });

    it('fails the attempt whose result the store refuses with OUTPUT_INVALID, and the worker goes on', async () => {
      // PostgreSQL refuses JSON nested deeper than its stack allows (SQLSTATE 54001); SQLite stores it as text.
      let deep: unknown = [];
      for (let i = 0; i < 2000; i++) deep = [deep];
      const refusing = await refusingStore(await backend.create());
      const steps = builtinStepTypes({ functions: { deep: () => deep } });
      const worker = new Engine({ store: refusing.store, steps, onError: () => undefined, artifactsDir: dir, extensions: [attributePipelines()] });
      try {
        const register = (spec: PipelineSpec) => worker.registerPipeline(normalizePipeline(spec, { stepTypes: steps }));
        await register({ name: 'deep', steps: { nest: { uses: 'function', with: { name: 'deep' } } } });
        await register({ name: 'canary', steps: { ok: { uses: 'code', with: { code: 'return { ok: input.n };' } } } });
        const run = await worker.startRun('deep');
        const canary = await worker.startRun('canary', { input: { n: 8 } });
        worker.startWorker({ concurrency: 1, pollMs: 20, reapMs: 50 });
        expect((await worker.waitForRun(canary.run.id)).status).toBe('succeeded');
        const done = await worker.waitForRun(run.run.id);
        const [attempt] = await refusing.store.listAttempts(run.run.id, 'nest');
        if (backend.name === 'postgres') {
          expect(done.status).toBe('failed');
          expect(attempt?.error).toMatchObject({ code: 'OUTPUT_INVALID', message: expect.stringContaining('stack depth limit exceeded') });
        } else {
          expect(done.status).toBe('succeeded');
          expect((await refusing.store.listSteps(run.run.id))[0]?.output).toEqual(deep);
        }
      } finally {
        await worker.close();
      }
    });

    it('stores records, attribute values and eval outputs with poison values faithfully', async () => {
      await store.putDataset('poisoned', {}, 1);
      await store.putRecords('poisoned', [{ id: 'r1', data: POISON }], 2);
      expect((await store.getRecord('poisoned', 'r1'))?.data).toEqual(POISON);
      const computed = { recordId: 'r1', value: POISON, confidence: 0.5, justification: NUL, inputHash: 'h', pipelineVersion: 1, runId: null, sourceRev: null };
      await store.saveAttributeValues('poisoned', 'derived', 'canary', [computed], 3);
      // Justifications and notes are text: U+0000 becomes U+FFFD on PostgreSQL.
      const text = backend.name === 'postgres' ? 'a\uFFFDb' : NUL;
      expect((await store.getAttributeValues('poisoned', 'r1'))['derived']).toMatchObject({ value: POISON, justification: text });
      const override = await store.overrideAttributeValue('poisoned', 'r1', 'label', { value: POISON, note: NUL }, 3);
      expect(override).toMatchObject({ value: POISON, note: text });
      expect((await store.getAttributeValues('poisoned', 'r1'))['label']?.value).toEqual(POISON);
      const [saved] = await store.replaceEvals('canary', [{ input: { n: NUL }, desiredOutput: POISON }], 4);
      expect(saved).toMatchObject({ input: { n: NUL }, desiredOutput: POISON });
      expect((await store.listEvals('canary'))[0]).toMatchObject({ input: { n: NUL }, desiredOutput: POISON });
    });
  });
}
