import type { ErrorObject } from 'ajv';
import { isRecord, type KeyPath } from './key-path.js';
import { SCHEMA_HINTS } from './pipeline-schema.js';

/** A validation problem before it is given a file position. */
export interface RawIssue {
  path: KeyPath;
  message: string;
  /** Point at the key (unknown or missing keys, bad names) or at the value (everything else). */
  target: 'key' | 'value';
}

/**
 * Turns Ajv errors (from a validator compiled with `allErrors` and `verbose`) into issues that say what was
 * expected in words. `basePath` is where `data` sits in the whole definition (e.g. `steps.x.with`); `hints`
 * describe the values of named definitions (default: those of the pipeline schema).
 */
export function schemaIssues(
  errors: readonly ErrorObject[],
  data: unknown,
  basePath: KeyPath = [],
  hints: Readonly<Record<string, string>> = SCHEMA_HINTS,
): RawIssue[] {
  const kept = pruneCombinators(errors);
  const issues: RawIssue[] = [];
  for (const error of kept) {
    const issue = issueFor(error, data, basePath, hints);
    if (issue && !issues.some((i) => samePath(i.path, issue.path) && i.message === issue.message)) issues.push(issue);
  }
  return issues;
}

/**
 * `oneOf`/`anyOf` failures come with the errors of every branch, most of them noise. Keep the errors of the
 * one branch the value was evidently meant to match (its type fits and its required keys are present);
 * when no single branch fits, replace them all by one message listing the accepted forms.
 */
function pruneCombinators(errors: readonly ErrorObject[]): ErrorObject[] {
  const dropped = new Set<ErrorObject>();
  const summaries = new Map<ErrorObject, ErrorObject>();
  const combinators = errors
    .filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf')
    .sort((a, b) => a.schemaPath.length - b.schemaPath.length);
  for (const combinator of combinators) {
    if (dropped.has(combinator)) continue;
    const branches = branchErrors(errors, combinator);
    const viable = [...branches.entries()].filter(([, errs]) => !errs.some((e) => rulesOutBranch(e, combinator)));
    dropped.add(combinator);
    if (viable.length === 1) {
      for (const [index, errs] of branches) if (index !== viable[0]![0]) errs.forEach((e) => dropped.add(e));
    } else {
      for (const errs of branches.values()) errs.forEach((e) => dropped.add(e));
      summaries.set(combinator, { ...combinator, keyword: 'x-forms' });
    }
  }
  return errors.flatMap((e) => (summaries.has(e) ? [summaries.get(e)!] : dropped.has(e) ? [] : [e]));
}

function branchErrors(errors: readonly ErrorObject[], combinator: ErrorObject): Map<number, ErrorObject[]> {
  const prefix = `${combinator.schemaPath}/`;
  const branches = new Map<number, ErrorObject[]>();
  const count = Array.isArray(combinator.schema) ? combinator.schema.length : 0;
  for (let i = 0; i < count; i++) branches.set(i, []);
  for (const error of errors) {
    if (!error.schemaPath.startsWith(prefix) || !isWithin(error.instancePath, combinator.instancePath)) continue;
    const index = Number(error.schemaPath.slice(prefix.length).split('/')[0]);
    branches.get(index)?.push(error);
  }
  return branches;
}

// The same definition is used at many places (every trigger), so the instance path must match too.
function isWithin(pointer: string, ancestor: string): boolean {
  return pointer === ancestor || pointer.startsWith(`${ancestor}/`);
}

/** A wrong type or a missing required key at the combinator's own level means "not this form". */
function rulesOutBranch(error: ErrorObject, combinator: ErrorObject): boolean {
  return error.instancePath === combinator.instancePath && (error.keyword === 'type' || error.keyword === 'required');
}

