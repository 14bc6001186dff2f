import type Database from 'better-sqlite3';
import { runSync, type Rule, type SyncExecutor } from '../ledger/effects.js';
import type { CompiledPipeline, DirectLease, EndStatus, LedgerTx } from '../ledger/ledger-tx.js';
import * as L from '../ledger/transitions.js';
import type { SettledRun } from '../ledger/transitions.js';
import { pickThenQueue, type QueueLimit, type QueuedStep } from '../ledger/queue-ready.js';
import type { EventType, RunEvent } from '../store.js';
import { type PackedEvent, type RunRow } from '../rows.js';
import { SharedStatements } from './sqlite-features.js';

/** Event rows written per INSERT statement. */
const EVENT_CHUNK = 64;
/** Parameters of one event row: id, run_id, pipeline, step, type, data, at, more. */
const EVENT_COLUMNS = 8;
/** Consecutive events of one run packed into one row, at most. */
const EVENTS_PER_ROW = 32;

type RunRef = Pick<RunRow, 'id' | 'pipeline' | 'version'>;

/**
 * The SQLite driver of the ledger: runs the shared run-state rules (../ledger) synchronously inside the
 * store's better-sqlite3 transaction, with statements prepared once, and writes the events they emit.
 */
export class RunTransitions extends SharedStatements implements LedgerTx, SyncExecutor {
  private readonly eventStmts = new Map<number, Database.Statement>();
  private readonly lastEventId: Database.Statement;
  private readonly unwritten: RunEvent[] = [];
  /** Set by a completion whose claim will take what it queues (../ledger/ledger-tx.ts). */
  directLease: DirectLease | null = null;
  /** Called when a child run reaches a terminal state (the store completes the parent's `pipeline` step). */
  onRunEnded: ((out: RunEvent[], runId: string, status: EndStatus, at: number) => void) | null = null;

  constructor(
    db: Database.Database,
    private readonly compiled: (pipeline: string, version: number) => CompiledPipeline,
  ) {
    super(db);
    this.lastEventId = db.prepare(`SELECT COALESCE(MAX(id), 0) AS id FROM events`);
  }

  /** Runs a ledger rule in the current transaction. */
  run<T>(rule: Rule<T>): T {
    return runSync(rule, this);
  }

  /** The queueing leaves the attempts to insertAttempt, whose update marks each step queued too. */
  readonly queuesWithAttempts = false;

  /** A SELECT of the ready steps, each then marked by its attempt's update: several times cheaper here than one UPDATE over the SELECT. */
  queueReady(runId: string, limit: QueueLimit): Rule<QueuedStep[]> {
    return pickThenQueue(this, runId, limit);
  }

  wake(): void {}

  json(value: unknown): string {
    return JSON.stringify(value === undefined ? null : value);
  }

  jsonText(text: string | null): string | null {
    return text;
  }

  text(text: string | null): string | null {
    return text;
  }

  pipelineOf(run: Pick<RunRow, 'pipeline' | 'version'>): CompiledPipeline {
    return this.compiled(run.pipeline, run.version);
  }

  childEnded(out: RunEvent[], runId: string, status: EndStatus, at: number): void {
    this.onRunEnded?.(out, runId, status, at);
  }

  getRun(id: string): RunRow | undefined {
    return this.run(L.getRun(id));
  }

  /**
   * Records an event: collected for the in-process bus and written by {@link flushEvents} before the
   * transaction commits, many rows per INSERT.
   */
  emit(out: RunEvent[], run: Pick<RunRow, 'id' | 'pipeline'>, type: EventType, step: string | null, at: number, data?: Record<string, unknown>): void {
    const event: RunEvent = { id: 0, runId: run.id, pipeline: run.pipeline, step, type, data: data ?? null, at };
    out.push(event);
    this.unwritten.push(event);
  }

  /**
   * Writes the events emitted in this transaction and fills in their ids, consecutive events of one run
   * packed into one row (migration 7). Call before commit: this transaction is the only writer, so the ids
   * after the largest one stored are free.
   */
  flushEvents(): void {
    const events = this.unwritten.splice(0);
    if (events.length === 0) return;
    let id = (this.lastEventId.get() as { id: number }).id;
    let params: unknown[] = [];
    for (let i = 0; i < events.length; ) {
      const first = events[i]!;
      first.id = ++id;
      let end = i + 1;
      let more: PackedEvent[] | null = null;
      for (; end < events.length && end - i < EVENTS_PER_ROW && events[end]!.runId === first.runId; end++) {
        const e = events[end]!;
        e.id = ++id;
        (more ??= []).push([e.step, e.type, e.data, e.at]);
      }
      params.push(id, first.runId, first.pipeline, first.step, first.type, first.data === null ? null : JSON.stringify(first.data), first.at, more && JSON.stringify(more));
      i = end;
      if (params.length === EVENT_CHUNK * EVENT_COLUMNS || i === events.length) {
        this.insertEvents(params.length / EVENT_COLUMNS).run(params);
        params = [];
      }
    }
  }

  /** Drops emitted events when a transaction rolls back. */
  discardEvents(): void {
    this.unwritten.length = 0;
  }

  private insertEvents(rows: number): Database.Statement {
    let stmt = this.eventStmts.get(rows);
    if (!stmt) {
      const values = Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', ');
      stmt = this.db.prepare(`INSERT INTO events (id, run_id, pipeline, step, type, data, at, more) VALUES ${values}`);
      this.eventStmts.set(rows, stmt);
    }
    return stmt;
  }

  settle(out: RunEvent[], run: RunRef, step: string, at: number, wasActive = true): void {
    this.run(L.settle(this, out, run, step, at, wasActive));
  }

  releaseDependents(run: RunRef, step: string): void {
    this.run(L.releaseDependents(this, run, step));
  }

  afterSettle(out: RunEvent[], row: SettledRun, at: number): void {
    this.run(L.afterSettle(this, out, row, at));
  }

}
