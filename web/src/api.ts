/** The dashboard's only way to data: the HTTP API, with the bearer token kept in localStorage. */

export type Role = 'viewer' | 'operator' | 'admin';

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

// JSON shapes of the API (snake_case, epoch ms).

export interface Me {
  role: Role;
  name: string | null;
  auth: boolean;
}

export interface AttributeConfig {
  dataset: string;
  target: string;
  fields: string[];
  batch_size: number;
  on_record_failure: string;
}

export interface PipelineSummary {
  name: string;
  version: number;
  hash: string;
  description?: string;
  disabled?: boolean;
  steps: string[];
  created_at: number;
  attribute?: AttributeConfig | null;
}

export interface PipelineDetail extends PipelineSummary {
  definition: Record<string, unknown>;
  source: string | null;
}

export interface GraphJson {
  name: string;
  order: string[];
  nodes: Array<{ name: string; uses: string; needs: string[]; disabled?: boolean }>;
  edges: Array<{ from: string; to: string }>;
}

export type RunStatus = 'queued' | 'running' | 'paused' | 'waiting' | 'succeeded' | 'failed' | 'cancelled';

export interface Run {
  id: string;
  pipeline: string;
  version: number;
  status: RunStatus;
  input: unknown;
  priority: number;
  error: ErrorInfo | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
}

export interface ErrorInfo {
  code?: string;
  message?: string;
  stack?: string;
  [key: string]: unknown;
}

export interface Attempt {
  number: number;
  status: string;
  queued_at: number | null;
  started_at: number | null;
  finished_at: number | null;
  processing_time_ms: number | null;
  error: ErrorInfo | null;
  usage: { model?: string; tokensIn?: number; tokensOut?: number; cost?: number } | null;
}

export interface Step {
  name: string;
  status: string;
  attempts: number;
  output: unknown;
  error: ErrorInfo | null;
  /** Why the step ran or was cached (steps whose cache is on, once settled). */
  cache_explain: CacheExplain | null;
  /** The same in words, e.g. "ran: input files changed (phases/typing.mjs)". */
  cache_reason: string | null;
  started_at: number | null;
  finished_at: number | null;
  history: Attempt[];
}

export interface CacheExplain {
  decision: 'cached' | 'ran';
  reason: 'unchanged' | 'first_run' | 'forced' | 'changed' | 'output_missing' | 'output_changed';
  changed?: string[];
  files?: { changed: string[]; added: string[]; removed: string[] };
  outputs?: string[];
  run_id?: string;
}

export interface RunDetail extends Run {
  steps: Step[];
}

export interface LiveEvent {
  id: number;
  type: string;
  run_id: string;
  pipeline: string;
  step: string | null;
  data: unknown;
  at: number;
}

export interface LogLine {
  step: string;
  attempt: number;
  stream: string;
  line: string;
  at: number;
}

export interface DurationStats {
  count: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface StatsBucket {
  start: number;
  end: number;
  byStatus: Record<string, number>;
  duration: DurationStats;
  tokensIn: number;
  tokensOut: number;
  cost: number;
}

export interface PipelineStats {
  pipeline: string;
  since: number;
  runs: { byStatus: Record<string, number>; duration: DurationStats };
  steps: Array<{ name: string; byStatus: Record<string, number>; duration: DurationStats; attempts: number; tokensIn: number; tokensOut: number; cost: number }>;
  tokensIn: number;
  tokensOut: number;
  cost: number;
  series?: StatsBucket[];
  attributes?: { avg_confidence: number | null; values: number; last_run: unknown } | null;
}

export interface EvalCase {
  id: string | number;
  record_id: string | null;
  input: unknown;
  desired_output: unknown;
  comparator?: unknown;
  notes: string | null;
  actual_output: unknown;
  justification: string | null;
  confidence: number | null;
  passed: boolean | null;
  error?: ErrorInfo | null;
  last_ran_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface EvalSet {
  evals: EvalCase[];
  summary: { total: number; passed: number; failed: number; not_run: number };
}

export interface Dataset {
  name: string;
  ingest_pipeline: string | null;
  created_at: number;
  records?: number;
}

export interface AttributeValue {
  value: unknown;
  confidence: number | null;
  justification: string | null;
  input_hash?: string;
  /** Null once a person overrode the value (nothing of the pipeline's answer is kept). */
  pipeline: string | null;
  pipeline_version: number | null;
  run_id: string | null;
  status: 'proposed' | 'approved' | 'overridden';
  note?: string | null;
  updated_at: number;
}

export interface DataRecord {
  id: string;
  data: Record<string, unknown>;
  created_at: number;
  updated_at: number;
  attributes?: Record<string, AttributeValue>;
}

export interface ValidationIssue {
  path?: string;
  line?: number;
  column?: number;
  message: string;
}
