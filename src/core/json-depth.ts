import { formatKeyPath, type KeyPath } from './key-path.js';

/**
 * How deep JSON values from outside may nest: run inputs, request bodies and dataset records. Default and
 * only value: 256 levels of objects and arrays. Deeper values would overflow the call stack of the recursive
 * code that walks them (schema checks, hashing, templates) instead of being refused.
 */
export const MAX_JSON_DEPTH = 256;

// A message names at most this many leading keys of a too-deep path.
const SHOWN_SEGMENTS = 12;

/**
 * The key path to the first object or array nested deeper than `limit` levels inside `value` (the root object
 * is level 1), or null when none is. Iterative, so any depth is measured without recursion.
 */
export function tooDeepPath(value: unknown, limit = MAX_JSON_DEPTH): KeyPath | null {
  const stack: Array<{ value: unknown; path: KeyPath }> = [{ value, path: [] }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    if (typeof item.value !== 'object' || item.value === null) continue;
    if (item.path.length >= limit) return item.path;
    const entries = Array.isArray(item.value) ? item.value.map((v, i) => [i, v] as const) : Object.entries(item.value);
    for (const [key, child] of entries) {
      if (typeof child === 'object' && child !== null) stack.push({ value: child, path: [...item.path, key] });
    }
  }
  return null;
}

/**
 * `nested deeper than 256 levels at input.a.a.a....`: the problem and where, below `root` (e.g. `input`,
 * `data`; '' for a whole body), with a long path cut after its first keys.
 */
export function depthMessage(root: string, path: KeyPath, limit = MAX_JSON_DEPTH): string {
  const shown = formatKeyPath(path.slice(0, SHOWN_SEGMENTS));
  const at = root === '' ? shown : shown === '' ? root : shown.startsWith('[') ? `${root}${shown}` : `${root}.${shown}`;
  const cut = path.length > SHOWN_SEGMENTS ? `... (${path.length} levels)` : '';
  return `nested deeper than ${limit} levels at ${at}${cut}`;
}

/**
 * The key path of the first `__proto__` key, or `constructor` key holding an object with a `prototype` key,
 * inside `value` (as `JSON.parse` makes them: own properties), or null. Such keys are data after parsing, but
 * code that copies objects key by key (`out[key] = ...`) would change prototypes with them. Iterative.
 */
export function prototypeKeyPath(value: unknown): KeyPath | null {
  const stack: Array<{ value: unknown; path: KeyPath }> = [{ value, path: [] }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    if (typeof item.value !== 'object' || item.value === null) continue;
    const entries = Array.isArray(item.value) ? item.value.map((v, i) => [i, v] as const) : Object.entries(item.value);
    for (const [key, child] of entries) {
      if (key === '__proto__') return [...item.path, key];
      if (key === 'constructor' && typeof child === 'object' && child !== null && Object.hasOwn(child, 'prototype')) return [...item.path, key, 'prototype'];
      if (typeof child === 'object' && child !== null) stack.push({ value: child, path: [...item.path, key] });
    }
  }
  return null;
}
