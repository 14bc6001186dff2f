import { describe, expect, it } from 'vitest';
import { ValidationError, type ValidationIssue } from '../../src/core/errors.js';
import { parsePipelineText } from '../../src/core/load-pipeline.js';
import type { PipelineSpec } from '../../src/core/model.js';
import { normalizePipeline, pipelineVersionHash } from '../../src/core/validate.js';
import { fakeStepTypes } from './fake-steps.js';

const stepTypes = fakeStepTypes();

function minimal(): PipelineSpec {
  return {
    name: 'demo',
    steps: {
      fetch: { uses: 'command', with: { run: 'curl example.com' } },
      parse: { uses: 'function', needs: ['fetch'], with: { module: './m.ts', export: 'parse' } },
    },
  };
}

/** The issues of an invalid definition (fails the test when it validates). */
function issuesOf(spec: unknown): ValidationIssue[] {
  try {
    normalizePipeline(spec, { stepTypes });
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).issues;
  }
  throw new Error('expected a ValidationError');
}

/** Issues of a YAML text, with positions. */
function yamlIssues(text: string): ValidationIssue[] {
  const { spec, locate } = parsePipelineText(text, 'p.yaml');
  try {
    normalizePipeline(spec, { stepTypes, file: 'p.yaml', locate });
  } catch (err) {
    return (err as ValidationError).issues;
  }
  throw new Error('expected a ValidationError');
}

describe('normalizePipeline defaults', () => {
  it('fills every default', () => {
    const p = normalizePipeline(minimal(), { stepTypes });
    expect(p).toEqual({
      name: 'demo',
      description: '',
      maxParallel: 4,
      failFast: true,
      timeoutMs: null,
      disabled: false,
      input: null,
      triggers: [],
      steps: [
        {
          name: 'fetch',
          uses: 'command',
          needs: [],
          with: { run: 'curl example.com' },
          if: null,
          retry: { attempts: 1, backoff: 'exponential', delayMs: 1000, maxDelayMs: 60_000, jitter: true },
          timeoutMs: null,
          onFailure: 'abort',
          cache: true,
          disabled: false,
          priority: 0,
          concurrencyKey: null,
          concurrencyLimit: null,
          output: null,
        },
        expect.objectContaining({ name: 'parse', needs: ['fetch'] }),
      ],
    });
  });

  it('defaults with to {} and the cron timezone to UTC', () => {
    const spec: PipelineSpec = {
      name: 'd',
      triggers: [{ cron: '0 2 * * *' }, { cron: '0 3 * * *', timezone: 'Europe/Berlin' }, { event: 'product.saved' }],
      steps: { g: { uses: 'gate' } },
    };
    const p = normalizePipeline(spec, { stepTypes });
    expect(p.steps[0]!.with).toEqual({});
    expect(p.triggers).toEqual([
      { kind: 'cron', cron: '0 2 * * *', timezone: 'UTC' },
      { kind: 'cron', cron: '0 3 * * *', timezone: 'Europe/Berlin' },
      { kind: 'event', event: 'product.saved' },
    ]);
  });

  it('merges retry field by field: step over defaults over built-in', () => {
    const spec = minimal();
    spec.defaults = { retry: { attempts: 3, delay: '2s', jitter: false }, timeout: '5m' };
    spec.steps.parse!.retry = { attempts: 5, max_delay: '10s' };
    spec.steps.parse!.timeout = 1500;
    const [fetch, parse] = normalizePipeline(spec, { stepTypes }).steps;
    expect(fetch!.retry).toEqual({ attempts: 3, backoff: 'exponential', delayMs: 2000, maxDelayMs: 60_000, jitter: false });
    expect(parse!.retry).toEqual({ attempts: 5, backoff: 'exponential', delayMs: 2000, maxDelayMs: 10_000, jitter: false });
    expect(fetch!.timeoutMs).toBe(300_000);
    expect(parse!.timeoutMs).toBe(1500);
  });

  it('reads every pipeline and step key', () => {
    const spec: PipelineSpec = {
      name: 'all.keys_1',
      description: 'everything',
      max_parallel: 2,
      fail_fast: false,
      timeout: '1h',
      disabled: true,
      input: { type: 'object' },
      steps: {
        a: {
          uses: 'command',
          with: { run: 'x' },
          if: 'input.go',
          on_failure: 'continue',
          cache: false,
          disabled: true,
          priority: -3,
          concurrency_key: 'db',
          concurrency_limit: 2,
          output: { type: 'object' },
        },
      },
    };
    const p = normalizePipeline(spec, { stepTypes });
    expect(p).toMatchObject({ description: 'everything', maxParallel: 2, failFast: false, timeoutMs: 3_600_000, disabled: true, input: { type: 'object' } });
    expect(p.steps[0]).toMatchObject({
      if: 'input.go',
      onFailure: 'continue',
      cache: false,
      disabled: true,
      priority: -3,
      concurrencyKey: 'db',
      concurrencyLimit: 2,
      output: { type: 'object' },
    });
  });

  it('gives a concurrency_key without a limit a limit of 1', () => {
    const spec = minimal();
    spec.steps.fetch!.concurrency_key = 'api';
    expect(normalizePipeline(spec, { stepTypes }).steps[0]).toMatchObject({ concurrencyKey: 'api', concurrencyLimit: 1 });
  });

  it('accepts an if written as ${{ expr }} and stores the bare expression', () => {
    const spec = minimal();
    spec.steps.parse!.if = '${{ steps.fetch.ok }}';
    expect(normalizePipeline(spec, { stepTypes }).steps[1]!.if).toBe('steps.fetch.ok');
  });

  it('keeps steps in written order, also for integer-like names when positions are known', () => {
    const text = 'name: o\nsteps:\n  b: { uses: gate }\n  "2": { uses: gate }\n  a: { uses: gate }\n  "1": { uses: gate }\n';
    const { spec, locate } = parsePipelineText(text, 'o.yaml');
    expect(normalizePipeline(spec, { stepTypes, locate }).steps.map((s) => s.name)).toEqual(['b', '2', 'a', '1']);
  });

  it('copies with, input and output so later edits to the spec do not leak in', () => {
    const spec = minimal();
    const p = normalizePipeline(spec, { stepTypes });
    (spec.steps.fetch!.with as { run: string }).run = 'changed';
    expect(p.steps[0]!.with).toEqual({ run: 'curl example.com' });
  });

  it('ignores properties set to undefined, as a TS object may have them', () => {
    const spec = { ...minimal(), description: undefined, timeout: undefined };
    expect(normalizePipeline(spec, { stepTypes })).toMatchObject({ description: '', timeoutMs: null });
  });
});

