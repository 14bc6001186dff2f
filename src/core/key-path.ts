/** A path to a value inside a pipeline definition: object keys and array indexes. */
export type KeyPath = (string | number)[];

/** Finds the source position of a key (`target: 'key'`) or of the value at a path (the default). */
export type Locate = (path: KeyPath, target?: 'key' | 'value') => { line: number; column: number } | undefined;

const PLAIN_KEY = /^[A-Za-z0-9_-]+$/;

/**
 * Formats a path the way users read it: `steps.typing.needs[0]`. Keys that are not plain names are quoted,
 * `with["my key"]`, so the path stays unambiguous.
 */
export function formatKeyPath(path: KeyPath): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (PLAIN_KEY.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** Whether a value is a plain object (not null, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
