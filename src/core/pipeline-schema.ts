import { DURATION_HINT, DURATION_PATTERN } from './duration.js';

/**
 * JSON Schema (draft-07, the draft editors support best) of the pipeline file format: {@link PipelineSpec}
 * as written in YAML, JSON or a TS module. The loader validates with this very schema, so what an editor
 * flags and what `sluice` rejects agree; checks a schema cannot express (unknown step types, missing needs,
 * cycles, expressions) live in `validate.ts`.
 *
 * `schema/pipeline.schema.json` is generated from it by `npx tsx scripts/generate-schema.ts`.
 */

/** Pipeline names: lowercase, so they are safe in URLs, file names and metric labels. */
export const PIPELINE_NAME_PATTERN = '^[a-z0-9][a-z0-9._-]*$';
/** Step names: safe as JSONata field names (with backticks for `-`) and as graph node labels. */
export const STEP_NAME_PATTERN = '^[a-zA-Z0-9_-]+$';

/**
 * What a value of each leaf definition must look like, in words. Validation messages use these instead of
 * echoing a regular expression at the user.
 */
export const SCHEMA_HINTS: Readonly<Record<string, string>> = {
  duration: DURATION_HINT,
  pipelineName: "a pipeline name of lowercase letters, digits, '.', '_' and '-', starting with a letter or digit",
  stepName: "a step name of letters, digits, '_' and '-'",
};

const JSON_SCHEMA_DRAFT_07 = 'http://json-schema.org/draft-07/schema#';

const definitions = {
  pipelineName: {
    type: 'string',
    pattern: PIPELINE_NAME_PATTERN,
    description: "Pipeline name: lowercase letters, digits, '.', '_' and '-', starting with a letter or digit.",
  },
  stepName: {
    type: 'string',
    pattern: STEP_NAME_PATTERN,
    description: "Step name: letters, digits, '_' and '-'.",
  },
  duration: {
    type: ['string', 'number'],
    pattern: DURATION_PATTERN,
    minimum: 0,
    description: 'A duration: a number of milliseconds, or a string such as 500ms, 30s, 1.5s, 5m, 2h, 1d or 1m30s.',
  },
  flowKey: {
    type: 'string',
    description: 'The bucket of a flow rule, a template rendered from input and run when the run is requested, e.g. "${{ input.customer }}". Default: one bucket per pipeline.',
  },
  jsonSchema: {
    type: 'object',
    allOf: [{ $ref: JSON_SCHEMA_DRAFT_07 }],
    description: 'A JSON Schema.',
  },
  retry: {
    type: 'object',
    additionalProperties: false,
    description: 'Retry policy. Fields not given come from `defaults.retry`, then from the built-in defaults.',
    properties: {
      attempts: {
        type: 'integer',
        minimum: 1,
        default: 1,
        description: 'Total tries, including the first. Default: 1 (no retry).',
      },
      backoff: {
        enum: ['exponential', 'fixed'],
        default: 'exponential',
        description: 'exponential: the delay doubles after each failure, up to max_delay. fixed: always delay.',
      },
      delay: { $ref: '#/definitions/duration', description: 'Delay before the second try. Default: 1s.' },
      max_delay: { $ref: '#/definitions/duration', description: 'Cap on any delay. Default: 1m.' },
      jitter: {
        type: 'boolean',
        default: true,
        description: 'Pick each delay at random between 0 and the computed delay (full jitter). Default: true.',
      },
    },
  },
  trigger: {
    description: 'Starts a run on a schedule (`cron`) or when an event is published (`event`).',
    oneOf: [
      {
        title: '{ cron, timezone? }',
        type: 'object',
        required: ['cron'],
        additionalProperties: false,
        properties: {
          cron: {
            type: 'string',
            minLength: 1,
            description: 'Cron expression: minute hour day-of-month month day-of-week, e.g. "0 2 * * *".',
          },
          timezone: {
            type: 'string',
            minLength: 1,
            default: 'UTC',
            description: 'IANA time zone the cron expression is read in, e.g. Europe/Berlin. Default: UTC.',
          },
          catchup: {
            enum: ['none', 'latest', 'all'],
            default: 'latest',
            description: 'Slots missed while no server or worker ran: none skips them, latest fires the last one, all fires each (at most the latest 100). Default: latest.',
          },
        },
      },
      {
        title: '{ event }',
        type: 'object',
        required: ['event'],
        additionalProperties: false,
        properties: {
          event: { type: 'string', minLength: 1, description: 'Event name, e.g. product.saved.' },
        },
      },
    ],
  },
  cacheGlob: {
    type: 'string',
    minLength: 1,
    description: 'A path or glob relative to the pipeline file: * and ? within a name, ** across folders, [abc], {a,b}.',
  },
  step: {
    type: 'object',
    required: ['uses'],
    additionalProperties: false,
    description: 'A step of the pipeline; its key is the step name.',
    properties: {
      uses: {
        type: 'string',
        minLength: 1,
        description: 'Step type: command, function, code, llm, http, gate, approval, pipeline, map, sleep, wait_for_event or a custom one.',
      },
      needs: {
        type: 'array',
        uniqueItems: true,
        items: { $ref: '#/definitions/stepName' },
        default: [],
        description: 'Steps that must finish before this one starts; their outputs are visible as steps.<name>.',
      },
      with: {
        type: 'object',
        default: {},
        description: 'Configuration of the step type. `${{ expr }}` inside any string is replaced by the JSONata value.',
      },
      if: {
        type: 'string',
        minLength: 1,
        description: 'JSONata condition; the step is skipped when it is falsy. Sees input, steps, run and secrets.',
      },
      retry: { $ref: '#/definitions/retry' },
      timeout: { $ref: '#/definitions/duration', description: 'Per-attempt timeout. Default: defaults.timeout, else none.' },
      on_failure: {
        enum: ['abort', 'continue'],
        default: 'abort',
        description: 'abort: a failure fails the run. continue: dependents run and see steps.<name> = null.',
      },
      cache: {
        default: true,
        description:
          'Reuse a succeeded result with the same type, resolved with, upstream outputs, input, version and code (a function step\'s module). false: always run. An object declares the files and values the result depends on.',
        oneOf: [
          { title: 'true | false', type: 'boolean' },
          {
            title: '{ inputs?, outputs?, key?, outputs_unchanged? }',
            type: 'object',
            additionalProperties: false,
            properties: {
              inputs: {
                type: 'array',
                items: { $ref: '#/definitions/cacheGlob' },
                default: [],
                description: 'Globs of files (relative to the pipeline file) whose content joins the cache key.',
              },
              outputs: {
                type: 'array',
                items: { $ref: '#/definitions/cacheGlob' },
                default: [],
                description: 'Globs of files the step makes: a cached result is reused only while they still exist.',
              },
              key: {
                type: 'string',
                minLength: 1,
                description: 'A `${{ expr }}` template whose value joins the cache key.',
              },
              outputs_unchanged: {
                type: 'boolean',
                default: false,
                description: 'Reuse a cached result only while its outputs hold the content they had when it was recorded. Default: false.',
              },
            },
          },
        ],
      },
      disabled: { type: 'boolean', default: false, description: 'A disabled step is skipped. Default: false.' },
      priority: { type: 'integer', default: 0, description: 'Among ready steps, higher runs first. Default: 0.' },
      concurrency_key: {
        type: 'string',
        minLength: 1,
        description: 'Steps sharing this key (across runs) are limited to concurrency_limit at once.',
      },
      concurrency_limit: {
        type: 'integer',
        minimum: 1,
        description: 'How many steps with the same concurrency_key may run at once. Default: 1.',
      },
      output: { $ref: '#/definitions/jsonSchema', description: 'JSON Schema the step output must match.' },
    },
  },
} as const;

