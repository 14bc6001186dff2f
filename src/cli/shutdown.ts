import { parseDuration } from '../core/duration.js';
import { SluiceError } from '../core/errors.js';
import type { EngineLogger } from '../engine/engine-log.js';

/** How long `serve` and `worker` let running attempts finish after SIGTERM or SIGINT. Default: 10 s. */
export const DEFAULT_GRACE = '10s';

/** `--grace` in milliseconds (`30s`, `1m`, `500ms`, or a number of milliseconds); anything else is refused by name. */
export function parseGrace(value: string | undefined): number {
  try {
    return parseDuration(value === undefined ? DEFAULT_GRACE : /^\d+$/.test(value) ? Number(value) : value);
  } catch (err) {
    throw new SluiceError('INPUT_INVALID', `--grace: ${(err as Error).message}`);
  }
}

/**
 * Resolves with the name of the first SIGINT or SIGTERM the process receives. A second one exits at once (code
 * 130 or 143): whatever is still running is then left to lease expiry.
 */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let received = false;
    // The listeners stay: removing them would let a second signal kill the process before its last log line.
    const on = (signal: NodeJS.Signals) => {
      if (received) process.exit(signal === 'SIGINT' ? 130 : 143);
      received = true;
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

/**
 * Runs `stop` between a `shutdown started` and a `shutdown finished` log line (with how long it took and what
 * `stop` reports, such as the attempts handed back).
 */
export async function loggedShutdown(logger: EngineLogger, fields: Record<string, unknown>, stop: () => Promise<Record<string, unknown>>): Promise<void> {
  const started = Date.now();
  logger.info(fields, 'shutdown started');
  const outcome = await stop();
  logger.info({ ...fields, ...outcome, duration_ms: Date.now() - started }, 'shutdown finished');
}
