import type { Logger } from 'pino';
import { SluiceError } from '../core/errors.js';

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * The level of a command's logs: `SLUICE_LOG_LEVEL` when set (fatal, error, warn, info, debug, trace or silent),
 * else `fallback`. A value that is no level is refused by name.
 */
export function logLevel(fallback: string, env: NodeJS.ProcessEnv = process.env): string {
  const raw = env['SLUICE_LOG_LEVEL']?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (!LEVELS.includes(raw)) throw new SluiceError('VALIDATION_FAILED', `SLUICE_LOG_LEVEL must be one of ${LEVELS.join(', ')}, got ${JSON.stringify(env['SLUICE_LOG_LEVEL'])}`);
  return raw;
}

/**
 * The structured (JSON lines) logger of a command, on stderr. Writes are synchronous so that the lines of a
 * shutdown reach the terminal before the process exits. `fallback` is the level when `SLUICE_LOG_LEVEL` is unset:
 * `info` for the long-running `serve` and `worker`, `silent` for the others, which report on the terminal
 * themselves.
 */
export async function createCommandLogger(fallback: string, serializers: Record<string, (value: any) => unknown> = {}): Promise<Logger> {
  const level = logLevel(fallback);
  // Loaded only by a command that logs: the others start without it.
  const { pino } = await import('pino');
  return pino({ level, serializers }, pino.destination({ fd: 2, sync: true }));
}
