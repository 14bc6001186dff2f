import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError, type ValidationIssue } from '../../src/core/errors.js';
import { loadPipelineFile, parsePipelineText } from '../../src/core/load-pipeline.js';
import { fakeStepTypes } from './fake-steps.js';

const stepTypes = fakeStepTypes();
const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));

async function issuesOf(load: Promise<unknown> | (() => unknown)): Promise<ValidationIssue[]> {
  const err = await (typeof load === 'function' ? Promise.resolve().then(load) : load).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ValidationError);
  return (err as ValidationError).issues;
}

describe('parsePipelineText', () => {
  const text = ['name: demo', 'steps:', '  fetch:', '    uses: command', '    with: { run: "echo ${{ input.x }}" }', '    needs: [a, b]', ''].join('\n');

  it('parses YAML into plain data', () => {
    expect(parsePipelineText(text, 'p.yaml').spec).toEqual({
      name: 'demo',
      steps: { fetch: { uses: 'command', with: { run: 'echo ${{ input.x }}' }, needs: ['a', 'b'] } },
    });
  });

  it('locates values and keys by path, 1-based', () => {
    const { locate } = parsePipelineText(text, 'p.yaml');
    expect(locate(['steps', 'fetch', 'uses'])).toEqual({ line: 4, column: 11 });
    expect(locate(['steps', 'fetch', 'uses'], 'key')).toEqual({ line: 4, column: 5 });
    expect(locate(['steps', 'fetch', 'needs', 1])).toEqual({ line: 6, column: 16 });
    expect(locate(['steps', 'fetch', 'with', 'run'])).toEqual({ line: 5, column: 18 });
    expect(locate([])).toEqual({ line: 1, column: 1 });
  });

  it('falls back to the nearest key that exists', () => {
    const { locate } = parsePipelineText(text, 'p.yaml');
    expect(locate(['steps', 'fetch', 'retry', 'attempts'])).toEqual({ line: 3, column: 3 });
    expect(locate(['steps', 'other'])).toEqual({ line: 2, column: 1 });
  });

  it('follows aliases and merge keys', () => {
    const yaml = 'name: m\nx-common: &common { uses: gate, priority: 2 }\nsteps:\n  a:\n    <<: *common\n    disabled: true\n';
    const { spec, locate } = parsePipelineText(yaml, 'm.yaml');
    expect((spec as { steps: unknown }).steps).toEqual({ a: { uses: 'gate', priority: 2, disabled: true } });
    expect(locate(['steps', 'a', 'disabled'])).toEqual({ line: 6, column: 15 });
  });

  it('parses JSON and locates inside it', () => {
    const json = '{\n  "name": "j",\n  "steps": {\n    "a": { "uses": 7 }\n  }\n}\n';
    const { spec, locate } = parsePipelineText(json, 'p.json');
    expect(spec).toEqual({ name: 'j', steps: { a: { uses: 7 } } });
    expect(locate(['steps', 'a', 'uses'])).toEqual({ line: 4, column: 20 });
  });

  it('turns YAML syntax errors into a ValidationError with file, line and column', async () => {
    const issues = await issuesOf(() => parsePipelineText('name: x\nsteps:\n  a: { uses: gate\n  b: 1\n', 'bad.yaml'));
    expect(issues.length).toBeGreaterThan(0);
    expect(issues[0]).toMatchObject({ file: 'bad.yaml', line: expect.any(Number), column: expect.any(Number), message: expect.stringMatching(/^YAML syntax error: /) });
  });

  it('points a syntax error at the offending line', async () => {
    const yaml = 'name: x\nsteps:\n  a:\n    uses: gate\n   bad: 1\n  b:\n    uses: gate\n';
    expect(await issuesOf(() => parsePipelineText(yaml, 'bad.yaml'))).toEqual([
      { file: 'bad.yaml', line: 5, column: 1, message: 'YAML syntax error: All mapping items must start at the same column' },
    ]);
  });

  it('points an error found at the end of input at the last character, not past it', async () => {
    const issues = await issuesOf(() => parsePipelineText('name: x\nsteps:\n  a:\n    uses: "gate\n\n', 'bad.yaml'));
    expect(issues[0]).toMatchObject({ file: 'bad.yaml', line: 4, column: 15, message: expect.stringContaining('Missing closing "quote') });
  });

  it('reports duplicate step names and keys at the second occurrence', async () => {
    const yaml = 'name: dup\nsteps:\n  a:\n    uses: gate\n    uses: command\n  a:\n    uses: gate\n';
    expect(await issuesOf(() => parsePipelineText(yaml, 'dup.yaml'))).toEqual([
      { file: 'dup.yaml', line: 5, column: 5, path: 'steps.a.uses', message: 'duplicate key "uses"' },
      { file: 'dup.yaml', line: 6, column: 3, path: 'steps.a', message: 'duplicate step name "a"' },
    ]);
  });

  it('gives null for an empty document, which validation then rejects', () => {
    expect(parsePipelineText('# nothing\n', 'e.yaml').spec).toBeNull();
  });
});

