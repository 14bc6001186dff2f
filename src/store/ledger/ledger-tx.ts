import type { ErrorCode, ErrorRecord } from '../../core/errors.js';
import type { Pipeline, Step } from '../../core/model.js';
import type { ClaimedAttemptRow, RunRow } from '../rows.js';
import type { EventType, RunEvent } from '../store.js';
import type { Rule } from './effects.js';
import type { QueueLimit, QueuedStep } from './queue-ready.js';

/** A pipeline version as the scheduler needs it: the definition plus lookups. */
export interface CompiledPipeline {
  definition: Pipeline;
  byName: Map<string, Step>;
  dependents: Map<string, string[]>;
  /** Whether a step has a concurrency key. */
  keyed: boolean;
}

export function compilePipeline(definition: Pipeline): CompiledPipeline {
  const byName = new Map(definition.steps.map((s) => [s.name, s]));
  const dependents = new Map<string, string[]>(definition.steps.map((s) => [s.name, []]));
  for (const step of definition.steps) for (const need of step.needs) dependents.get(need)?.push(step.name);
  return { definition, byName, dependents, keyed: definition.steps.some((s) => s.concurrencyKey !== null) };
}

/** An error the ledger stores on a step or run: its code is one of the {@link ErrorCode}s users can match on. */
export type StoredError = ErrorRecord & { code: ErrorCode };

/** How a run ended. */
export type EndStatus = 'succeeded' | 'failed' | 'cancelled';

/**
 * What the ledger's rules need from the driver of the transaction they run in, besides statements: where events
 * go, pipeline definitions, what to do when a child run ends, and how values are encoded for its columns.
 */
export interface LedgerTx {
  /** Records an event: handed to the in-process bus and written before the transaction commits. */
  emit(out: RunEvent[], run: Pick<RunRow, 'id' | 'pipeline'>, type: EventType, step: string | null, at: number, data?: Record<string, unknown>): void;
  /** The compiled definition of a pipeline version (a cache lookup; asynchronous on PostgreSQL). */
  pipelineOf(run: Pick<RunRow, 'pipeline' | 'version'>): CompiledPipeline | Promise<CompiledPipeline>;
  /** A run that has a parent (a `pipeline` step's child) ended: the parent's step completes. */
  childEnded(out: RunEvent[], runId: string, status: EndStatus, at: number): void | Promise<void>;
  /**
   * Marks the ready steps of a run queued, as many as `limit` allows, and returns them by priority, then step order.
   * Each driver runs the rule of ./queue-ready.ts that costs less on it.
   */
  queueReady(runId: string, limit: QueueLimit): Rule<QueuedStep[]>;
  /**
   * Whether {@link queueReady}, given the run's `AttemptsOfRun`, makes the attempts of the steps it queues (and
   * applies a settle's counters) in its own statement; otherwise it ignores them.
   */
  readonly queuesWithAttempts: boolean;
  /** Work became ready for workers in other processes (PostgreSQL notifies them at commit; SQLite needs nothing). */
  wake(): void;
  /** A value as a JSON column parameter. */
  json(value: unknown): string;
  /** JSON text (as read from a row, or made by JSON.stringify) as a JSON column parameter. */
  jsonText(text: string | null): string | null;
  /** Text as a text column parameter. */
  text(text: string | null): string | null;
  /** Attempts queued from now on in this transaction are leased as they are inserted, while this says so. */
  directLease: DirectLease | null;
}

/**
 * Set by a driver for a completion whose claim, later in the same transaction, will take every attempt that becomes
 * available in it: the claim asks for more than were available before. An attempt queued for now (no concurrency
 * key, not held, of `runId` when the claim is for one run) is then made leased to `owner`, `room` at most, and
 * its row added to `rows` for the claim, which leases the others as usual. It is never queued, so its step never
 * enters the queue's index.
 */
export interface DirectLease {
  owner: string;
  now: number;
  until: number;
  room: number;
  runId: string | undefined;
  rows: ClaimedAttemptRow[];
}
