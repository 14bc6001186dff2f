import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError, OpenAIError } from 'openai';
import { isSluiceError, SluiceError } from '../../core/errors.js';
import type { StepContext } from '../step-type.js';
import { abortError, excerpt, isRetryableStatus, redact, retryAfterMs } from '../http/failures.js';

/** What a failure message names about the request. */
export interface RequestTarget {
  baseUrl: string;
  model: string;
  keySecret: string;
  timeoutMs: number;
  /** The raw body of the last error response, read before the SDK parsed it (see `captureErrorBodies`). */
  errorBody: string | undefined;
}

const MESSAGE_EXCERPT_CHARS = 500;

/**
 * Turns what the OpenAI SDK throws into a `SluiceError`: 408, 429 and 5xx are retryable with
 * `details.retryAfterMs` from `Retry-After`; other statuses are not, and quote the server's message;
 * connection errors are retryable; the client timeout is a retryable `STEP_TIMEOUT`; an abort of
 * `ctx.signal` rejects with its reason.
 */
export function toLlmFailure(err: unknown, ctx: StepContext, target: RequestTarget): Error {
  if (isSluiceError(err)) return err;
  if (ctx.signal.aborted || err instanceof APIUserAbortError) return abortError(ctx.signal);
  const where = `${target.baseUrl} (model ${target.model})`;
  if (err instanceof APIConnectionTimeoutError) {
    return new SluiceError('STEP_TIMEOUT', `chat completion at ${where} timed out after ${target.timeoutMs} ms`, { retryable: true, cause: err });
  }
  if (err instanceof APIConnectionError) {
    const reason = err.cause instanceof Error ? err.cause.message : err.message;
    return new SluiceError('STEP_FAILED', `cannot reach ${where}: ${redact(reason, ctx.secrets)}`, { retryable: true, cause: err });
  }
  if (err instanceof APIError && typeof err.status === 'number') return statusFailure(err, err.status, ctx, target, where);
  if (err instanceof OpenAIError) return new SluiceError('STEP_FAILED', `chat completion at ${where} failed: ${err.message}`, { retryable: false, cause: err });
  return err instanceof Error ? err : new Error(String(err));
}

function statusFailure(err: APIError, status: number, ctx: StepContext, target: RequestTarget, where: string): SluiceError {
  const retryable = isRetryableStatus(status);
  const wait = retryable ? retryAfterMs(err.headers, ctx.now()) : undefined;
  const said = redact(excerpt(serverMessage(err, target.errorBody), MESSAGE_EXCERPT_CHARS), ctx.secrets);
  const hint = status === 401 || status === 403 ? ` (check the API key in secret ${target.keySecret})` : '';
  const details: Record<string, unknown> = { status };
  if (wait !== undefined) details['retryAfterMs'] = wait;
  return new SluiceError('STEP_FAILED', `${where} answered ${status}: ${said}${hint}`, { retryable, cause: err, details });
}

/**
 * The server's own words. The SDK only understands OpenAI's `{ error: { message } }`; vLLM and others answer
 * `{ message }` or `{ detail }` at the top level, which the SDK reports as "no body", so read the raw body too.
 */
function serverMessage(err: APIError, rawBody: string | undefined): string {
  const fromSdk = (err.error as { message?: unknown } | undefined)?.message;
  if (typeof fromSdk === 'string' && fromSdk !== '') return fromSdk;
  if (rawBody === undefined || rawBody.trim() === '') return 'no message';
  try {
    const body = JSON.parse(rawBody) as Record<string, unknown>;
    const found = [body['message'], body['detail'], body['error']].find((v) => typeof v === 'string' && v !== '');
    return typeof found === 'string' ? found : rawBody;
  } catch {
    return rawBody;
  }
}

/**
 * A `fetch` for the SDK that keeps the text of error responses (the body is cloned, so the SDK still reads
 * it). One per request, so concurrent requests never see each other's errors.
 */
export function captureErrorBodies(): { fetch: typeof fetch; lastErrorBody: () => string | undefined } {
  let body: string | undefined;
  return {
    fetch: async (input, init) => {
      const response = await fetch(input, init);
      if (!response.ok) body = await response.clone().text().catch(() => undefined);
      return response;
    },
    lastErrorBody: () => body,
  };
}
