import type { StandardSchemaV1 } from '@standard-schema/spec';
import { SluiceError } from '../core/errors.js';
import type { JsonSchema } from '../core/model.js';

/**
 * A schema a typed pipeline accepts: any Standard Schema (zod 4, valibot, arktype...), which types the value and
 * validates it, or a plain JSON Schema object (validated by the engine, typed `unknown` unless a type is given).
 */
export type SchemaLike = StandardSchemaV1 | JsonSchema;

/** The type a schema produces: a Standard Schema's output type, `Fallback` for a JSON Schema. */
export type SchemaOutput<S, Fallback = unknown> = S extends StandardSchemaV1 ? StandardSchemaV1.InferOutput<S> : Fallback;

/** The type a schema accepts: a Standard Schema's input type, `Fallback` for a JSON Schema. */
export type SchemaInput<S, Fallback = unknown> = S extends StandardSchemaV1 ? StandardSchemaV1.InferInput<S> : Fallback;

export function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return false;
  const props = (value as { '~standard'?: { validate?: unknown } })['~standard'];
  return typeof props === 'object' && props !== null && typeof props.validate === 'function';
}

/**
 * The JSON Schema the engine stores for `schema`: a JSON Schema as given, a Standard Schema's own conversion
 * (Standard JSON Schema, e.g. zod 4) as draft-07 without `$schema`, or null when the library offers none (the
 * value is then checked by the Standard Schema alone, where the code runs).
 */
export function toJsonSchema(schema: SchemaLike): JsonSchema | null {
  if (!isStandardSchema(schema)) return schema;
  const converter = (schema['~standard'] as { jsonSchema?: { input?: (o: { target: string }) => JsonSchema } }).jsonSchema;
  if (typeof converter?.input !== 'function') return null;
  try {
    const { $schema: _ignored, ...rest } = converter.input({ target: 'draft-07' });
    return rest;
  } catch {
    // A schema the library cannot express as JSON Schema (a transform, a custom check) is checked in code only.
    return null;
  }
}

/**
 * Validates `value` against a Standard Schema and returns its output (with the library's defaults and
 * transforms applied). Throws `code` naming `where` and every issue's path.
 */
export async function validateStandard<S extends StandardSchemaV1>(schema: S, value: unknown, where: string, code: 'INPUT_INVALID' | 'OUTPUT_INVALID'): Promise<StandardSchemaV1.InferOutput<S>> {
  const result = await schema['~standard'].validate(value);
  if (!result.issues) return result.value as StandardSchemaV1.InferOutput<S>;
  const issues = result.issues.map((issue) => ({ path: issuePath(issue), message: issue.message }));
  const lines = issues.map((i) => `  ${i.path}: ${i.message}`).join('\n');
  throw new SluiceError(code, `${where} is invalid:\n${lines}`, { details: issues, retryable: false });
}

function issuePath(issue: StandardSchemaV1.Issue): string {
  const parts = (issue.path ?? []).map((p) => (typeof p === 'object' && p !== null ? p.key : p));
  return parts.length === 0 ? '(root)' : parts.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
}
