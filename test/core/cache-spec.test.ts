import { describe, expect, it } from 'vitest';
import type { ValidationError } from '../../src/core/errors.js';
import { compileGlob, expandBraces, globProblem, matchesAny } from '../../src/core/glob.js';
import { parsePipelineText } from '../../src/core/load-pipeline.js';
import { normalizePipeline, pipelineVersionHash } from '../../src/core/validate.js';
import { fakeStepTypes } from './fake-steps.js';

const stepTypes = fakeStepTypes();

/** A two-step pipeline whose step `a` has `cache: <cache>` (YAML flow text). */
function pipelineText(cache: string): string {
  return `name: demo\nsteps:\n  a:\n    uses: command\n    with: { run: x }\n    cache: ${cache}\n  b:\n    uses: command\n    with: { run: x }\n`;
}

function issuesOf(cache: string): Array<{ line?: number; path?: string; message: string }> {
  const { spec, locate } = parsePipelineText(pipelineText(cache), 'p.yaml');
  try {
    normalizePipeline(spec, { stepTypes, file: 'p.yaml', locate });
  } catch (err) {
    return (err as ValidationError).issues;
  }
  throw new Error('expected a ValidationError');
}

function normalized(cache: string) {
  const { spec, locate } = parsePipelineText(pipelineText(cache), 'p.yaml');
  return normalizePipeline(spec, { stepTypes, file: 'p.yaml', locate });
}

describe('the cache key of a step', () => {
  it('accepts true, false and the object form, filling its defaults', () => {
    expect(normalized('false').steps[0]).toMatchObject({ cache: false });
    expect(normalized('true').steps[0]!.cacheFiles).toBeUndefined();
    expect(normalized('{ inputs: [data/*.csv], key: "${{ input.day }}" }').steps[0]).toMatchObject({
      cache: true,
      cacheFiles: { inputs: ['data/*.csv'], outputs: [], key: '${{ input.day }}', outputsUnchanged: false },
    });
  });

  it('keeps the version hash of a pipeline written with a boolean cache', () => {
    expect(pipelineVersionHash(normalized('true'))).toBe(pipelineVersionHash(normalizePipeline(parsePipelineText(pipelineText('true').replace('    cache: true\n', ''), 'p.yaml').spec, { stepTypes })));
  });

  it.each([
    ['"yes"', 'steps.a.cache', 'expected true | false or { inputs?, outputs?, key?, outputs_unchanged? }, got "yes"'],
    ['{ inputs: "*.csv" }', 'steps.a.cache.inputs', 'expected a list'],
    ['{ input: [a] }', 'steps.a.cache.input', 'unknown key "input" (did you mean "inputs"?)'],
    ['{ inputs: [/etc/passwd] }', 'steps.a.cache.inputs[0]', 'is absolute; cache globs are relative to the pipeline file'],
    ['{ outputs: ["out/[ab.json"] }', 'steps.a.cache.outputs[0]', 'has a "[" without its "]"'],
    ['{ key: "${{ input. }}" }', 'steps.a.cache.key', 'invalid JSONata'],
    ['{ key: "${{ steps.b.x }}" }', 'steps.a.cache.key', '"b" is not among its needs'],
    ['{ outputs_unchanged: "yes" }', 'steps.a.cache.outputs_unchanged', 'expected a boolean'],
  ])('refuses cache: %s, naming the line and key', (cache, path, message) => {
    expect(issuesOf(cache)).toEqual([expect.objectContaining({ file: 'p.yaml', line: 6, path, message: expect.stringContaining(message) })]);
  });
});

describe('cache globs', () => {
  const matches = (pattern: string, path: string) => matchesAny(compileGlob(pattern), path);

  it('matches * and ? within a name, ** across folders, sets and alternatives', () => {
    expect(matches('work/*.json', 'work/a.json')).toBe(true);
    expect(matches('work/*.json', 'work/sub/a.json')).toBe(false);
    expect(matches('work/**/*.json', 'work/a.json')).toBe(true);
    expect(matches('work/**/*.json', 'work/x/y/a.json')).toBe(true);
    expect(matches('data/part-?.csv', 'data/part-1.csv')).toBe(true);
    expect(matches('data/part-[0-4].csv', 'data/part-7.csv')).toBe(false);
    expect(matches('data/part-[!0-4].csv', 'data/part-7.csv')).toBe(true);
    expect(matches('{src,lib}/*.ts', 'lib/a.ts')).toBe(true);
    expect(matches('./phases/lib.mjs', 'phases/lib.mjs')).toBe(true);
  });

  it('keeps wildcards off hidden names unless the pattern names them', () => {
    expect(matches('*.json', '.hidden.json')).toBe(false);
    expect(matches('**/*.json', '.git/a.json')).toBe(false);
    expect(matches('.config/*.json', '.config/a.json')).toBe(true);
  });

  it('walks only from the folder before the first wildcard', () => {
    expect(compileGlob('work/2026/*.json')[0]).toMatchObject({ base: 'work/2026', literal: false, deep: false });
    expect(compileGlob('phases/lib.mjs')[0]).toMatchObject({ literal: true, path: 'phases/lib.mjs' });
    expect(expandBraces('a{b,c{d,e}}f')).toEqual(['abf', 'acdf', 'acef']);
    expect(globProblem('{a,b')).toContain('without its "}"');
    expect(globProblem('data/*.csv')).toBeNull();
  });
});
