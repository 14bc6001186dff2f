import { SluiceError } from '../core/errors.js';
import { waitMatches, type StepWait } from '../core/waits.js';
import type { RunEvent } from '../store/store.js';
import type { WaitPort } from '../store/waits-port.js';

/** Open waits whose match is evaluated per event, looked at per event at most. */
const UNKEYED_LIMIT = 10_000;

/** What {@link deliverEvent} did. */
export interface DeliveredEvent {
  /** The id the store gave the event. */
  id: number;
  /** The waits it satisfied, as run and step. */
  woke: Array<{ runId: string; step: string }>;
}

/**
 * Keeps an emitted event and wakes the waits it satisfies. The event is stored first and the open waits read
 * after, and a wait that begins reads the stored events after it is stored: whichever comes second sees the
 * other, so no wait misses an event of its lookback. A wait whose match fails to evaluate is left waiting
 * (`onMatchError` hears why).
 */
export async function deliverEvent(
  port: WaitPort,
  name: string,
  payload: unknown,
  now: number,
  publish: (events: RunEvent[]) => void,
  onMatchError: (wait: StepWait, err: unknown) => void,
): Promise<DeliveredEvent> {
  const keyed = await keyedDelivery(port, publish).deliver(name, payload, now);
  const id = keyed.id;
  const woke = keyed.woke;
  if (!keyed.unkeyed) return { id, woke };
  const take = async (w: StepWait) => {
    const { event, events } = await port.claimWait(w.runId, w.step, id, now);
    publish(events);
    if (event?.id === id) woke.push({ runId: w.runId, step: w.step });
  };
  for (const w of await port.openUnkeyedWaits(name, UNKEYED_LIMIT)) {
    let matches: boolean;
    try {
      matches = await waitMatches(w, payload);
    } catch (err) {
      onMatchError(w, err);
      continue;
    }
    if (matches) await take(w);
  }
  return { id, woke };
}

/** The error of a wait whose match failed on an event: names the run, the step and the field. */
export function matchFailed(w: StepWait, event: string, err: unknown): SluiceError {
  const reason = err instanceof Error ? err.message : String(err);
  return new SluiceError('EXPRESSION_FAILED', `wait_for_event ${w.step} of run ${w.runId}: with.match failed on event ${event}; the run keeps waiting: ${reason}`, {
    retryable: false,
    cause: err,
  });
}

/** A keyed delivery; `unkeyed` says open waits with a per-event match wait on the event's name (read after commit). */
type Keyed = { id: number; woke: Array<{ runId: string; step: string }>; unkeyed: boolean };

/**
 * Stores events and wakes their keyed waits, many events per transaction: events emitted while a transaction is
 * under way wait for the next one, which takes them all (webhooks arrive many at once).
 */
class KeyedDelivery {
  private queue: Array<{ name: string; payload: unknown; now: number; done: (r: Keyed) => void; fail: (e: unknown) => void }> = [];
  private flushing = false;

  constructor(
    private readonly port: WaitPort,
    private readonly publish: (events: RunEvent[]) => void,
  ) {}

  deliver(name: string, payload: unknown, now: number): Promise<Keyed> {
    return new Promise((done, fail) => {
      this.queue.push({ name, payload, now, done, fail });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, 500);
      try {
        const { delivered, events } = await this.port.deliverKeyedBatch(batch, Math.max(...batch.map((b) => b.now)));
        this.publish(events);
        // Read after the events are committed, once per batch: a wait stored after this read sees them in its lookback.
        // Should that read fail, each event looks for such waits itself, as it would without this.
        const unkeyed = await this.port.namesWithUnkeyedWaits(batch.map((b) => b.name)).catch(() => null);
        batch.forEach((b, i) => b.done({ ...delivered[i]!, unkeyed: unkeyed?.has(b.name) ?? true }));
      } catch (err) {
        for (const b of batch) b.fail(err);
      }
    }
    this.flushing = false;
  }
}

// One batcher per publisher (an engine) and store.
const deliveries = new WeakMap<(events: RunEvent[]) => void, WeakMap<WaitPort, KeyedDelivery>>();

function keyedDelivery(port: WaitPort, publish: (events: RunEvent[]) => void): KeyedDelivery {
  let byPort = deliveries.get(publish);
  if (!byPort) deliveries.set(publish, (byPort = new WeakMap()));
  let d = byPort.get(port);
  if (!d) byPort.set(port, (d = new KeyedDelivery(port, publish)));
  return d;
}
