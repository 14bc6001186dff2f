/**
 * The step cache key, kept as parts so a miss can say what changed. A step's key is sha256 of the stable JSON
 * of its {@link CacheParts}; the parts are stored with the cached result, and a later miss of the same step is
 * compared with the latest stored parts to explain it ({@link CacheExplain}).
 */
import { sha256, stableStringify } from './hash.js';

/** Relative path (from the pipeline's folder, `/`-separated) -> sha256 of the file's content. */
export type FileHashes = Record<string, string>;

/** What a step's cache key is made of: hashes of each part, so stored parts reveal nothing of the values. */
export interface CacheParts {
  step: string;
  /** The step type. */
  type: string;
  /** Hash of the resolved `with`. */
  with: string;
  /** Hash of the outputs of the steps it reads. */
  upstream: string;
  /** Hash of the run input. */
  input: string;
  version: number;
  /** Fingerprint of the step's code (a `function` step's module and local imports, or its registered source). */
  code?: string;
  /** Content hashes of the files the key covers (declared inputs, a command's own files). */
  files?: FileHashes;
  /** Hash of the value of `cache.key`. */
  key?: string;
}

/** A part of the key that can change between two results of one step. */
export type CachePartName = 'type' | 'with' | 'upstream' | 'input' | 'version' | 'code' | 'files' | 'key';

/** Why a step was cached or ran, stored with its result and shown by `sluice run --explain` and the dashboard. */
export interface CacheExplain {
  decision: 'cached' | 'ran';
  /**
   * unchanged: the key matched a stored result. first_run: no earlier result of this step. forced: `--force`.
   * changed: a part of the key changed (`changed`, `files`). output_missing / output_changed: the stored
   * result's declared outputs (`outputs`) are gone or were changed.
   */
  reason: 'unchanged' | 'first_run' | 'forced' | 'changed' | 'output_missing' | 'output_changed';
  /** The parts that differ from the earlier result, in key order. */
  changed?: CachePartName[];
  /** Which input files changed, appeared or disappeared. */
  files?: { changed: string[]; added: string[]; removed: string[] };
  /** Declared outputs that were missing or changed. */
  outputs?: string[];
  /** The run whose result was reused or compared with. */
  run_id?: string;
}

const PART_ORDER: CachePartName[] = ['type', 'with', 'upstream', 'input', 'version', 'code', 'files', 'key'];

/** sha256 of a value's stable JSON: how each part of the key is hashed. */
export function hashValue(value: unknown): string {
  return sha256(stableStringify(value));
}

/** The cache key of a step: sha256 of the stable JSON of its parts. */
export function cacheKeyOfParts(parts: CacheParts): string {
  return sha256(stableStringify(parts));
}

/** Why a step whose key found no stored result runs: compares its parts with the latest earlier ones. */
export function explainMiss(parts: CacheParts, previous: { parts: CacheParts | null; runId: string } | undefined): CacheExplain {
  if (!previous) return { decision: 'ran', reason: 'first_run' };
  const base: CacheExplain = { decision: 'ran', reason: 'changed', run_id: previous.runId };
  // A result stored before parts were kept: the key changed, and that is all that can be said.
  if (!previous.parts) return base;
  const before = previous.parts;
  const files = diffFiles(parts.files ?? {}, before.files ?? {});
  const changed = PART_ORDER.filter((name) => (name === 'files' ? files !== undefined : stableStringify(parts[name] ?? null) !== stableStringify(before[name] ?? null)));
  return { ...base, changed, ...(files ? { files } : {}) };
}

function diffFiles(now: FileHashes, before: FileHashes): CacheExplain['files'] | undefined {
  const changed = Object.keys(now).filter((f) => f in before && before[f] !== now[f]);
  const added = Object.keys(now).filter((f) => !(f in before));
  const removed = Object.keys(before).filter((f) => !(f in now));
  return changed.length + added.length + removed.length === 0 ? undefined : { changed, added, removed };
}

const PART_LABELS: Record<CachePartName, string> = {
  type: 'step type',
  with: 'with',
  upstream: 'upstream outputs',
  input: 'run input',
  version: 'pipeline version',
  code: 'code',
  files: 'input files',
  key: 'cache key expression',
};

/** One line saying why a step ran or was cached, e.g. `ran: input files changed (phases/typing.mjs)`. */
export function describeExplain(e: CacheExplain): string {
  switch (e.reason) {
    case 'unchanged':
      return `cached: nothing changed${e.run_id ? ` since run ${e.run_id}` : ''}`;
    case 'first_run':
      return 'ran: first run (no earlier result)';
    case 'forced':
      return 'ran: forced';
    case 'output_missing':
      return `ran: declared output missing (${(e.outputs ?? []).join(', ')})`;
    case 'output_changed':
      return `ran: declared output changed (${(e.outputs ?? []).join(', ')})`;
    case 'changed':
      return `ran: ${describeChanges(e)}`;
  }
}

function describeChanges(e: CacheExplain): string {
  if (!e.changed) return 'cache key changed';
  if (e.changed.length === 0) return 'no earlier result with this key';
  return `${e.changed.map((name) => (name === 'files' && e.files ? describeFiles(e.files) : `${PART_LABELS[name]} changed`)).join(', ')}`;
}

function describeFiles(f: NonNullable<CacheExplain['files']>): string {
  return [
    ...(f.changed.length > 0 ? [`input files changed (${f.changed.join(', ')})`] : []),
    ...(f.added.length > 0 ? [`new input files (${f.added.join(', ')})`] : []),
    ...(f.removed.length > 0 ? [`input files gone (${f.removed.join(', ')})`] : []),
  ].join(', ');
}
