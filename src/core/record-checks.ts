import { SluiceError } from './errors.js';
import { depthMessage, MAX_JSON_DEPTH, tooDeepPath } from './json-depth.js';

/** Dataset names follow pipeline names: lower case, digits, `.`, `_`, `-`, starting with a letter or digit. */
export const DATASET_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]*$/;

/** Record ids: any non-empty string up to 500 characters. */
const MAX_ID_LENGTH = 500;

export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Throws VALIDATION_FAILED unless `name` is a valid dataset name. */
export function assertDatasetName(name: string): void {
  if (!DATASET_NAME_PATTERN.test(name) || name.length > 200) {
    throw new SluiceError('VALIDATION_FAILED', `invalid dataset name "${name}": expected ${DATASET_NAME_PATTERN.source}`);
  }
}

/** Throws RECORD_INVALID naming the record unless `id` is a usable record id. */
export function assertRecordId(id: unknown, where: string): asserts id is string {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH) {
    throw new SluiceError('RECORD_INVALID', `${where}: the id must be a non-empty string of at most ${MAX_ID_LENGTH} characters`);
  }
}

/**
 * Checks every record before anything is written and keeps the last of records sharing an id (a bulk write
 * is applied in order). Throws RECORD_INVALID naming the first bad record.
 */
export function checkRecords<R extends { id: string; data: Record<string, unknown> }>(records: readonly R[]): R[] {
  const byId = new Map<string, R>();
  records.forEach((r, i) => {
    assertRecordId(r.id, `record ${i + 1}`);
    if (!isJsonObject(r.data)) throw new SluiceError('RECORD_INVALID', `record "${r.id}" is not a JSON object`);
    assertShallow(r.data, `record "${r.id}"`);
    byId.delete(r.id);
    byId.set(r.id, r);
  });
  return [...byId.values()];
}

/** Throws RECORD_INVALID naming the record and the path when its data nests deeper than {@link MAX_JSON_DEPTH}. */
export function assertShallow(data: Record<string, unknown>, where: string): void {
  const deep = tooDeepPath(data, MAX_JSON_DEPTH);
  if (deep) throw new SluiceError('RECORD_INVALID', `${where}: the record is ${depthMessage('data', deep)}`, { details: { path: deep.slice(0, 12) } });
}
