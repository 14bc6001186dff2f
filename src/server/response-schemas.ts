import { RUN_STATES, STEP_STATES } from '../core/model.js';
import { flowViewSchema, storedFlowSchema } from './flow-view.js';

/**
 * JSON Schemas of what the HTTP API answers, published at /openapi.json (the dashboard's types are generated
 * from them). Keys are snake_case; times are epoch ms. Answers are written with JSON.stringify, not through
 * these schemas, so a field missing here is never dropped from an answer; test/server/openapi.test.ts checks
 * real answers against them.
 */

const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const num = { type: 'number' } as const;
const bool = { type: 'boolean' } as const;
const any = {} as const;
const strOrNull = { type: ['string', 'null'] } as const;
const intOrNull = { type: ['integer', 'null'] } as const;
const numOrNull = { type: ['number', 'null'] } as const;
const strings = { type: 'array', items: str } as const;
/** Epoch milliseconds. */
const time = { type: 'integer', description: 'Epoch milliseconds.' } as const;
const timeOrNull = { type: ['integer', 'null'], description: 'Epoch milliseconds; null until it happened.' } as const;

/** An object schema whose listed properties are all present in every answer. */
function obj<P extends Record<string, unknown>>(properties: P, description?: string) {
  return { type: 'object', required: Object.keys(properties), properties, ...(description ? { description } : {}) } as const;
}

/** A reference to a schema of {@link SHARED_SCHEMAS} by its `$id`. */
export function ref(id: 'ErrorEnvelope' | 'StoredError' | 'Run' | 'Step' | 'Pipeline') {
  return { $ref: `${id}#` } as const;
}

/** The error envelope of every failed request: `{error: {code, message, details?}}`. */
export const errorEnvelope = {
  $id: 'ErrorEnvelope',
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'Stable code, e.g. RUN_NOT_FOUND, REQUEST_INVALID.' },
        message: { type: 'string', description: 'What is wrong and where, for people.' },
        details: { description: 'More about the error when there is more: validation issues, the request errors.' },
      },
    },
  },
} as const;

/** A stored error (of a run, step or attempt). */
export const storedError = {
  $id: 'StoredError',
  type: ['object', 'null'],
  required: ['code', 'message'],
  properties: { code: str, message: str, stack: str, retryable: bool, details: any },
} as const;

const trigger = {
  type: 'object',
  required: ['kind'],
  properties: { kind: { type: 'string', enum: ['cron', 'event'] }, cron: str, timezone: str, event: str },
} as const;

const attributeSummary = {
  type: ['object', 'null'],
  required: ['dataset', 'target', 'fields', 'batch_size', 'on_record_failure', 'concurrency', 'steps'],
  properties: { dataset: str, target: str, fields: strings, batch_size: int, on_record_failure: str, concurrency: int, steps: strings },
  description: 'What makes it an attribute pipeline; null for other pipelines.',
} as const;

const pipelineBase = obj({
  name: str,
  version: int,
  hash: str,
  description: str,
  disabled: bool,
  steps: { ...strings, description: 'Step names in the order written.' },
  triggers: { type: 'array', items: trigger },
  attribute: attributeSummary,
  created_at: time,
});

const definition = { type: 'object', additionalProperties: true, description: 'The normalized definition (every default filled in), keys snake_case.' } as const;

/** A pipeline of the registry (latest or one version). */
export const pipelineSummary = { $id: 'Pipeline', ...pipelineBase } as const;

export const pipelineDetail = {
  allOf: [ref('Pipeline'), { type: 'object', required: ['definition', 'source'], properties: { definition, source: { ...strOrNull, description: 'The text it was registered from.' } } }],
} as const;

export const pipelineRegistered = {
  allOf: [...pipelineDetail.allOf, { type: 'object', required: ['created', 'warnings'], properties: { created: { ...bool, description: 'A new version was stored.' }, warnings: strings } }],
} as const;


export const pipelineVersions = obj({ versions: { type: 'array', items: ref('Pipeline') } });

const issue = {
  type: 'object',
  required: ['message'],
  properties: { message: str, file: str, path: str, line: int, column: int },
} as const;

export const validateAnswer = {
  type: 'object',
  required: ['valid', 'issues'],
  properties: { valid: bool, issues: { type: 'array', items: issue }, definition },
} as const;

