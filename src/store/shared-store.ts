import type { CacheParts, FileHashes } from '../core/cache-key.js';
import type { Pipeline } from '../core/model.js';
import type { StepItem } from '../core/step-results.js';
import { claimCronSlot, lastCronSlot } from './cron/cron-slots.js';
import { pruneRuns, type PruneRequest, type PruneResult } from './retention/prune.js';
import { StoreFeatures } from './features/store-features.js';
import { pendingDebounce, runFlow } from './flow/flow-ops.js';
import type { RunFlow } from './flow/flow-port.js';
import { all, get, run, type Rule } from './ledger/effects.js';
import type { LedgerTx } from './ledger/ledger-tx.js';
import { controlRun, rollbackRun } from './ledger/outcomes.js';
import { reap } from './ledger/upkeep.js';
import { createWaitPort, type WaitPort, type WaitRunner } from './waits-port.js';
import { decide, listDecisions } from './ledger/supervision.js';
import { getRun } from './ledger/transitions.js';
import { parseJson, toAttemptRecord, toJson, toRunEvents, toRunRecord, toStepRecord, toStoredPipeline, type AttemptRow, type EventRow, type PipelineRow, type RunRow, type StepRow } from './rows.js';
import { listEventsStatement, listRunsStatement } from './run-list.js';
import { listLogs, loadStepItems, savePipeline, saveStepItems, SHARED, takeRate } from './shared-sql.js';
import type {
  AttemptLease,
  AttemptRecord,
  CacheHit,
  EventFilter,
  GateDecisionRecord,
  HumanDecision,
  LogLine,
  PipelineSource,
  ReapResult,
  RunAction,
  RunEvent,
  RunFilter,
  RunRecord,
  StepRecord,
  StoredPipeline,
  TransitionResult,
} from './store.js';

/** How a driver runs the ledger's rules (./ledger): reads, writes, and transitions of one run. */
export interface LedgerRunner extends WaitRunner {
  /**
   * Runs `rule` on run `runId` in one write transaction that holds the run; RUN_NOT_FOUND when there is no such
   * run. `wakeOnQueued`: when the rule queued a step, workers of other processes are woken (PostgreSQL).
   */
  transition(runId: string, rule: (tx: LedgerTx, run: RunRow, events: RunEvent[]) => Rule<unknown>, wakeOnQueued?: boolean): Promise<TransitionResult>;
}

/**
 * The `Store` methods both drivers answer with the same rules and statements (./shared-sql.ts), over the driver's
 * feature runner: stored pipelines, reads of a run, the step cache, rate budgets, item checkpoints, cron slots, the
 * prune.
 */
export abstract class SharedStore extends StoreFeatures {
  /**
   * Runs a rule of one read statement (PostgreSQL: outside a transaction block, retried when the server is lost;
   * each try runs a new rule made by `make`).
   */
  protected abstract readOne<T>(make: () => Rule<T>): Promise<T>;

  /** Runs one read statement built per call (./run-list.ts), written in PostgreSQL's style. */
  protected abstract built<R>(statement: { sql: string; values: unknown[] }): Promise<R[]>;

  /** How this driver runs the ledger's rules. */
  protected abstract readonly ledger: LedgerRunner;

  /** Durable waits and received events (the ledger's wait rules). */
  get waits(): WaitPort {
    return (this.waitPort ??= createWaitPort(this.ledger));
  }
  private waitPort: WaitPort | undefined;

  /** Re-queues attempts whose lease expired or whose owner is dead, and fails runs past their deadline (the ledger's scan). */
  reap(now: number, isOwnerDead?: (owner: string) => boolean): Promise<ReapResult> {
    return this.ledger.write((t) => reap(t, now, isOwnerDead));
  }

  controlRun(runId: string, action: RunAction, now: number): Promise<TransitionResult> {
    return this.ledger.transition(runId, (t, run, events) => controlRun(t, run, action, now, events));
  }

  rollbackRun(runId: string, step: string, now: number): Promise<TransitionResult> {
    return this.ledger.transition(runId, (t, run, events) => rollbackRun(t, run, step, now, events));
  }

  decideStep(runId: string, step: string, decision: HumanDecision, now: number): Promise<TransitionResult> {
    return this.ledger.transition(runId, (t, run, events) => decide(t, run, step, decision, now, events), true);
  }

  /** A value as a JSON column parameter of this driver. */
  private readonly json = (value: unknown) => this.features.jsonText(toJson(value));

  async savePipeline(pipeline: Pipeline, hash: string, source: PipelineSource = {}): Promise<StoredPipeline> {
    return this.features.write(() => savePipeline(this.json, pipeline, hash, source));
  }

  async getPipeline(name: string, version?: number): Promise<StoredPipeline | undefined> {
    const row = await this.readOne(() => version === undefined ? get<PipelineRow>(SHARED.latestPipeline, [name]) : get<PipelineRow>(SHARED.pipeline, [name, version]));
    return row ? toStoredPipeline(row) : undefined;
  }

  async listPipelines(): Promise<StoredPipeline[]> {
    return (await this.readOne(() => all<PipelineRow>(SHARED.latestPipelines, []))).map(toStoredPipeline);
  }

