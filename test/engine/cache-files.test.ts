import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/core/hash.js';
import { checkOutputs, expandGlobs, hashFiles } from '../../src/engine/cache-files.js';
import { moduleFingerprint } from '../../src/steps/function/module-fingerprint.js';
import { commandWords } from '../../src/steps/command/cache-files.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-cache-files-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function files(paths: Record<string, string>): void {
  for (const [rel, text] of Object.entries(paths)) {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
}

describe('cache input files', () => {
  it('expands globs under the pipeline folder, skipping hidden folders, following file links', async () => {
    files({ 'data/a.csv': 'a', 'data/deep/b.csv': 'b', 'data/c.txt': 'c', '.git/x.csv': 'x', 'work/out.json': '{}' });
    symlinkSync(join(dir, 'data', 'a.csv'), join(dir, 'data', 'link.csv'));
    expect(await expandGlobs(dir, ['data/*.csv'])).toEqual(['data/a.csv', 'data/link.csv']);
    expect(await expandGlobs(dir, ['**/*.csv'])).toEqual(['data/a.csv', 'data/deep/b.csv', 'data/link.csv']);
    expect(await expandGlobs(dir, ['./work/out.json', 'missing.json'])).toEqual(['work/out.json']);
  });

  it('hashes the content of every matched file, keyed by its relative path', async () => {
    files({ 'data/a.csv': 'a', 'script.mjs': 'run()' });
    expect(await hashFiles(dir, ['data/*.csv'], [join(dir, 'script.mjs')])).toEqual({ 'data/a.csv': sha256('a'), 'script.mjs': sha256('run()') });
    writeFileSync(join(dir, 'data', 'a.csv'), 'A');
    expect((await hashFiles(dir, ['data/*.csv']))['data/a.csv']).toBe(sha256('A'));
  });

  it('refuses a glob that walks too big a tree, naming it', async () => {
    files(Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`big/f${i}.txt`, String(i)])));
    await expect(expandGlobs(dir, ['big/**/*'], 20)).rejects.toMatchObject({ code: 'CACHE_INPUTS_TOO_LARGE', message: expect.stringContaining('"big/**/*"') });
  });

  it('says which recorded outputs are gone or changed', async () => {
    files({ 'keep.json': '1', 'edit.json': '2' });
    const recorded = { 'keep.json': sha256('1'), 'edit.json': sha256('2'), 'gone.json': sha256('3') };
    writeFileSync(join(dir, 'edit.json'), 'two');
    expect(await checkOutputs(dir, recorded, false)).toEqual({ missing: ['gone.json'], changed: [] });
    expect(await checkOutputs(dir, recorded, true)).toEqual({ missing: ['gone.json'], changed: ['edit.json'] });
  });
});

describe('module fingerprints', () => {
  it('follow relative imports of every form, through .js-to-.ts and index files, and nothing else', async () => {
    files({
      'main.ts': "import { a } from './a.js';\nexport * from './b';\nconst c = await import('./c/index.js');\nconst d = require('../outside.cjs');\nimport 'node:fs';\nimport z from 'zod';\n",
      'a.ts': 'export const a = 1;\n',
      'b.mjs': 'export const b = 2;\n',
      'c/index.ts': "export { e } from './e.js';\n",
      'c/e.ts': 'export const e = 3;\n',
    });
    const before = await moduleFingerprint(join(dir, 'main.ts'));
    for (const edited of ['a.ts', 'b.mjs', 'c/e.ts']) {
      const now = await moduleFingerprint(join(dir, 'main.ts'));
      writeFileSync(join(dir, edited), `${edited} edited\n`);
      expect(await moduleFingerprint(join(dir, 'main.ts')), edited).not.toBe(now);
    }
    expect(before).not.toBe(await moduleFingerprint(join(dir, 'main.ts')));
  });
});

describe('the files a command line names', () => {
  it('splits a shell string into words, unquoting, and leaves out operators and expansions', () => {
    expect(commandWords('node "phases/my phase.mjs" --out=work/x.json $HOME/a *.csv | tee log.txt')).toEqual(['node', 'phases/my phase.mjs', 'work/x.json', 'tee', 'log.txt']);
    expect(commandWords(['python3', 'run.py', '--in=data.csv'])).toEqual(['python3', 'run.py', 'data.csv']);
  });
});
