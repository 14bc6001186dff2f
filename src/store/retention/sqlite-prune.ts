import type Database from 'better-sqlite3';
import { addRows, artifactRefsIn, PRUNE_BATCH, pruneSql, RUN_TABLES, type PruneRequest, type PruneResult } from './prune.js';

const SQL = pruneSql({ ids: '(SELECT value FROM json_each(@ids))', text: (col) => col, p: (name) => `@${name}` });

/**
 * Prunes finished runs of a SQLite store, a batch of top-level runs (with their child runs) per write
 * transaction, then gives the freed pages back to the file system: the first prune of a file created without
 * incremental auto-vacuum switches it on, which takes one full VACUUM (a rewrite of the file); later prunes
 * run `PRAGMA incremental_vacuum`.
 */
export class SqlitePruner {
  constructor(
    private readonly db: Database.Database,
    /** The store's BEGIN IMMEDIATE transaction wrapper. */
    private readonly write: <T>(fn: () => T) => T,
  ) {}

  prune(request: PruneRequest): PruneResult {
    const result: PruneResult = { runs: 0, rows: {}, artifacts: [] };
    const candidates = new Set<string>();
    // A dry run removes nothing: the runs it would remove are left out of the references that keep artifacts.
    const wouldRemove: string[] = [];
    let after = { at: -1, id: '' };
    for (;;) {
      const roots = this.db.prepare(SQL.roots).all(this.rootParams(request, after)) as Array<{ id: string; finished_at: number }>;
      if (roots.length === 0) break;
      after = { at: roots.at(-1)!.finished_at, id: roots.at(-1)!.id };
      const step = request.dryRun ? this.count(roots.map((r) => r.id)) : this.write(() => this.removeBatch(roots.map((r) => r.id), candidates));
      result.runs += step.rows['runs'] ?? 0;
      addRows(result.rows, step.rows);
      if (request.dryRun) {
        for (const ref of step.refs) candidates.add(ref);
        wouldRemove.push(...step.ids);
      }
      if (roots.length < PRUNE_BATCH) break;
    }
    result.artifacts = this.unreferenced(candidates, wouldRemove);
    if (!request.dryRun && result.runs > 0) {
      this.db.prepare(SQL.cronSlots).run({ before: request.before });
      result.reclaimedBytes = this.reclaimSpace();
    }
    return result;
  }

  private rootParams(request: PruneRequest, after: { at: number; id: string }) {
    return { before: request.before, pipeline: request.pipeline ?? null, dead: request.deadLetters ? 1 : 0, after_at: after.at, after_id: after.id, limit: PRUNE_BATCH };
  }

  /** The finished runs of the trees under `roots`; a tree with a run still going is left whole. */
  private finishedTrees(roots: string[]): string[] {
    const rows = this.db.prepare(SQL.tree).all({ ids: JSON.stringify(roots) }) as Array<{ id: string; root: string; finished_at: number | null }>;
    const open = new Set(rows.filter((r) => r.finished_at === null).map((r) => r.root));
    return rows.filter((r) => !open.has(r.root)).map((r) => r.id);
  }

  private refs(ids: string[]): Set<string> {
    const out = new Set<string>();
    for (const r of this.db.prepare(SQL.refsOf).all({ ids: JSON.stringify(ids) }) as Array<{ j: string | null }>) artifactRefsIn(r.j, out);
    return out;
  }

  private count(roots: string[]): { ids: string[]; rows: Record<string, number>; refs: Set<string> } {
    const ids = this.finishedTrees(roots);
    const rows: Record<string, number> = {};
    for (const [table, sql] of Object.entries(SQL.count)) rows[table] = (this.db.prepare(sql).get({ ids: JSON.stringify(ids) }) as { n: number }).n;
    return { ids, rows, refs: this.refs(ids) };
  }

  private removeBatch(roots: string[], candidates: Set<string>): { ids: string[]; rows: Record<string, number>; refs: Set<string> } {
    const ids = this.finishedTrees(roots);
    const refs = this.refs(ids);
    for (const ref of refs) candidates.add(ref);
    const rows: Record<string, number> = {};
    for (const table of [...RUN_TABLES, 'runs']) rows[table] = this.db.prepare(SQL.remove[table]!).run({ ids: JSON.stringify(ids) }).changes;
    return { ids, rows, refs };
  }

  /** The candidates no kept run (or dataset row) names. In a dry run the would-be-removed runs are still there. */
  private unreferenced(candidates: Set<string>, removing: string[]): string[] {
    if (candidates.size === 0) return [];
    const kept = new Set<string>();
    for (const r of this.db.prepare(SQL.refsKept).all({ ids: JSON.stringify(removing) }) as Array<{ j: string | null }>) artifactRefsIn(r.j, kept);
    return [...candidates].filter((a) => !kept.has(a));
  }

  /** Gives free pages back to the file system; returns the bytes given back. */
  private reclaimSpace(): number {
    const size = () => (this.db.pragma('page_count', { simple: true }) as number) * (this.db.pragma('page_size', { simple: true }) as number);
    const before = size();
    if ((this.db.pragma('auto_vacuum', { simple: true }) as number) !== 2) {
      // auto_vacuum changes on an existing file only with a VACUUM, which rewrites it once.
      this.db.pragma('auto_vacuum = INCREMENTAL');
      this.db.exec('VACUUM');
    } else {
      this.db.pragma('incremental_vacuum');
    }
    return Math.max(0, before - size());
  }
}
