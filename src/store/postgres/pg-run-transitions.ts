import type pg from 'pg';
import { runAsync, sql, type AsyncExecutor, type Rule, type Statement } from '../ledger/effects.js';
import type { FeatureRunner } from '../features/feature-runner.js';
import { type CompiledPipeline, type EndStatus, type LedgerTx } from '../ledger/ledger-tx.js';
import { endChild } from '../ledger/outcomes.js';
import * as L from '../ledger/transitions.js';
import { settleCountersWhere, type SettledRun } from '../ledger/transitions.js';
import { queueReadyInOne, type QueueLimit, type QueuedStep } from '../ledger/queue-ready.js';
import type { RunRow } from '../rows.js';
import type { EventType, RunEvent } from '../store.js';
import type { Tx } from './pg-attempts.js';
import { encodePgJson, pgJson, toPgText } from './pg-json.js';
import { insertEventsFrom } from './pg-store-sql.js';
import { CompiledPipelines } from '../shared-sql.js';

export type { RunState } from '../ledger/transitions.js';

/** Runs a shared statement on `client`, prepared once per connection under its key. */
const query = (client: pg.ClientBase, stmt: Statement, args: readonly unknown[]) => client.query({ name: `l_${stmt.key}`, text: stmt.pg, values: args as unknown[] });

/** Statements only this driver runs: row locks, and the batch fast paths. */
const PG = {
  // Locks the runs in id order, so concurrent transactions never wait on each other in a cycle.
  lockRuns: sql('pgLockRuns', `SELECT id FROM runs WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`),
  // $1 ids (each run at most once): settles one active step of each run in one statement. ANY of an array whose
  // length the planner does not guess: with the ids' count known and no statistics, it scanned every run.
  settleMany: sql('pgSettleMany', settleCountersWhere('id = ANY (ARRAY(SELECT unnest($1::text[])))', '$2', '$3', '$4::bigint')),
  // $1 run_ids $2 names (one element per dependent; each (run, name) at most once). The steps are reached through
  // their primary key (run_id = ANY of an array whose length the planner does not guess).
  decrementWaitingMany: sql(
    'pgDecrementWaitingMany',
    `UPDATE steps SET waiting_on = waiting_on - 1 FROM unnest($1::text[], $2::text[]) AS u(run_id, name)
     WHERE steps.run_id = ANY (ARRAY(SELECT unnest($1::text[]))) AND steps.run_id = u.run_id AND steps.name = u.name
       AND steps.status = 'pending'`,
  ),
  // $1 ids $2 active deltas (arrays; each run at most once): a settle of one active step of each run (remaining - 1)
  // together with the steps it queued, in one update of each run
  settleQueuedMany: sql(
    'pgSettleQueuedMany',
    `UPDATE runs SET active = active + u.d, remaining = remaining - 1 FROM unnest($1::text[], $2::int[]) AS u(id, d)
     WHERE runs.id = ANY (ARRAY(SELECT unnest($1::text[]))) AND runs.id = u.id`,
  ),
  // $1 run_ids $2 pipelines $3 steps $4 types $5 data (jsonb text) $6 ats $7 packed later events: rows in array order
  insertEvents: sql('pgInsertEvents', insertEventsFrom(1)),
};

/** The set-based statements of a completion batch, exported for the plan test. */
export const BATCH_STATEMENTS = { settleMany: PG.settleMany, decrementWaitingMany: PG.decrementWaitingMany };

/** Events a PostgreSQL events row holds at most: the id sequence steps by this many (migration 19). */
const EVENTS_PER_ROW = 8;

/** Event rows to insert: their columns (see {@link packEvents}) and how to give the events the ids the rows got. */
export interface EventRows {
  cols: unknown[][];
  /** Gives each event its id, from the ids of the inserted rows in row order. */
  fill(rowIds: readonly number[]): void;
}

/**
 * `events` as the columns of insertEvents (run_ids, pipelines, steps, types, data as JSON text, ats, packed later
 * events as JSON text), one element per row: consecutive events of one run share a row (migration 19), whose id is
 * its last event's, the others taking the ids just below it.
 */
export function packEvents(events: readonly RunEvent[]): EventRows {
  const cols: unknown[][] = [[], [], [], [], [], [], []];
  const sizes: number[] = [];
  for (let i = 0; i < events.length; ) {
    const first = events[i]!;
    let end = i + 1;
    while (end < events.length && end - i < EVENTS_PER_ROW && events[end]!.runId === first.runId) end++;
    cols[0]!.push(first.runId);
    cols[1]!.push(first.pipeline);
    cols[2]!.push(first.step);
    cols[3]!.push(first.type);
    cols[4]!.push(first.data === null ? null : pgJson(first.data));
    cols[5]!.push(first.at);
    cols[6]!.push(end - i === 1 ? null : JSON.stringify(events.slice(i + 1, end).map((e) => [e.step, e.type, e.data, e.at])));
    sizes.push(end - i);
    i = end;
  }
  return {
    cols,
    fill(rowIds) {
      let next = 0;
      sizes.forEach((size, row) => {
        const last = rowIds[row]!;
        for (let k = size - 1; k >= 0; k--) events[next++]!.id = last - k;
      });
    },
  };
}

