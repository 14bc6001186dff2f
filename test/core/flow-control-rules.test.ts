import { describe, expect, it } from 'vitest';
import { ValidationError, type ValidationIssue } from '../../src/core/errors.js';
import { parsePipelineText } from '../../src/core/load-pipeline.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { fakeStepTypes } from './fake-steps.js';

const stepTypes = fakeStepTypes();

/** The pipeline file with `rules` above its steps, loaded as `sluice` loads it. */
function load(rules: string) {
  const text = `name: bursty\n${rules}\nsteps:\n  go: { uses: command, with: { run: "true" } }\n`;
  const { spec, locate } = parsePipelineText(text, 'bursty.yaml');
  return normalizePipeline(spec, { stepTypes, file: 'bursty.yaml', locate });
}

function issuesOf(rules: string): ValidationIssue[] {
  try {
    load(rules);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).issues;
  }
  throw new Error('expected the rules to be refused');
}

describe('flow rules in a pipeline file', () => {
  it('normalizes every rule with its defaults', () => {
    const p = load(['rate_limit: { limit: 100, period: 1m, key: "${{ input.customer }}" }', 'throttle: { limit: 5, period: 10s }', 'debounce: { period: 30s, max_wait: 5m }', 'singleton: { mode: skip }'].join('\n'));
    expect(p.flow).toEqual({
      rateLimit: { limit: 100, periodMs: 60_000, mode: 'refuse', key: '${{ input.customer }}' },
      throttle: { limit: 5, periodMs: 10_000, key: null },
      debounce: { periodMs: 30_000, maxWaitMs: 300_000, key: null, merge: null },
      singleton: { mode: 'skip', key: null },
    });
  });

  it('a pipeline without rules has no flow field (its version hash is as before)', () => {
    expect('flow' in load('')).toBe(false);
  });

  it('limit: 0 names the file, line and key', () => {
    const [issue] = issuesOf('rate_limit: { limit: 0, period: 1m }');
    expect(issue).toMatchObject({ file: 'bursty.yaml', line: 2, path: 'rate_limit.limit' });
    expect(issue!.message).toMatch(/>= 1|at least 1/);
  });

  it('period: banana names the key and what a duration looks like', () => {
    const [issue] = issuesOf('throttle:\n  limit: 3\n  period: banana');
    expect(issue).toMatchObject({ file: 'bursty.yaml', line: 4, path: 'throttle.period' });
    expect(issue!.message).toContain('a duration such as');
  });

  it('a zero period, max_wait shorter than period and an unknown mode are refused, each at its key', () => {
    expect(issuesOf('rate_limit: { limit: 1, period: 0s }')[0]).toMatchObject({ path: 'rate_limit.period', message: expect.stringContaining('longer than 0') });
    expect(issuesOf('debounce: { period: 1m, max_wait: 30s }')[0]).toMatchObject({ path: 'debounce.max_wait', message: expect.stringContaining('must not be shorter than period') });
    expect(issuesOf('singleton: { mode: sometimes }')[0]).toMatchObject({ path: 'singleton.mode' });
  });

  it('a key that is not a valid expression, or reads steps, is refused when the file loads', () => {
    expect(issuesOf('singleton: { mode: skip, key: "${{ input.( }}" }')[0]).toMatchObject({ line: 2, path: 'singleton.key', message: expect.stringContaining('invalid expression') });
    expect(issuesOf('throttle: { limit: 1, period: 1s, key: "${{ steps.go.output }}" }')[0]).toMatchObject({ path: 'throttle.key', message: expect.stringContaining('from input and run only') });
  });
});
