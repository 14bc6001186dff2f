/**
 * The files a `command` step's cache covers by itself: the files its command line names. A string `run` is
 * split into words at blanks (quotes group, `'...'` and `"..."` are unwrapped; shell operators and words with
 * `$` or a glob character are not paths); argv is taken as is; `--flag=value` contributes its value. A word
 * counts when it names an existing regular file relative to the step's `cwd`, inside the pipeline's folder
 * (so `/bin/sh` or `python3` on PATH never do).
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { CacheInputsContext, StepCacheInputs } from '../step-type.js';

/** What this module reads of a command's `with`. */
interface CommandFilesConfig {
  run: string | string[];
  cwd?: string;
}

/** At most this many words of a command line are looked up on disk. */
const MAX_WORDS = 64;

/**
 * Files named by the command line. With declared `cache.inputs`, only the first one: the command's own script
 * (the declared globs cover the rest).
 */
export async function commandCacheInputs(config: CommandFilesConfig, ctx: CacheInputsContext): Promise<StepCacheInputs> {
  const cwd = path.resolve(ctx.baseDir, config.cwd ?? '.');
  const files: string[] = [];
  for (const word of commandWords(config.run).slice(0, MAX_WORDS)) {
    const file = path.resolve(cwd, word);
    if (!isInside(ctx.baseDir, file) || files.includes(file) || !(await isFile(file))) continue;
    files.push(file);
    if (ctx.declaredInputs) break;
  }
  return { files };
}

/** The words of a command line that may be paths. */
export function commandWords(run: string | string[]): string[] {
  const words = typeof run === 'string' ? splitShellWords(run) : run.map(String);
  return words.map((w) => (/^--?[\w-]+=/.test(w) ? w.slice(w.indexOf('=') + 1) : w)).filter((w) => w !== '' && !/[$*?[\]{}|;&<>`]/.test(w));
}

/** Splits at unquoted blanks; a quoted stretch keeps its blanks and loses its quotes. */
function splitShellWords(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let quote: string | null = null;
  for (const c of text) {
    if (quote !== null) {
      if (c === quote) quote = null;
      else word += c;
    } else if (c === '"' || c === "'") quote = c;
    else if (/\s/.test(c)) {
      if (word !== '') words.push(word);
      word = '';
    } else word += c;
  }
  if (word !== '') words.push(word);
  return words;
}

function isInside(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}