type RunRef = Pick<RunRow, 'id' | 'pipeline' | 'version'>;

/** A step of {@link PgRunTransitions.settleMany}: its run's state, and the event that ends the step. */
export interface SettledStep {
  run: L.RunState;
  step: string;
  event: { type: EventType; data: Record<string, unknown> };
}

/**
 * The PostgreSQL driver of the ledger: runs the shared run-state rules (../ledger) inside one transaction,
 * awaiting each statement on its client (prepared once per connection by name). One instance per transaction:
 * it buffers that transaction's events until {@link flushEvents}.
 */
export class PgRunTransitions implements LedgerTx, AsyncExecutor {
  private readonly unwritten: RunEvent[] = [];

  constructor(
    private readonly client: pg.PoolClient,
    private readonly compiled: (pipeline: string, version: number) => Promise<CompiledPipeline>,
  ) {}

  /** Runs a ledger rule in this transaction. */
  run<T>(rule: Rule<T>): Promise<T> {
    return runAsync(rule, this);
  }

  async all(stmt: Statement, args: readonly unknown[]): Promise<unknown[]> {
    return (await query(this.client, stmt, args)).rows;
  }

  async exec(stmt: Statement, args: readonly unknown[]): Promise<number> {
    return (await query(this.client, stmt, args)).rowCount ?? 0;
  }

  /** The queueing makes the attempts in its own statement: one round trip where there were two. */
  readonly queuesWithAttempts = true;

  /** One statement: a round trip costs more here than the UPDATE over a SELECT does. */
  queueReady(runId: string, limit: QueueLimit): Rule<QueuedStep[]> {
    return queueReadyInOne(runId, limit);
  }

  /** Whether a rule made work ready for other processes' workers (the store notifies them at commit). */
  woken = false;

  /** Never: a claim here is one statement of its own, after the completion's. */
  readonly directLease = null;

  wake(): void {
    this.woken = true;
  }

  json(value: unknown): string {
    return pgJson(value);
  }

  jsonText(text: string | null): string | null {
    return encodePgJson(text);
  }

  text(text: string | null): string | null {
    return toPgText(text);
  }

  pipelineOf(run: Pick<RunRow, 'pipeline' | 'version'>): Promise<CompiledPipeline> {
    return this.compiled(run.pipeline, run.version);
  }

  /** A child run (one with a parent) ended: the parent's `pipeline` step completes in this transaction. */
  childEnded(out: RunEvent[], runId: string, status: EndStatus, at: number): Promise<void> {
    return this.run(endChild(this, runId, status, at, out));
  }

  getRun(id: string): Promise<RunRow | undefined> {
    return this.run(L.getRun(id));
  }

  /** Locks the run row until commit; every transaction that changes a run's counters takes this first. */
  lockRun(id: string): Promise<RunRow | undefined> {
    return this.run(L.lockRun(id));
  }

  /** Locks many run rows, in id order. */
  async lockRuns(ids: Iterable<string>): Promise<void> {
    const unique = [...new Set(ids)].sort();
    if (unique.length > 0) await this.all(PG.lockRuns, [unique]);
  }

  /** Records an event: collected for the in-process bus and written by {@link flushEvents} before commit. */
  emit(out: RunEvent[], run: Pick<RunRow, 'id' | 'pipeline'>, type: EventType, step: string | null, at: number, data?: Record<string, unknown>): void {
    const event: RunEvent = { id: 0, runId: run.id, pipeline: run.pipeline, step, type, data: data ?? null, at };
    out.push(event);
    this.unwritten.push(event);
  }

  /**
   * Writes the events emitted in this transaction in one INSERT and fills in their ids. Row ids come from a
   * sequence in insertion order, so the sorted ids belong to the rows in emission order.
   */
  async flushEvents(): Promise<void> {
    const events = this.takeEvents();
    if (events.length === 0) return;
    const rows = packEvents(events);
    rows.fill(((await this.all(PG.insertEvents, rows.cols)) as Array<{ id: number }>).map((r) => Number(r.id)).sort((a, b) => a - b));
  }

  /** The events emitted and not written yet, which the caller now writes (and whose ids it fills in). */
  takeEvents(): RunEvent[] {
    return this.unwritten.splice(0);
  }

