import { parseDuration } from '../../core/duration.js';
import { isSluiceError, SluiceError } from '../../core/errors.js';
import { templateText, type TemplateSpot } from '../../core/expressions.js';
import type { JsonSchema } from '../../core/model.js';
import { redactJson } from '../../core/redact.js';
import type { StepContext, StepType } from '../step-type.js';
import { abortError, excerpt, isRetryableStatus, redact, retryAfterMs } from './failures.js';

/** How an `http` step reads the response body. */
export type HttpExpect = 'json' | 'text';

/** `with` of an `http` step. Every string may be a `${{ }}` template (secrets included). */
export interface HttpConfig {
  /**
   * Absolute http(s) URL. A `${{ }}` value at the very start of the URL (before its `://`) is taken as written, so
   * a base URL can come from a secret or the input; every value after the `://` is percent-encoded as one URL
   * component (`encodeURIComponent`: `/`, `?`, `&`, `#`, spaces... are escaped), so it cannot add path segments
   * or query parameters.
   */
  url: string;
  /** Default: `GET`. */
  method?: string;
  /** Request headers; values are stringified. A value with a line break (CR or LF) is refused. */
  headers?: Record<string, string | number | boolean>;
  /**
   * Request body. A string is sent as is; anything else is JSON-encoded and gets
   * `content-type: application/json` unless `headers` set one. `null` or absent: no body.
   */
  body?: unknown;
  /** Whole request, body included; a number is milliseconds. Default: 30 s. */
  timeout?: string | number;
  /** How to read the response body. Default: `json` when the content-type is JSON (`*\/json`, `*+json`), else `text`. */
  expect?: HttpExpect;
  /** Statuses that count as success, replacing the default (any 2xx). */
  ok_status?: number[];
}

