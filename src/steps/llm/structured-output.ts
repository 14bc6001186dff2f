import type { ErrorObject, ValidateFunction } from 'ajv';
import { ajv2020Package, ajvPackage } from '../../core/lazy-packages.js';
import { SluiceError } from '../../core/errors.js';
import { stableStringify } from '../../core/hash.js';
import type { JsonSchema } from '../../core/model.js';
import { excerpt } from '../http/failures.js';

/**
 * How a schema is asked of the server. `json_schema`: `response_format: { type: 'json_schema' }` (OpenAI,
 * vLLM, recent Ollama, OpenRouter). `json_object`: plain JSON mode with the schema written into the system
 * message, for servers that only know JSON mode. Either way the reply is validated here.
 */
export type SchemaMode = 'json_schema' | 'json_object';

export const SCHEMA_MODES: readonly SchemaMode[] = ['json_schema', 'json_object'];

/** `response_format` of a chat-completions request. */
export type ResponseFormat =
  | { type: 'json_schema'; json_schema: { name: string; schema: Record<string, unknown>; strict: boolean } }
  | { type: 'json_object' };

const CONTENT_EXCERPT_CHARS = 500;
const MAX_CACHED_VALIDATORS = 100;

/** The `response_format` for a schema; `strict` defaults to whether the schema meets OpenAI's strict rules. */
export function responseFormatOf(schema: JsonSchema, mode: SchemaMode, strict: boolean | undefined): ResponseFormat {
  if (mode === 'json_object') return { type: 'json_object' };
  return { type: 'json_schema', json_schema: { name: 'output', schema, strict: strict ?? isStrictCompatible(schema) } };
}

/** The system-message addendum of `json_object` mode: the server sees the schema only through the prompt. */
export function schemaInstruction(schema: JsonSchema): string {
  return `Reply with a single JSON object, and nothing else, that conforms to this JSON Schema:\n${JSON.stringify(schema)}`;
}

/**
 * Whether OpenAI's strict structured outputs accept the schema's shape: an object at the root, and every
 * object listing all its properties in `required` with `additionalProperties: false`. A schema with optional
 * properties fails this, and strict mode would reject it with a 400, so it is sent non-strict and the reply
 * validated here instead. Unsupported keywords are not checked: the server names them.
 */
export function isStrictCompatible(schema: JsonSchema): boolean {
  return schema.type === 'object' && everyObjectClosed(schema);
}

function everyObjectClosed(node: unknown): boolean {
  if (Array.isArray(node)) return node.every(everyObjectClosed);
  if (!isRecord(node)) return true;
  if (isRecord(node.properties)) {
    const required = Array.isArray(node.required) ? node.required : [];
    const closed = node.additionalProperties === false && Object.keys(node.properties).every((key) => required.includes(key));
    if (!closed) return false;
  }
  const children = ['properties', '$defs', 'definitions'].flatMap((key) => (isRecord(node[key]) ? Object.values(node[key]) : []));
  const nested = ['items', 'anyOf', 'allOf', 'oneOf'].map((key) => node[key]);
  return [...children, ...nested].every(everyObjectClosed);
}

/** Compiles and caches validators by the schema's stable JSON (schemas come from pipeline definitions). */
export function createValidatorCache() {
  const options = { allErrors: true, strict: false, logger: false } as const;
  const ajv = new (ajvPackage().Ajv)(options);
  const ajv2020 = new (ajv2020Package().Ajv2020)(options);
  const cache = new Map<string, ValidateFunction>();
  return (schema: JsonSchema): ValidateFunction => {
    const key = stableStringify(schema);
    let validate = cache.get(key);
    if (validate) return validate;
    try {
      validate = (String(schema.$schema ?? '').includes('2020-12') ? ajv2020 : ajv).compile(schema);
    } catch (err) {
      throw new SluiceError('VALIDATION_FAILED', `llm step: \`schema\` is not a valid JSON Schema: ${(err as Error).message}`, { retryable: false, cause: err });
    }
    if (cache.size >= MAX_CACHED_VALIDATORS) cache.delete(cache.keys().next().value as string);
    cache.set(key, validate);
    return validate;
  };
}

/** What came back in the first choice. */
export interface ModelReply {
  content: string | null | undefined;
  refusal?: string | null | undefined;
  finishReason: string | null | undefined;
}

/**
 * The reply's text. A refusal is not retryable (temperature 0 repeats it); an empty reply is, since it
 * usually means the server cut the generation short.
 */
export function replyText(reply: ModelReply): string {
  if (reply.refusal) throw new SluiceError('STEP_FAILED', `the model refused: ${excerpt(reply.refusal, CONTENT_EXCERPT_CHARS)}`, { retryable: false });
  if (reply.content === null || reply.content === undefined || reply.content.trim() === '') {
    throw new SluiceError('STEP_FAILED', `the model returned no content (finish_reason: ${reply.finishReason ?? 'none'})`, { retryable: true });
  }
  return reply.content;
}

/**
 * Parses the reply as JSON and validates it; failures are retryable `STEP_FAILED` errors quoting the content.
 * A reply wrapped in a Markdown code fence (common in JSON mode of small local models) is unwrapped first.
 */
export function parseStructured(reply: ModelReply, validate: ValidateFunction): unknown {
  const content = replyText(reply);
  let value: unknown;
  try {
    value = JSON.parse(unfence(content)) as unknown;
  } catch (err) {
    const cut = reply.finishReason === 'length' ? ' (finish_reason: length, the reply was cut off at max_tokens)' : '';
    const message = `the model output is not valid JSON${cut}: ${(err as Error).message}; content: ${excerpt(content, CONTENT_EXCERPT_CHARS)}`;
    throw new SluiceError('STEP_FAILED', message, { retryable: true, cause: err, details: { content: excerpt(content, CONTENT_EXCERPT_CHARS) } });
  }
  if (!validate(value)) {
    const problems = describeErrors(validate.errors ?? []);
    const message = `the model output does not match the schema: ${problems.join('; ')}; content: ${excerpt(content, CONTENT_EXCERPT_CHARS)}`;
    throw new SluiceError('STEP_FAILED', message, { retryable: true, details: { problems, content: excerpt(content, CONTENT_EXCERPT_CHARS) } });
  }
  return value;
}

function unfence(content: string): string {
  const fenced = /^\s*```[a-zA-Z]*\s*\n([\s\S]*?)\n?\s*```\s*$/.exec(content);
  return fenced?.[1] ?? content;
}

function describeErrors(errors: ErrorObject[]): string[] {
  return errors.map((e) => {
    const allowed = e.keyword === 'enum' ? ` (${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')})` : '';
    return `${e.instancePath || '/'} ${e.message ?? e.keyword}${allowed}`;
  });
}

/**
 * Paths of optional properties (declared in `properties`, not in `required`) absent from `value`, through
 * nested objects and array items (`items[].note`). Each path appears once.
 */
export function missingOptional(schema: unknown, value: unknown, path = ''): string[] {
  return [...new Set(collectMissing(schema, value, path))];
}

function collectMissing(schema: unknown, value: unknown, path: string): string[] {
  if (!isRecord(schema)) return [];
  if (Array.isArray(value)) return value.flatMap((item) => collectMissing(schema.items, item, `${path}[]`));
  if (!isRecord(value) || !isRecord(schema.properties)) return [];
  const required = Array.isArray(schema.required) ? schema.required : [];
  return Object.entries(schema.properties).flatMap(([key, sub]) => {
    const at = path ? `${path}.${key}` : key;
    if (Object.hasOwn(value, key)) return collectMissing(sub, value[key], at);
    return required.includes(key) ? [] : [at];
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