  settle(out: RunEvent[], run: RunRef, step: string, at: number, wasActive = true): Promise<void> {
    return this.run(L.settle(this, out, run, step, at, wasActive));
  }

  /**
   * {@link settle} for many steps at once, each of a different run (the caller guarantees it), whose state `run`
   * was read by the lock this transaction holds: the waiting counts are updated in one statement (with `released`,
   * the statement that finished the steps updated them); the runs this
   * settle ends in one more (then each ends as {@link settle} ends it); a run that goes on queues what is ready,
   * and its counters take the settle and the queued steps in one update, where {@link settle} updates them twice:
   * the statement that queues its steps with their attempts, or (a run with no free slot, or with concurrency keys)
   * one statement for all such runs. When a run that ends is a child run, its parent (maybe in this batch too)
   * changes as it ends, so the batch settles as {@link settle} does, each run's state read back from its update.
   * Each step's own event (`step.succeeded`, ...) is emitted just before what its settle emits, so that a run's
   * events of the batch are consecutive and share an events row.
   */
  async settleMany(out: RunEvent[], settled: readonly SettledStep[], at: number, released = false): Promise<void> {
    if (settled.length === 0) return;
    const depRuns: string[] = [];
    const depNames: string[] = [];
    for (const { run, step } of released ? [] : settled) {
      for (const d of (await this.pipelineOf(run)).dependents.get(step) ?? []) {
        depRuns.push(run.id);
        depNames.push(d);
      }
    }
    if (depRuns.length > 0) await this.exec(PG.decrementWaitingMany, [depRuns, depNames]);
    const ends = settled.filter(({ run }) => L.settleEnds(run, -1, -1));
    if (ends.some(({ run }) => run.parent_run_id !== null)) return this.settleEach(out, settled, at);
    const rows = ends.length === 0 ? [] : ((await this.all(PG.settleMany, [ends.map((s) => s.run.id), -1, -1, at])) as SettledRun[]);
    const byId = new Map(rows.map((r) => [r.id, r]));
    const goOn: { ids: string[]; deltas: number[] } = { ids: [], deltas: [] };
    for (const { run, step, event } of settled) {
      this.emit(out, run, event.type, step, at, event.data);
      const ended = byId.get(run.id);
      if (ended) {
        await this.run(L.afterSettle(this, out, ended, at));
        continue;
      }
      const { queued, counted } = await this.run(L.queueReadySteps(this, out, { ...run, active: run.active - 1, remaining: run.remaining - 1 }, at, { active: -1, remaining: -1 }));
      if (counted) continue;
      goOn.ids.push(run.id);
      goOn.deltas.push(queued - 1);
    }
    if (goOn.ids.length > 0) await this.exec(PG.settleQueuedMany, [goOn.ids, goOn.deltas]);
  }

  /** The runs' counters updated in one statement, then each run that goes on queues what is ready (and counts it). */
  private async settleEach(out: RunEvent[], settled: readonly SettledStep[], at: number): Promise<void> {
    const rows = (await this.all(PG.settleMany, [settled.map((s) => s.run.id), -1, -1, at])) as SettledRun[];
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const { run, step, event } of settled) {
      this.emit(out, run, event.type, step, at, event.data);
      await this.run(L.afterSettle(this, out, byId.get(run.id)!, at));
    }
  }

}

/** Opens the run transitions of transactions, with the stored pipelines they need compiled once per store. */
export class TxOpener {
  private readonly pipelines = new CompiledPipelines();

  /** The transaction state of `client`: ledger rules and buffered events. */
  open(client: pg.PoolClient): Tx {
    const t: PgRunTransitions = new PgRunTransitions(client, (name, version) => t.run(this.pipelines.get(name, version)));
    return { client, t, wake: false };
  }
}

/**
 * The PostgreSQL runner of the feature rules (../features): each rule in one transaction of `tx` (the store's,
 * retrying transient failures), awaiting each statement on its client.
 */
export class PgFeatureRunner implements FeatureRunner {
  readonly dialect = 'pg' as const;
  readonly jsonText = encodePgJson;
  readonly text = toPgText;

  constructor(private readonly tx: <T>(fn: (client: pg.PoolClient) => Promise<T>) => Promise<T>) {}

  read<T>(make: () => Rule<T>): Promise<T> {
    return this.tx((client) =>
      runAsync(make(), { all: async (stmt, args) => (await query(client, stmt, args)).rows, exec: async (stmt, args) => (await query(client, stmt, args)).rowCount ?? 0 }),
    );
  }

  write<T>(make: () => Rule<T>): Promise<T> {
    return this.read(make);
  }

  list(values: readonly unknown[]): readonly unknown[] {
    return values;
  }
}