/** Output of an `http` step. */
export interface HttpOutput {
  status: number;
  /** Every response header, names lower-cased; repeated headers joined with `, `. */
  headers: Record<string, string>;
  /** Parsed JSON (`null` for an empty body) or text, per `expect`. */
  body: unknown;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const BODY_EXCERPT_CHARS = 500;
const EXPECT_MODES: readonly HttpExpect[] = ['json', 'text'];

const httpConfigSchema: JsonSchema = {
  type: 'object',
  properties: {
    url: { type: 'string', minLength: 1 },
    method: { type: 'string', pattern: '^[A-Za-z]+$' },
    headers: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
    body: {},
    timeout: { anyOf: [{ type: 'string' }, { type: 'number', minimum: 0 }] },
    expect: { enum: EXPECT_MODES },
    ok_status: { type: 'array', items: { type: 'integer', minimum: 100, maximum: 599 } },
  },
  required: ['url'],
  additionalProperties: false,
};

/** A request ready to send, derived from the config before anything goes out. */
interface HttpPlan {
  url: URL;
  method: string;
  headers: Headers;
  body: string | undefined;
  timeoutMs: number;
  expect: HttpExpect | undefined;
  okStatus: readonly number[] | undefined;
}

/**
 * Creates the `http` step type: one request with the global `fetch`.
 *
 * A status outside `ok_status` (default: any 2xx) fails the attempt with `STEP_FAILED` quoting the status and
 * a body excerpt; 408, 429 and 5xx are retryable and carry `details.retryAfterMs` from `Retry-After` (seconds or
 * an HTTP date) so the engine waits at least that long; other statuses are not retryable. Network errors and a
 * body that is not the JSON `expect` asked for are retryable. The `timeout` raises a retryable `STEP_TIMEOUT`;
 * `ctx.signal` aborts the request at once. Secret values are blanked out of error messages (URLs may hold them).
 */
export function createHttpStep(): StepType<HttpConfig> {
  return {
    type: 'http',
    configSchema: httpConfigSchema,
    templateEncoder: () => encodeUrlValues,
    async execute(ctx, config) {
      const plan = planRequest(config);
      // The attempt's span is the parent of the server's, unless the step sends a traceparent of its own.
      if (ctx.traceparent !== undefined && !plan.headers.has('traceparent')) plan.headers.set('traceparent', ctx.traceparent);
      const deadline = startDeadline(ctx.signal, plan.timeoutMs);
      try {
        const response = await fetch(plan.url, { method: plan.method, headers: plan.headers, body: plan.body, signal: deadline.signal });
        return await readResponse(ctx, plan, response);
      } catch (err) {
        throw toFailure(err, ctx, plan, deadline.timedOut());
      } finally {
        deadline.clear();
      }
    },
  };
}

/** Values templated into `url` after its `://` become percent-encoded components; other keys render as text. */
function encodeUrlValues(value: unknown, spot: TemplateSpot): unknown {
  if (spot.whole || spot.path.length !== 1 || spot.path[0] !== 'url' || !spot.before.includes('://')) return value;
  const text = templateText(value);
  // URL parsers resolve `.` and `..` segments (even percent-encoded), which would move the request up the path.
  if ((text === '.' || text === '..') && !/[?#]/.test(spot.before)) {
    throw invalidConfig(`url: a templated path value may not be ${JSON.stringify(text)}`);
  }
  return encodeURIComponent(text);
}

function planRequest(config: HttpConfig): HttpPlan {
  const method = (config.method ?? 'GET').toUpperCase();
  const body = encodeBody(config.body);
  if (body !== undefined && (method === 'GET' || method === 'HEAD')) {
    throw invalidConfig(`a ${method} request cannot have a body; use POST, PUT or PATCH, or drop \`body\``);
  }
  const headers = new Headers();
  for (const [name, value] of Object.entries(config.headers ?? {})) headers.set(name, headerValue(name, value));
  if (body !== undefined && typeof config.body !== 'string' && !headers.has('content-type')) {
    headers.set('content-type', 'application/json');
  }
  const url = parseUrl(config.url);
  moveCredentials(url, headers);
  return {
    url,
    method,
    headers,
    body,
    timeoutMs: parseTimeout(config.timeout),
    expect: parseExpect(config.expect),
    okStatus: config.ok_status,
  };
}

/** A CR or LF in a header value would start a new header (or the body) of the request: refused. */
function headerValue(name: string, value: unknown): string {
  const text = String(value);
  if (/[\r\n]/.test(text)) throw invalidConfig(`headers.${name}: the value contains a line break (CR or LF), which a header value may not hold`);
  return text;
}

function encodeBody(body: unknown): string | undefined {
  if (body === undefined || body === null) return undefined;
  return typeof body === 'string' ? body : JSON.stringify(body);
}

function parseUrl(url: unknown): URL {
  try {
    const parsed = new URL(String(url));
    if (parsed.protocol === 'http:' || parsed.protocol === 'https:') return parsed;
  } catch {
    // fall through to the message below
  }
  // The URL may hold a secret: name the problem, not the value.
  throw invalidConfig('`url` must be an absolute http:// or https:// URL');
}

/**
 * `https://user:pass@host` becomes Basic authorization, as curl does: fetch refuses URLs with credentials, and
 * they would show in error messages.
 */
function moveCredentials(url: URL, headers: Headers): void {
  if (!url.username && !url.password) return;
  const pair = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
  if (!headers.has('authorization')) headers.set('authorization', `Basic ${Buffer.from(pair).toString('base64')}`);
  url.username = '';
  url.password = '';
}

function parseTimeout(value: string | number | undefined): number {
  if (value === undefined) return DEFAULT_TIMEOUT_MS;
  try {
    return parseDuration(value);
  } catch (err) {
    throw invalidConfig(`timeout: ${(err as Error).message}`);
  }
}

function parseExpect(value: unknown): HttpExpect | undefined {
  if (value === undefined) return undefined;
  const mode = EXPECT_MODES.find((candidate) => candidate === value);
  if (mode === undefined) throw invalidConfig(`expect must be one of ${EXPECT_MODES.join(', ')}`);
  return mode;
}

/** Aborts on the step's signal or after `timeoutMs`, and remembers which one fired. */
function startDeadline(parent: AbortSignal, timeoutMs: number) {
  const controller = new AbortController();
  let expired = false;
  const onAbort = () => controller.abort(parent.reason);
  if (parent.aborted) onAbort();
  else parent.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => {
    expired = true;
    controller.abort(new Error('timeout'));
  }, timeoutMs);
  return {
    signal: controller.signal,
    timedOut: () => expired && !parent.aborted,
    clear(): void {
      clearTimeout(timer);
      parent.removeEventListener('abort', onAbort);
    },
  };
}

async function readResponse(ctx: StepContext, plan: HttpPlan, response: Response): Promise<HttpOutput> {
  const text = await response.text();
  if (!isOk(plan, response.status)) throw statusFailure(ctx, plan, response, text);
  const headers = headersOf(response.headers);
  const expect = plan.expect ?? (isJsonType(headers['content-type']) ? 'json' : 'text');
  const body = expect === 'json' ? parseJson(ctx, plan, response.status, text) : text;
  // A server that echoes the request (httpbin, debugging proxies) would put its credentials in the output.
  return redactJson({ status: response.status, headers, body }, credentialsOf(plan.headers, ctx.secrets));
}

const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie']);

/**
 * The request's header values that carry credentials, as a redaction table: authorization headers (also
 * without their scheme, e.g. the base64 of Basic credentials a secret went into) and any value holding a secret.
 */
function credentialsOf(headers: Headers, secrets: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = { ...secrets };
  const holdsSecret = (value: string) => Object.values(secrets).some((s) => s.length > 0 && value.includes(s));
  headers.forEach((value, name) => {
    if (!CREDENTIAL_HEADERS.has(name) && !holdsSecret(value)) return;
    out[`header ${name}`] = value;
    const credential = value.slice(value.indexOf(' ') + 1);
    if (credential !== value) out[`header ${name} credential`] = credential;
  });
  return out;
}

function isOk(plan: HttpPlan, status: number): boolean {
  return plan.okStatus ? plan.okStatus.includes(status) : status >= 200 && status < 300;
}

function headersOf(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, name) => {
    out[name] = name in out ? `${out[name]}, ${value}` : value;
  });
  return out;
}

