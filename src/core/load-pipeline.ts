import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tsImport } from './optional-package.js';
import type { Document, YAMLMap } from 'yaml';
import { yamlPackage } from './lazy-packages.js';
import { SluiceError, ValidationError, type ValidationIssue, errorMessage } from './errors.js';
import { MAX_JSON_DEPTH } from './json-depth.js';
import { formatKeyPath, isRecord, type KeyPath, type Locate } from './key-path.js';
import type { Pipeline } from './model.js';
import type { StepSchemas } from './step-schemas.js';
import { normalizePipeline } from './validate.js';

/** A parsed definition and a way back from key paths to positions in its text. */
export interface ParsedPipelineText {
  spec: unknown;
  /** 1-based position of the key (`target: 'key'`) or of the value at `path`; the nearest found ancestor if absent. */
  locate: Locate;
}

/** A loaded, normalized pipeline with the text it came from. */
export interface LoadedPipeline {
  pipeline: Pipeline;
  /** The file text (for TS/JS modules, the module source). */
  source: string;
  /** Absolute path of the file. */
  file: string;
}

const DATA_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);
const MODULE_EXTENSIONS = new Set(['.ts', '.mts', '.js', '.mjs']);

/**
 * Parses YAML (JSON is YAML too) keeping positions. Syntax errors and duplicate keys (which include duplicate
 * step names) throw one `ValidationError` listing each with `file`, `line` and `column`.
 */
export function parsePipelineText(text: string, file: string): ParsedPipelineText {
  const lineCounter = new (yamlPackage().LineCounter)();
  const toPosition: ToPosition = (offset) => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  assertFlowDepth(text, file);
  // Duplicate keys are found below instead of by the parser, so the issue can carry the key path.
  // `merge` lets users share step settings with `<<: *anchor`.
  const doc = yamlPackage().parseDocument(text, { lineCounter, uniqueKeys: false, prettyErrors: false, merge: true });
  const locate = makeLocate(doc, toPosition);
  // Errors found at the end of input (an unclosed quote or bracket) point at the last character written,
  // not at an empty line past it.
  const lastOffset = Math.max(0, text.trimEnd().length - 1);
  const issues: ValidationIssue[] = doc.errors.map((e) => ({
    file,
    ...toPosition(Math.min(e.pos[0], lastOffset)),
    message: `YAML syntax error: ${e.message}`,
  }));
  if (issues.length === 0) issues.push(...duplicateKeyIssues(doc.contents, [], file, toPosition));
  if (issues.length > 0) throw new ValidationError(issues);
  return { spec: toPlainData(doc, file), locate };
}

/**
 * The YAML parser recurses once per level of `[ ]` and `{ }`: thousands of levels exhaust the call stack, and
 * V8 may then abort the whole process (a regex compiled lazily at that depth fails as out of memory) rather
 * than throw. Counting brackets first (quotes are not tracked, so brackets inside strings count too, which
 * only matters past 256 unclosed ones) refuses such text with a ValidationError at the first too-deep bracket.
 */
function assertFlowDepth(text: string, file: string): void {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_JSON_DEPTH) {
        const before = text.slice(0, i);
        const line = before.split('\n').length;
        const column = i - before.lastIndexOf('\n');
        throw new ValidationError([{ file, line, column, message: `nested deeper than ${MAX_JSON_DEPTH} levels of [ ] or { }` }]);
      }
    } else if ((c === 0x5d || c === 0x7d) && depth > 0) depth--;
  }
}

/**
 * Loads and normalizes a pipeline from a `.yaml`/`.yml`/`.json` file, or from a `.ts`/`.mts`/`.js`/`.mjs`
 * module whose default export (or export named `pipeline`) is a `PipelineSpec`; TypeScript needs no build.
 * Throws `SluiceError('PIPELINE_NOT_FOUND')` for a missing file, `MODULE_LOAD_FAILED` when a module throws
 * while loading, and a `ValidationError` for everything wrong with the definition.
 */
export async function loadPipelineFile(file: string, stepTypes: StepSchemas): Promise<LoadedPipeline> {
  const absolute = resolve(file);
  const extension = extname(file).toLowerCase();
  if (!DATA_EXTENSIONS.has(extension) && !MODULE_EXTENSIONS.has(extension)) {
    const expected = [...DATA_EXTENSIONS, ...MODULE_EXTENSIONS].join(', ');
    throw new ValidationError([{ file, message: `unsupported file type "${extension}": expected one of ${expected}` }]);
  }
  const source = await readSource(absolute, file);
  if (DATA_EXTENSIONS.has(extension)) {
    const { spec, locate } = parsePipelineText(source, file);
    return { pipeline: normalizePipeline(spec, { stepTypes, file, locate }), source, file: absolute };
  }
  const spec = await importSpec(absolute, file);
  return { pipeline: normalizePipeline(spec, { stepTypes, file }), source, file: absolute };
}

async function readSource(absolute: string, file: string): Promise<string> {
  try {
    return await readFile(absolute, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') {
      throw new SluiceError('PIPELINE_NOT_FOUND', `pipeline file not found: ${file} (${absolute})`, { cause: err });
    }
    throw err;
  }
}

