import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

// A busy SQLite store copies its WAL back into the file on a thread of its own (src/store/sqlite/checkpointer.ts):
// the connection that writes never does, up to a threshold the thread keeps the WAL under. Seen from outside: the
// WAL is started again (its header's checkpoint sequence number moves on) although the writes made far fewer pages
// than the writer's own threshold, and SQLite's default one (1,000 pages) too.

/** The WAL header's checkpoint sequence number: it moves on each time a writer starts the WAL from its beginning. */
const walSequence = (path: string) => readFileSync(`${path}-wal`).readUInt32BE(12);
/** Frames in the WAL file, whether or not copied back already. */
const walFrames = (path: string) => {
  const wal = readFileSync(`${path}-wal`);
  return Math.floor((wal.length - 32) / (24 + wal.readUInt32BE(8)));
};

const line = (i: number) => ({ runId: 'r', step: 's', attempt: 1, stream: 'stdout', line: `line ${i}`, at: i });

describe('SQLite checkpoints', () => {
  let dir: string;
  let path: string;
  let store: SqliteStore;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-checkpoints-'));
    path = join(dir, 'sluice.db');
    store = new SqliteStore({ path });
    await store.migrate();
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a busy store checkpoints on a thread of its own, so its writer never has to', async () => {
    // A write transaction of one log line writes a few pages: 250 of them stay under SQLite's own threshold.
    for (let i = 0; i < 250; i++) await store.appendLogs([line(i)]);
    const written = walFrames(path);
    expect(written).toBeLessThan(1000);
    const before = walSequence(path);
    // A later write finds the WAL copied back (by the thread) and starts it again, long before the WAL reaches
    // SQLite's own threshold (the writes go on until it nearly has: each a page or more).
    let i = 250;
    while (walSequence(path) === before && walFrames(path) < 950) {
      await new Promise((r) => setTimeout(r, 50));
      await store.appendLogs([line(i++)]);
    }
    expect(walSequence(path)).not.toBe(before);
    // Nothing was lost on the way.
    const read = new SqliteStore({ path });
    try {
      await read.migrate();
      expect((await read.listLogs('r')).length).toBe(i);
    } finally {
      await read.close();
    }
  });

  it('a store given its own checkpoint setting keeps it', async () => {
    await store.close();
    const saved = process.env['SLUICE_SQLITE_PRAGMAS'];
    process.env['SLUICE_SQLITE_PRAGMAS'] = 'wal_autocheckpoint = 0';
    try {
      store = new SqliteStore({ path });
      await store.migrate();
    } finally {
      if (saved === undefined) delete process.env['SLUICE_SQLITE_PRAGMAS'];
      else process.env['SLUICE_SQLITE_PRAGMAS'] = saved;
    }
    await store.appendLogs([line(-1)]);
    const before = walSequence(path);
    const frames = walFrames(path);
    for (let i = 0; i < 400; i++) await store.appendLogs([line(i)]);
    await new Promise((r) => setTimeout(r, 200));
    await store.appendLogs([line(400)]);
    // The WAL only grew: nothing copied it back.
    expect(walSequence(path)).toBe(before);
    expect(walFrames(path)).toBeGreaterThan(frames + 400);
  });
});
