import type { DueApproval, ReceivedEvent, StepWait } from '../core/waits.js';
import type { Rule } from './ledger/effects.js';
import type { LedgerTx } from './ledger/ledger-tx.js';
import * as waits from './ledger/waits.js';
import { decide } from './ledger/supervision.js';
import type { RunRow } from './rows.js';
import type { HumanDecision, RunEvent } from './store.js';

/** Durable waits and received events, as the engine uses them (both backends run the same ledger rules). */
export interface WaitPort {
  /** The wait a step was woken from, if it is current. */
  currentWait(runId: string, step: string): Promise<StepWait | undefined>;
  /** The waiting steps of a run and what they wait for. */
  waitsOfRun(runId: string): Promise<StepWait[]>;
  /** Keeps an event for the waits that begin within their lookback; returns its id. */
  recordEvent(name: string, payload: unknown, now: number): Promise<number>;
  eventById(id: number): Promise<ReceivedEvent | undefined>;
  eventsSince(name: string, since: number, limit: number): Promise<ReceivedEvent[]>;
  openKeyPaths(name: string): Promise<string[]>;
  openKeyedWaits(name: string, path: string, value: string): Promise<StepWait[]>;
  openUnkeyedWaits(name: string, limit: number): Promise<StepWait[]>;
  /** Those of `names` that open waits with a per-event match wait on. */
  namesWithUnkeyedWaits(names: readonly string[]): Promise<Set<string>>;
  /** Gives an event to a wait unless it holds one; returns the event it holds and the events written. */
  claimWait(runId: string, step: string, eventId: number, now: number): Promise<{ event: ReceivedEvent | undefined; events: RunEvent[] }>;
  /** Marks a wait over; returns the events written. */
  finishWait(runId: string, step: string, now: number, emit?: 'step.woken' | 'step.timed_out'): Promise<RunEvent[]>;
  /** Keeps an event and wakes the open waits that correlate on a key it has, in one transaction. */
  deliverKeyed(name: string, payload: unknown, now: number): Promise<{ id: number; woke: Array<{ runId: string; step: string }>; events: RunEvent[] }>;
  /** {@link deliverKeyed} for several events in one transaction, in order. */
  deliverKeyedBatch(batch: ReadonlyArray<{ name: string; payload: unknown }>, now: number): Promise<{ delivered: Array<{ id: number; woke: Array<{ runId: string; step: string }> }>; events: RunEvent[] }>;
  /**
   * Ends an approval whose deadline passed as `decision` says: `step.timed_out`, then the decision, in one
   * transaction. Refused with ILLEGAL_TRANSITION, writing nothing, when the step is no longer blocked (a person
   * decided first).
   */
  timeOutApproval(runId: string, step: string, decision: HumanDecision, now: number): Promise<{ events: RunEvent[] }>;
  /** Approvals past their deadline, still blocked. */
  dueApprovals(now: number, limit: number): Promise<DueApproval[]>;
  /** Forgets events received before `before`, and the waits of runs no longer stored. */
  pruneEvents(before: number): Promise<{ events: number; waits: number }>;
}

/** How a driver runs the wait rules: a read, a write transaction, a transition that holds a run. */
export interface WaitRunner {
  read<T>(make: () => Rule<T>): Promise<T>;
  write<T>(rule: (tx: LedgerTx) => Rule<T>): Promise<T>;
  transition(runId: string, rule: (tx: LedgerTx, run: RunRow, events: RunEvent[]) => Rule<unknown>): Promise<{ events: RunEvent[] }>;
}

/** The wait port of a driver, over its runner. */
export function createWaitPort(r: WaitRunner): WaitPort {
  return {
    currentWait: (runId, step) => r.read(() => waits.currentWait(runId, step)),
    waitsOfRun: (runId) => r.read(() => waits.waitsOfRun(runId)),
    recordEvent: (name, payload, now) => r.write((tx) => waits.recordEvent(tx, name, payload, now)),
    eventById: (id) => r.read(() => waits.eventById(id)),
    eventsSince: (name, since, limit) => r.read(() => waits.eventsSince(name, since, limit)),
    openKeyPaths: (name) => r.read(() => waits.openKeyPaths(name)),
    openKeyedWaits: (name, path, value) => r.read(() => waits.openKeyedWaits(name, path, value)),
    openUnkeyedWaits: (name, limit) => r.read(() => waits.openUnkeyedWaits(name, limit)),
    namesWithUnkeyedWaits: (names) => r.read(() => waits.namesWithUnkeyedWaits(names)),
    async claimWait(runId, step, eventId, now) {
      let event: ReceivedEvent | undefined;
      const { events } = await r.transition(runId, function* (tx, run, out) {
        event = yield* waits.claimWait(tx, run, step, eventId, now, out);
      });
      return { event, events };
    },
    timeOutApproval: (runId, step, decision, now) =>
      r.transition(runId, function* (tx, run, out) {
        yield* waits.finishWait(tx, run, step, now, out, 'step.timed_out');
        yield* decide(tx, run, step, decision, now, out);
      }),
    async finishWait(runId, step, now, emit) {
      return (await r.transition(runId, (tx, run, out) => waits.finishWait(tx, run, step, now, out, emit))).events;
    },
    async deliverKeyed(name, payload, now) {
      const events: RunEvent[] = [];
      const done = await r.write((tx) => waits.deliverKeyed(tx, name, payload, now, events));
      return { ...done, events };
    },
    async deliverKeyedBatch(batch, now) {
      const events: RunEvent[] = [];
      const delivered = await r.write(function* (tx) {
        const out = [];
        for (const e of batch) out.push(yield* waits.deliverKeyed(tx, e.name, e.payload, now, events));
        return out;
      });
      return { delivered, events };
    },
    dueApprovals: (now, limit) => r.read(() => waits.dueApprovals(now, limit)),
    pruneEvents: (before) => r.write(() => waits.pruneEvents(before)),
  };
}

