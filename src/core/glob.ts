/**
 * Globs of `cache.inputs` and `cache.outputs`, compiled to regular expressions over `/`-separated paths
 * relative to the pipeline file's directory. No I/O here: src/engine/cache-files.ts walks the folders.
 *
 * Syntax: `*` any characters within one name, `?` one character, `[abc]` / `[a-z]` / `[!abc]` one of a set,
 * `{a,b}` alternatives (may hold `/`), `**` as a whole segment any number of folders (zero included), `\x` a
 * literal x. A wildcard does not match a name starting with `.` unless the pattern's segment starts with one,
 * and `**` does not enter folders whose name starts with `.`.
 */

/** One brace-free pattern, ready to match. */
export interface CompiledGlob {
  /** The pattern as written (before brace expansion). */
  pattern: string;
  /** This alternative, normalized (`./a//b` -> `a/b`): the file itself when {@link literal}. */
  path: string;
  /** The folder to walk from: the leading segments without wildcards, `''` for the base directory itself. */
  base: string;
  /** The whole pattern is a plain path: stat it, walk nothing. */
  literal: boolean;
  /** Whether the pattern holds `**` (otherwise no match is deeper than {@link depth} segments). */
  deep: boolean;
  /** Segments of the pattern. */
  depth: number;
  regex: RegExp;
}

/** Alternatives a pattern's braces may expand to, at most. */
const MAX_EXPANSIONS = 64;

/** Why `pattern` is not a usable cache glob, or null when it is. */
export function globProblem(pattern: string): string | null {
  if (pattern.trim() === '') return 'a glob must not be empty';
  if (pattern.startsWith('/') || /^[A-Za-z]:[\\/]/.test(pattern)) return `"${pattern}" is absolute; cache globs are relative to the pipeline file's folder`;
  if (unclosed(pattern, '[', ']')) return `"${pattern}" has a "[" without its "]"`;
  if (unclosed(pattern, '{', '}')) return `"${pattern}" has a "{" without its "}"`;
  if (expandBraces(pattern).length > MAX_EXPANSIONS) return `"${pattern}" expands to more than ${MAX_EXPANSIONS} alternatives`;
  return null;
}

/** Compiles a pattern into one {@link CompiledGlob} per brace alternative. Call {@link globProblem} first. */
export function compileGlob(pattern: string): CompiledGlob[] {
  return expandBraces(pattern).map((alt) => compileOne(pattern, normalize(alt)));
}

/** Whether a `/`-separated relative path is matched by any of `globs`. */
export function matchesAny(globs: readonly CompiledGlob[], relPath: string): boolean {
  return globs.some((g) => g.regex.test(relPath));
}

function compileOne(pattern: string, path: string): CompiledGlob {
  const segments = path.split('/');
  const firstMagic = segments.findIndex(isMagic);
  const literal = firstMagic === -1;
  const base = segments.slice(0, literal ? segments.length - 1 : firstMagic).join('/');
  let source = '';
  segments.forEach((seg, i) => {
    const last = i === segments.length - 1;
    if (seg === '**') source += last ? '(?:(?!\\.)[^/]*/)*(?!\\.)[^/]*' : '(?:(?!\\.)[^/]*/)*';
    else source += segmentSource(seg) + (last ? '' : '/');
  });
  return { pattern, path, base, literal, deep: segments.includes('**'), depth: segments.length, regex: new RegExp(`^${source}$`) };
}

/** `./a//b/` -> `a/b`; `..` segments stay (a glob may reach a sibling folder of the pipeline's). */
function normalize(path: string): string {
  return path
    .split('/')
    .filter((seg) => seg !== '' && seg !== '.')
    .join('/');
}

function isMagic(segment: string): boolean {
  return /[*?[\\]/.test(segment);
}

function segmentSource(seg: string): string {
  // A wildcard never matches a leading dot: `*.json` skips `.hidden.json`.
  let out = seg.startsWith('.') || !/^[*?[]/.test(seg) ? '' : '(?!\\.)';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i]!;
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '\\' && i + 1 < seg.length) out += escapeRegex(seg[++i]!);
    else if (c === '[') {
      const end = seg.indexOf(']', i + 2);
      if (end === -1) {
        out += '\\[';
        continue;
      }
      let body = seg.slice(i + 1, end);
      if (body.startsWith('!')) body = `^${body.slice(1)}`;
      out += `[${body.replace(/\\/g, '\\\\').replace(/\//g, '')}]`;
      i = end;
    } else out += escapeRegex(c);
  }
  return out;
}

function escapeRegex(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? `\\${c}` : c;
}

/** `a{b,c}d{e,f}` -> `abde abdf acde acdf`; nested braces expand from the outside in. */
export function expandBraces(pattern: string): string[] {
  const open = findOpenBrace(pattern);
  if (open === -1) return [pattern];
  const close = matchingBrace(pattern, open);
  if (close === -1) return [pattern];
  const head = pattern.slice(0, open);
  const tail = pattern.slice(close + 1);
  const out: string[] = [];
  for (const alt of splitAlternatives(pattern.slice(open + 1, close))) {
    for (const expanded of expandBraces(head + alt + tail)) {
      out.push(expanded);
      if (out.length > MAX_EXPANSIONS) return out;
    }
  }
  return out;
}

function findOpenBrace(text: string): number {
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '{') return i;
  }
  return -1;
}

function matchingBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return i;
  }
  return -1;
}

/** Splits `a,{b,c},d` at its top-level commas. */
function splitAlternatives(body: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === '\\') i++;
    else if (c === '{') depth++;
    else if (c === '}') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(body.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(body.slice(start));
  return parts;
}

function unclosed(text: string, open: string, close: string): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === open) depth++;
    else if (text[i] === close && depth > 0) depth--;
  }
  return depth > 0;
}
