import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { SluiceError } from '../core/errors.js';
import type { NewDataRecord } from '../store/store.js';
import { assertShallow, isJsonObject } from '../core/record-checks.js';

/** Default field that holds a record's id in bulk bodies and JSONL files. */
export const DEFAULT_ID_FIELD = 'id';

/**
 * A record from one JSON value of a bulk write: it must be an object whose `idField` is a non-empty string or
 * a number. The whole object (id field included) is the record's data, so an export imports back unchanged.
 */
export function recordFromValue(value: unknown, idField: string, where: string): NewDataRecord {
  if (!isJsonObject(value)) throw new SluiceError('RECORD_INVALID', `${where}: the record is not a JSON object`);
  assertShallow(value, where);
  const id = value[idField];
  if (typeof id === 'number' && Number.isFinite(id)) return { id: String(id), data: value };
  if (typeof id !== 'string' || id.length === 0) throw new SluiceError('RECORD_INVALID', `${where}: the record has no "${idField}" (a non-empty string or a number)`);
  return { id, data: value };
}

/** Parses one JSONL line (1-based `lineNo`); RECORD_INVALID names the line when it is not JSON. */
export function parseJsonLine(line: string, lineNo: number): unknown {
  try {
    return JSON.parse(line);
  } catch (err) {
    throw new SluiceError('RECORD_INVALID', `line ${lineNo}: not valid JSON: ${(err as Error).message}`, { details: { line: lineNo } });
  }
}

/** Records of a JSONL text (blank lines are ignored). Errors name the line. */
export function recordsFromJsonl(text: string, idField = DEFAULT_ID_FIELD): NewDataRecord[] {
  const out: NewDataRecord[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line) out.push(recordFromValue(parseJsonLine(line, i + 1), idField, `line ${i + 1}`));
  });
  return out;
}

/** Records of a JSON array. Errors name the item (1-based). */
export function recordsFromArray(values: unknown[], idField = DEFAULT_ID_FIELD): NewDataRecord[] {
  return values.map((v, i) => recordFromValue(v, idField, `record ${i + 1}`));
}

/** Streams the records of a JSONL file with their line numbers, one line in memory at a time. */
export async function* readJsonlFile(file: string, idField = DEFAULT_ID_FIELD): AsyncGenerator<{ line: number; record: NewDataRecord }> {
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  let lineNo = 0;
  for await (const raw of lines) {
    lineNo += 1;
    const line = raw.trim();
    if (line) yield { line: lineNo, record: recordFromValue(parseJsonLine(line, lineNo), idField, `line ${lineNo}`) };
  }
}
