import type { PipelineStats, SeriesOptions } from '../store.js';
import { addRunDetail, encodeRunDetail } from './run-detail.js';
import type { ReadKey, WriteKey } from './stats-sql.js';
import { MINUTE, seriesShape, seriesOfTallies, statsOfTally, Tally, type RawRow, type RollupRow } from './tally.js';

/**
 * The stats rollup, written once as rules over the dialects' statements (./sqlite-stats.ts and ./pg-stats.ts run
 * them, each rule in one transaction).
 *
 * The rollup holds, per pipeline and minute of run creation, the counts, sums and duration histograms of that
 * minute's runs, their steps and their finished attempts. A minute is folded (has a row) only while every run
 * created in it is finished, and finished before the watermark. Nothing on the run path writes to it: the leader
 * folds (`foldBatch`), reading runs by creation time, and a stats question reads the rollup for the minutes before
 * the fold's frontier and the raw rows for the rest.
 *
 * A finished run changes only by going back to an open state (retry, rollback), after which it finishes again
 * with a new `finished_at`. So a folded minute is stale exactly when one of its runs is open now or finished at or
 * after the watermark of the fold that folded it, provided every process stamps `finished_at` less than the fold
 * lag (default 60 s) behind the leader's clock, commit included. Both the fold (which folds such minutes again)
 * and a stats question (which reads them raw) look for such runs through indexes: nothing is counted twice, and
 * nothing is missed. Pruning removes runs, so a prune folds again the minutes before its cutoff (`refoldRange`).
 */

/** One statement for the driver: a read answers its rows; `insert` adds rollup rows. */
export type Op = { read: ReadKey; params: unknown[] } | { write: WriteKey; params: unknown[] } | { insert: RollupRow[] };
export type Row = Record<string, unknown>;
export type Rule<T> = Generator<Op, T, Row[]>;

function* read<R = Row>(key: ReadKey, params: unknown[]): Rule<R[]> {
  return (yield { read: key, params }) as R[];
}

function* write(key: WriteKey, params: unknown[]): Rule<void> {
  yield { write: key, params };
}

/** How far the fold has come: minutes before `frontier` are folded, as of `watermark` (epoch ms). */
export interface FoldState {
  frontier: number;
  watermark: number;
}

function* stateOf(): Rule<FoldState | null> {
  const [row] = yield* read<{ frontier: number | string; watermark: number | string }>('state', []);
  return row ? { frontier: Number(row.frontier), watermark: Number(row.watermark) } : null;
}

/** What one fold did. */
export interface FoldReport {
  /** Runs read to fold new minutes. */
  runs: number;
  /** Minutes folded again because a run of theirs changed. */
  refolded: number;
  /** Nothing is left to fold before the watermark (call again later); false: call again now. */
  done: boolean;
  frontier: number;
  watermark: number;
}

/** How the fold runs. */
export interface FoldOptions {
  /** How far behind the clock the watermark stays, in ms. Default: 60,000. */
  lagMs?: number;
  /** At most about this many runs of new minutes per fold (one transaction). Default: 1,000. */
  maxRuns?: number;
}

export const DEFAULT_FOLD_LAG_MS = 60_000;
export const DEFAULT_FOLD_MAX_RUNS = 1_000;

const key = (pipeline: string, minute: number) => `${pipeline}\u0000${minute}`;

/** Which runs a raw read of the fold takes: created in [from, to) of `pipeline` (null: every pipeline). */
type RawScope = { pipeline: string | null; from: number; to: number };