describe('normalizePipeline errors', () => {
  it('rejects a non-object definition', () => {
    expect(issuesOf(null)).toEqual([{ message: 'expected a pipeline definition (a mapping with name and steps), got null' }]);
  });

  it('names unknown keys, with a suggestion', () => {
    const spec = { ...minimal(), max_paralel: 3 };
    (spec.steps.fetch as unknown as Record<string, unknown>).need = ['x'];
    const issues = issuesOf(spec);
    expect(issues).toContainEqual({ path: 'max_paralel', message: expect.stringMatching(/^unknown key "max_paralel" \(did you mean "max_parallel"\?\); expected one of: .*max_parallel/) });
    expect(issues).toContainEqual({ path: 'steps.fetch.need', message: expect.stringContaining('unknown key "need" (did you mean "needs"?)') });
  });

  it('reports wrong types and missing keys', () => {
    const issues = issuesOf({ name: 'x', max_parallel: 'four', fail_fast: 'yes', steps: { a: { with: {} } } });
    expect(issues).toEqual(
      expect.arrayContaining([
        { path: 'max_parallel', message: 'expected an integer, got "four"' },
        { path: 'fail_fast', message: 'expected a boolean, got "yes"' },
        { path: 'steps.a', message: 'missing required key "uses"' },
      ]),
    );
  });

  it('rejects bad pipeline and step names', () => {
    const issues = issuesOf({ name: 'Bad Name', steps: { 'has space': { uses: 'gate' } } });
    expect(issues).toContainEqual({ path: 'name', message: expect.stringMatching(/^expected a pipeline name of lowercase letters.*got "Bad Name"$/) });
    expect(issues).toContainEqual({ path: 'steps["has space"]', message: expect.stringMatching(/^invalid key "has space": expected a step name/) });
  });

  it('lists the known step types for an unknown one', () => {
    const spec = minimal();
    spec.steps.fetch!.uses = 'shell';
    expect(issuesOf(spec)).toContainEqual({ path: 'steps.fetch.uses', message: 'unknown step type "shell"; known types: code, command, function, gate, llm' });
  });

  it('reports needs naming a missing step or the step itself', () => {
    const spec = minimal();
    spec.steps.parse!.needs = ['fetch', 'fetc', 'parse'];
    expect(issuesOf(spec)).toEqual([
      { path: 'steps.parse.needs[1]', message: 'needs "fetc", but there is no step named "fetc" (did you mean "fetch"?); steps: fetch, parse' },
      { path: 'steps.parse.needs[2]', message: 'step "parse" needs itself' },
    ]);
  });

  it('does not mistake object built-ins for steps', () => {
    const spec = minimal();
    spec.steps.parse!.needs = ['toString'];
    spec.steps.parse!.if = 'steps.constructor.ok';
    expect(issuesOf(spec).map((i) => i.message)).toEqual([
      expect.stringContaining('no step named "toString"'),
      expect.stringContaining('no step named "constructor"'),
    ]);
  });

  it('prints a cycle in run order', () => {
    const spec: PipelineSpec = {
      name: 'cyclic',
      steps: {
        a: { uses: 'gate', needs: ['c'] },
        b: { uses: 'gate', needs: ['a'] },
        c: { uses: 'gate', needs: ['b'] },
        d: { uses: 'gate', needs: ['a'] },
      },
    };
    expect(issuesOf(spec)).toEqual([{ path: 'steps.a.needs[0]', message: 'dependency cycle: a -> b -> c -> a' }]);
  });

  it('reports each independent cycle', () => {
    const spec: PipelineSpec = {
      name: 'cyclic',
      steps: { a: { uses: 'gate', needs: ['b'] }, b: { uses: 'gate', needs: ['a'] }, x: { uses: 'gate', needs: ['y'] }, y: { uses: 'gate', needs: ['x'] } },
    };
    expect(issuesOf(spec).map((i) => i.message)).toEqual(['dependency cycle: a -> b -> a', 'dependency cycle: x -> y -> x']);
  });

  it('reports JSONata syntax errors in if and in templates with their position', () => {
    const spec = minimal();
    spec.steps.parse!.if = 'steps.fetch.ok and';
    spec.steps.parse!.with = { module: 'm', export: 'e', args: ['${{ steps.fetch.body ^ }}'] };
    expect(issuesOf(spec)).toEqual([
      { path: 'steps.parse.if', message: 'invalid JSONata condition: Unexpected end of expression (at position 18)' },
      { path: 'steps.parse.with.args[0]', message: expect.stringMatching(/^invalid JSONata in "\$\{\{ steps\.fetch\.body \^ \}\}": .*\(at position \d+\)$/) },
    ]);
  });

  it('reports an unterminated template', () => {
    const spec = minimal();
    spec.steps.fetch!.with = { run: 'echo ${{ input.x' };
    expect(issuesOf(spec)).toEqual([{ path: 'steps.fetch.with.run', message: expect.stringContaining('unterminated "${{"') }]);
  });

  it('checks with against the step type schema', () => {
    const spec = minimal();
    spec.steps.fetch!.with = { run: 42, shell: 'bash' };
    spec.steps.parse!.with = { module: 'm' };
    expect(issuesOf(spec)).toEqual([
      { path: 'steps.fetch.with.shell', message: 'unknown key "shell"; expected one of: run, env, timeout_s' },
      { path: 'steps.fetch.with.run', message: 'expected a string, got 42' },
      { path: 'steps.parse.with', message: 'missing required key "export"' },
    ]);
  });

  it('checks with against draft 2020-12 config schemas too, and reports a broken one', () => {
    const types = new Map(stepTypes);
    const execute = async () => null;
    types.set('tuple', { type: 'tuple', execute, configSchema: { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', properties: { pair: { prefixItems: [{ type: 'string' }, { type: 'number' }] } } } });
    types.set('broken', { type: 'broken', execute, configSchema: { type: 'nonsense' } });
    const spec = { name: 'x', steps: { t: { uses: 'tuple', with: { pair: ['a', 'b'] } }, b: { uses: 'broken' } } };
    try {
      normalizePipeline(spec, { stepTypes: types });
      expect.unreachable();
    } catch (err) {
      expect((err as ValidationError).issues).toEqual([
        { path: 'steps.t.with.pair[1]', message: 'expected a number, got "b"' },
        { path: 'steps.b.uses', message: expect.stringContaining('step type "broken" has an invalid config schema') },
      ]);
    }
  });

  it('accepts a ${{ }} template wherever the step type schema expects another type', () => {
    const spec = minimal();
    spec.steps.fetch!.with = { run: 'x', env: '${{ input.env }}', timeout_s: '${{ input.t }}' };
    spec.steps.parse!.with = { module: 'm', export: 'e', args: '${{ steps.fetch.list }}' };
    expect(() => normalizePipeline(spec, { stepTypes })).not.toThrow();
  });

  it('still wants required keys next to templates', () => {
    const spec = minimal();
    spec.steps.parse!.with = { module: '${{ input.m }}' };
    expect(issuesOf(spec)).toEqual([{ path: 'steps.parse.with', message: 'missing required key "export"' }]);
  });

  it('rejects bad durations wherever they appear', () => {
    const spec = { ...minimal(), timeout: '10 minutes', defaults: { timeout: -5, retry: { delay: '1x' } } };
    expect(issuesOf(spec).map((i) => i.path)).toEqual(['timeout', 'defaults.retry.delay', 'defaults.timeout']);
    expect(issuesOf(spec)[0]!.message).toBe(
      'expected a duration such as 500ms, 30s, 1.5s, 5m, 2h, 1d or 1m30s, or a number of milliseconds, got "10 minutes"',
    );
  });

  it('rejects concurrency_limit without concurrency_key', () => {
    const spec = minimal();
    spec.steps.fetch!.concurrency_limit = 2;
    expect(issuesOf(spec)).toEqual([{ path: 'steps.fetch.concurrency_limit', message: expect.stringContaining('concurrency_limit needs a concurrency_key') }]);
  });

  it('rejects expressions reading steps that are not upstream', () => {
    const spec: PipelineSpec = {
      name: 'refs',
      steps: {
        a: { uses: 'gate' },
        b: { uses: 'gate', needs: ['a'] },
        c: { uses: 'gate', needs: ['b'], if: 'steps.a.ok and steps.b.ok' },
        d: { uses: 'gate', if: 'steps.c.ok', with: { x: '${{ steps.ghost.y }}' } },
      },
    };
    expect(issuesOf(spec)).toEqual([
      { path: 'steps.d.if', message: 'reads steps.c, but "c" is not among its needs, directly or through other steps; add "c" to needs' },
      { path: 'steps.d.with.x', message: 'reads steps.ghost, but there is no step named "ghost"; steps: a, b, c, d' },
    ]);
  });

  it('rejects triggers of neither form, bad cron shapes and unknown time zones', () => {
    const spec = { ...minimal(), triggers: [{ cron: '0 2 * *', timezone: 'Mars/Base' }, { cron: '* * * * *', event: 'e' }, { event: 'ok' }, 'daily'] };
    expect(issuesOf(spec)).toEqual([
      { path: 'triggers[1]', message: 'expected { cron, timezone? } or { event }, got a mapping' },
      { path: 'triggers[3]', message: 'expected { cron, timezone? } or { event }, got "daily"' },
      { path: 'triggers[0].cron', message: expect.stringContaining('expected a cron expression of 5 fields') },
      { path: 'triggers[0].timezone', message: 'unknown time zone "Mars/Base": expected an IANA name such as UTC or Europe/Berlin' },
    ]);
  });

  it('points inside the form a trigger evidently meant', () => {
    const spec = { ...minimal(), triggers: [{ cron: '0 2 * * *', timezon: 'UTC' }] };
    expect(issuesOf(spec)).toEqual([{ path: 'triggers[0].timezon', message: expect.stringContaining('unknown key "timezon" (did you mean "timezone"?)') }]);
  });

  it('rejects an input that is not a JSON Schema', () => {
    const spec = { ...minimal(), input: { type: 'objekt' } };
    expect(issuesOf(spec)).toEqual([{ path: 'input.type', message: expect.stringMatching(/^expected one of "array", "boolean", .*got "objekt"$/) }]);
  });

  it('rejects values JSON cannot hold, as a TS module might export', () => {
    const spec = minimal();
    spec.steps.fetch!.with = { run: 'x', env: { when: new Date(0) } };
    (spec.steps.parse!.with as Record<string, unknown>).fn = () => 1;
    expect(issuesOf(spec)).toEqual(
      expect.arrayContaining([
        { path: 'steps.fetch.with.env.when', message: 'expected a JSON value, got an instance of Date' },
        { path: 'steps.parse.with.fn', message: 'expected a JSON value, got a function' },
      ]),
    );
  });

  it('collects all issues at once, in reading order, with file, line and column', () => {
    const text = [
      'name: demo', //                          1
      'timeout: 5 minutes', //                  2
      'steps:', //                              3
      '  fetch:', //                            4
      '    uses: command', //                   5
      '    with: { run: "x", shell: bash }', // 6
      '  parse:', //                            7
      '    uses: function', //                  8
      '    needs: [fetch, nope]', //            9
      '    with: { module: m, export: e }', // 10
      '    timout: 5m', //                      11
      '',
    ].join('\n');
    expect(yamlIssues(text)).toEqual([
      { file: 'p.yaml', line: 2, column: 10, path: 'timeout', message: expect.stringContaining('expected a duration') },
      { file: 'p.yaml', line: 6, column: 23, path: 'steps.fetch.with.shell', message: expect.stringContaining('unknown key "shell"') },
      { file: 'p.yaml', line: 9, column: 20, path: 'steps.parse.needs[1]', message: expect.stringContaining('no step named "nope"') },
      { file: 'p.yaml', line: 11, column: 5, path: 'steps.parse.timout', message: expect.stringContaining('did you mean "timeout"?') },
    ]);
  });

  it('points a missing required key at the key of the mapping that lacks it', () => {
    const issues = yamlIssues('name: demo\nsteps:\n  fetch:\n    needs: []\n');
    expect(issues).toEqual([{ file: 'p.yaml', line: 3, column: 3, path: 'steps.fetch', message: 'missing required key "uses"' }]);
  });

  it('formats the whole error as file:line:col: path: message lines', () => {
    try {
      normalizePipeline(parsePipelineText('name: demo\nsteps:\n  a: { uses: nope }\n', 'p.yaml').spec, {
        stepTypes,
        file: 'p.yaml',
        locate: parsePipelineText('name: demo\nsteps:\n  a: { uses: nope }\n', 'p.yaml').locate,
      });
      expect.unreachable();
    } catch (err) {
      expect((err as ValidationError).code).toBe('VALIDATION_FAILED');
      expect((err as ValidationError).message).toBe('p.yaml:3:14: steps.a.uses: unknown step type "nope"; known types: code, command, function, gate, llm');
    }
  });
});

describe('pipelineVersionHash', () => {
  it('does not depend on the order keys were written in', () => {
    const a = normalizePipeline(minimal(), { stepTypes });
    const reordered = { steps: minimal().steps, name: 'demo' };
    expect(pipelineVersionHash(normalizePipeline(reordered, { stepTypes }))).toBe(pipelineVersionHash(a));
    expect(pipelineVersionHash(a)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('does not change when a default is written out', () => {
    const explicit = minimal();
    explicit.max_parallel = 4;
    explicit.steps.fetch!.cache = true;
    expect(pipelineVersionHash(normalizePipeline(explicit, { stepTypes }))).toBe(pipelineVersionHash(normalizePipeline(minimal(), { stepTypes })));
  });

  it('changes when a step changes', () => {
    const before = pipelineVersionHash(normalizePipeline(minimal(), { stepTypes }));
    const changed = minimal();
    changed.steps.fetch!.with = { run: 'curl example.org' };
    expect(pipelineVersionHash(normalizePipeline(changed, { stepTypes }))).not.toBe(before);
    const retried = minimal();
    retried.steps.parse!.retry = { attempts: 2 };
    expect(pipelineVersionHash(normalizePipeline(retried, { stepTypes }))).not.toBe(before);
  });
});