describe('loadPipelineFile', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-load-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads the example pipeline of PRODUCT.md', async () => {
    const file = join(fixtures, 'product-analysis.yaml');
    const loaded = await loadPipelineFile(file, stepTypes);
    expect(loaded.file).toBe(file);
    expect(loaded.source).toBe(await readFile(file, 'utf8'));
    expect(loaded.pipeline.name).toBe('product-analysis');
    expect(loaded.pipeline.steps.map((s) => s.name)).toEqual(['import', 'typing', 'score', 'summarize', 'check']);
    expect(loaded.pipeline.steps[3]).toMatchObject({ if: 'steps.score.value > 10', timeoutMs: 300_000 });
    expect(loaded.pipeline.steps[0]!.retry).toEqual({ attempts: 3, backoff: 'exponential', delayMs: 1000, maxDelayMs: 60_000, jitter: true });
    expect(loaded.pipeline.triggers).toEqual([
      { kind: 'cron', cron: '0 2 * * *', timezone: 'Europe/Berlin' },
      { kind: 'event', event: 'product.saved' },
    ]);
  });

  it('reports an error on a known line with its column and key path', async () => {
    const file = join(fixtures, 'invalid.yaml');
    const issues = await issuesOf(loadPipelineFile(file, stepTypes));
    expect(issues).toEqual([
      { file, line: 7, column: 21, path: 'steps.typing.needs[1]', message: 'needs "scoring", but there is no step named "scoring"; steps: import, typing' },
      { file, line: 10, column: 5, path: 'steps.typing.retries', message: expect.stringContaining('unknown key "retries"') },
    ]);
  });

  it('loads JSON, allowing a $schema key for editors', async () => {
    const loaded = await loadPipelineFile(join(fixtures, 'pipeline.json'), stepTypes);
    expect(loaded.pipeline.steps.map((s) => [s.name, s.needs])).toEqual([
      ['hello', []],
      ['bye', ['hello']],
    ]);
  });

  it('loads the default export of a TypeScript module without a build step', async () => {
    const file = join(fixtures, 'pipeline-module.ts');
    const loaded = await loadPipelineFile(file, stepTypes);
    expect(loaded.pipeline.name).toBe('from-ts');
    expect(loaded.pipeline.steps[1]).toMatchObject({ name: 'parse', needs: ['fetch'], timeoutMs: 120_000 });
    expect(loaded.source).toBe(await readFile(file, 'utf8'));
  });

  it('loads an export named pipeline from an .mts module', async () => {
    const loaded = await loadPipelineFile(join(fixtures, 'named-export.mts'), stepTypes);
    expect(loaded.pipeline.name).toBe('named-export');
  });

  it('loads .ts outside an ESM package (CommonJS) and .mjs/.js modules', async () => {
    const body = "{ name: 'plain', steps: { a: { uses: 'gate' } } }";
    await writeFile(join(dir, 'cjs.ts'), `const spec: { name: string } = ${body};\nexport default spec;\n`);
    await writeFile(join(dir, 'esm.mjs'), `export const pipeline = ${body};\n`);
    await writeFile(join(dir, 'plain.js'), `export default ${body};\n`);
    for (const name of ['cjs.ts', 'esm.mjs', 'plain.js']) {
      expect((await loadPipelineFile(join(dir, name), stepTypes)).pipeline.name).toBe('plain');
    }
  });

  it('validates a module export, naming the file but no line', async () => {
    const file = join(dir, 'invalid.mts');
    await writeFile(file, "export default { name: 'x', steps: { a: { uses: 'nope' } } };\n");
    expect(await issuesOf(loadPipelineFile(file, stepTypes))).toEqual([
      { file, path: 'steps.a.uses', message: expect.stringContaining('unknown step type "nope"') },
    ]);
  });

  it('says so when a module exports no definition', async () => {
    const file = join(dir, 'empty.mts');
    await writeFile(file, 'export const other = 1;\n');
    expect(await issuesOf(loadPipelineFile(file, stepTypes))).toEqual([
      { file, message: 'expected the module to export a pipeline definition as its default export or as `pipeline`' },
    ]);
  });

  it('fails with MODULE_LOAD_FAILED when the module throws', async () => {
    const file = join(dir, 'throws.mts');
    await writeFile(file, "throw new Error('boom');\n");
    await expect(loadPipelineFile(file, stepTypes)).rejects.toMatchObject({
      code: 'MODULE_LOAD_FAILED',
      message: expect.stringMatching(/throws\.mts: boom/),
    });
  });

  it('fails with PIPELINE_NOT_FOUND naming the missing path', async () => {
    const file = join(dir, 'missing.yaml');
    await expect(loadPipelineFile(file, stepTypes)).rejects.toMatchObject({
      code: 'PIPELINE_NOT_FOUND',
      message: expect.stringContaining(file),
    });
  });

  it('resolves relative paths and reports them as given', async () => {
    const relative = join('test', 'core', 'fixtures', 'invalid.yaml');
    const issues = await issuesOf(loadPipelineFile(relative, stepTypes));
    expect(issues[0]!.file).toBe(relative);
    const loaded = await loadPipelineFile(join('test', 'core', 'fixtures', 'pipeline.json'), stepTypes);
    expect(loaded.file).toBe(resolve('test/core/fixtures/pipeline.json'));
  });

  it('rejects other file types', async () => {
    const file = join(dir, 'pipeline.toml');
    await writeFile(file, 'name = "x"\n');
    expect(await issuesOf(loadPipelineFile(file, stepTypes))).toEqual([
      { file, message: 'unsupported file type ".toml": expected one of .yaml, .yml, .json, .ts, .mts, .js, .mjs' },
    ]);
  });
});