/** Raw rows of the runs of `scope`, and the minutes with a run still open at `watermark`. */
function* rawRows(scope: RawScope, watermark: number): Rule<{ rows: RawRow[]; open: Set<string>; runs: number }> {
  const keys = scope.pipeline === null ? ({ runs: 'allRuns', steps: 'allSteps', attempts: 'allAttempts' } as const) : ({ runs: 'rawRuns', steps: 'rawSteps', attempts: 'rawAttempts' } as const);
  const params = [scope.pipeline, scope.from, scope.to, watermark];
  const rows: RawRow[] = [];
  const open = new Set<string>();
  let runs = 0;
  // Rows are tagged in place (no copies: a batch reads tens of thousands).
  for (const r of yield* read<RawRow & { open: number | string; children: number | string }>(keys.runs, params)) {
    rows.push(Object.assign(r, { kind: 'r', name: '', seq: null } as const));
    runs += Number(r.n);
    if (Number(r.children) > 0) rows.push({ pipeline: r.pipeline, at: r.at, kind: 'c', name: '', status: '', seq: null, ms: null, n: r.children });
    if (Number(r.open) > 0) open.add(key(r.pipeline, Math.floor(Number(r.at) / MINUTE)));
  }
  for (const r of yield* read<RawRow>(keys.steps, params)) rows.push(Object.assign(r, { kind: 's', ms: null } as const));
  for (const r of yield* read<RawRow>(keys.attempts, params)) rows.push(Object.assign(r, { kind: 'a', status: '', seq: null } as const));
  return { rows, open, runs };
}

/** The rollup rows (one per pipeline and minute) of the minutes of `rows` that are not open. */
function rollupRows(rows: RawRow[], open: Set<string>): RollupRow[] {
  const minutes = new Map<string, { pipeline: string; minute: number; children: number; tally: Tally; rows: RawRow[] }>();
  for (const r of rows) {
    const minute = Math.floor(Number(r.at) / MINUTE);
    const k = key(r.pipeline, minute);
    if (open.has(k)) continue;
    let m = minutes.get(k);
    if (!m) minutes.set(k, (m = { pipeline: r.pipeline, minute, children: 0, tally: new Tally(), rows: [] }));
    m.rows.push(r);
    if (r.kind === 'c') m.children += Number(r.n);
    else m.tally.addRaw(r);
  }
  return [...minutes.values()].map(({ pipeline, minute, children, tally, rows: raw }) => ({ pipeline, minute, children, cells: tally.encode(), runs: encodeRunDetail(minute, raw) }));
}

/** Folds runs created in [from, to) minutes (of `pipeline`, null: all) from scratch: drops their rows, adds the closed minutes. */
function* foldRange(pipeline: string | null, from: number, to: number, watermark: number): Rule<number> {
  yield* write('deleteRange', [pipeline, from, to]);
  const raw = yield* rawRows({ pipeline, from: from * MINUTE, to: to * MINUTE }, watermark);
  const rows = rollupRows(raw.rows, raw.open);
  if (rows.length > 0) yield { insert: rows };
  return raw.runs;
}

/** Runs of consecutive minutes, per pipeline. */
function spans(minutes: Array<{ pipeline: string; minute: number | string }>): Array<{ pipeline: string; from: number; to: number }> {
  const sorted = minutes.map((m) => ({ pipeline: m.pipeline, minute: Number(m.minute) })).sort((a, b) => (a.pipeline < b.pipeline ? -1 : a.pipeline > b.pipeline ? 1 : a.minute - b.minute));
  const out: Array<{ pipeline: string; from: number; to: number }> = [];
  for (const m of sorted) {
    const last = out.at(-1);
    if (last && last.pipeline === m.pipeline && last.to >= m.minute) last.to = Math.max(last.to, m.minute + 1);
    else out.push({ pipeline: m.pipeline, from: m.minute, to: m.minute + 1 });
  }
  return out;
}

/**
 * One turn of the fold at `now` (the leader's clock): folds again the folded minutes whose runs changed since the
 * last turn, then folds the next minutes (about `maxRuns` runs) up to the watermark `now - lagMs`, and saves the
 * new frontier and watermark. Runs in one transaction; `done` says whether the frontier reached the watermark.
 */