/** The JSON Schema of a pipeline definition file. */
export const pipelineJsonSchema = {
  $schema: JSON_SCHEMA_DRAFT_07,
  title: 'Sluice pipeline',
  description: 'A Sluice pipeline: a named DAG of steps.',
  type: 'object',
  required: ['name', 'steps'],
  additionalProperties: false,
  properties: {
    $schema: { type: 'string', description: 'JSON Schema of this file, for editors. Ignored by Sluice.' },
    name: { $ref: '#/definitions/pipelineName' },
    description: { type: 'string', default: '', description: 'What the pipeline does.' },
    max_parallel: {
      type: 'integer',
      minimum: 1,
      default: 4,
      description: 'How many steps of one run may run at once. Default: 4.',
    },
    fail_fast: {
      type: 'boolean',
      default: true,
      description: 'true: the first step failing for good stops new steps and fails the run. false: independent branches finish first.',
    },
    timeout: { $ref: '#/definitions/duration', description: 'Timeout of the whole run. Default: none.' },
    disabled: { type: 'boolean', default: false, description: 'A disabled pipeline starts no runs. Default: false.' },
    retention: {
      $ref: '#/definitions/duration',
      description: 'Finished runs older than this are pruned by `sluice prune` and by the leading worker or server, e.g. 30d. Default: the store-wide default (SLUICE_RETENTION), else kept.',
    },
    input: { $ref: '#/definitions/jsonSchema', description: 'JSON Schema the run input must match.' },
    defaults: {
      type: 'object',
      additionalProperties: false,
      description: 'Defaults for every step.',
      properties: {
        retry: { $ref: '#/definitions/retry' },
        timeout: { $ref: '#/definitions/duration', description: 'Per-attempt timeout of each step. Default: none.' },
      },
    },
    triggers: {
      type: 'array',
      default: [],
      items: { $ref: '#/definitions/trigger' },
      description: 'What starts runs besides `sluice run` and the API.',
    },
    dataset: {
      type: 'string',
      pattern: '^[a-z0-9][a-z0-9._-]*$',
      description: 'Attribute pipelines: the dataset whose records this pipeline computes a field of. Needs target and source.',
    },
    target: {
      type: 'string',
      minLength: 1,
      description: 'Attribute pipelines: the one field of each record this pipeline writes. No two pipelines of a dataset share a target.',
    },
    source: {
      type: 'object',
      required: ['fields'],
      additionalProperties: false,
      description: 'Attribute pipelines: what a record passes to the steps.',
      properties: {
        fields: {
          type: 'array',
          minItems: 1,
          uniqueItems: true,
          items: { type: 'string', minLength: 1 },
          description: "Record fields (or other pipelines' targets) the steps see as $json / input.",
        },
      },
    },
    batch_size: {
      type: 'integer',
      minimum: 1,
      maximum: 10000,
      default: 200,
      description: 'Attribute pipelines: records per batch (one sandbox entry of a code step). Default: 200.',
    },
    on_record_failure: {
      enum: ['abort', 'continue'],
      default: 'abort',
      description: 'Attribute pipelines: abort fails the run at the first failed record; continue counts it and goes on.',
    },
    concurrency: {
      type: 'integer',
      minimum: 1,
      maximum: 256,
      default: 8,
      description: 'Attribute pipelines: records of a batch in flight at once through a step other than code (llm, http). Default: 8.',
    },
    rate_limit: {
      type: 'object',
      required: ['limit', 'period'],
      additionalProperties: false,
      description: 'At most `limit` runs start per window of `period`, per pipeline or per rendered `key`; over it a start is refused (RATE_LIMITED, HTTP 429) or, with mode queue, delayed to the next window with room.',
      properties: {
        limit: { type: 'integer', minimum: 1, description: 'Runs per window.' },
        period: { $ref: '#/definitions/duration', description: 'Length of a window, e.g. 1m.' },
        mode: { enum: ['refuse', 'queue'], default: 'refuse', description: 'refuse: RATE_LIMITED with Retry-After. queue: start in the next window with room. Default: refuse.' },
        key: { $ref: '#/definitions/flowKey' },
      },
    },
    throttle: {
      type: 'object',
      required: ['limit', 'period'],
      additionalProperties: false,
      description: 'Starts are spaced evenly, one every period/limit, per pipeline or per rendered `key`; a run over it is delayed (queued with its start time), never dropped.',
      properties: {
        limit: { type: 'integer', minimum: 1, description: 'Runs per period.' },
        period: { $ref: '#/definitions/duration', description: 'The period, e.g. 1m.' },
        key: { $ref: '#/definitions/flowKey' },
      },
    },
    debounce: {
      type: 'object',
      required: ['period'],
      additionalProperties: false,
      description: 'A burst of starts becomes one run with the last input; it starts `period` after the last request, or `max_wait` after the first.',
      properties: {
        period: { $ref: '#/definitions/duration', description: 'Quiet time after the last request, e.g. 30s.' },
        max_wait: { $ref: '#/definitions/duration', description: 'Longest delay after the first request of a burst. Default: none.' },
        key: { $ref: '#/definitions/flowKey' },
        merge: { type: 'string', description: 'The pending run\'s new input, a template over `previous` (its input so far) and `input` (this request\'s), e.g. "${{ $append(previous, input) }}". Default: the last input wins.' },
      },
    },
    singleton: {
      type: 'object',
      required: ['mode'],
      additionalProperties: false,
      description: 'At most one active run per pipeline or per rendered `key`.',
      properties: {
        mode: { enum: ['skip', 'queue', 'cancel_running'], description: 'skip: answer the active run. queue: start after it ends. cancel_running: cancel it and start.' },
        key: { $ref: '#/definitions/flowKey' },
      },
    },
    steps: {
      type: 'object',
      minProperties: 1,
      propertyNames: { $ref: '#/definitions/stepName' },
      additionalProperties: { $ref: '#/definitions/step' },
      description: 'The steps by name, in the order written.',
    },
  },
  definitions,
} as const;

/** The text of `schema/pipeline.schema.json`: what the generator writes and the drift test compares. */
export function formatPipelineSchema(): string {
  return `${JSON.stringify(pipelineJsonSchema, null, 2)}\n`;
}
