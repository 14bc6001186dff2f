import { createHash } from 'node:crypto';
import type { ChatCompletion, ChatCompletionCreateParamsNonStreaming, ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { parseDuration } from '../../core/duration.js';
import { SluiceError } from '../../core/errors.js';
import type { JsonSchema } from '../../core/model.js';
import type { StepContext, StepType } from '../step-type.js';
import { importOptional } from '../../core/optional-package.js';
import { RateLimiter, type RateTicket } from './rate-limiter.js';
import {
  createValidatorCache,
  missingOptional,
  parseStructured,
  replyText,
  responseFormatOf,
  SCHEMA_MODES,
  schemaInstruction,
  type ModelReply,
  type SchemaMode,
} from './structured-output.js';

/** Price of a model, in the user's currency per 1,000 tokens. */
export interface ModelPrice {
  input_per_1k: number;
  output_per_1k: number;
}

/** Options of {@link createLlmStep}. */
export interface LlmStepOptions {
  /**
   * Prices by model name. The model the server reports is looked up first (it may carry a date suffix such as
   * `gpt-4o-mini-2024-07-18`), then the model the step asked for. Unlisted models report no cost. Default: none.
   */
  prices?: Record<string, ModelPrice>;
  /** Base URL when `with.base_url` is not given. Default: env `OPENAI_BASE_URL`, else `https://api.openai.com/v1`. */
  baseUrl?: string;
  /** Shared by every step of this type instance for `rpm`/`tpm`. Default: a new in-process limiter. */
  limiter?: RateLimiter;
}

/** `with` of an `llm` step. */
export interface LlmConfig {
  model: string;
  /** The user message; usually a `${{ }}` template. A non-string value is sent as its JSON. */
  prompt: string;
  /** The system message. Default: none. */
  system?: string;
  /** JSON Schema of the output. With it, the output is the parsed, validated JSON; without it, `{ text }`. */
  schema?: JsonSchema;
  /** How the schema is asked of the server. Default: `json_schema`. */
  schema_mode?: SchemaMode;
  /**
   * OpenAI strict structured outputs (`json_schema` mode only). Default: on when the schema meets strict mode's
   * rules (every object closed, every property required), off otherwise so optional properties stay optional.
   */
  strict?: boolean;
  /** Default: 0. */
  temperature?: number;
  /** Default: the server's. */
  max_tokens?: number;
  /** Default: the step type's `baseUrl` option, env `OPENAI_BASE_URL`, else `https://api.openai.com/v1`. */
  base_url?: string;
  /** Name of the secret holding the API key. Default: `OPENAI_API_KEY` (env `SLUICE_SECRET_OPENAI_API_KEY`). */
  api_key_secret?: string;
  /** Of the HTTP request; a number is milliseconds. Default: 10 min. */
  timeout?: string | number;
  /** Requests per minute for this base URL and key, in this process. Default: unlimited. */
  rpm?: number;
  /** Tokens per minute (prompt + completion) for this base URL and key, in this process. Default: unlimited. */
  tpm?: number;
}

/** Output of an `llm` step without a schema. */
export interface LlmTextOutput {
  text: string;
}

const DEFAULT_BASE_URL = 'https://api.openai.com/v1';
const DEFAULT_KEY_SECRET = 'OPENAI_API_KEY';
const DEFAULT_TIMEOUT_MS = 10 * 60_000;
/** Rough tokens per character for the `tpm` estimate made before the server counts. */
const TOKENS_PER_CHAR = 0.25;

const llmConfigSchema: JsonSchema = {
  type: 'object',
  properties: {
    model: { type: 'string', minLength: 1 },
    prompt: { type: 'string' },
    system: { type: 'string' },
    schema: { type: 'object' },
    schema_mode: { enum: SCHEMA_MODES },
    strict: { type: 'boolean' },
    temperature: { type: 'number', minimum: 0, maximum: 2 },
    max_tokens: { type: 'integer', minimum: 1 },
    base_url: { type: 'string', minLength: 1 },
    api_key_secret: { type: 'string', minLength: 1 },
    timeout: { anyOf: [{ type: 'string' }, { type: 'number', minimum: 0 }] },
    rpm: { type: 'number', exclusiveMinimum: 0 },
    tpm: { type: 'number', exclusiveMinimum: 0 },
  },
  required: ['model', 'prompt'],
  additionalProperties: false,
};

/** Everything the request needs, derived from the config before anything goes out. */
interface LlmPlan {
  baseUrl: string;
  keySecret: string;
  timeoutMs: number;
  schema: JsonSchema | undefined;
  body: ChatCompletionCreateParamsNonStreaming;
  rpm: number | undefined;
  tpm: number | undefined;
}

/**
 * Creates the `llm` step type: one chat completion through the official `openai` SDK against any
 * OpenAI-compatible base URL. The SDK's own retries are off: retrying is the engine's job (`retry` on the step).
 *
 * The API key comes from the secret named by `api_key_secret`; it is never logged. Model, tokens and cost go to
 * `ctx.reportUsage`. With a `schema` the reply is parsed and validated (failures are retryable `STEP_FAILED`
 * quoting the content) and each optional property the model left out is logged as a warning. HTTP failures map
 * as {@link toLlmFailure} describes: 429 and 5xx are retryable and honour `Retry-After`.
 */
export function createLlmStep(options: LlmStepOptions = {}): StepType<LlmConfig> {
  const limiter = options.limiter ?? new RateLimiter();
  const validatorFor = createValidatorCache();
  return {
    type: 'llm',
    configSchema: llmConfigSchema,
    async execute(ctx, config) {
      const plan = planRequest(config, options);
      const validate = plan.schema ? validatorFor(plan.schema) : undefined;
      const apiKey = lookupKey(ctx, plan.keySecret);
      const ticket = await takeTurn(ctx, limiter, plan, apiKey);
      const started = ctx.now();
      const completion = await complete(ctx, plan, apiKey);
      const usage = recordUsage(ctx, plan, completion, options.prices ?? {});
      // Without a count from the server the estimate stays: better a little too slow than a 429.
      if (usage) ticket?.settle(usage.tokensIn + usage.tokensOut);
      ctx.log('info', describeUsage(completion.model, usage, ctx.now() - started));
      const reply = firstReply(completion);
      if (!validate || !plan.schema) return { text: replyText(reply) } satisfies LlmTextOutput;
      const output = parseStructured(reply, validate);
      for (const path of missingOptional(plan.schema, output)) ctx.log('warn', `optional property "${path}" is missing from the model output`);
      return output;
    },
  };
}

function planRequest(config: LlmConfig, options: LlmStepOptions): LlmPlan {
  const schemaMode = parseSchemaMode(config.schema_mode);
  const schema = config.schema;
  if (schema !== undefined && !isRecord(schema)) throw invalidConfig('`schema` must be a JSON Schema object');
  const body: ChatCompletionCreateParamsNonStreaming = {
    model: String(config.model),
    temperature: config.temperature ?? 0,
    messages: messagesOf(config, schema, schemaMode),
  };
  if (config.max_tokens !== undefined) body.max_tokens = config.max_tokens;
  if (schema) body.response_format = responseFormatOf(schema, schemaMode, config.strict);
  return {
    baseUrl: (config.base_url ?? options.baseUrl ?? process.env['OPENAI_BASE_URL'] ?? DEFAULT_BASE_URL).replace(/\/+$/, ''),
    keySecret: config.api_key_secret ?? DEFAULT_KEY_SECRET,
    timeoutMs: parseTimeout(config.timeout),
    schema,
    body,
    rpm: positiveLimit('rpm', config.rpm),
    tpm: positiveLimit('tpm', config.tpm),
  };
}

function messagesOf(config: LlmConfig, schema: JsonSchema | undefined, mode: SchemaMode): ChatCompletionMessageParam[] {
  const systemParts = [config.system, schema && mode === 'json_object' ? schemaInstruction(schema) : undefined];
  const system = systemParts.filter((part) => part !== undefined && part !== '').join('\n\n');
  const prompt = typeof config.prompt === 'string' ? config.prompt : JSON.stringify(config.prompt);
  const messages: ChatCompletionMessageParam[] = [];
  if (system !== '') messages.push({ role: 'system', content: system });
  messages.push({ role: 'user', content: prompt });
  return messages;
}

function lookupKey(ctx: StepContext, secret: string): string {
  const key = Object.hasOwn(ctx.secrets, secret) ? ctx.secrets[secret] : undefined;
  if (key !== undefined && key !== '') return key;
  const message =
    `llm step: no API key: secret ${secret} is not set. Set the environment variable SLUICE_SECRET_${secret} ` +
    "where the worker runs (or pass it in the engine's `secrets`), or name another secret with `api_key_secret`. " +
    'Servers that need no key (a local vLLM or Ollama) still need any non-empty value.';
  throw new SluiceError('STEP_FAILED', message, { retryable: false, details: { secret } });
}

/** Waits for the rate limiter when the step sets `rpm` or `tpm`; the key is hashed so it is never kept. */
async function takeTurn(ctx: StepContext, localLimiter: RateLimiter, plan: LlmPlan, apiKey: string): Promise<RateTicket | undefined> {
  // Inside the engine the budget is kept in the store, shared by every worker; alone, in this process.
  const limiter = ctx.rateLimit ?? localLimiter;
  if (plan.rpm === undefined && plan.tpm === undefined) return undefined;
  const key = `${plan.baseUrl}\0${createHash('sha256').update(apiKey).digest('hex')}`;
  const limits = { rpm: plan.rpm, tpm: plan.tpm };
  const onWait = (ms: number) => ctx.log('info', `rate limit of ${plan.baseUrl} (rpm ${plan.rpm ?? '-'}, tpm ${plan.tpm ?? '-'}): waiting ${ms} ms`);
  return limiter.acquire(key, limits, estimateTokens(plan), ctx.signal, onWait);
}

function estimateTokens(plan: LlmPlan): number {
  const chars = plan.body.messages.reduce((sum, m) => sum + (typeof m.content === 'string' ? m.content.length : 0), 0);
  return Math.ceil(chars * TOKENS_PER_CHAR) + (plan.body.max_tokens ?? 0);
}

/**
 * The OpenAI SDK and the failure mapping built on it, loaded at the first call: most programs that import Sluice
 * run no `llm` step, and `openai` is an optional peer dependency.
 */
async function loadClient() {
  return importOptional('openai', 'the llm step', async () => {
    const [sdk, failures] = await Promise.all([import('openai'), import('./api-failures.js')]);
    return { OpenAI: sdk.default, ...failures };
  });
}

async function complete(ctx: StepContext, plan: LlmPlan, apiKey: string): Promise<ChatCompletion> {
  const { OpenAI, captureErrorBodies, toLlmFailure } = await loadClient();
  const capture = captureErrorBodies();
  // The attempt's span is the parent of the provider's (W3C Trace Context).
  const defaultHeaders = ctx.traceparent === undefined ? {} : { defaultHeaders: { traceparent: ctx.traceparent } };
  const client = new OpenAI({ baseURL: plan.baseUrl, apiKey, maxRetries: 0, timeout: plan.timeoutMs, fetch: capture.fetch, ...defaultHeaders });
  try {
    return await client.chat.completions.create(plan.body, { signal: ctx.signal });
  } catch (err) {
    const target = { baseUrl: plan.baseUrl, model: plan.body.model, keySecret: plan.keySecret, timeoutMs: plan.timeoutMs, errorBody: capture.lastErrorBody() };
    throw toLlmFailure(err, ctx, target);
  }
}

interface CountedUsage {
  tokensIn: number;
  tokensOut: number;
  cost: number | undefined;
}

/**
 * Reports the model the server says it used and, when the server counted them, tokens and cost (some local
 * servers send no `usage`; then only the model is reported, not zeros). Returns the counts, if any.
 */
function recordUsage(ctx: StepContext, plan: LlmPlan, completion: ChatCompletion, prices: Record<string, ModelPrice>): CountedUsage | undefined {
  const model = completion.model || plan.body.model;
  if (!completion.usage) {
    ctx.reportUsage({ model });
    return undefined;
  }
  const tokensIn = completion.usage.prompt_tokens ?? 0;
  const tokensOut = completion.usage.completion_tokens ?? 0;
  const price = priceOf(prices, model) ?? priceOf(prices, plan.body.model);
  const cost = price ? roundCost((tokensIn * price.input_per_1k + tokensOut * price.output_per_1k) / 1000) : undefined;
  ctx.reportUsage({ model, tokensIn, tokensOut, ...(cost === undefined ? {} : { cost }) });
  return { tokensIn, tokensOut, cost };
}

/** Nine decimals: finer than any price, and no `0.057999999999999996` in the dashboard. */
function roundCost(cost: number): number {
  return Math.round(cost * 1e9) / 1e9;
}

function priceOf(prices: Record<string, ModelPrice>, model: string): ModelPrice | undefined {
  return Object.hasOwn(prices, model) ? prices[model] : undefined;
}

function describeUsage(model: string, usage: CountedUsage | undefined, ms: number): string {
  if (!usage) return `model ${model}: no token counts from the server, ${ms} ms`;
  const cost = usage.cost === undefined ? '' : `, cost ${usage.cost.toPrecision(3)}`;
  return `model ${model}: ${usage.tokensIn} tokens in, ${usage.tokensOut} out${cost}, ${ms} ms`;
}

function firstReply(completion: ChatCompletion): ModelReply {
  const choice = completion.choices?.[0];
  if (!choice) throw new SluiceError('STEP_FAILED', `model ${completion.model} returned no choices`, { retryable: true });
  return { content: choice.message?.content, refusal: choice.message?.refusal, finishReason: choice.finish_reason };
}

function parseSchemaMode(value: unknown): SchemaMode {
  if (value === undefined) return 'json_schema';
  const mode = SCHEMA_MODES.find((candidate) => candidate === value);
  if (mode === undefined) throw invalidConfig(`schema_mode must be one of ${SCHEMA_MODES.join(', ')}`);
  return mode;
}

function parseTimeout(value: string | number | undefined): number {
  if (value === undefined) return DEFAULT_TIMEOUT_MS;
  try {
    return parseDuration(value);
  } catch (err) {
    throw invalidConfig(`timeout: ${(err as Error).message}`);
  }
}

/** Templates bypass the config schema, so a limit is checked again once resolved. */
function positiveLimit(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !(value > 0)) throw invalidConfig(`${name} must be a positive number`);
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalidConfig(message: string): SluiceError {
  return new SluiceError('VALIDATION_FAILED', `llm step: ${message}`, { retryable: false });
}
