import type { RunEvent } from '../store/store.js';
import type { RunPort } from '../store/ports.js';
import type { EngineLogger } from './engine-log.js';

/**
 * How often {@link handBackAttempts} tries while another process is reaping, and how long it waits between tries.
 * What is left is taken over after lease expiry, or at once by a `--resume` on this machine.
 */
const HAND_BACK_TRIES = 20;
const HAND_BACK_RETRY_MS = 50;

/**
 * Hands the `held` attempts of a stopped worker (`owner`) back: the reaper's path with that worker declared dead,
 * so they are re-queued without waiting out their lease. A store with several processes lets one reaper at a time
 * through, so a busy reaper means: try again shortly. Resolves with how many were handed back.
 */
export async function handBackAttempts(
  deps: { runs: RunPort; now: () => number; publish: (events: RunEvent[]) => void; logger: EngineLogger },
  owner: string,
  held: number,
): Promise<number> {
  let left = held;
  let handedBack = 0;
  for (let tries = 0; left > 0 && tries < HAND_BACK_TRIES; tries += 1) {
    if (tries > 0) await new Promise((r) => setTimeout(r, HAND_BACK_RETRY_MS));
    const result = await deps.runs.reap(deps.now(), (o) => o === owner);
    deps.publish(result.events);
    left -= result.expired;
    handedBack += result.expired;
  }
  if (left > 0) deps.logger.warn({ owner, attempts: left }, 'attempts not handed back; another worker takes them over when their lease expires');
  return handedBack;
}