async function importSpec(absolute: string, file: string): Promise<unknown> {
  let exports: Record<string, unknown>;
  try {
    exports = (await tsImport(pathToFileURL(absolute).href, import.meta.url)) as Record<string, unknown>;
  } catch (err) {
    const reason = errorMessage(err);
    throw new SluiceError('MODULE_LOAD_FAILED', `could not load pipeline module ${file}: ${reason}`, { cause: err });
  }
  const spec = pickSpec(exports);
  if (spec === undefined) {
    throw new ValidationError([{ file, message: 'expected the module to export a pipeline definition as its default export or as `pipeline`' }]);
  }
  return spec;
}

/**
 * The definition among a module's exports. A module loaded as CommonJS shows up with its whole exports object
 * as `default`, hence the look one level down. Failing a likely candidate, any object export is returned so
 * validation can say what it lacks.
 */
function pickSpec(exports: Record<string, unknown>): unknown {
  const nested = isRecord(exports.default) ? exports.default : {};
  const candidates = [exports.default, exports.pipeline, nested.default, nested.pipeline].filter(isRecord);
  return candidates.find((c) => 'steps' in c || 'name' in c) ?? candidates[0];
}

function toPlainData(doc: Document, file: string): unknown {
  try {
    return doc.toJS();
  } catch (err) {
    // e.g. an alias bomb ("Excessive alias count"), which the parser accepts but refuses to expand
    throw new ValidationError([{ file, message: errorMessage(err) }]);
  }
}

function duplicateKeyIssues(node: unknown, path: KeyPath, file: string, toPosition: ToPosition): ValidationIssue[] {
  if (yamlPackage().isSeq(node)) return node.items.flatMap((item, i) => duplicateKeyIssues(item, [...path, i], file, toPosition));
  if (!yamlPackage().isMap(node)) return [];
  const seen = new Set<string>();
  const issues: ValidationIssue[] = [];
  for (const pair of node.items) {
    const key = keyText(pair.key);
    if (seen.has(key) && key !== '<<') issues.push(duplicateKeyIssue(pair.key, [...path, key], file, toPosition));
    seen.add(key);
    issues.push(...duplicateKeyIssues(pair.value, [...path, key], file, toPosition));
  }
  return issues;
}

function duplicateKeyIssue(keyNode: unknown, path: KeyPath, file: string, toPosition: ToPosition): ValidationIssue {
  const what = path.length === 2 && path[0] === 'steps' ? 'step name' : 'key';
  const issue: ValidationIssue = { file, path: formatKeyPath(path), message: `duplicate ${what} "${String(path.at(-1))}"` };
  // The second occurrence is the one to point at (locate() would find the first).
  const offset = startOf(keyNode);
  return offset === undefined ? issue : { ...issue, ...toPosition(offset) };
}

type ToPosition = (offset: number) => { line: number; column: number };

/** Walks the document along `path`; stops at the deepest node found, so a missing key points at its parent. */
function makeLocate(doc: Document, toPosition: ToPosition): Locate {
  const pairOf = pairFinder();
  return (path, target = 'value') => {
    let node: unknown = doc.contents;
    let offset = startOf(node);
    for (const [i, segment] of path.entries()) {
      if (yamlPackage().isAlias(node)) node = node.resolve(doc);
      const pair = yamlPackage().isMap(node) ? pairOf(node, String(segment)) : undefined;
      if (pair) {
        if (i === path.length - 1 && target === 'key') return optionalPosition(startOf(pair.key), toPosition);
        // Should the path end deeper than the file goes (a missing key), the key found last is the best anchor.
        offset = isEmptyNode(pair.value) || i < path.length - 1 ? startOf(pair.key) : startOf(pair.value);
        node = pair.value;
      } else if (yamlPackage().isSeq(node) && typeof segment === 'number' && segment < node.items.length) {
        node = node.items[segment];
        offset = startOf(node);
      } else break;
    }
    return optionalPosition(offset, toPosition);
  };
}

type MapNode = YAMLMap<unknown, unknown>;
type MapPair = MapNode['items'][number];

/**
 * The first pair of a mapping with a given key, from an index built once per mapping: a pipeline of thousands
 * of steps asks for every step's position, and a scan per question made validation quadratic.
 */
function pairFinder(): (node: MapNode, key: string) => MapPair | undefined {
  const indexes = new WeakMap<MapNode, Map<string, MapPair>>();
  return (node, key) => {
    let index = indexes.get(node);
    if (!index) {
      index = new Map();
      for (const pair of node.items) {
        const text = keyText(pair.key);
        if (!index.has(text)) index.set(text, pair);
      }
      indexes.set(node, index);
    }
    return index.get(key);
  };
}

function optionalPosition<T>(offset: number | undefined, toPosition: (offset: number) => T): T | undefined {
  return offset === undefined ? undefined : toPosition(offset);
}

function startOf(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
  return range?.[0];
}

/** `key:` with nothing after it: the parser places the empty value after the colon; the key reads better. */
function isEmptyNode(node: unknown): boolean {
  const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
  return node === null || node === undefined || (range !== undefined && range[0] === range[1]);
}

function keyText(key: unknown): string {
  return yamlPackage().isScalar(key) ? String(key.value) : String(key);
}
