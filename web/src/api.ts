/** The dashboard's only way to data: the HTTP API, with the bearer token kept in localStorage. */

import type { operations } from './api-types.gen';

const TOKEN_KEY = 'sluice.token';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export function getToken(): string | null {
  return localStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string | null): void {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

let unauthorized: (err: ApiError) => void = () => {};

/** Called when the server answers 401 (no, unknown or expired token): the app shows the sign-in page. */
export function onUnauthorized(handler: (err: ApiError) => void): void {
  unauthorized = handler;
}

export interface RequestOptions {
  method?: string;
  /** JSON body. */
  json?: unknown;
  /** Text body (e.g. YAML) with its content type. */
  text?: string;
  contentType?: string;
  /** Token to use instead of the stored one (sign-in checks it before storing). */
  token?: string | null;
  signal?: AbortSignal;
}

export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const token = options.token === undefined ? getToken() : options.token;
  if (token) headers['authorization'] = `Bearer ${token}`;
  let body: string | undefined;
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.json);
  } else if (options.text !== undefined) {
    headers['content-type'] = options.contentType ?? 'text/plain';
    body = options.text;
  }
  const method = options.method ?? (body === undefined ? 'GET' : 'POST');
  const res = await fetch(path, { method, headers, ...(body === undefined ? {} : { body }), ...(options.signal ? { signal: options.signal } : {}) });
  const text = await res.text();
  const data = text ? safeJson(text) : null;
  if (!res.ok) {
    const e = (data as { error?: { code?: string; message?: string; details?: unknown } } | null)?.error;
    const err = new ApiError(res.status, e?.code ?? `HTTP_${res.status}`, e?.message ?? (text || res.statusText), e?.details);
    if (res.status === 401 && options.token === undefined) unauthorized(err);
    throw err;
  }
  return data as T;
}

/** Like {@link api} but undefined for 404 and 501 (a route or feature this server does not have). */
export async function apiOptional<T>(path: string): Promise<T | undefined> {
  try {
    return await api<T>(path);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 501)) return undefined;
    throw err;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export const enc = encodeURIComponent;

// JSON shapes of the API (snake_case, epoch ms), taken from the types generated from /openapi.json
// (api-types.gen.ts, written by `npm run build:web`): nothing here is copied by hand.

type Operations = operations;
/** The JSON body of an operation's answer with `status`. */
type Answer<Op extends keyof Operations, Status extends number = 200> = Operations[Op]['responses'] extends Record<Status, { content: { 'application/json': infer T } }> ? T : never;
type Item<T> = T extends ReadonlyArray<infer U> ? U : never;

export type Me = Answer<'getMe'>;
export type Role = Me['role'];
/** A pipeline of GET /api/pipelines (with `?summary=true`, also `last_run`, `evals` and `avg_confidence`). */
export type PipelineSummary = Item<Answer<'listPipelines'>['pipelines']>;
export type AttributeConfig = NonNullable<PipelineSummary['attribute']>;
export type PipelineDetail = Answer<'getPipeline'>;
export type GraphJson = Answer<'getPipelineGraph'>;
export type Run = Item<Answer<'listRuns'>['runs']>;
export type RunStatus = Run['status'];
export type RunDetail = Answer<'getRun'>;
export type Step = Item<RunDetail['steps']>;
export type Attempt = Item<Step['history']>;
export type ErrorInfo = NonNullable<Step['error']>;
export type CacheExplain = NonNullable<Step['cache_explain']>;
export type LiveEvent = Item<Answer<'listRunEvents'>['events']>;
export type LogLine = Item<Answer<'listStepLogs'>['logs']>;
export type PipelineStats = Answer<'getPipelineStats'>;
export type StatsBucket = Item<NonNullable<PipelineStats['series']>>;
export type DurationStats = PipelineStats['runs']['duration'];
export type EvalSet = Answer<'listEvals'>;
export type EvalCase = Item<EvalSet['evals']>;
export type Dataset = Answer<'getDataset'>;
export type DataRecord = Answer<'getRecord'>;
export type AttributeValue = Answer<'overrideValue'>;
export type ValidationIssue = Item<Answer<'validatePipeline'>['issues']>;
