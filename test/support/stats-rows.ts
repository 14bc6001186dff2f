/**
 * Runs, steps and attempts written straight into a store's tables (for the stats tests, which need creation and
 * finish times of their choosing), and the stats those rows should give, computed from them exactly. As the store
 * keeps them, a step's last attempt is on its row and the earlier ones are rows of `attempts`.
 */
import type Database from 'better-sqlite3';
import type pg from 'pg';
import { expect } from 'vitest';
import type { DurationStats, PipelineStats, SeriesOptions, Store } from '../../src/store/store.js';

/** Exact nearest-rank percentiles of `values`: what the stats should answer within their stated bound. */
export function durationStats(values: number[]): DurationStats {
  if (values.length === 0) return { count: 0, p50: null, p95: null, p99: null };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
  return { count: sorted.length, p50: at(50), p95: at(95), p99: at(99) };
}

/** Runs one statement ($n parameters) on the store's own connection; answers its rows. */
export async function sqlOn(store: Store, text: string, params: unknown[] = []): Promise<Array<Record<string, unknown>>> {
  const db = (store as unknown as { db?: Database.Database }).db;
  if (db) {
    const order = [...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1]) - 1);
    const stmt = db.prepare(text.replace(/\$\d+/g, '?'));
    const values = order.map((i) => params[i]);
    return stmt.reader ? (stmt.all(...values) as Array<Record<string, unknown>>) : (stmt.run(...values), []);
  }
  return (await (store as unknown as { pool: pg.Pool }).pool.query(text, params)).rows;
}

export interface TestAttempt {
  number?: number;
  status: string;
  finished: number | null;
  ms: number | null;
  usage?: { tokensIn: number; tokensOut: number; cost: number };
}

export interface TestRun {
  id: string;
  pipeline: string;
  status: string;
  created: number;
  finished: number | null;
  parent?: string;
  steps: Array<{ name: string; status: string; attempts: TestAttempt[] }>;
}

export async function insertRun(store: Store, r: TestRun): Promise<void> {
  await sqlOn(
    store,
    `INSERT INTO runs (id, pipeline, version, status, input, max_parallel, remaining, run_at, created_at, started_at, finished_at, parent_run_id, parent_step)
     VALUES ($1, $2, 1, $3, '{}', 4, 0, $4, $4, $4, $5, $6, $7)`,
    [r.id, r.pipeline, r.status, r.created, r.finished, r.parent ?? null, r.parent ? 'child' : null],
  );
  for (const [seq, s] of r.steps.entries()) {
    await sqlOn(store, `INSERT INTO steps (run_id, name, seq, status, waiting_on, attempts, started_at, finished_at) VALUES ($1, $2, $3, $4, 0, 0, $5, $5)`, [
      r.id,
      s.name,
      seq,
      s.status,
      r.created,
    ]);
    for (const [i, a] of s.attempts.entries()) await insertAttempt(store, r.id, s.name, r.created, { ...a, number: a.number ?? i + 1 });
  }
}

/**
 * Gives step `step` of run `runId` its next attempt `a`, as the store does: the attempt the step's row holds (if
 * any) is copied into `attempts` under its number, and `a` takes its place on the row.
 */
export async function insertAttempt(store: Store, runId: string, step: string, at: number, a: TestAttempt): Promise<void> {
  await sqlOn(
    store,
    `INSERT INTO attempts (run_id, step, number, status, priority, force, available_at, owner, fence, lease_expires_at, queued_at,
       started_at, finished_at, processing_ms, error, usage, feedback, concurrency_key, concurrency_limit)
     SELECT run_id, name, attempts, attempt_status, attempt_priority, attempt_force, available_at, owner, fence, lease_expires_at, queued_at,
       attempt_started_at, attempt_finished_at, processing_ms, attempt_error, usage, attempt_feedback, concurrency_key, concurrency_limit
     FROM steps WHERE run_id = $1 AND name = $2 AND attempt_status IS NOT NULL`,
    [runId, step],
  );
  await sqlOn(
    store,
    `UPDATE steps SET attempts = $3, attempt_status = $4, available_at = $5, queued_at = $5, attempt_started_at = $5, attempt_finished_at = $6,
       processing_ms = $7, usage = $8, owner = NULL, lease_expires_at = NULL, attempt_error = NULL
     WHERE run_id = $1 AND name = $2`,
    [runId, step, a.number ?? 1, a.status, at, a.finished, a.ms, a.usage ? JSON.stringify(a.usage) : null],
  );
}

const OPEN = ['queued', 'running', 'paused', 'waiting'];

