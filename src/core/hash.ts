import { createHash } from 'node:crypto';

/**
 * JSON with object keys sorted (by UTF-16 code units), no whitespace and `undefined` properties dropped,
 * so equal values always give equal text, whatever order their keys were written in. Otherwise it follows
 * `JSON.stringify`: `toJSON` is honoured, functions and symbols are dropped (null inside arrays), non-finite
 * numbers become null. A top-level value that JSON cannot represent (`undefined`, a function) gives `null`.
 * Throws a `TypeError` on cycles and on bigint, as `JSON.stringify` does.
 */
export function stableStringify(value: unknown): string {
  return write(value, '', new Set()) ?? 'null';
}

/** SHA-256 of the text (UTF-8) or bytes, as lowercase hex. */
export function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

function write(raw: unknown, key: string, seen: Set<object>): string | undefined {
  const value = applyToJSON(raw, key);
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'bigint':
      throw new TypeError('stableStringify: cannot serialize a bigint');
    case 'object':
      return writeObject(value, seen);
    default:
      return undefined; // undefined, function, symbol: dropped like JSON does
  }
}

function applyToJSON(value: unknown, key: string): unknown {
  const toJSON = (value as { toJSON?: unknown } | null | undefined)?.toJSON;
  return typeof toJSON === 'function' ? (toJSON as (k: string) => unknown).call(value, key) : value;
}

function writeObject(value: object, seen: Set<object>): string {
  if (seen.has(value)) throw new TypeError('stableStringify: cannot serialize a cyclic structure');
  seen.add(value);
  try {
    if (Array.isArray(value)) {
      return `[${value.map((item, i) => write(item, String(i), seen) ?? 'null').join(',')}]`;
    }
    const record = value as Record<string, unknown>;
    const parts: string[] = [];
    for (const key of Object.keys(record).sort()) {
      const text = write(record[key], key, seen);
      if (text !== undefined) parts.push(`${JSON.stringify(key)}:${text}`);
    }
    return `{${parts.join(',')}}`;
  } finally {
    // Only ancestors count as a cycle; the same object twice side by side is fine.
    seen.delete(value);
  }
}
