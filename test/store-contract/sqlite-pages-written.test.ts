import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { sql } from '../../src/store/ledger/effects.js';
import { SQL } from '../../src/store/sqlite/store-sql.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { AttemptResult, ClaimedAttempt } from '../../src/store/store.js';
import { testSteps } from '../support/test-steps.js';

// What a step's transaction writes on SQLite, page by page: every page a commit writes costs the commit a WAL frame,
// the largest part of a chain step's time. The WAL is read frame by frame (automatic checkpoints off), and each
// frame's page is named by the table or index that owns it (the dbstat table).

/** The tables and indexes whose pages the WAL holds from byte `from` on, with how many frames each. */
function pagesWritten(path: string, from: number): Map<string, number> {
  const wal = readFileSync(`${path}-wal`);
  const frame = 24 + wal.readUInt32BE(8);
  const db = new Database(path, { readonly: true });
  try {
    const owner = new Map((db.prepare('SELECT pageno, name FROM dbstat').all() as Array<{ pageno: number; name: string }>).map((r) => [r.pageno, r.name]));
    const out = new Map<string, number>();
    for (let at = from; at + frame <= wal.length; at += frame) {
      const name = owner.get(wal.readUInt32BE(at)) ?? 'other';
      out.set(name, (out.get(name) ?? 0) + 1);
    }
    return out;
  } finally {
    db.close();
  }
}

describe('pages a chain step writes on SQLite', () => {
  let dir: string;
  let path: string;
  let engine: Engine;
  let store: SqliteStore;
  const saved = process.env['SLUICE_SQLITE_PRAGMAS'];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-pages-'));
    path = join(dir, 'sluice.db');
    process.env['SLUICE_SQLITE_PRAGMAS'] = 'wal_autocheckpoint = 0';
  });
  afterEach(async () => {
    await engine.close();
  });
  afterAll(() => {
    if (saved === undefined) delete process.env['SLUICE_SQLITE_PRAGMAS'];
    else process.env['SLUICE_SQLITE_PRAGMAS'] = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  it("settling a step that leaves its run running writes no page of the runs' status index or of the queue; ending the run does", async () => {
    store = new SqliteStore({ path });
    await store.migrate();
    const steps = testSteps({ x: () => 1 });
    engine = new Engine({ store, steps, onError: (e) => console.error(e) });
    const spec = { name: 'chain', steps: { a: { uses: 'function', with: { fn: 'x' } }, b: { uses: 'function', with: { fn: 'x' }, needs: ['a'] } } };
    await engine.registerPipeline(normalizePipeline(spec, { stepTypes: steps }));
    const { run } = await engine.startRun('chain');
    let clock = Date.now() + 1000;
    const [a] = (await store.claimAttempts('w', 10, 60_000, ++clock)).attempts;
    const done = (x: ClaimedAttempt): AttemptResult => ({ attemptId: x.id, fence: x.fence, owner: 'w', outcome: 'succeeded', output: 1, processingMs: 1 });
    const claimNext = { owner: 'w', limit: 10, leaseMs: 60_000 };

    let from = readFileSync(`${path}-wal`).length;
    const [b] = (await store.completeAttempts([done(a!)], ++clock, claimNext)).claimed;
    const settled = pagesWritten(path, from);
    expect(b?.step).toBe('b');
    // The settle wrote the run's counters, and nothing of the status index: the status did not change.
    expect(settled.get('runs')).toBeGreaterThan(0);
    expect(settled.has('runs_by_status_created')).toBe(false);
    // b's attempt was leased as it was made, on its step's row, as the claim in the same transaction would take it:
    // no attempt row, and it never entered the queue's index.
    expect(settled.get('steps')).toBeGreaterThan(0);
    expect(settled.has('attempts')).toBe(false);
    expect(settled.has('steps_queue')).toBe(false);

    from = readFileSync(`${path}-wal`).length;
    await store.completeAttempts([done(b!)], ++clock, claimNext);
    expect(pagesWritten(path, from).get('runs_by_status_created')).toBeGreaterThan(0);
    expect((await store.getRun(run.id))?.status).toBe('succeeded');
  });
});

describe('a bound LIMIT on SQLite', () => {
  // SQLite built with STAT4 (better-sqlite3 is) plans a LIMIT that is a bare parameter with its value, and so prepares
  // the statement again on every execution; `LIMIT ? + 0` is planned once.
  it('is asked as an expression in statements written once for both dialects', () => {
    expect(sql('boundLimitTest', 'SELECT id FROM runs ORDER BY id LIMIT $2').sqlite).toBe('SELECT id FROM runs ORDER BY id LIMIT ? + 0');
    expect(sql('boundLimitCastTest', 'SELECT id FROM runs LIMIT $6::bigint').sqlite).toBe('SELECT id FROM runs LIMIT ? + 0');
    expect(sql('boundLimitTest2', 'SELECT id FROM runs LIMIT $1 + 0').sqlite).toBe('SELECT id FROM runs LIMIT ? + 0');
  });

  it("is never a bare parameter in the SQLite store's own statements", () => {
    const bare = Object.entries(SQL).filter(([, text]) => /\bLIMIT\s+[@?$:]\w*(?!\s*\+)\s*($|[^\w\s+])/.test(text));
    expect(bare.map(([key]) => key)).toEqual([]);
  });
});
