/** Comparators of eval cases: each form, and the texts and desired outputs they refuse. */
import { describe, expect, it } from 'vitest';
import { checkComparator, matches, parseComparator } from '../../src/core/comparators.js';
import { checkEvalCases } from '../../src/core/eval-cases.js';

describe('exact', () => {
  it('compares JSON deeply, ignoring object key order', () => {
    expect(matches('exact', { a: [1, { b: 'x' }], c: null }, { c: null, a: [1, { b: 'x' }] })).toBe(true);
    expect(matches('exact', { a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(matches('exact', [1, 2], [2, 1])).toBe(false);
    expect(matches('exact', 1, '1')).toBe(false);
    expect(matches('exact', null, null)).toBe(true);
    expect(matches('exact', null, {})).toBe(false);
    expect(matches('exact', [], {})).toBe(false);
  });
});

describe('number:<tolerance>', () => {
  it('passes within the tolerance, both ends included', () => {
    expect(matches('number:0.5', 10, 10.5)).toBe(true);
    expect(matches('number:0.5', 10, 9.5)).toBe(true);
    expect(matches('number:0.5', 10, 10.51)).toBe(false);
    expect(matches('number:0', 3, 3)).toBe(true);
    expect(matches('number:1e-3', 1, 1.0005)).toBe(true);
  });

  it('fails when the actual output is not a number', () => {
    expect(matches('number:1', 10, '10')).toBe(false);
    expect(matches('number:1', 10, null)).toBe(false);
  });

  it('refuses a tolerance that is not a non-negative number, and a desired output that is not a number', () => {
    for (const bad of ['number:abc', 'number:', 'number:-1', 'number:Infinity']) {
      expect(() => parseComparator(bad)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED', message: expect.stringContaining(`"${bad}"`) }));
    }
    expect(() => checkComparator('number:0.1', 'ten')).toThrow(/needs a number as desired_output, got "ten"/);
    expect(parseComparator('number:0.05')).toEqual({ kind: 'number', tolerance: 0.05 });
  });
});

describe('subset', () => {
  it('passes when every desired key is present with a subset value', () => {
    expect(matches('subset', { a: 1, b: { c: 2 } }, { a: 1, b: { c: 2, d: 3 }, e: 4 })).toBe(true);
    expect(matches('subset', { a: 1 }, { a: 2 })).toBe(false);
    expect(matches('subset', { a: undefined }, {})).toBe(false);
    expect(matches('subset', { a: 1 }, [1])).toBe(false);
    expect(matches('subset', {}, { anything: true })).toBe(true);
  });

  it('finds every desired array element in the actual array, in any order', () => {
    expect(matches('subset', ['b', 'a'], ['a', 'b', 'c'])).toBe(true);
    expect(matches('subset', [{ id: 2 }], [{ id: 1, x: 0 }, { id: 2, x: 1 }])).toBe(true);
    expect(matches('subset', ['z'], ['a'])).toBe(false);
    expect(matches('subset', ['a'], 'a')).toBe(false);
  });

  it('compares scalars for equality', () => {
    expect(matches('subset', 'red', 'red')).toBe(true);
    expect(matches('subset', 1, 2)).toBe(false);
    expect(matches('subset', null, null)).toBe(true);
  });
});

describe('regex', () => {
  it('tests a string output, or the JSON of any other output', () => {
    expect(matches('regex', '^re', 'red')).toBe(true);
    expect(matches('regex', '^re', 'Red')).toBe(false);
    expect(matches('regex', '/^re/i', 'Red')).toBe(true);
    expect(matches('regex', '"color":"red"', { color: 'red' })).toBe(true);
    expect(matches('regex', '^\\d+$', 42)).toBe(true);
    expect(matches('regex', '^null$', null)).toBe(true);
  });

  it('refuses an invalid pattern and a desired output that is not a string', () => {
    expect(() => checkComparator('regex', '(unclosed')).toThrow(/comparator "regex": invalid pattern "\(unclosed"/);
    expect(() => checkComparator('regex', '/a/zz')).toThrow(/invalid pattern/);
    expect(() => checkComparator('regex', 5)).toThrow(/needs a string pattern as desired_output, got 5/);
  });
});

describe('comparator text', () => {
  it('refuses an unknown comparator, listing the known ones', () => {
    expect(() => parseComparator('fuzzy')).toThrow('unknown comparator "fuzzy" (expected exact, number:<tolerance>, subset or regex)');
    expect(() => parseComparator('')).toThrow(/unknown comparator/);
  });

  it('names the case by index and id in errors, and defaults to exact', () => {
    expect(() => checkEvalCases([{ input: {}, desiredOutput: 1 }, { id: 7, recordId: 'r', desiredOutput: 1, comparator: 'fuzzy' }])).toThrow(
      expect.objectContaining({ message: 'eval case 1 (id 7): unknown comparator "fuzzy" (expected exact, number:<tolerance>, subset or regex)', details: { case: 'eval case 1 (id 7)', comparator: 'fuzzy' } }),
    );
    expect(checkEvalCases([{ input: { a: 1 }, desiredOutput: 1 }])[0]).toMatchObject({ comparator: 'exact', notes: null, recordId: null, id: null });
    expect(() => checkEvalCases([{ input: [] as never, desiredOutput: 1 }])).toThrow(/eval case 0: input must be a JSON object/);
    expect(() => checkEvalCases([{ recordId: 'r', desiredOutput: 1, comparator: 3 as never }])).toThrow(/comparator must be a string/);
  });
});
