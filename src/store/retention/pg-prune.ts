import type pg from 'pg';
import { addRows, artifactRefsIn, PRUNE_BATCH, pruneSql, RUN_TABLES, type PruneRequest, type PruneResult } from './prune.js';

const SQL = pruneSql({
  ids: '(SELECT unnest($1::text[]))',
  text: (col) => `${col}::text`,
  p: (name, n) => (name === 'pipeline' || name === 'after_id' ? `$${n}::text` : `$${n}::bigint`),
});

type Tx = <T>(fn: (client: pg.ClientBase) => Promise<T>) => Promise<T>;

interface Batch {
  ids: string[];
  rows: Record<string, number>;
  refs: Set<string>;
}

/** Prunes finished runs of a PostgreSQL store, a batch of top-level runs (with their child runs) per transaction. */
export async function pgPrune(tx: Tx, request: PruneRequest): Promise<PruneResult> {
  const result: PruneResult = { runs: 0, rows: {}, artifacts: [] };
  const candidates = new Set<string>();
  const wouldRemove: string[] = [];
  let after = { at: -1, id: '' };
  for (;;) {
    const params = [request.before, request.pipeline ?? null, request.deadLetters ? 1 : 0, after.at, after.id, PRUNE_BATCH];
    const roots = await tx(async (c) => (await c.query<{ id: string; finished_at: string }>(SQL.roots, params)).rows);
    if (roots.length === 0) break;
    after = { at: Number(roots.at(-1)!.finished_at), id: roots.at(-1)!.id };
    const batch = await tx((c) => pruneBatch(c, roots.map((r) => r.id), request.dryRun === true));
    result.runs += batch.rows['runs'] ?? 0;
    addRows(result.rows, batch.rows);
    for (const ref of batch.refs) candidates.add(ref);
    if (request.dryRun) wouldRemove.push(...batch.ids);
    if (roots.length < PRUNE_BATCH) break;
  }
  if (candidates.size > 0) result.artifacts = await tx((c) => unreferenced(c, candidates, wouldRemove));
  if (!request.dryRun && result.runs > 0) await tx((c) => c.query(SQL.cronSlots, [request.before]));
  return result;
}

async function pruneBatch(c: pg.ClientBase, roots: string[], dryRun: boolean): Promise<Batch> {
  const tree = (await c.query<{ id: string; root: string; finished_at: string | null }>(SQL.tree, [roots])).rows;
  const open = new Set(tree.filter((r) => r.finished_at === null).map((r) => r.root));
  const ids = tree.filter((r) => !open.has(r.root)).map((r) => r.id);
  const refs = new Set<string>();
  for (const r of (await c.query<{ j: string | null }>(SQL.refsOf, [ids])).rows) artifactRefsIn(r.j, refs);
  const rows: Record<string, number> = {};
  for (const table of [...RUN_TABLES, 'runs']) {
    if (dryRun) rows[table] = Number((await c.query<{ n: string }>(SQL.count[table]!, [ids])).rows[0]!.n);
    else rows[table] = (await c.query(SQL.remove[table]!, [ids])).rowCount ?? 0;
  }
  return { ids, rows, refs };
}

async function unreferenced(c: pg.ClientBase, candidates: Set<string>, removing: string[]): Promise<string[]> {
  const kept = new Set<string>();
  for (const r of (await c.query<{ j: string | null }>(SQL.refsKept, [removing])).rows) artifactRefsIn(r.j, kept);
  return [...candidates].filter((a) => !kept.has(a));
}
