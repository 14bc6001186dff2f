import { redactSecrets } from '../../core/redact.js';
import { SluiceError } from '../../core/errors.js';

/** Reads a header by name; both `Headers` and the OpenAI SDK's error headers have this shape. */
export interface HeaderSource {
  get(name: string): string | null;
}

/**
 * How long a server asked us to wait, in milliseconds, or `undefined` when it did not say.
 *
 * Reads `retry-after-ms` (OpenAI's non-standard precise form) first, then `Retry-After` as either delay
 * seconds or an HTTP date (RFC 9110 section 10.2.3). A date in the past means "now" (0).
 */
export function retryAfterMs(headers: HeaderSource | undefined | null, now: number): number | undefined {
  if (!headers) return undefined;
  const precise = parseNonNegative(headers.get('retry-after-ms'));
  if (precise !== undefined) return Math.ceil(precise);
  const value = headers.get('retry-after')?.trim();
  if (!value) return undefined;
  const seconds = parseNonNegative(value);
  if (seconds !== undefined) return Math.ceil(seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function parseNonNegative(value: string | null): number | undefined {
  if (value === null || !/^\s*\d+(\.\d+)?\s*$/.test(value)) return undefined;
  return Number(value);
}

/** Statuses worth another try: request timeout, rate limited, and server errors. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Cuts text to `max` characters for an error message, marking the cut. */
export function excerpt(text: string, max = 300): string {
  const flat = text.trim();
  return flat.length > max ? `${flat.slice(0, max)}...` : flat;
}

/** Blanks out secret values: templates may put them in a URL or body, and a server may echo them back. */
export function redact(text: string, secrets: Record<string, string>): string {
  return redactSecrets(text, secrets);
}

/**
 * The abort reason when it is an Error. `signal.abort()` with no reason yields a DOMException without a
 * stable code, so that (and any non-Error reason) becomes `CANCELLED`.
 */
export function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && !(reason instanceof DOMException)) return reason;
  return new SluiceError('CANCELLED', 'step was cancelled');
}