export const graphAnswer = obj({
  name: str,
  order: strings,
  nodes: { type: 'array', items: obj({ name: str, uses: str, needs: strings, if: strOrNull, disabled: bool }) },
  edges: { type: 'array', items: obj({ from: str, to: str }) },
});

const runBase = obj({
  id: str,
  pipeline: str,
  version: int,
  status: { type: 'string', enum: [...RUN_STATES] },
  input: any,
  priority: int,
  force: bool,
  max_parallel: int,
  selected_steps: { type: ['array', 'null'], items: str, description: 'The steps asked for (with their dependencies); null for all.' },
  parent_run_id: { ...strOrNull, description: 'The run whose `pipeline` step started this one.' },
  parent_step: strOrNull,
  idempotency_key: strOrNull,
  error: ref('StoredError'),
  run_at: { type: ['integer', 'null'], description: 'Epoch milliseconds the run may start at; null while a singleton queue holds it (see flow.after_run_id).' },
  deadline_at: timeOrNull,
  created_at: time,
  started_at: timeOrNull,
  finished_at: timeOrNull,
});

const evalCounts = obj({ total: int, passed: int, failed: int, not_run: int }, 'Eval cases by their last result.');

/** A pipeline of GET /api/pipelines; with `?summary=true` also its newest run, eval counts and mean confidence. */
/** A run: its request, state and times (GET /api/runs/{id} adds its steps). */
export const runSchema = { $id: 'Run', ...runBase } as const;

const pipelineListItem = {
  allOf: [
    ref('Pipeline'),
    {
      type: 'object',
      properties: {
        last_run: { anyOf: [ref('Run'), { type: 'null' }], description: 'The newest run; null when it never ran (summary only).' },
        evals: evalCounts,
        avg_confidence: { ...numOrNull, description: "Mean confidence of an attribute pipeline's values; null for others or when none has one (summary only)." },
      },
    },
  ],
} as const;

export const pipelineList = obj({ pipelines: { type: 'array', items: pipelineListItem } });

export const runCreated = {
  allOf: [ref('Run'), { type: 'object', required: ['created'], properties: { created: { ...bool, description: 'False when an idempotency key answered an existing run.' }, flow: flowViewSchema } }],
} as const;

const usage = {
  type: ['object', 'null'],
  properties: { model: str, tokens_in: int, tokens_out: int, cost: num },
  description: 'Model usage the step reported; null when none.',
} as const;

const attempt = obj({
  number: int,
  status: str,
  queued_at: timeOrNull,
  started_at: timeOrNull,
  finished_at: timeOrNull,
  processing_time_ms: intOrNull,
  error: ref('StoredError'),
  usage,
});

const cacheExplain = {
  type: ['object', 'null'],
  required: ['decision', 'reason'],
  properties: {
    decision: { type: 'string', enum: ['cached', 'ran'] },
    reason: { type: 'string', enum: ['unchanged', 'first_run', 'forced', 'changed', 'output_missing', 'output_changed'] },
    changed: strings,
    files: obj({ changed: strings, added: strings, removed: strings }),
    outputs: strings,
    run_id: str,
  },
} as const;

const stepBase = obj({
  name: str,
  status: { type: 'string', enum: [...STEP_STATES] },
  attempts: int,
  output: any,
  error: ref('StoredError'),
  cache_explain: cacheExplain,
  cache_reason: strOrNull,
  started_at: timeOrNull,
  finished_at: timeOrNull,
  history: { type: 'array', items: attempt },
});

/** A step of a run with its attempts. */
export const stepSchema = { $id: 'Step', ...stepBase } as const;

export const runDetail = {
  allOf: [ref('Run'), { type: 'object', required: ['steps'], properties: { steps: { type: 'array', items: ref('Step') }, flow: storedFlowSchema } }],
} as const;

export const runPage = obj({ runs: { type: 'array', items: ref('Run') }, next_cursor: { ...strOrNull, description: 'Pass as `cursor` for the next page; null on the last.' } });
export const runList = obj({ runs: { type: 'array', items: ref('Run') } });

