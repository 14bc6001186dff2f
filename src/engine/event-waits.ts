import { SluiceError } from '../core/errors.js';
import { eventKey, waitMatches, type StepWait } from '../core/waits.js';
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
  const id = await port.recordEvent(name, payload, now);
  const woke: DeliveredEvent['woke'] = [];
  const take = async (w: StepWait) => {
    const { event, events } = await port.claimWait(w.runId, w.step, id, now);
    publish(events);
    if (event?.id === id) woke.push({ runId: w.runId, step: w.step });
  };
  for (const path of await port.openKeyPaths(name)) {
    const key = eventKey(payload, path);
    if (key === undefined) continue;
    for (const w of await port.openKeyedWaits(name, path, key)) await take(w);
  }
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