function issueFor(error: ErrorObject, root: unknown, basePath: KeyPath, hints: Readonly<Record<string, string>>): RawIssue | undefined {
  const path = [...basePath, ...pointerToPath(error.instancePath, root)];
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'propertyNames') return undefined; // its inner error (with propertyName) says more
  if (error.propertyName !== undefined) {
    const expected = hintFor(error, hints) ?? `a key that ${error.message ?? 'is valid'}`;
    return { path: [...path, error.propertyName], target: 'key', message: `invalid key "${error.propertyName}": expected ${expected}` };
  }
  switch (error.keyword) {
    case 'additionalProperties':
      return unknownKeyIssue(path, String(params.additionalProperty), error.parentSchema);
    case 'required':
      return { path, target: 'key', message: `missing required key "${String(params.missingProperty)}"` };
    case 'x-forms':
      return { path, target: 'value', message: `expected ${formsOf(error.schema)}, got ${describeValue(error.data)}` };
    default:
      return { path, target: 'value', message: valueMessage(error, hints) };
  }
}

function valueMessage(error: ErrorObject, hints: Readonly<Record<string, string>>): string {
  const got = `got ${describeValue(error.data)}`;
  const hint = hintFor(error, hints);
  if (hint) return `expected ${hint}, ${got}`;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'type':
      return `expected ${typeWords(params.type)}, ${got}`;
    case 'enum':
      return `expected one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, ${got}`;
    case 'const':
      return `expected ${JSON.stringify(params.allowedValue)}, ${got}`;
    case 'pattern':
      return `expected a string matching ${String(params.pattern)}, ${got}`;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return `expected a number ${String(params.comparison)} ${String(params.limit)}, ${got}`;
    case 'minLength':
      return params.limit === 1 ? `expected a non-empty string` : `expected at least ${String(params.limit)} characters, ${got}`;
    case 'uniqueItems':
      return `lists ${describeValue((error.data as unknown[])[params.j as number])} more than once`;
    default:
      return `expected a value that ${error.message ?? 'is valid'}, ${got}`;
  }
}

function unknownKeyIssue(path: KeyPath, key: string, parentSchema: unknown): RawIssue {
  const properties = isRecord(parentSchema) && isRecord(parentSchema.properties) ? Object.keys(parentSchema.properties) : [];
  const guess = closest(key, properties);
  const didYouMean = guess ? ` (did you mean "${guess}"?)` : '';
  const expected = properties.length > 0 ? `; expected one of: ${properties.join(', ')}` : '';
  return { path: [...path, key], target: 'key', message: `unknown key "${key}"${didYouMean}${expected}` };
}

/** Hint for errors raised inside a named leaf definition such as `#/definitions/duration/pattern`. */
function hintFor(error: ErrorObject, hints: Readonly<Record<string, string>>): string | undefined {
  const match = /^#\/definitions\/([^/]+)\/[^/]+$/.exec(error.schemaPath);
  return match ? hints[match[1]!] : undefined;
}

function formsOf(branches: unknown): string {
  const titles = Array.isArray(branches)
    ? branches.map((b) => (isRecord(b) && typeof b.title === 'string' ? b.title : undefined))
    : [];
  return titles.length > 0 && titles.every((t) => t !== undefined) ? titles.join(' or ') : 'one of the accepted forms';
}

function typeWords(type: unknown): string {
  const words: Record<string, string> = { integer: 'an integer', array: 'a list', object: 'a mapping', null: 'null' };
  const types = Array.isArray(type) ? type.map(String) : [String(type)];
  return types.map((t) => words[t] ?? `a ${t}`).join(' or ');
}

/** Short description of a value for messages; long strings are cut. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value);
  if (Array.isArray(value)) return 'a list';
  if (isRecord(value)) return 'a mapping';
  return String(value);
}

/** JSON pointer to path; numeric segments become numbers only where the data holds an array. */
function pointerToPath(pointer: string, root: unknown): KeyPath {
  const path: (string | number)[] = [];
  let node = root;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const segment = Array.isArray(node) ? Number(key) : key;
    path.push(segment);
    node = (node as Record<string | number, unknown> | undefined)?.[segment];
  }
  return path;
}

function samePath(a: KeyPath, b: KeyPath): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}

/** The candidate within edit distance of a third of the word (at least 1), if any: catches `need`, `timout`. */
export function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}