export const eventSchema = obj({ id: int, type: str, run_id: str, pipeline: str, step: strOrNull, data: any, at: time });
export const eventList = obj({ events: { type: 'array', items: eventSchema } });
export const logList = obj({ logs: { type: 'array', items: obj({ step: str, attempt: int, stream: str, line: str, at: time }) } });

export const decisionList = obj({
  decisions: {
    type: 'array',
    items: obj({
      id: int,
      run_id: str,
      step: str,
      attempt: int,
      kind: { type: 'string', enum: ['gate', 'human'] },
      decision: { type: 'string', enum: ['proceed', 'retry', 'block', 'approve', 'reject'] },
      validations: { type: 'array', items: any },
      rules: { type: 'array', items: any },
      retry_step: strOrNull,
      reason: strOrNull,
      comment: strOrNull,
      by: strOrNull,
      budget_left: intOrNull,
      at: time,
    }),
  },
});

export const eventTriggered = obj({ event: str, runs: { type: 'array', items: runCreated } });

const duration = obj({ count: int, p50: numOrNull, p95: numOrNull, p99: numOrNull }, 'Durations in ms, nearest-rank percentiles; null when nothing finished.');
const byStatus = { type: 'object', additionalProperties: { type: 'integer' }, description: 'Count by status.' } as const;

export const statsAnswer = {
  type: 'object',
  required: ['pipeline', 'since', 'runs', 'steps', 'tokens_in', 'tokens_out', 'cost'],
  properties: {
    pipeline: str,
    since: time,
    runs: obj({ by_status: byStatus, duration }),
    steps: { type: 'array', items: obj({ name: str, by_status: byStatus, duration, attempts: int, tokens_in: int, tokens_out: int, cost: num }) },
    tokens_in: int,
    tokens_out: int,
    cost: num,
    series: { type: 'array', items: obj({ start: time, end: time, by_status: byStatus, duration, tokens_in: int, tokens_out: int, cost: num }) },
    attributes: {
      type: 'object',
      required: ['dataset', 'target', 'values', 'avg_confidence', 'by_status', 'last_run'],
      properties: {
        dataset: str,
        target: str,
        values: int,
        avg_confidence: numOrNull,
        by_status: byStatus,
        last_run: { type: ['object', 'null'], additionalProperties: true, description: 'The newest run with its attribute stats (processed, failed, skipped, tokens_in, ...).' },
      },
      description: 'Attribute pipelines only.',
    },
  },
} as const;

const simulatedStep = {
  type: 'object',
  required: ['status', 'attempts', 'duration_ms', 'error'],
  properties: {
    status: str,
    attempts: int,
    duration_ms: num,
    error: ref('StoredError'),
    input: any,
    output: any,
    logs: { type: 'array', items: obj({ stream: str, line: str }) },
    usage,
  },
} as const;

export const simulateAnswer = obj({
  pipeline: str,
  version: int,
  runs: {
    type: 'array',
    items: obj({
      input: any,
      status: { type: 'string', enum: ['succeeded', 'failed', 'waiting'] },
      output: { type: 'object', additionalProperties: true },
      steps: { type: 'object', additionalProperties: simulatedStep },
      duration_ms: num,
    }),
  },
});

export const meAnswer = obj({ role: { type: 'string', enum: ['viewer', 'operator', 'admin'] }, name: strOrNull, auth: { ...bool, description: 'Whether requests need a token.' } });

export const tokenSchema = obj({ id: int, name: strOrNull, role: str, created_at: time, expires_at: timeOrNull, revoked_at: timeOrNull });
export const tokenCreated = obj({ token: { ...str, description: 'The secret: shown this once.' }, id: int, role: str, name: strOrNull, created_at: time });
export const tokenList = obj({ tokens: { type: 'array', items: tokenSchema } });

export const datasetSchema = {
  type: 'object',
  required: ['name', 'ingest_pipeline', 'created_at'],
  properties: { name: str, ingest_pipeline: strOrNull, created_at: time, records: { ...int, description: 'How many records it holds (GET of one dataset).' } },
} as const;
export const datasetList = obj({ datasets: { type: 'array', items: datasetSchema } });

export const attributeValueSchema = obj({
  value: any,
  confidence: numOrNull,
  justification: strOrNull,
  input_hash: strOrNull,
  pipeline: strOrNull,
  pipeline_version: intOrNull,
  run_id: strOrNull,
  status: { type: 'string', enum: ['proposed', 'approved', 'overridden'] },
  note: strOrNull,
  updated_at: time,
});

