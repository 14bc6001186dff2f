/** Retention: a prune removes old finished runs and everything they own, and nothing of the newer runs. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import type pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { FolderArtifactStore } from '../../src/artifacts/folder-artifact-store.js';
import { isArtifactRef, type ArtifactStore } from '../../src/artifacts/artifact-store.js';
import { storeArtifacts } from '../../src/artifacts/store-artifacts.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import type { Store } from '../../src/store/store.js';
import { backends } from '../support/backends.js';
import { testSteps } from '../support/test-steps.js';

const DAY = 86_400_000;
const TABLES = ['runs', 'steps', 'attempts', 'events', 'logs', 'step_items', 'gate_decisions', 'step_cache'];

/** Rows of each run table that belong to `ids` (the store's own connection, read only). */
async function rowsOf(store: Store, ids: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of TABLES) {
    const col = t === 'runs' ? 'id' : 'run_id';
    const db = (store as unknown as { db?: Database.Database }).db;
    if (db) out[t] = (db.prepare(`SELECT COUNT(*) AS n FROM ${t} WHERE ${col} IN (SELECT value FROM json_each(?))`).get(JSON.stringify(ids)) as { n: number }).n;
    else {
      const pool = (store as unknown as { pool: pg.Pool }).pool;
      out[t] = Number((await pool.query<{ n: string }>(`SELECT COUNT(*) AS n FROM ${t} WHERE ${col} = ANY($1::text[])`, [ids])).rows[0]!.n);
    }
  }
  return out;
}

