import { SluiceError } from './errors.js';

/**
 * How an eval decides that an actual output matches the desired one. Written as text on a case:
 *
 * - `exact` (the default): deep JSON equality (object key order does not matter).
 * - `number:<tolerance>`: both are numbers and |actual - desired| <= tolerance (a non-negative number).
 * - `subset`: desired is a deep subset of actual: every key of a desired object is present with a subset value,
 *   every element of a desired array is found in the actual array, scalars are equal.
 * - `regex`: desired is a regular expression (`body`, or `/body/flags`), tested against actual when it is a
 *   string, else against the JSON of actual.
 */
export type Comparator = { kind: 'exact' } | { kind: 'number'; tolerance: number } | { kind: 'subset' } | { kind: 'regex' };

/** The comparator of a case that names none. */
export const DEFAULT_COMPARATOR = 'exact';

const EXPECTED = 'expected exact, number:<tolerance>, subset or regex';

/** Parses comparator text; throws VALIDATION_FAILED naming the text when it is not one of the four forms. */
export function parseComparator(text: string): Comparator {
  const trimmed = text.trim();
  if (trimmed === 'exact' || trimmed === 'subset' || trimmed === 'regex') return { kind: trimmed };
  if (trimmed.startsWith('number:')) {
    const raw = trimmed.slice('number:'.length).trim();
    const tolerance = raw === '' ? Number.NaN : Number(raw);
    if (!Number.isFinite(tolerance) || tolerance < 0) {
      throw new SluiceError('VALIDATION_FAILED', `comparator "${text}": the tolerance must be a non-negative number (e.g. number:0.05)`);
    }
    return { kind: 'number', tolerance };
  }
  throw new SluiceError('VALIDATION_FAILED', `unknown comparator "${text}" (${EXPECTED})`);
}

/**
 * Checks that `desired` suits the comparator (a number for `number:`, a valid pattern for `regex`); throws
 * VALIDATION_FAILED otherwise. Returns the parsed comparator.
 */
export function checkComparator(text: string, desired: unknown): Comparator {
  const comparator = parseComparator(text);
  if (comparator.kind === 'number' && typeof desired !== 'number') {
    throw new SluiceError('VALIDATION_FAILED', `comparator "${text}" needs a number as desired_output, got ${describe(desired)}`);
  }
  if (comparator.kind === 'regex') {
    if (typeof desired !== 'string') throw new SluiceError('VALIDATION_FAILED', `comparator "regex" needs a string pattern as desired_output, got ${describe(desired)}`);
    compileRegex(desired);
  }
  return comparator;
}

/** `body` or `/body/flags` as a RegExp; throws VALIDATION_FAILED when the pattern is invalid. */
export function compileRegex(pattern: string): RegExp {
  const slashed = /^\/(.*)\/([a-z]*)$/s.exec(pattern);
  try {
    return slashed ? new RegExp(slashed[1]!, slashed[2]) : new RegExp(pattern);
  } catch (err) {
    throw new SluiceError('VALIDATION_FAILED', `comparator "regex": invalid pattern ${JSON.stringify(pattern)}: ${(err as Error).message}`);
  }
}

/** Whether `actual` matches `desired` under the comparator text (which must parse). */
export function matches(comparatorText: string, desired: unknown, actual: unknown): boolean {
  const comparator = parseComparator(comparatorText);
  switch (comparator.kind) {
    case 'exact':
      return deepEqual(desired, actual);
    case 'number':
      return typeof desired === 'number' && typeof actual === 'number' && Math.abs(actual - desired) <= comparator.tolerance;
    case 'subset':
      return isSubset(desired, actual);
    case 'regex':
      if (typeof desired !== 'string') return false;
      return compileRegex(desired).test(typeof actual === 'string' ? actual : (JSON.stringify(actual) ?? 'null'));
  }
}

/** Deep equality of JSON values; object key order does not matter. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => deepEqual(x, b[i]));
  }
  const ak = Object.keys(a);
  const bo = b as Record<string, unknown>;
  if (ak.length !== Object.keys(bo).length) return false;
  return ak.every((k) => Object.hasOwn(bo, k) && deepEqual((a as Record<string, unknown>)[k], bo[k]));
}

/** Whether `desired` is a deep subset of `actual` (see {@link Comparator}). */
export function isSubset(desired: unknown, actual: unknown): boolean {
  if (Array.isArray(desired)) {
    return Array.isArray(actual) && desired.every((d) => actual.some((a) => isSubset(d, a)));
  }
  if (typeof desired === 'object' && desired !== null) {
    if (typeof actual !== 'object' || actual === null || Array.isArray(actual)) return false;
    const act = actual as Record<string, unknown>;
    return Object.entries(desired).every(([k, v]) => Object.hasOwn(act, k) && isSubset(v, act[k]));
  }
  return desired === actual;
}

function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? 'nothing';
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