  async listPipelineVersions(name: string): Promise<StoredPipeline[]> {
    return (await this.readOne(() => all<PipelineRow>(SHARED.pipelineVersions, [name]))).map(toStoredPipeline);
  }

  async resetPipelineCache(name: string): Promise<number> {
    return this.features.write(() => run(SHARED.resetCache, [name]));
  }

  async listRuns(filter: RunFilter): Promise<RunRecord[]> {
    return (await this.built<RunRow>(listRunsStatement(filter))).map(toRunRecord);
  }

  async listEvents(filter: EventFilter): Promise<RunEvent[]> {
    // A row may pack several events and holds at least one past `afterId` (its last): `limit` rows hold enough.
    const after = filter.afterId ?? 0;
    const events = (await this.built<EventRow>(listEventsStatement(filter))).flatMap(toRunEvents).filter((e) => e.id > after);
    return events.slice(0, filter.limit ?? 1000);
  }

  async getRun(id: string): Promise<RunRecord | undefined> {
    const row = await this.readOne(() => getRun(id));
    return row ? toRunRecord(row) : undefined;
  }

  async queueStats(now: number): Promise<Array<{ pipeline: string; depth: number; oldestReadyAt: number | null }>> {
    const rows = await this.readOne(() => all<{ pipeline: string; depth: number; oldest_ready_at: string | number | null }>(SHARED.queueStats, [now]));
    return rows.map((r) => ({ pipeline: r.pipeline, depth: r.depth, oldestReadyAt: r.oldest_ready_at === null ? null : Number(r.oldest_ready_at) }));
  }

  async runTraceparent(runId: string): Promise<string | null> {
    return (await this.readOne(() => get<{ traceparent: string | null }>(SHARED.runTraceparent, [runId])))?.traceparent ?? null;
  }

  async listSteps(runId: string): Promise<StepRecord[]> {
    return (await this.readOne(() => all<StepRow>(SHARED.steps, [runId]))).map(toStepRecord);
  }

  async listAttempts(runId: string, step?: string): Promise<AttemptRecord[]> {
    const rule = () => (step === undefined ? all<AttemptRow>(SHARED.attempts, [runId]) : all<AttemptRow>(SHARED.stepAttempts, [runId, step]));
    return (await this.readOne(rule)).map(toAttemptRecord);
  }

  async listLogs(runId: string, step?: string): Promise<LogLine[]> {
    return this.readOne(() => listLogs(runId, step));
  }

  async lookupCache(pipeline: string, cacheKey: string): Promise<CacheHit | undefined> {
    const row = await this.readOne(() => get<{ output: string | null; run_id: string; outputs: string | null }>(SHARED.cache, [pipeline, cacheKey]));
    return row ? { output: parseJson(row.output), runId: row.run_id, outputs: parseJson<FileHashes>(row.outputs) } : undefined;
  }

  async latestCacheEntry(pipeline: string, step: string): Promise<{ runId: string; parts: CacheParts | null } | undefined> {
    const row = await this.readOne(() => get<{ run_id: string; parts: string | null }>(SHARED.latestCache, [pipeline, step]));
    return row ? { runId: row.run_id, parts: parseJson<CacheParts>(row.parts) } : undefined;
  }

  async listDeadLetters(limit: number): Promise<RunRecord[]> {
    return (await this.readOne(() => all<RunRow>(SHARED.deadLetters, [limit]))).map(toRunRecord);
  }

  /** Flow control: what the flow rules did to run `id`. */
  async runFlow(id: string): Promise<RunFlow | undefined> {
    return this.readOne(() => runFlow(id));
  }

  /** Flow control: the pending run of a debounce bucket, with its input. */
  async pendingDebounce(pipeline: string, key: string): Promise<{ runId: string; input: unknown } | undefined> {
    return this.readOne(() => pendingDebounce(pipeline, key));
  }

  async listDecisions(runId: string): Promise<GateDecisionRecord[]> {
    return this.readOne(() => listDecisions(runId));
  }

  claimCronSlot(pipeline: string, trigger: string, slot: number, now: number): Promise<boolean> {
    return claimCronSlot(this.features, pipeline, trigger, slot, now);
  }

  lastCronSlot(pipeline: string, trigger: string): Promise<number | undefined> {
    return lastCronSlot(this.features, pipeline, trigger);
  }

  /** Prunes finished runs (./retention/prune.ts). */
  pruneRuns(request: PruneRequest): Promise<PruneResult> {
    return pruneRuns(this.features, request);
  }

  async takeRate(key: string, limits: { rpm?: number | undefined; tpm?: number | undefined }, tokens: number, now: number): Promise<number> {
    return this.features.write(() => takeRate(key, limits, tokens, now));
  }

  async settleRate(key: string, at: number, delta: number): Promise<void> {
    await this.features.write(() => run(SHARED.settleRate, [key, Math.floor(at / 60_000), delta]));
  }

  async loadStepItems(runId: string, step: string): Promise<StepItem[]> {
    return this.readOne(() => loadStepItems(runId, step));
  }

  async saveStepItems(lease: AttemptLease, runId: string, step: string, items: StepItem[], now: number): Promise<void> {
    await this.features.write(() => saveStepItems(this.json, lease, runId, step, items, now));
  }
}
