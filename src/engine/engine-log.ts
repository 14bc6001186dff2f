import type { RunEvent } from '../store/store.js';

/** One logging call: structured fields first, then the message (pino's order). */
export type LogFn = (fields: Record<string, unknown>, message: string) => void;

/**
 * What the engine logs to: a pino logger fits (`pino()` or a child of it). Fields are snake_case (`run_id`,
 * `pipeline`, `step`, `attempt`, `error_code`) so that log queries read the same across commands.
 */
export interface EngineLogger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

/** A logger that drops everything: the library's default, so an embedded engine prints nothing it was not asked to. */
export const silentLogger: EngineLogger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

/** The fields every line about one step of one run carries. */
function stepFields(e: RunEvent): Record<string, unknown> {
  const fields: Record<string, unknown> = { run_id: e.runId, pipeline: e.pipeline };
  if (e.step !== null) fields['step'] = e.step;
  const attempt = e.data?.['attempt'];
  if (typeof attempt === 'number') fields['attempt'] = attempt;
  return fields;
}

/** `code` and `message` of an event's error, as `error_code` and `error`. */
function errorFields(data: Record<string, unknown> | null): Record<string, unknown> {
  const error = data?.['error'] as { code?: unknown; message?: unknown } | undefined;
  if (!error || typeof error !== 'object') return {};
  return { error_code: error.code, error: error.message };
}

/**
 * Logs the run events worth an operator's attention: a failed attempt that will be retried and a step that
 * failed for good (warn), an attempt re-queued because its worker's lease expired (warn), and a run that failed:
 * it is in the dead letters until retried (error). Normal transitions are not logged: the run's events keep them.
 */
export function logRunEvents(logger: EngineLogger, events: readonly RunEvent[]): void {
  for (const e of events) logRunEvent(logger, e);
}

const LOGGED = new Set<string>(['step.retrying', 'step.failed', 'run.failed', 'step.queued']);

function logRunEvent(logger: EngineLogger, e: RunEvent): void {
  // Most events are normal transitions: nothing is built for them.
  if (!LOGGED.has(e.type)) return;
  const fields = stepFields(e);
  switch (e.type) {
    case 'step.retrying':
      return logger.warn({ ...fields, ...errorFields(e.data), next_attempt: e.data?.['next_attempt'], delay_ms: e.data?.['delay_ms'] }, 'step attempt failed; retrying');
    case 'step.failed':
      return logger.warn({ ...fields, ...errorFields(e.data) }, 'step failed');
    case 'run.failed':
      return logger.error({ ...fields, ...errorFields(e.data), dead_letter: true }, 'run failed; in the dead letters until retried');
    case 'step.queued':
      if (e.data?.['reason'] === 'lease expired') logger.warn({ ...fields, reason: 'lease expired' }, 'lease expired; attempt queued again');
      return;
  }
}
