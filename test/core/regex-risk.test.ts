import { describe, expect, it } from 'vitest';
import { ValidationError, type ValidationIssue } from '../../src/core/errors.js';
import { backtrackingRisk } from '../../src/core/regex-risk.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { fakeStepTypes } from './fake-steps.js';

/**
 * Refused patterns, each with a near-miss input (`unit` repeated, then `tail`) on which the native regex is slow:
 * on an idle machine every one passed 50 ms on 23 or 24 characters. Print the figures
 * with `SLUICE_REGEX_TIMING=1 npx vitest run test/core/regex-risk.test.ts`.
 */
const slow: { pattern: string; unit: string; tail: string; part: string }[] = [
  { pattern: '^(a+)+$', unit: 'a', tail: '!', part: 'repetition "a+"' },
  { pattern: '^(\\w+\\s?)+$', unit: 'a', tail: '!', part: 'repetition "\\w+"' },
  { pattern: '^(?:(\\d+)-?)+$', unit: '1', tail: '!', part: 'repetition "\\d+"' },
  { pattern: '^(a?a?a)+$', unit: 'a', tail: '!', part: 'repetition "a?"' },
  { pattern: '^(a|a)*$', unit: 'a', tail: '!', part: 'alternatives "a" and "a"' },
  { pattern: '^(?:[a-z]|\\w)+$', unit: 'a', tail: '!', part: 'alternatives "[a-z]" and "\\w"' },
  { pattern: '^(?:(a|a)b?)+$', unit: 'a', tail: '!', part: 'alternatives "a" and "a"' },
  { pattern: '^(\\w|\\d)+$', unit: '1', tail: '!', part: 'alternatives "\\w" and "\\d"' },
  { pattern: '^(.|\\s)*!$', unit: ' ', tail: '', part: 'alternatives "." and "\\s"' },
  { pattern: '^(?:(a)|\\1a)*$', unit: 'a', tail: '!', part: 'backreference' },
];

/** Refused by the first-character heuristic although fast on their own: a cheap rewrite keeps them safe as they grow. */
const overcautious = ['(a|ab)*', '(?:ab|ac)+'];

const safe = [
  '^[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}$',
  '^\\d{4}-\\d{2}-\\d{2}$',
  '(foo|bar)+',
  '^(https?)://',
  '([A-Z][a-z]+ )*',
  '^(ab)+[0-9]{2,4}$',
  '^(?:(\\d+)-)+$',
  '(\\s*,\\s*\\w+)*',
  '^#?([a-f0-9]{6}|[a-f0-9]{3})$',
  '^(\\+\\d{1,3} )?\\(?\\d{3}\\)?[- ]?\\d{3}-\\d{4}$',
  '((ab)*c)*',
  '(\\d{3}-)+',
  '(?:[a-z]+\\.)+[a-z]{2,}',
  '(\\w+)\\s+\\1',
];

describe('backtrackingRisk', () => {
  it('refuses patterns that backtrack exponentially, naming the part to rewrite', () => {
    for (const { pattern, unit, tail, part } of slow) {
      // The input really is a near miss: the regex runs to the end and fails.
      expect(new RegExp(pattern).test(`${unit.repeat(3)}${tail}`), pattern).toBe(false);
      expect(backtrackingRisk(pattern), pattern).toContain(part);
    }
  });

  it('says how to rewrite each kind', () => {
    expect(backtrackingRisk('(\\w|\\d)+')).toMatch(/^the group \(\\w\|\\d\) is repeated by "\+" and its alternatives .* "\(\\w\|\\d\)\+" as "\\w\+"/);
    expect(backtrackingRisk('(\\w+\\s?)+')).toMatch(/"\(\\w\+\\s\?\)\+" as "\\w\+\(\\s\\w\+\)\*"/);
    expect(backtrackingRisk('(?:(a)|\\1a)*')).toMatch(/holds a backreference.*capture outside the repetition/);
  });

  it('refuses overlapping alternatives even where they are fast alone', () => {
    for (const pattern of overcautious) expect(backtrackingRisk(pattern), pattern).toMatch(/can start with the same character/);
  });

  it('compares characters as the i flag does', () => {
    expect(backtrackingRisk('(a|A)+')).toBeNull();
    expect(backtrackingRisk('(a|A)+', 'i')).toMatch(/alternatives "a" and "A"/);
  });

  it('screens long patterns and refuses groups nested too deep to screen', () => {
    expect(backtrackingRisk(`(?:${'x?'.repeat(5000)})+`)).toMatch(/repetition "x\?"/);
    const deep = `${'('.repeat(2000)}a${')'.repeat(2000)}`;
    expect(() => new RegExp(deep)).not.toThrow();
    expect(backtrackingRisk(deep)).toMatch(/nests groups more than 100 deep/);
  });

  it('accepts everyday patterns', () => {
    for (const pattern of safe) expect(backtrackingRisk(pattern), pattern).toBeNull();
  });

  it.skipIf(!process.env.SLUICE_REGEX_TIMING)('measures the refused patterns natively (prints, asserts nothing on time)', () => {
    for (const { pattern, unit, tail } of slow) {
      const regex = new RegExp(pattern);
      let input = '';
      let ms = 0;
      for (let n = 4; unit.length * n + tail.length <= 30 && ms <= 50; n++) {
        input = `${unit.repeat(n)}${tail}`;
        const start = performance.now();
        regex.test(input);
        ms = performance.now() - start;
      }
      console.info(`${pattern} on ${input.length} characters: ${ms.toFixed(0)} ms`);
    }
  });
});

describe('regexes in a pipeline', () => {
  function issuesOf(spec: unknown): ValidationIssue[] {
    try {
      normalizePipeline(spec, { stepTypes: fakeStepTypes() });
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      return (err as ValidationError).issues;
    }
    throw new Error('expected a ValidationError');
  }

  it('are refused at validation, naming the step and key', () => {
    const issues = issuesOf({
      name: 'demo',
      steps: {
        fetch: { uses: 'command', if: '$contains(input.name, /^(\\w|\\d)+$/)', with: { run: 'echo hi' } },
        tag: { uses: 'command', needs: ['fetch'], with: { run: '${{ $match(input.text, /(a|ab)*c/).match }}' } },
        nocase: { uses: 'command', if: '$contains(input.name, /^(x|X)+$/i)', with: { run: 'echo hi' } },
        ok: { uses: 'command', if: '$contains(input.name, /^(foo|bar)+$/)', with: { run: '${{ $match(input.text, /([A-Z][a-z]+ )*/).match }}' } },
      },
    });
    expect(issues).toEqual([
      { path: 'steps.fetch.if', message: expect.stringMatching(/^invalid JSONata condition: regex \/\^\(\\w\|\\d\)\+\$\/ may backtrack: the group \(\\w\|\\d\) is repeated by "\+"/) },
      { path: 'steps.tag.with.run', message: expect.stringMatching(/^invalid JSONata in .*regex \/\(a\|ab\)\*c\/ may backtrack: .*alternatives "a" and "ab"/) },
      { path: 'steps.nocase.if', message: expect.stringMatching(/alternatives "x" and "X"/) },
    ]);
  });
});
