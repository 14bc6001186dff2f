import type { WaitAccess } from '../steps/step-type.js';
import type { ClaimedAttempt, RunEvent } from '../store/store.js';
import type { WaitPort } from '../store/waits-port.js';

/**
 * What a waiting step of `attempt` sees of its wait: the wait it was woken from (read once, before it runs) and
 * the events the store received. Events written by claiming or finishing go to `publish`.
 */
export async function waitAccess(port: WaitPort, attempt: ClaimedAttempt, step: string, now: () => number, publish?: (events: RunEvent[]) => void): Promise<WaitAccess> {
  const current = await port.currentWait(attempt.runId, step);
  return {
    current,
    eventsSince: (name, since, limit) => port.eventsSince(name, since, limit),
    async claim(eventId) {
      const { event, events } = await port.claimWait(attempt.runId, step, eventId, now());
      publish?.(events);
      return event;
    },
    async matched() {
      const id = current?.eventId ?? (await port.currentWait(attempt.runId, step))?.eventId ?? null;
      return id === null ? undefined : port.eventById(id);
    },
    async finish(emit?: 'step.woken' | 'step.timed_out') {
      publish?.(await port.finishWait(attempt.runId, step, now(), emit));
    },
  };
}