export function* foldBatch(now: number, options: FoldOptions = {}): Rule<FoldReport> {
  const watermark = now - (options.lagMs ?? DEFAULT_FOLD_LAG_MS);
  const maxRuns = Math.max(1, Math.floor(options.maxRuns ?? DEFAULT_FOLD_MAX_RUNS));
  const prev = yield* stateOf();
  let frontier = prev?.frontier ?? 0;
  let refolded = 0;
  if (prev && frontier > 0) {
    // Minutes with an open run lose their rows; minutes with a run finished since the last watermark fold again.
    const open = yield* read<{ pipeline: string; minute: number | string }>('allOpen', [null, 0, frontier * MINUTE]);
    for (const s of spans(open)) yield* write('deleteRange', [s.pipeline, s.from, s.to]);
    const openKeys = new Set(open.map((m) => key(m.pipeline, Number(m.minute))));
    const finished = (yield* read<{ pipeline: string; minute: number | string }>('allFinished', [null, 0, frontier * MINUTE, prev.watermark])).filter(
      (m) => !openKeys.has(key(m.pipeline, Number(m.minute))),
    );
    for (const s of spans(finished)) {
      yield* foldRange(s.pipeline, s.from, s.to, watermark);
      refolded += s.to - s.from;
    }
  }
  const limit = Math.floor(watermark / MINUTE);
  let runs = 0;
  if (frontier < limit) {
    const [next] = yield* read<{ created_at: number | string }>('batchEnd', [frontier * MINUTE, maxRuns]);
    const to = next ? Math.min(limit, Math.max(frontier + 1, Math.floor(Number(next.created_at) / MINUTE))) : limit;
    runs = yield* foldRange(null, frontier, to, watermark);
    frontier = to;
  }
  yield* write('saveState', [frontier, watermark]);
  return { runs, refolded, done: frontier >= limit, frontier, watermark };
}

/**
 * What a prune of `pipeline`'s runs before `before` makes stale: minutes [first, end) of `pipeline` and of every
 * pipeline with child runs folded before `end` (a prune removes a run's child runs with it).
 */
export function* refoldPlan(pipeline: string, before: number): Rule<Array<{ pipeline: string; first: number; end: number }>> {
  const state = yield* stateOf();
  if (!state) return [];
  const end = Math.min(state.frontier, Math.floor(before / MINUTE) + 1);
  const children = yield* read<{ pipeline: string }>('childPipelines', [end]);
  const out = [];
  for (const p of new Set([pipeline, ...children.map((c) => c.pipeline)])) {
    const [row] = yield* read<{ minute: number | string | null }>('firstMinute', [p]);
    if (row && row.minute !== null && Number(row.minute) < end) out.push({ pipeline: p, first: Number(row.minute), end });
  }
  return out;
}

/**
 * Folds minutes [from, to) of `pipeline` again from the rows that are left, as of the
 * saved watermark: after a prune removed runs created in them. Only minutes before the frontier.
 */
export function* refoldRange(pipeline: string, from: number, to: number): Rule<number> {
  const state = yield* stateOf();
  if (!state) return 0;
  const end = Math.min(to, state.frontier);
  if (from >= end) return 0;
  return yield* foldRange(pipeline, from, end, state.watermark);
}

/**
 * The stats of `pipeline` for runs created since `since`: rollup rows for the folded minutes that did not change,
 * raw rows aggregated by the database for the rest (the part of the first minute before it starts, minutes whose
 * runs changed since the last fold, minutes not folded yet) and, for a series, the run detail of the folded
 * minutes a bucket edge cuts.
 */
