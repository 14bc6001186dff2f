/**
 * The file side of the step cache: expands `cache.inputs` / `cache.outputs` globs under the pipeline's folder,
 * hashes files by streaming them, and checks that recorded outputs are still there. Only steps that declare
 * files, or whose step type names files (a `command`'s argv), come here: the others pay no file I/O.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { FileHashes } from '../core/cache-key.js';
import { SluiceError } from '../core/errors.js';
import { compileGlob, type CompiledGlob } from '../core/glob.js';


/** Folder entries one step's globs may visit before the step is refused. Default: 20,000. */
export const MAX_GLOB_ENTRIES = 20_000;

interface HashMemo {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  hash: string;
}

/** Content hashes by absolute path, reused while size, times and inode are as they were: files are read once per change. */
const memo = new Map<string, HashMemo>();
const MEMO_LIMIT = 50_000;
/** Files modified more recently than this are hashed every time. */
const RACY_MS = 2_000;

/** sha256 of a file's content, streamed; null when it is not a readable regular file. */
export async function hashFile(file: string): Promise<string | null> {
  let st;
  try {
    st = await stat(file);
  } catch {
    return null;
  }
  if (!st.isFile()) return null;
  const known = memo.get(file);
  if (known && known.size === st.size && known.mtimeMs === st.mtimeMs && known.ctimeMs === st.ctimeMs && known.ino === st.ino) return known.hash;
  const hash = await streamHash(file).catch(() => null);
  if (hash === null) return null;
  // A file modified within the last moment may be modified again within the same timestamp tick: its hash is
  // not remembered until its timestamp is safely in the past (git's "racy" rule).
  if (Date.now() - st.mtimeMs < RACY_MS) return hash;
  if (memo.size >= MEMO_LIMIT) memo.clear();
  memo.set(file, { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, hash });
  return hash;
}

function streamHash(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => h.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

/** The path of `file` relative to `baseDir`, with `/` separators. */
export function relativeTo(baseDir: string, file: string): string {
  return path.relative(baseDir, file).split(path.sep).join('/');
}

/**
 * Hashes every file the globs match (relative to `baseDir`), plus `extra` absolute paths, keyed by relative
 * path. A glob matching nothing adds nothing. Throws `CACHE_INPUTS_TOO_LARGE` when the globs make it visit
 * more than {@link MAX_GLOB_ENTRIES} entries.
 */
export async function hashFiles(baseDir: string, patterns: readonly string[], extra: readonly string[] = []): Promise<FileHashes> {
  const files = new Set(extra.map((f) => relativeTo(baseDir, f)));
  for (const rel of await expandGlobs(baseDir, patterns)) files.add(rel);
  const out: FileHashes = {};
  for (const rel of [...files].sort()) {
    const hash = await hashFile(path.resolve(baseDir, rel));
    if (hash !== null) out[rel] = hash;
  }
  return out;
}

/**
 * Relative paths of the regular files matched by `patterns` under `baseDir`, sorted. Throws
 * `CACHE_INPUTS_TOO_LARGE` past `maxEntries` folder entries visited. Default: {@link MAX_GLOB_ENTRIES}.
 */
export async function expandGlobs(baseDir: string, patterns: readonly string[], maxEntries = MAX_GLOB_ENTRIES): Promise<string[]> {
  const found = new Set<string>();
  const budget = { left: maxEntries, max: maxEntries, patterns };
  for (const pattern of patterns) {
    for (const glob of compileGlob(pattern)) {
      if (glob.literal) {
        if (await isFile(path.resolve(baseDir, glob.path))) found.add(glob.path);
        continue;
      }
      await walk(baseDir, glob.base, glob, found, budget);
    }
  }
  return [...found].sort();
}

async function walk(baseDir: string, rel: string, glob: CompiledGlob, found: Set<string>, budget: { left: number; max: number; patterns: readonly string[] }): Promise<void> {
  let entries;
  try {
    entries = await readdir(path.resolve(baseDir, rel), { withFileTypes: true });
  } catch {
    return;
  }
  const depth = rel === '' ? 0 : rel.split('/').length;
  for (const entry of entries) {
    budget.left -= 1;
    if (budget.left < 0) throw tooLarge(budget.patterns, budget.max);
    const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
    if (entry.isDirectory()) {
      // Without `**` no match lies deeper than the pattern's own segments; `**` does not enter hidden folders.
      if (glob.deep ? !entry.name.startsWith('.') || mayEnter(glob, child) : depth + 1 < glob.depth) await walk(baseDir, child, glob, found, budget);
    } else if ((entry.isFile() || (entry.isSymbolicLink() && (await isFile(path.resolve(baseDir, child))))) && glob.regex.test(child)) {
      found.add(child);
    }
  }
}

/** A hidden folder is entered only when the pattern names it literally (`.config/**`). */
function mayEnter(glob: CompiledGlob, child: string): boolean {
  return glob.base === child || glob.base.startsWith(`${child}/`);
}

function tooLarge(patterns: readonly string[], max: number): SluiceError {
  return new SluiceError(
    'CACHE_INPUTS_TOO_LARGE',
    `the cache globs ${patterns.map((p) => JSON.stringify(p)).join(', ')} visit more than ${max} files and folders; narrow them (e.g. "data/*.csv" rather than "**/*")`,
    { retryable: false },
  );
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

/** What became of the outputs recorded with a cached result. */
export interface OutputCheck {
  missing: string[];
  changed: string[];
}

/** Checks the recorded outputs: each must still be a file, and with `unchanged` hold the content it had. */
export async function checkOutputs(baseDir: string, recorded: FileHashes, unchanged: boolean): Promise<OutputCheck> {
  const check: OutputCheck = { missing: [], changed: [] };
  for (const [rel, hash] of Object.entries(recorded)) {
    const file = path.resolve(baseDir, rel);
    if (!unchanged) {
      if (!(await exists(file))) check.missing.push(rel);
      continue;
    }
    const now = await hashFile(file);
    if (now === null) check.missing.push(rel);
    else if (now !== hash) check.changed.push(rel);
  }
  return check;
}

async function exists(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return isFile(file);
  } catch {
    return false;
  }
}