function isJsonType(contentType: string | undefined): boolean {
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase() ?? '';
  return mediaType.endsWith('/json') || mediaType.endsWith('+json');
}

function parseJson(ctx: StepContext, plan: HttpPlan, status: number, text: string): unknown {
  if (text.trim() === '') return null;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const message = `${describe(plan)} returned ${status} with a body that is not JSON: ${excerpt(text, BODY_EXCERPT_CHARS)}`;
    // Usually a proxy or gateway page in place of the API's answer, which tends to pass.
    throw new SluiceError('STEP_FAILED', redact(message, ctx.secrets), { retryable: true, cause: err, details: { status } });
  }
}

function statusFailure(ctx: StepContext, plan: HttpPlan, response: Response, text: string): SluiceError {
  const retryable = isRetryableStatus(response.status);
  const wait = retryable ? retryAfterMs(response.headers, ctx.now()) : undefined;
  const body = redact(excerpt(text, BODY_EXCERPT_CHARS), ctx.secrets);
  const reason = `${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
  const message = `${redact(describe(plan), ctx.secrets)} failed with ${reason}${body ? `: ${body}` : ''}`;
  const details: Record<string, unknown> = { status: response.status, body };
  if (wait !== undefined) details['retryAfterMs'] = wait;
  return new SluiceError('STEP_FAILED', message, { retryable, details });
}

function toFailure(err: unknown, ctx: StepContext, plan: HttpPlan, timedOut: boolean): Error {
  if (isSluiceError(err)) return err;
  if (ctx.signal.aborted) return abortError(ctx.signal);
  const what = redact(describe(plan), ctx.secrets);
  if (timedOut) return new SluiceError('STEP_TIMEOUT', `${what} timed out after ${plan.timeoutMs} ms`, { retryable: true });
  // fetch reports network trouble as TypeError('fetch failed') with the real reason as its cause.
  const cause = (err as { cause?: unknown }).cause;
  const reason = cause instanceof Error ? cause.message : err instanceof Error ? err.message : String(err);
  return new SluiceError('STEP_FAILED', `${what} failed: ${redact(reason, ctx.secrets)}`, { retryable: true, cause: err });
}

function describe(plan: HttpPlan): string {
  return `${plan.method} ${plan.url.href}`;
}

function invalidConfig(message: string): SluiceError {
  return new SluiceError('VALIDATION_FAILED', `http step: ${message}`, { retryable: false });
}