export const recordSchema = {
  type: 'object',
  required: ['id', 'data', 'created_at', 'updated_at'],
  properties: {
    id: str,
    data: { type: 'object', additionalProperties: true },
    created_at: time,
    updated_at: time,
    attributes: { type: 'object', additionalProperties: attributeValueSchema, description: 'Derived values by field.' },
  },
} as const;
export const recordPage = obj({ records: { type: 'array', items: recordSchema }, next_after: { ...strOrNull, description: 'Pass as `after` for the next page; null on the last.' } });
export const recordDeleted = obj({ deleted: str });
export const recordsWritten = obj({ written: int });
export const datasetRunStarted = obj({ order: { ...strings, description: 'The attribute pipelines, in the order they run.' }, first_run: strOrNull });

export const healthAnswer = obj({ status: { type: 'string', enum: ['ok'] } });
export const readyAnswer = obj({ status: { type: 'string', enum: ['ready'] }, store: { ...str, description: 'The store URL, password masked.' } });

export const textAnswer = (description: string, type = 'text/plain') => ({ description, content: { [type]: { schema: { type: 'string' } } } }) as const;

/**
 * Schemas published once under `components.schemas` (by their `$id`) and referenced from the routes, so that
 * clients generated from the document get one named type for each.
 */
export const SHARED_SCHEMAS = [errorEnvelope, storedError, runSchema, stepSchema, pipelineSummary] as const;

/** What each error status means, for the document. */
const ERROR_MEANING: Record<number | string, string> = {
  400: 'The request is invalid (REQUEST_INVALID, MALFORMED_JSON, VALIDATION_FAILED, ...); the message names what and where.',
  401: 'No token, an unknown, expired or revoked one (auth on).',
  403: "The token's role may not do this.",
  404: 'Not found (PIPELINE_NOT_FOUND, RUN_NOT_FOUND, ...).',
  409: 'Conflicts with the current state (ILLEGAL_TRANSITION, PIPELINE_DISABLED, IDEMPOTENCY_CONFLICT, ...).',
  413: 'The body is larger than the server accepts.',
  429: 'A rate_limit of the pipeline refused the start (RATE_LIMITED); the Retry-After header says when to retry, in seconds.',
  415: 'Unsupported content type.',
  422: 'A record failed its ingest pipeline (INGEST_FAILED).',
  501: 'The store does not support this (NOT_SUPPORTED).',
  503: 'The store is unavailable or read-only.',
  507: 'The store is full.',
  '4xx': 'The request was refused.',
  '5xx': 'The server failed (INTERNAL, STORE_ERROR).',
};

/** `{ status: error envelope }` for each status, with what it means. */
export function errorResponses(...statuses: Array<number | '4xx' | '5xx'>): Record<string, unknown> {
  return Object.fromEntries(statuses.map((s) => [String(s), { $ref: 'ErrorEnvelope#', description: ERROR_MEANING[s] ?? 'Error.' }]));
}

/** Error statuses of every `/api` route: auth, role, and a store that is down, read-only or full. */
const API_ERRORS = [401, 403, 503, 507, '5xx'] as const;

/**
 * The `response` map of an `/api` route: its successes, then the error envelope for `errors` plus what every
 * `/api` route may answer (401, 403, 503, 507, 5xx).
 */
export function apiResponses(success: Record<number, unknown>, ...errors: number[]): Record<string, unknown> {
  return { ...success, ...errorResponses(...errors, ...API_ERRORS) };
}

/** The `response` map of a route outside `/api` (no auth): its successes and the error envelope for `errors`. */
export function probeResponses(success: Record<number, unknown>, ...errors: Array<number | '4xx' | '5xx'>): Record<string, unknown> {
  return { ...success, ...errorResponses(...errors) };
}

/** Success schema with its description. */
export function ok<S extends object>(schema: S, description: string): S & { description: string } {
  // A shared schema is referenced, not copied: its `$id` must stay unique.
  if ('$id' in schema && typeof schema.$id === 'string') return { $ref: `${schema.$id}#`, description } as unknown as S & { description: string };
  return { ...schema, description };
}
