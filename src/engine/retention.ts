import { parseDuration, DURATION_HINT } from '../core/duration.js';
import { SluiceError } from '../core/errors.js';
import type { ArtifactStore } from '../artifacts/artifact-store.js';
import type { PruneResult, Store } from '../store/store.js';

/** What `sluice prune` and the periodic prune remove. */
export interface PruneOptions {
  /** Prune runs that finished longer ago than this (ms), whatever their pipeline says. Default: each pipeline's `retention`, else the store-wide default. */
  olderThanMs?: number | undefined;
  /** Only this pipeline. Default: every pipeline. */
  pipeline?: string | undefined;
  /** Count, remove nothing. Default: false. */
  dryRun?: boolean | undefined;
  /** Also prune failed runs (dead letters), kept otherwise until re-driven. Default: false. */
  deadLetters?: boolean | undefined;
}

/** What a prune removed, per pipeline and in total. */
export interface PruneReport extends PruneResult {
  dryRun: boolean;
  pipelines: Array<{ pipeline: string; olderThanMs: number; runs: number }>;
}

/** The parts of the engine a prune uses. */
export interface PruneDeps {
  store: Store;
  artifacts: ArtifactStore;
  now(): number;
  /** Store-wide default retention (ms); undefined: runs of pipelines without `retention` are kept. */
  defaultRetentionMs: number | undefined;
}

/** How long received events are kept for the lookback of `wait_for_event` steps: 7 days. */
export const RECEIVED_EVENTS_KEEP_MS = 7 * 24 * 3_600_000;

/** Reads a retention setting (`30d`, ms); `where` names it in the error. Undefined or empty: none. */
export function parseRetention(value: string | undefined, where: string): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  try {
    const ms = parseDuration(/^\d+$/.test(value) ? Number(value) : value);
    if (ms <= 0) throw new Error('must be more than 0');
    return ms;
  } catch {
    throw new SluiceError('INPUT_INVALID', `${where}: expected ${DURATION_HINT} (more than 0), got ${JSON.stringify(value)}`);
  }
}

/**
 * Prunes finished runs: each pipeline's with its own `retention` (else the store-wide default; `olderThanMs`
 * overrides both), then deletes the artifacts that only pruned runs named. Dead letters only with `deadLetters`.
 */
export async function pruneRuns(deps: PruneDeps, options: PruneOptions = {}): Promise<PruneReport> {
  const report: PruneReport = { dryRun: options.dryRun === true, runs: 0, rows: {}, artifacts: [], pipelines: [] };
  const artifacts = new Set<string>();
  for (const { name, olderThanMs } of await cutoffs(deps, options)) {
    const r = await deps.store.pruneRuns({ before: deps.now() - olderThanMs, pipeline: name, dryRun: options.dryRun, deadLetters: options.deadLetters });
    // The stats rollup counts what the store holds: the minutes of the removed runs are folded again.
    if (!options.dryRun && r.runs > 0) await deps.store.refoldStats(name, deps.now() - olderThanMs);
    report.pipelines.push({ pipeline: name, olderThanMs, runs: r.runs });
    report.runs += r.runs;
    for (const [t, n] of Object.entries(r.rows)) report.rows[t] = (report.rows[t] ?? 0) + n;
    for (const a of r.artifacts) artifacts.add(a);
    if (r.reclaimedBytes !== undefined) report.reclaimedBytes = (report.reclaimedBytes ?? 0) + r.reclaimedBytes;
  }
  report.artifacts = [...artifacts];
  if (!options.dryRun) await deleteArtifacts(deps.artifacts, report.artifacts);
  if (!options.dryRun) {
    // Events are kept for waits' lookback (1 h by default): a week covers any lookback worth having.
    const pruned = await deps.store.waits.pruneEvents(deps.now() - RECEIVED_EVENTS_KEEP_MS);
    if (pruned.events > 0) report.rows['events_received'] = pruned.events;
    if (pruned.waits > 0) report.rows['step_waits'] = pruned.waits;
  }
  return report;
}

/** Each pipeline to prune and how old its finished runs must be. */
async function cutoffs(deps: PruneDeps, options: PruneOptions): Promise<Array<{ name: string; olderThanMs: number }>> {
  const pipelines = await deps.store.listPipelines();
  if (options.pipeline !== undefined && !pipelines.some((p) => p.name === options.pipeline)) {
    throw new SluiceError('PIPELINE_NOT_FOUND', `pipeline ${options.pipeline} is not registered`);
  }
  const out: Array<{ name: string; olderThanMs: number }> = [];
  for (const p of pipelines) {
    if (options.pipeline !== undefined && p.name !== options.pipeline) continue;
    const olderThanMs = options.olderThanMs ?? p.definition.retentionMs ?? deps.defaultRetentionMs;
    if (olderThanMs !== undefined) out.push({ name: p.name, olderThanMs });
  }
  return out;
}

async function deleteArtifacts(store: ArtifactStore, addresses: string[]): Promise<void> {
  if (!store.delete) return;
  for (const a of addresses) await store.delete(a);
}

/** How often the leader prunes. Default: 1 h. */
export const DEFAULT_PRUNE_EVERY_MS = 3_600_000;

/**
 * Prunes on a timer while `isLeading()` says this process leads the store (at start, then every `everyMs`).
 * Prunes nothing when no pipeline has a `retention` and there is no store-wide default.
 */
export class PeriodicPrune {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly deps: PruneDeps,
    private readonly options: { everyMs?: number; isLeading: () => boolean; onError: (err: unknown) => void; onPruned?: (report: PruneReport) => void },
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.options.everyMs ?? DEFAULT_PRUNE_EVERY_MS);
    this.timer.unref();
    void this.tick();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** One prune, when leading; resolves to its report (undefined when not leading). */
  async tick(): Promise<PruneReport | undefined> {
    if (!this.options.isLeading()) return undefined;
    const run = pruneRuns(this.deps).then(
      (r) => {
        if (r.runs > 0) this.options.onPruned?.(r);
        return r;
      },
      (err: unknown) => void this.options.onError(err),
    );
    this.running = run;
    return run;
  }
}