for (const backend of backends()) {
  describe(`retention on ${backend.name}`, () => {
    const engines: Engine[] = [];
    const dirs: string[] = [];
    afterEach(async () => {
      for (const e of engines.splice(0)) await e.close();
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    });
    afterAll(() => backend.cleanup());

    async function setUp() {
      const store = await backend.create();
      const dir = mkdtempSync(join(tmpdir(), 'sluice-retention-'));
      dirs.push(dir);
      const artifacts: ArtifactStore = storeArtifacts(store) ?? new FolderArtifactStore(join(dir, 'artifacts'));
      let now = Date.parse('2026-01-01T00:00:00Z');
      const steps = testSteps({
        // A large output is kept as an artifact: one per run, and one every run shares.
        own: (ctx) => {
          ctx.log('stdout', `working on ${JSON.stringify(ctx.input)}`);
          return `${'x'.repeat(500)}${JSON.stringify(ctx.input)}`;
        },
        shared: () => 'y'.repeat(500),
        boom: () => {
          throw new Error('boom');
        },
      });
      const engine = new Engine({ store, steps, artifacts, clock: { now: () => now }, inlineOutputLimit: 100, onError: () => {} });
      engines.push(engine);
      const spec = { name: 'kept', steps: { own: { uses: 'function', with: { fn: 'own' }, cache: false }, shared: { uses: 'function', with: { fn: 'shared' }, cache: false } } };
      await engine.registerPipeline(normalizePipeline(spec, { stepTypes: steps }));
      await engine.registerPipeline(normalizePipeline({ name: 'failing', steps: { a: { uses: 'function', with: { fn: 'boom' }, retry: { attempts: 2, delay: '0s' } } } }, { stepTypes: steps }));
      engine.startWorker({ pollMs: 10, reapMs: 50 });
      const run = async (pipeline: string, input: unknown) => (await engine.waitForRun((await engine.startRun(pipeline, { input })).run.id)).id;
      const at = (t: number) => {
        now = t;
      };
      return { store, engine, artifacts, run, at };
    }

    async function outputsOf(store: Store, runId: string): Promise<string[]> {
      return (await store.listSteps(runId)).map((s) => s.output).filter(isArtifactRef).map((r) => r.$artifact);
    }

    it('removes old finished runs with every row and artifact they own, and keeps newer runs and dead letters whole', async () => {
      const { store, engine, artifacts, run, at } = await setUp();
      const old = [await run('kept', { n: 1 }), await run('kept', { n: 2 })];
      const deadLetter = await run('failing', {});
      at(Date.parse('2026-02-15T00:00:00Z'));
      const fresh = [await run('kept', { n: 3 })];
      const oldArtifacts = (await Promise.all(old.map((id) => outputsOf(store, id)))).flat();
      const freshArtifacts = await outputsOf(store, fresh[0]!);
      const shared = freshArtifacts.filter((a) => oldArtifacts.includes(a));
      expect(shared).toHaveLength(1);
      const ownedByOld = oldArtifacts.filter((a) => !shared.includes(a));
      expect(ownedByOld).toHaveLength(2);
      const freshBefore = { rows: await rowsOf(store, fresh), events: await store.listEvents({ runId: fresh[0]! }), logs: await store.listLogs(fresh[0]!) };
      const oldRows = await rowsOf(store, old);
      for (const t of ['runs', 'steps', 'events', 'logs']) expect(oldRows[t]).toBeGreaterThan(0);
      // A step's live attempt is its own row; the attempts table holds only the earlier tries, here the dead letter's first.
      expect((await rowsOf(store, [deadLetter]))['attempts']).toBe(1);

      const dry = await engine.prune({ olderThanMs: 30 * DAY, dryRun: true });
      expect(dry.runs).toBe(2);
      expect(dry.artifacts.sort()).toEqual([...ownedByOld].sort());
      expect(await rowsOf(store, old)).toEqual(oldRows);
      for (const a of ownedByOld) expect(await artifacts.has(a)).toBe(true);

      const report = await engine.prune({ olderThanMs: 30 * DAY });
      expect(report.runs).toBe(2);
      expect(report.rows['logs']).toBe(oldRows['logs']);
      // Every attempt counts, those held on step rows too: two runs of two steps, each tried once.
      expect([dry.rows['attempts'], report.rows['attempts']]).toEqual([4, 4]);
      expect(Object.values(await rowsOf(store, old)).every((n) => n === 0)).toBe(true);
      const db = (store as unknown as { db?: Database.Database }).db;
      if (db) {
        // SQLite gives the freed pages back to the file system (incremental auto-vacuum, switched on by this prune).
        expect(db.pragma('auto_vacuum', { simple: true })).toBe(2);
        expect(db.pragma('freelist_count', { simple: true })).toBe(0);
        expect(report.reclaimedBytes).toBeGreaterThanOrEqual(0);
      }
      for (const a of ownedByOld) expect(await artifacts.has(a)).toBe(false);
      // Newer runs: every row, event, log line and artifact as before.
      expect(await rowsOf(store, fresh)).toEqual(freshBefore.rows);
      expect(await store.listEvents({ runId: fresh[0]! })).toEqual(freshBefore.events);
      expect(await store.listLogs(fresh[0]!)).toEqual(freshBefore.logs);
      for (const a of freshArtifacts) expect(await artifacts.has(a)).toBe(true);
      expect(await artifacts.getJson(freshArtifacts.find((a) => !shared.includes(a))!)).toContain('{"n":3}');
      // The dead letter stays until pruned explicitly.
      expect((await store.getRun(deadLetter))?.status).toBe('failed');
      expect((await engine.prune({ olderThanMs: 30 * DAY, deadLetters: true })).rows).toMatchObject({ runs: 1, steps: 1, attempts: 2 });
      expect(Object.values(await rowsOf(store, [deadLetter])).every((n) => n === 0)).toBe(true);
      expect((await store.getRun(fresh[0]!))?.status).toBe('succeeded');
    });

    it("prunes by each pipeline's retention, else the store-wide default, and keeps what has neither", async () => {
      const { store, engine, run, at } = await setUp();
      const steps = engine.steps;
      await engine.registerPipeline(normalizePipeline({ name: 'short', retention: '7d', steps: { a: { uses: 'function', with: { fn: 'shared' } } } }, { stepTypes: steps }));
      const short = await run('short', {});
      const kept = await run('kept', { n: 1 });
      at(Date.parse('2026-01-10T00:00:00Z'));
      const report = await engine.prune();
      expect(report.pipelines).toEqual([{ pipeline: 'short', olderThanMs: 7 * DAY, runs: 1 }]);
      expect(await store.getRun(short)).toBeUndefined();
      expect(await store.getRun(kept)).toBeDefined();
      const withDefault = new Engine({ store, steps, artifacts: engine.artifacts, clock: { now: () => Date.parse('2026-01-10T00:00:00Z') }, retention: '5d' });
      expect((await withDefault.prune({ pipeline: 'kept' })).runs).toBe(1);
      expect(await store.getRun(kept)).toBeUndefined();
    });
  });
}