/** The stats of `pipeline` computed from every row, exactly (nearest-rank percentiles of the values themselves). */
export async function exactStats(store: Store, pipeline: string, since: number, series?: SeriesOptions): Promise<PipelineStats> {
  const runs = await sqlOn(store, `SELECT id, status, created_at, started_at, finished_at FROM runs WHERE pipeline = $1 AND created_at >= $2`, [pipeline, since]);
  const ids = new Set(runs.map((r) => String(r.id)));
  const steps = (await sqlOn(store, `SELECT s.run_id, s.name, s.seq, s.status FROM steps s JOIN runs r ON r.id = s.run_id WHERE r.pipeline = $1`, [pipeline])).filter((s) => ids.has(String(s.run_id)));
  const attempts = (
    await sqlOn(store, `SELECT a.run_id, a.step, a.processing_ms, a.usage FROM all_attempts a JOIN runs r ON r.id = a.run_id WHERE r.pipeline = $1 AND a.finished_at IS NOT NULL`, [pipeline])
  ).filter((a) => ids.has(String(a.run_id)));
  const createdOf = new Map(runs.map((r) => [String(r.id), Number(r.created_at)]));
  const usage = (a: Record<string, unknown>) => (a.usage === null ? {} : ((typeof a.usage === 'string' ? JSON.parse(a.usage) : a.usage) as Record<string, number>));
  const runPart = (rs: typeof runs) => {
    const byStatus: Record<string, number> = {};
    for (const r of rs) byStatus[String(r.status)] = (byStatus[String(r.status)] ?? 0) + 1;
    const ms = rs.filter((r) => r.finished_at !== null).map((r) => Number(r.finished_at) - Number(r.started_at ?? r.created_at));
    return { byStatus, duration: durationStats(ms) };
  };
  const usagePart = (as: typeof attempts) => ({
    tokensIn: as.reduce((n, a) => n + (usage(a).tokensIn ?? 0), 0),
    tokensOut: as.reduce((n, a) => n + (usage(a).tokensOut ?? 0), 0),
    cost: as.reduce((n, a) => n + (usage(a).cost ?? 0), 0),
  });
  const names = [...new Set([...steps.map((s) => String(s.name)), ...attempts.map((a) => String(a.step))])];
  const seqOf = (name: string) => Math.min(...steps.filter((s) => s.name === name).map((s) => Number(s.seq)), Number.MAX_SAFE_INTEGER);
  const stepStats = names
    .sort((a, b) => seqOf(a) - seqOf(b))
    .map((name) => {
      const byStatus: Record<string, number> = {};
      for (const s of steps.filter((x) => x.name === name)) byStatus[String(s.status)] = (byStatus[String(s.status)] ?? 0) + 1;
      const as = attempts.filter((a) => a.step === name);
      return { name, byStatus, duration: durationStats(as.filter((a) => a.processing_ms !== null).map((a) => Number(a.processing_ms))), attempts: as.length, ...usagePart(as) };
    });
  const stats: PipelineStats = { pipeline, since, runs: runPart(runs), steps: stepStats, ...usagePart(attempts) };
  if (!series) return stats;
  const count = Math.max(1, Math.floor(series.buckets));
  const width = Math.max(1, (series.until - since) / count);
  const bucketOf = (t: number) => (t >= since && t < series.until ? Math.min(count - 1, Math.max(0, Math.floor((t - since) / width))) : -1);
  stats.series = Array.from({ length: count }, (_, i) => ({
    start: Math.round(since + i * width),
    end: Math.round(since + (i + 1) * width),
    ...runPart(runs.filter((r) => bucketOf(Number(r.created_at)) === i)),
    ...usagePart(attempts.filter((a) => bucketOf(createdOf.get(String(a.run_id))!) === i)),
  }));
  return stats;
}

/** Percentiles as the rollup states them: exact below 256 ms, within 1% above. */
export function expectDurationClose(got: DurationStats, want: DurationStats, where: string): void {
  expect(got.count, `${where} count`).toBe(want.count);
  for (const k of ['p50', 'p95', 'p99'] as const) {
    const w = want[k];
    if (w === null || w < 256) expect(got[k], `${where} ${k}`).toBe(w);
    else expect(Math.abs(got[k]! - w) / w, `${where} ${k}: ${got[k]} for ${w}`).toBeLessThan(0.01);
  }
}

/** Counts exact, sums to float precision, percentiles within the stated bound. */
export function expectStatsClose(got: PipelineStats, want: PipelineStats): void {
  expect(got.runs.byStatus).toEqual(want.runs.byStatus);
  expectDurationClose(got.runs.duration, want.runs.duration, 'runs');
  expect(got.steps.map((s) => s.name)).toEqual(want.steps.map((s) => s.name));
  for (const [i, w] of want.steps.entries()) {
    const g = got.steps[i]!;
    expect({ name: g.name, byStatus: g.byStatus, attempts: g.attempts }).toEqual({ name: w.name, byStatus: w.byStatus, attempts: w.attempts });
    expectDurationClose(g.duration, w.duration, `step ${w.name}`);
    expect(g.tokensIn).toBeCloseTo(w.tokensIn, 6);
    expect(g.cost).toBeCloseTo(w.cost, 6);
  }
  expect(got.tokensIn).toBeCloseTo(want.tokensIn, 6);
  expect(got.tokensOut).toBeCloseTo(want.tokensOut, 6);
  expect(got.cost).toBeCloseTo(want.cost, 6);
  expect(got.series?.length).toBe(want.series?.length);
  for (const [i, w] of (want.series ?? []).entries()) {
    const g = got.series![i]!;
    expect({ start: g.start, end: g.end, byStatus: g.byStatus }, `bucket ${i}`).toEqual({ start: w.start, end: w.end, byStatus: w.byStatus });
    expectDurationClose(g.duration, w.duration, `bucket ${i}`);
    expect(g.tokensIn).toBeCloseTo(w.tokensIn, 6);
    expect(g.cost).toBeCloseTo(w.cost, 6);
  }
}

export { OPEN as OPEN_RUN_STATES };
