import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { SluiceError, type ErrorCode } from '../core/errors.js';
import { describeSchemaErrors, type SchemaError } from './schema-errors.js';
import { depthMessage, MAX_JSON_DEPTH, prototypeKeyPath, tooDeepPath } from '../core/json-depth.js';
import { formatKeyPath } from '../core/key-path.js';
import { toStoreError } from '../store/store-errors.js';

/** The one table from error codes to HTTP statuses. Codes not listed are 500. */
export const HTTP_STATUS: Readonly<Partial<Record<ErrorCode, number>>> = {
  VALIDATION_FAILED: 400,
  INPUT_INVALID: 400,
  REQUEST_INVALID: 400,
  MALFORMED_JSON: 400,
  EXPRESSION_FAILED: 400,
  EXPRESSION_TIMEOUT: 400,
  UNKNOWN_STEP_TYPE: 400,
  RECORD_INVALID: 400,
  UNAUTHORIZED: 401,
  TOKEN_EXPIRED: 401,
  TOKEN_REVOKED: 401,
  TOKEN_NOT_FOUND: 404,
  FORBIDDEN: 403,
  PIPELINE_NOT_FOUND: 404,
  RUN_NOT_FOUND: 404,
  STEP_NOT_FOUND: 404,
  DATASET_NOT_FOUND: 404,
  RECORD_NOT_FOUND: 404,
  VALUE_NOT_FOUND: 404,
  TARGET_TAKEN: 409,
  PIPELINE_CYCLE: 409,
  IDEMPOTENCY_CONFLICT: 409,
  ROUTE_NOT_FOUND: 404,
  EVAL_NOT_FOUND: 404,
  ILLEGAL_TRANSITION: 409,
  PIPELINE_DISABLED: 409,
  PAYLOAD_TOO_LARGE: 413,
  INPUT_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  INGEST_FAILED: 422,
  NOT_SUPPORTED: 501,
  VALUE_REFUSED: 400,
  STORE_ERROR: 503,
  STORE_UNAVAILABLE: 503,
  STORE_READONLY: 503,
  STORE_FULL: 507,
  RATE_LIMITED: 429,
};

export { isSluiceError } from '../core/errors.js';
import { isSluiceError } from '../core/errors.js';

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/** Maps anything thrown by a route (or by Fastify while parsing) to a status and an `{error}` body. */
export function toHttpError(err: unknown): { status: number; body: ErrorBody } {
  const { code, message, details } = classify(err);
  const status = HTTP_STATUS[code as ErrorCode] ?? 500;
  const error: ErrorBody['error'] = { code, message };
  if (details !== undefined) error.details = details;
  return { status, body: { error } };
}

function classify(thrown: unknown): { code: string; message: string; details?: unknown } {
  // A driver's error the store did not wrap (a lost connection, a full disk) still gets its store code.
  const err = toStoreError(thrown);
  if (isSluiceError(err)) return { code: err.code, message: err.message, details: err.details };
  const fe = err as Partial<FastifyError> & { validation?: SchemaError[]; validationContext?: string };
  if (fe.validation) return { code: 'REQUEST_INVALID', message: describeSchemaErrors(fe.validation, fe.validationContext ?? 'request') ?? fe.message ?? 'the request is invalid', details: fe.validation };
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { code: 'PAYLOAD_TOO_LARGE', message: 'the request body is larger than the server accepts' };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { code: 'MALFORMED_JSON', message: fe.message ?? 'the body is not valid JSON' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { code: 'UNSUPPORTED_MEDIA_TYPE', message: fe.message ?? 'unsupported content type' };
  }
  if (err instanceof SyntaxError && fe.statusCode === 400) return { code: 'MALFORMED_JSON', message: `the body is not valid JSON: ${err.message}` };
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { code: 'REQUEST_INVALID', message: fe.message ?? 'the request is invalid' };
  }
  return { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
}

/**
 * Throws REQUEST_INVALID naming the path when a parsed JSON body nests deeper than {@link MAX_JSON_DEPTH}, or
 * holds a `__proto__` key (or `constructor.prototype`). The JSON parser keeps such keys as plain data
 * (`onProtoPoisoning: 'ignore'`) so that this check can say where they are; they are refused rather than
 * stored, since code copying objects key by key would change prototypes with them.
 */
export function assertBodyShape(body: unknown): void {
  const deep = tooDeepPath(body, MAX_JSON_DEPTH);
  if (deep) throw new SluiceError('REQUEST_INVALID', `the body is ${depthMessage('', deep)}`);
  const proto = prototypeKeyPath(body);
  if (proto) {
    const at = formatKeyPath(proto);
    throw new SluiceError('REQUEST_INVALID', `the body has a "${String(proto.at(-1) === 'prototype' ? 'constructor.prototype' : '__proto__')}" key at ${at}, which is refused: such keys change the prototype of objects copied from them; rename the key`);
  }
}

/** Fastify error handler: `{error: {code, message}}` with the status from {@link HTTP_STATUS}. */
export function sendError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { status, body } = toHttpError(err);
  if (status >= 500) request.log.error({ err }, 'request failed');
  const retryAfter = retryAfterSeconds(body.error);
  if (retryAfter !== undefined) void reply.header('retry-after', String(retryAfter));
  return reply.status(status).send(body);
}

/** Whole seconds (at least 1) a refused start should wait, for the `Retry-After` header of a 429. */
function retryAfterSeconds(error: ErrorBody['error']): number | undefined {
  if (error.code !== 'RATE_LIMITED') return undefined;
  const ms = (error.details as { retry_after_ms?: unknown } | undefined)?.retry_after_ms;
  return typeof ms === 'number' && Number.isFinite(ms) ? Math.max(1, Math.ceil(ms / 1000)) : 1;
}
