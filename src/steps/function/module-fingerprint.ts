/**
 * The code fingerprint of a `function` step's module: the content of its file and of every local module it
 * imports, transitively. Only relative specifiers (`./x`, `../x`) count as local; packages and `node:` built-ins
 * are left out (their version is the install's business). Each file is read once per change: parses are kept
 * per (path, size, mtime) for the life of the process, once the file is more than 2 s old.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { sha256 } from '../../core/hash.js';

interface ParsedModule {
  size: number;
  mtimeMs: number;
  hash: string;
  /** Absolute paths of the local modules it imports (those found on disk). */
  imports: string[];
}

const parsed = new Map<string, ParsedModule>();
const PARSED_LIMIT = 10_000;
/** Files modified more recently than this are read every time. */
const RACY_MS = 2_000;

// `import x from './a'`, `import './a'`, `export * from './a'`, `import('./a')`, `require('./a')`.
const SPECIFIERS = /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)(['"])(\.{1,2}\/[^'"\n]+)\1/g;
/** Tried in order when a specifier names no file as written (TS sources import `./a.js` meaning `./a.ts`). */
const EXTENSIONS = ['.ts', '.tsx', '.mts', '.cts', '.js', '.mjs', '.cjs', '.jsx', '.json'];

/**
 * sha256 over the relative path and content hash of `file` and its local imports (sorted), relative to the
 * module's own folder so a moved project keeps its fingerprints.
 */
export async function moduleFingerprint(file: string): Promise<string> {
  const root = path.dirname(file);
  const seen = new Map<string, string>();
  const queue = [file];
  while (queue.length > 0) {
    const next = queue.pop()!;
    if (seen.has(next)) continue;
    const mod = await parseModule(next);
    if (!mod) continue;
    seen.set(next, mod.hash);
    queue.push(...mod.imports);
  }
  const parts = [...seen].map(([f, h]) => `${path.relative(root, f).split(path.sep).join('/')} ${h}`).sort();
  return sha256(parts.join('\n'));
}

async function parseModule(file: string): Promise<ParsedModule | undefined> {
  let st;
  try {
    st = await stat(file);
  } catch {
    return undefined;
  }
  const known = parsed.get(file);
  if (known && known.size === st.size && known.mtimeMs === st.mtimeMs) return known;
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const imports: string[] = [];
  for (const m of text.matchAll(SPECIFIERS)) {
    const resolved = await resolveLocal(path.dirname(file), m[2]!);
    if (resolved) imports.push(resolved);
  }
  const mod = { size: st.size, mtimeMs: st.mtimeMs, hash: sha256(text), imports };
  // A file just written may change again within its timestamp's tick: remembered only once that is past.
  if (Date.now() - st.mtimeMs < RACY_MS) return mod;
  if (parsed.size >= PARSED_LIMIT) parsed.clear();
  parsed.set(file, mod);
  return mod;
}

async function resolveLocal(dir: string, specifier: string): Promise<string | undefined> {
  const target = path.resolve(dir, specifier.split('?')[0]!);
  const stem = target.replace(/\.[cm]?jsx?$/, '');
  const candidates = [target, ...EXTENSIONS.map((e) => stem + e), ...EXTENSIONS.map((e) => path.join(target, `index${e}`))];
  for (const c of candidates) if (await isFile(c)) return c;
  return undefined;
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}
