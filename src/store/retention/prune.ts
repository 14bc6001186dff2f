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
  /** Rows removed per table (`runs`, `steps`, `attempts`, `events`, `logs`, `step_items`, `gate_decisions`, `step_cache`). */
  rows: Record<string, number>;
  /** sha256 of the artifacts that only removed runs referred to; the engine removes them from its artifact store. */
  artifacts: string[];
  /** Bytes the database file gave back to the file system (SQLite), when known. */
  reclaimedBytes?: number;
}

/** Tables holding rows of a run, keyed by `run_id`; `runs` goes last. */
export const RUN_TABLES = ['steps', 'attempts', 'events', 'logs', 'step_items', 'gate_decisions', 'step_cache'] as const;

/** Top-level runs pruned per transaction, so that no transaction holds the store for long. */
export const PRUNE_BATCH = 500;

const ARTIFACT_REF = /"\$artifact"\s*:\s*"([0-9a-f]{64})"/g;

/** Every artifact address named in a JSON text. */
export function artifactRefsIn(json: string | null | undefined, into: Set<string>): Set<string> {
  if (!json || !json.includes('$artifact')) return into;
  for (const m of json.matchAll(ARTIFACT_REF)) into.add(m[1]!);
  return into;
}

/** Adds the counts of `b` to `a`. */
export function addRows(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  for (const [k, n] of Object.entries(b)) a[k] = (a[k] ?? 0) + n;
  return a;
}

/**
 * The statements of a prune, written once for both dialects. `ids` is the dialect's expression for the set of
 * run ids passed as one parameter; `text(col)` reads a JSON column as text. Statuses pruned: succeeded and
 * cancelled, and failed when dead letters are pruned too.
 */
export function pruneSql(d: { ids: string; text: (col: string) => string; p: (name: string, n: number) => string }) {
  const { ids, text, p } = d;
  const refs = (where: (col: string) => string) =>
    [
      `SELECT ${text('input')} AS j FROM runs WHERE ${where('id')} AND ${text('input')} LIKE '%$artifact%'`,
      `SELECT ${text('output')} FROM steps WHERE ${where('run_id')} AND ${text('output')} LIKE '%$artifact%'`,
      `SELECT ${text('output')} FROM step_items WHERE ${where('run_id')} AND ${text('output')} LIKE '%$artifact%'`,
      `SELECT ${text('output')} FROM step_cache WHERE ${where('run_id')} AND ${text('output')} LIKE '%$artifact%'`,
    ].join(' UNION ALL ');
  return {
    // before, pipeline (NULL = all), dead letters too, after finished_at, after id, limit
    roots: `SELECT id, finished_at FROM runs
            WHERE parent_run_id IS NULL AND finished_at IS NOT NULL AND finished_at < ${p('before', 1)}
              AND (${p('pipeline', 2)} IS NULL OR pipeline = ${p('pipeline', 2)})
              AND (status IN ('succeeded', 'cancelled') OR (status = 'failed' AND ${p('dead', 3)} = 1))
              AND (finished_at > ${p('after_at', 4)} OR (finished_at = ${p('after_at', 4)} AND id > ${p('after_id', 5)}))
            ORDER BY finished_at, id LIMIT ${p('limit', 6)}`,
    // ids: the runs and every run below them, with whether each finished
    tree: `WITH RECURSIVE tree (id, root) AS (
             SELECT id, id FROM runs WHERE id IN ${ids}
             UNION ALL SELECT r.id, t.root FROM runs r JOIN tree t ON r.parent_run_id = t.id)
           SELECT t.id, t.root, r.finished_at FROM tree t JOIN runs r ON r.id = t.id`,
    // ids: JSON of the runs that may name artifacts
    refsOf: refs((col) => `${col} IN ${ids}`),
    // ids: JSON of every other run that names an artifact, and of dataset rows
    refsKept: `${refs((col) => `${col} NOT IN ${ids}`)}
               UNION ALL SELECT ${text('data')} FROM dataset_records WHERE ${text('data')} LIKE '%$artifact%'
               UNION ALL SELECT ${text('value')} FROM attribute_values WHERE ${text('value')} LIKE '%$artifact%'`,
    count: Object.fromEntries([...RUN_TABLES, 'runs'].map((t) => [t, `SELECT COUNT(*) AS n FROM ${t} WHERE ${t === 'runs' ? 'id' : 'run_id'} IN ${ids}`])),
    remove: Object.fromEntries([...RUN_TABLES, 'runs'].map((t) => [t, `DELETE FROM ${t} WHERE ${t === 'runs' ? 'id' : 'run_id'} IN ${ids}`])),
    // before: claimed cron slots before it, but the latest of each trigger (what catch-up starts from)
    cronSlots: `DELETE FROM cron_slots WHERE slot < ${p('before', 1)}
                AND slot < (SELECT MAX(c.slot) FROM cron_slots c WHERE c.pipeline = cron_slots.pipeline AND c.trigger = cron_slots.trigger)`,
  };
}

export type PruneSql = ReturnType<typeof pruneSql>;
