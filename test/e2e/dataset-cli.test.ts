/** `sluice dataset ...` as a user runs it (the CLI program in this process, SQLite in a temp folder). */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { REPO_ROOT, tempDir, type CliResult } from '../support/cli.js';
import { runCliInProcess } from '../support/cli-in-process.js';

vi.setConfig({ testTimeout: 60_000 });

let tmp: ReturnType<typeof tempDir>;

beforeAll(() => {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
});
beforeEach(() => {
  tmp = tempDir('sluice-dataset-cli-');
});
afterEach(() => tmp.cleanup());

function sluice(...args: string[]): Promise<CliResult> {
  return runCliInProcess([...args, '--store', `sqlite:${path.join(tmp.dir, 's.db')}`], { cwd: tmp.dir });
}

describe('sluice dataset', () => {
  it('creates, imports with --id-field, lists, gets and exports; a bad line exits 2 naming it', async () => {
    expect((await sluice('dataset', 'create', 'products')).code).toBe(0);
    writeFileSync(path.join(tmp.dir, 'in.jsonl'), '{"sku": "b", "n": 2}\n{"sku": "a", "n": 1}\n');
    const imported = await sluice('dataset', 'import', 'products', 'in.jsonl', '--id-field', 'sku');
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toContain('2 record(s) imported');
    expect((await sluice('dataset', 'list')).stdout).toMatch(/products\s+2\s+-/);
    expect(JSON.parse((await sluice('dataset', 'get', 'products', 'a')).stdout)).toEqual({ sku: 'a', n: 1 });
    const exported = await sluice('dataset', 'export', 'products');
    expect(exported.stdout).toBe('{"id":"a","sku":"a","n":1}\n{"id":"b","sku":"b","n":2}\n');
    expect((await sluice('dataset', 'export', 'products', 'out.jsonl', '--id-field', 'sku')).code).toBe(0);
    expect(readFileSync(path.join(tmp.dir, 'out.jsonl'), 'utf8')).toBe('{"sku":"a","n":1}\n{"sku":"b","n":2}\n');

    writeFileSync(path.join(tmp.dir, 'bad.jsonl'), '{"id": "c"}\n"text"\n');
    const bad = await sluice('dataset', 'import', 'products', 'bad.jsonl');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('RECORD_INVALID: line 2: the record is not a JSON object');
    const missing = await sluice('dataset', 'get', 'ghost', 'a');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('DATASET_NOT_FOUND');
  });
});
