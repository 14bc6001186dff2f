import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../src/core/duration.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['1s', 1_000],
    ['1.5s', 1_500],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1m30s', 90_000],
    ['1h30m', 5_400_000],
    ['1d2h3m4s5ms', 93_784_005],
    ['0s', 0],
  ])('reads %s as %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it('takes numbers as milliseconds', () => {
    expect(parseDuration(250)).toBe(250);
    expect(parseDuration(0)).toBe(0);
  });

  it('rounds to whole milliseconds', () => {
    expect(parseDuration('0.0004s')).toBe(0);
    expect(parseDuration(1.6)).toBe(2);
  });

  it.each(['', '5', '5x', 's', '1.s', '-1s', '30s1m', '1m1m', ' 5m', '5 m', '1e3ms'])('rejects %j', (text) => {
    expect(() => parseDuration(text)).toThrow(/invalid duration .*expected a duration such as 500ms/);
  });

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY])('rejects the number %d', (value) => {
    expect(() => parseDuration(value)).toThrow(/non-negative, finite number of milliseconds/);
  });

  it('names the bad value in the message', () => {
    expect(() => parseDuration('10 minutes')).toThrow('invalid duration "10 minutes"');
  });
});
