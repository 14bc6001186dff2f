import { all, get, run, sql, type Rule } from '../ledger/effects.js';
import { perDialect, type FeatureRunner } from '../features/feature-runner.js';

/** What to prune: finished top-level runs (with their child runs) that ended before `before`. */
export interface PruneRequest {
  /** Runs that finished before this time (epoch ms) are pruned. */
  before: number;
  /** Only runs of this pipeline. Default: every pipeline. */
  pipeline?: string | undefined;
  /** Also prune failed runs (dead letters), which are otherwise kept until re-driven. Default: false. */
  deadLetters?: boolean | undefined;
  /** Count what would be removed, remove nothing. Default: false. */
  dryRun?: boolean | undefined;
}

/** What a prune removed (or, in a dry run, would remove). */
export interface PruneResult {
  /** Runs removed, child runs included. */
  runs: number;
  /**
   * Rows removed per table (`runs`, `steps`, `attempts`, `events`, `logs`, `step_items`, `gate_decisions`,
   * `step_cache`). `attempts` counts every attempt removed: the earlier ones (rows of `attempts`) and each step's
   * live or last one, which is part of its `steps` row.
   */
  rows: Record<string, number>;
  /** sha256 of the artifacts that only removed runs referred to; the engine removes them from its artifact store. */
  artifacts: string[];
  /** Bytes the database file gave back to the file system (SQLite), when known. */
  reclaimedBytes?: number;
}

/**
 * Tables holding rows of a run, keyed by `run_id` (`id` for `runs`, which goes last). Every attempt goes: the earlier
 * ones with `attempts`, each step's live or last one with its `steps` row.
 */
const TABLES = ['steps', 'attempts', 'events', 'logs', 'step_items', 'gate_decisions', 'step_cache', 'runs'] as const;

/** Top-level runs pruned per transaction, so that no transaction holds the store for long. */
const PRUNE_BATCH = 500;

const ARTIFACT_REF = /"\$artifact"\s*:\s*"([0-9a-f]{64})"/g;

/** Every artifact address named in a JSON text. */
function artifactRefsIn(json: string | null | undefined, into: Set<string>): Set<string> {
  if (!json || !json.includes('$artifact')) return into;
  for (const m of json.matchAll(ARTIFACT_REF)) into.add(m[1]!);
  return into;
}

/** Adds the counts of `b` to `a`. */
function addRows(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  for (const [k, n] of Object.entries(b)) a[k] = (a[k] ?? 0) + n;
  return a;
}

/** The set of run ids passed as parameter $1 (a list: see FeatureRunner.list). */
const IDS = perDialect((d) => (d === 'pg' ? '(SELECT unnest($1::text[]))' : '(SELECT value FROM json_each($1))'));

/** A statement over the run ids of $1; `ids` stands for their set. PostgreSQL's casts are dropped on SQLite. */
const overIds = (key: string, text: (ids: string) => string) => sql(key, { sqlite: text(IDS.sqlite), pg: text(IDS.pg) });

/** JSON texts of the runs (`where` chooses them by their id column) that may name artifacts. */
const refs = (where: (col: string) => string) =>
  [
    `SELECT input::text AS j FROM runs WHERE ${where('id')} AND input::text LIKE '%$artifact%'`,
    `SELECT output::text FROM steps WHERE ${where('run_id')} AND output::text LIKE '%$artifact%'`,
    `SELECT output::text FROM step_items WHERE ${where('run_id')} AND output::text LIKE '%$artifact%'`,
    `SELECT output::text FROM step_cache WHERE ${where('run_id')} AND output::text LIKE '%$artifact%'`,
  ].join(' UNION ALL ');

