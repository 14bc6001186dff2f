import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parsePipelineText } from '../../src/core/load-pipeline.js';
import { formatPipelineSchema, pipelineJsonSchema } from '../../src/core/pipeline-schema.js';

const shippedFile = fileURLToPath(new URL('../../schema/pipeline.schema.json', import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

function compile() {
  // strict: unknown keywords or ambiguous types in our own schema are bugs
  return new Ajv({ strict: true, allErrors: true, allowUnionTypes: true }).compile(pipelineJsonSchema);
}

async function example(): Promise<Record<string, any>> {
  return parsePipelineText(await readFile(fixture('product-analysis.yaml'), 'utf8'), 'x.yaml').spec as Record<string, any>;
}

describe('pipelineJsonSchema', () => {
  it('matches the shipped schema/pipeline.schema.json (run `npx tsx scripts/generate-schema.ts`)', async () => {
    expect(await readFile(shippedFile, 'utf8')).toBe(formatPipelineSchema());
  });

  it('compiles in strict mode and accepts the PRODUCT.md example', async () => {
    const validate = compile();
    expect(validate(await example()), JSON.stringify(validate.errors)).toBe(true);
  });

  it('rejects unknown keys at the top, in defaults, retry, triggers and steps, but not inside with', async () => {
    const validate = compile();
    const mutations: Array<(spec: Record<string, any>) => void> = [
      (s) => (s.owner = 'me'),
      (s) => (s.defaults.retries = 1),
      (s) => (s.defaults.retry.tries = 1),
      (s) => (s.triggers[0].every = '1h'),
      (s) => (s.steps.import.run = 'x'),
    ];
    for (const mutate of mutations) {
      const spec = await example();
      mutate(spec);
      expect(validate(spec)).toBe(false);
    }
    const spec = await example();
    spec.steps.import.with.anything = { goes: [1] };
    expect(validate(spec)).toBe(true);
  });

  it.each([
    ['name', (s: Record<string, any>) => (s.name = 'Product')],
    ['step name', (s: Record<string, any>) => (s.steps['a b'] = { uses: 'gate' })],
    ['duration', (s: Record<string, any>) => (s.timeout = '30 min')],
    ['negative duration', (s: Record<string, any>) => (s.defaults.timeout = -1)],
    ['on_failure', (s: Record<string, any>) => (s.steps.import.on_failure = 'ignore')],
    ['backoff', (s: Record<string, any>) => (s.defaults.retry.backoff = 'linear')],
    ['trigger with both forms', (s: Record<string, any>) => (s.triggers[0].event = 'x')],
    ['max_parallel 0', (s: Record<string, any>) => (s.max_parallel = 0)],
    ['missing uses', (s: Record<string, any>) => delete s.steps.import.uses],
    ['no steps', (s: Record<string, any>) => (s.steps = {})],
  ])('rejects a bad %s', async (_what, mutate) => {
    const spec = await example();
    mutate(spec);
    expect(compile()(spec)).toBe(false);
  });

  it.each([['1m30s'], ['500ms'], ['1.5s'], [2000]])('accepts the duration %j', async (duration) => {
    const spec = await example();
    spec.timeout = duration;
    expect(compile()(spec)).toBe(true);
  });

  it('describes every property, so editors can show help', () => {
    const undocumented: string[] = [];
    const visit = (schema: unknown, path: string): void => {
      if (typeof schema !== 'object' || schema === null) return;
      const properties = (schema as { properties?: Record<string, unknown> }).properties ?? {};
      for (const [key, property] of Object.entries(properties)) {
        const p = property as { description?: string; $ref?: string };
        const ref = p.$ref?.startsWith('#/definitions/') ? (pipelineJsonSchema.definitions as Record<string, { description?: string }>)[p.$ref.slice(14)] : undefined;
        if (!p.description && !ref?.description) undocumented.push(`${path}.${key}`);
        visit(property, `${path}.${key}`);
      }
      for (const branch of (schema as { oneOf?: unknown[] }).oneOf ?? []) visit(branch, path);
    };
    visit(pipelineJsonSchema, '#');
    for (const [name, definition] of Object.entries(pipelineJsonSchema.definitions)) visit(definition, `#/definitions/${name}`);
    expect(undocumented).toEqual([]);
  });
});
