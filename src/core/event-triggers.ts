import { SluiceError } from './errors.js';
import type { Pipeline } from './model.js';

/** The longest event name accepted (the HTTP route's limit too). */
export const MAX_EVENT_NAME_LENGTH = 200;

/**
 * The pipelines an event starts: every enabled one with a trigger `{ event: name }`, in the order given.
 * The one rule the library, the CLI (`sluice emit`) and the HTTP route (`POST /api/events/:name`) share.
 */
export function pipelinesTriggeredBy<T extends { definition: Pick<Pipeline, 'disabled' | 'triggers'> }>(pipelines: readonly T[], event: string): T[] {
  return pipelines.filter((p) => !p.definition.disabled && p.definition.triggers.some((t) => t.kind === 'event' && t.event === event));
}

/** VALIDATION_FAILED unless `event` is a name a trigger could hold: 1 to 200 characters. */
export function checkEventName(event: string): void {
  if (typeof event !== 'string' || event.length === 0 || event.length > MAX_EVENT_NAME_LENGTH) {
    throw new SluiceError('VALIDATION_FAILED', `event name must be 1 to ${MAX_EVENT_NAME_LENGTH} characters, got ${JSON.stringify(String(event).slice(0, 40))}`);
  }
}