// Statuses pruned: succeeded and cancelled, and failed when dead letters are pruned too.
const S = {
  // $1 before $2 pipeline (NULL = all) $3 dead letters too $4 after finished_at $5 after id $6 limit
  roots: sql(
    'pruneRoots',
    `SELECT id, finished_at FROM runs
     WHERE parent_run_id IS NULL AND finished_at IS NOT NULL AND finished_at < $1::bigint AND ($2::text IS NULL OR pipeline = $2::text)
       AND (status IN ('succeeded', 'cancelled') OR (status = 'failed' AND $3::bigint = 1))
       AND (finished_at > $4::bigint OR (finished_at = $4::bigint AND id > $5::text))
     ORDER BY finished_at, id LIMIT $6::bigint`,
  ),
  // $1 ids: the runs and every run below them, with whether each finished
  tree: overIds(
    'pruneTree',
    (ids) => `WITH RECURSIVE tree (id, root) AS (
                SELECT id, id FROM runs WHERE id IN ${ids} UNION ALL SELECT r.id, t.root FROM runs r JOIN tree t ON r.parent_run_id = t.id)
              SELECT t.id, t.root, r.finished_at FROM tree t JOIN runs r ON r.id = t.id`,
  ),
  refsOf: overIds('pruneRefsOf', (ids) => refs((col) => `${col} IN ${ids}`)),
  // $1 ids: JSON of every other run that names an artifact, and of dataset rows
  refsKept: overIds(
    'pruneRefsKept',
    (ids) => `${refs((col) => `${col} NOT IN ${ids}`)}
              UNION ALL SELECT data::text FROM dataset_records WHERE data::text LIKE '%$artifact%'
              UNION ALL SELECT value::text FROM attribute_values WHERE value::text LIKE '%$artifact%'`,
  ),
  count: TABLES.map((t) => overIds(`pruneCount_${t}`, (ids) => `SELECT COUNT(*) AS n FROM ${t} WHERE ${t === 'runs' ? 'id' : 'run_id'} IN ${ids}`)),
  remove: TABLES.map((t) => overIds(`pruneRemove_${t}`, (ids) => `DELETE FROM ${t} WHERE ${t === 'runs' ? 'id' : 'run_id'} IN ${ids}`)),
  // $1 ids: the attempts held on the runs' step rows (the earlier ones are rows of attempts)
  stepAttempts: overIds('pruneCountStepAttempts', (ids) => `SELECT COUNT(*) AS n FROM steps WHERE run_id IN ${ids} AND attempt_status IS NOT NULL`),
  // $1 before: claimed cron slots before it, but the latest of each trigger (what catch-up starts from)
  cronSlots: sql(
    'pruneCronSlots',
    `DELETE FROM cron_slots WHERE slot < $1::bigint
     AND slot < (SELECT MAX(c.slot) FROM cron_slots c WHERE c.pipeline = cron_slots.pipeline AND c.trigger = cron_slots.trigger)`,
  ),
};

interface Batch {
  ids: string[];
  rows: Record<string, number>;
  refs: Set<string>;
}

/**
 * Prunes finished runs, a batch of top-level runs (with their child runs) per write transaction; a dry run only
 * reads. The artifacts to delete are those the removed runs named that no kept run (nor dataset row) names.
 */
export async function pruneRuns(r: FeatureRunner, request: PruneRequest): Promise<PruneResult> {
  const result: PruneResult = { runs: 0, rows: {}, artifacts: [] };
  const candidates = new Set<string>();
  // A dry run removes nothing: the runs it would remove are left out of the references that keep artifacts.
  const wouldRemove: string[] = [];
  let after = { at: -1, id: '' };
  for (;;) {
    const params = [request.before, request.pipeline ?? null, request.deadLetters ? 1 : 0, after.at, after.id, PRUNE_BATCH];
    const roots = await r.read(() => all<{ id: string; finished_at: number }>(S.roots, params));
    if (roots.length === 0) break;
    after = { at: Number(roots.at(-1)!.finished_at), id: roots.at(-1)!.id };
    const ids = roots.map((row) => row.id);
    const rule = () => pruneBatch(r, ids, request.dryRun === true);
    const batch = request.dryRun ? await r.read(rule) : await r.write(rule);
    result.runs += batch.rows['runs'] ?? 0;
    addRows(result.rows, batch.rows);
    for (const ref of batch.refs) candidates.add(ref);
    if (request.dryRun) wouldRemove.push(...batch.ids);
    if (roots.length < PRUNE_BATCH) break;
  }
  if (candidates.size > 0) result.artifacts = await r.read(() => unreferenced(r, candidates, wouldRemove));
  if (!request.dryRun && result.runs > 0) await r.write(() => run(S.cronSlots, [request.before]));
  return result;
}

/** Removes (or counts) the finished runs of the trees under `roots`; a tree with a run still going is left whole. */
function* pruneBatch(r: FeatureRunner, roots: string[], dryRun: boolean): Rule<Batch> {
  const tree = yield* all<{ id: string; root: string; finished_at: number | null }>(S.tree, [r.list(roots)]);
  const open = new Set(tree.filter((row) => row.finished_at === null).map((row) => row.root));
  const ids = tree.filter((row) => !open.has(row.root)).map((row) => row.id);
  const list = r.list(ids);
  const refs = new Set<string>();
  for (const row of yield* all<{ j: string | null }>(S.refsOf, [list])) artifactRefsIn(row.j, refs);
  const rows: Record<string, number> = {};
  const onSteps = Number((yield* get<{ n: number }>(S.stepAttempts, [list]))!.n);
  for (const [i, table] of TABLES.entries()) {
    rows[table] = dryRun ? Number((yield* get<{ n: number }>(S.count[i]!, [list]))!.n) : yield* run(S.remove[i]!, [list]);
  }
  rows['attempts'] = rows['attempts']! + onSteps;
  return { ids, rows, refs };
}

/** The candidates no kept run (or dataset row) names. In a dry run the would-be-removed runs are still there. */
function* unreferenced(r: FeatureRunner, candidates: Set<string>, removing: string[]): Rule<string[]> {
  const kept = new Set<string>();
  for (const row of yield* all<{ j: string | null }>(S.refsKept, [r.list(removing)])) artifactRefsIn(row.j, kept);
  return [...candidates].filter((a) => !kept.has(a));
}