export function* statsQuery(pipeline: string, since: number, series?: SeriesOptions): Rule<PipelineStats> {
  const state = (yield* stateOf()) ?? { frontier: 0, watermark: 0 };
  const first = Math.ceil(since / MINUTE);
  const frontier = Math.max(first, state.frontier);
  const totals = new Tally();
  const s = series ? seriesPlan(since, series) : undefined;
  const changed = new Set<number>();
  if (frontier > first) {
    for (const m of yield* read<{ minute: number | string }>('changing', [pipeline, first * MINUTE, frontier * MINUTE, state.watermark])) changed.add(Number(m.minute));
  }
  const cut = new Set<number>();
  if (frontier > first) {
    for (const row of yield* read<RollupRow>('rollup', [pipeline, first, frontier])) {
      const minute = Number(row.minute);
      if (changed.has(minute)) continue;
      const into = s?.ofMinute(minute);
      totals.addRollup(row, into);
      if (s && !into && s.overlaps(minute)) cut.add(minute);
    }
  }
  // Raw rows, aggregated by the database: before the first whole minute, from the frontier on, and the minutes
  // whose runs changed; a series takes the folded minutes its bucket edges cut run by run from their detail.
  const shape = series ? seriesShape(since, series) : undefined;
  const buckets = shape && series ? [since, series.until, shape.width, shape.count - 1] : [0, 0, 1, 0];
  const sorted = (minutes: Set<number>) => [...minutes].sort((a, b) => a - b);
  const spansRaw: Array<[string, unknown]> = [];
  if (since < first * MINUTE) spansRaw.push(['q', [since, first * MINUTE]]);
  spansRaw.push(['q', [frontier * MINUTE, Number.MAX_SAFE_INTEGER]]);
  if (changed.size > 0) spansRaw.push(['qm', [sorted(changed), Number.MAX_SAFE_INTEGER]]);
  for (const [scope, [from, to]] of spansRaw as Array<['q' | 'qm', [unknown, number]]>) {
    const params = [pipeline, from, to, ...buckets];
    for (const r of yield* read<{ bucket: number | string; status: string; ms: number | string | null; n: number | string }>(`${scope}Runs`, params)) {
      const row: RawRow = { pipeline, at: 0, kind: 'r', name: '', status: r.status, seq: null, ms: r.ms, n: r.n };
      totals.addRaw(row);
      if (Number(r.bucket) >= 0) s?.tallies[Number(r.bucket)]?.addRaw(row);
    }
    for (const r of yield* read<RawRow>(`${scope}Steps`, params)) totals.addRaw(Object.assign(r, { pipeline, at: 0, kind: 's', ms: null } as const));
    for (const r of yield* read<RawRow>(`${scope}Attempts`, params)) totals.addRaw(Object.assign(r, { pipeline, at: 0, kind: 'a', status: '', seq: null } as const));
    if (!s) continue;
    for (const u of yield* read<{ bucket: number | string; tokens_in: number | string; tokens_out: number | string; cost: number | string }>(`${scope}Usage`, params)) {
      const c = s.tallies[Number(u.bucket)]?.cell('a', '', '');
      if (c) Object.assign(c, { tokensIn: c.tokensIn + Number(u.tokens_in), tokensOut: c.tokensOut + Number(u.tokens_out), cost: c.cost + Number(u.cost) });
    }
  }
  if (cut.size > 0 && s) {
    for (const d of yield* read<{ minute: number | string; runs: Uint8Array }>('details', [pipeline, sorted(cut)])) addRunDetail(Number(d.minute), d.runs, s.at);
  }
  const stats = statsOfTally(pipeline, since, totals);
  return s && series ? { ...stats, series: seriesOfTallies(since, series, s.tallies) } : stats;
}

/** Where the rows of a series go: whole minutes inside one bucket, else row by row by creation time. */
function seriesPlan(since: number, series: SeriesOptions) {
  const { width, count } = seriesShape(since, series);
  const tallies = Array.from({ length: count }, () => new Tally());
  const inSeries = (t: number) => t >= since && t < series.until;
  const bucketAt = (t: number) => Math.min(count - 1, Math.max(0, Math.floor((t - since) / width)));
  return {
    tallies,
    at: (t: number): Tally | undefined => (inSeries(t) ? tallies[bucketAt(t)] : undefined),
    overlaps: (minute: number) => minute * MINUTE < series.until && minute * MINUTE + MINUTE > since,
    ofMinute: (minute: number): Tally | undefined => {
      const start = minute * MINUTE;
      const end = start + MINUTE - 1;
      if (!inSeries(start) || !inSeries(end)) return undefined;
      return bucketAt(start) === bucketAt(end) ? tallies[bucketAt(start)] : undefined;
    },
  };
}
