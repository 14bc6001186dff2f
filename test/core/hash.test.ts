import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sha256, stableStringify } from '../../src/core/hash.js';

describe('stableStringify', () => {
  it('sorts keys at every depth and adds no whitespace', () => {
    expect(stableStringify({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x' } })).toBe('{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}');
  });

  it('gives the same text whatever order keys were written in', () => {
    expect(stableStringify({ x: 1, y: { p: true, q: null } })).toBe(stableStringify({ y: { q: null, p: true }, x: 1 }));
  });

  it('sorts integer-like keys as strings, unlike object iteration order', () => {
    expect(stableStringify({ b: 1, 10: 2, 9: 3 })).toBe('{"10":2,"9":3,"b":1}');
  });

  it('drops undefined properties and writes null for undefined array items, as JSON does', () => {
    expect(stableStringify({ a: undefined, b: [undefined, () => 1], c: () => 1 })).toBe('{"b":[null,null]}');
  });

  it('follows JSON for special values', () => {
    expect(stableStringify({ n: Number.NaN, i: Number.POSITIVE_INFINITY, d: new Date(0) })).toBe(
      '{"d":"1970-01-01T00:00:00.000Z","i":null,"n":null}',
    );
    expect(stableStringify('he said "hi"\n')).toBe(JSON.stringify('he said "hi"\n'));
    expect(stableStringify(undefined)).toBe('null');
  });

  it('matches JSON.stringify for values whose keys are already sorted', () => {
    const value = { a: [1, 'two', false, null, { b: 1.5 }], c: 'é\u2028' };
    expect(stableStringify(value)).toBe(JSON.stringify(value));
  });

  it('allows the same object twice side by side but rejects cycles', () => {
    const shared = { k: 1 };
    expect(stableStringify({ a: shared, b: shared })).toBe('{"a":{"k":1},"b":{"k":1}}');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => stableStringify(cyclic)).toThrow(TypeError);
  });

  it('rejects bigint like JSON.stringify', () => {
    expect(() => stableStringify({ n: 1n })).toThrow(TypeError);
  });
});

describe('sha256', () => {
  it('hashes text as UTF-8 and bytes as they are, in lowercase hex', () => {
    expect(sha256('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256('é')).toBe(createHash('sha256').update(Buffer.from('é', 'utf8')).digest('hex'));
    expect(sha256(Buffer.from([0, 255]))).toBe(createHash('sha256').update(Buffer.from([0, 255])).digest('hex'));
  });
});
