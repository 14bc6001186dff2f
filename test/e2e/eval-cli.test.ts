/**
 * `sluice eval` as a user runs it (the CLI program in this process, and `sluice worker` as the built binary, SQLite
 * in a temp folder).
 */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { killSpawned, REPO_ROOT, startCli, tempDir, waitCli, waitFor, type CliResult } from '../support/cli.js';
import { runCliInProcess } from '../support/cli-in-process.js';

vi.setConfig({ testTimeout: 60_000 });

let tmp: ReturnType<typeof tempDir>;

beforeAll(() => {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
});
beforeEach(() => {
  tmp = tempDir('sluice-eval-cli-');
});
afterEach(async () => {
  await killSpawned();
  tmp.cleanup();
});

function sluice(...args: string[]): Promise<CliResult> {
  return runCliInProcess([...args, '--store', `sqlite:${path.join(tmp.dir, 's.db')}`], { cwd: tmp.dir });
}

const DOUBLE = `
name: double
steps:
  twice:
    uses: code
    with:
      code: "return input.n * 2"
`;

describe('sluice eval', () => {
  it('prints a table and exits 1 when a case fails, 0 when all pass; sluice run re-runs them', async () => {
    writeFileSync(path.join(tmp.dir, 'double.yaml'), DOUBLE);
    expect((await sluice('run', 'double.yaml', '--input', '{"n": 1}')).code).toBe(0);
    writeFileSync(
      path.join(tmp.dir, 'cases.yaml'),
      `- input: { n: 2 }\n  desired_output: 4\n  notes: two doubled\n- input: { n: 3 }\n  desired_output: 7\n  comparator: "number:0.5"\n`,
    );
    const failing = await sluice('eval', 'double', '--set', 'cases.yaml');
    expect(failing.code, failing.stderr).toBe(1);
    const lines = failing.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^CASE\s+RECORD\/INPUT\s+DESIRED\s+ACTUAL\s+COMPARATOR\s+RESULT\s+CONFIDENCE\s+NOTES$/);
    expect(lines[1]).toMatch(/^1\s+\{"n":2\}\s+4\s+4\s+exact\s+PASS\s+-\s+two doubled$/);
    expect(lines[2]).toMatch(/^2\s+\{"n":3\}\s+7\s+6\s+number:0\.5\s+FAIL\s+-$/);
    expect(lines[3]).toBe('evals of double: 1 passed, 1 failed, 0 not run (2 cases)');

    const json = JSON.parse((await sluice('eval', 'double', '--no-run', '--json')).stdout);
    expect(json.summary).toEqual({ total: 2, passed: 1, failed: 1, not_run: 0 });
    expect(json.evals[1]).toMatchObject({ input: { n: 3 }, desired_output: 7, actual_output: 6, passed: false });

    writeFileSync(path.join(tmp.dir, 'fixed.jsonl'), '{"id": 1, "input": {"n": 2}, "desired_output": 4}\n{"input": {"n": 3}, "desired_output": 6}\n');
    const passing = await sluice('eval', 'double', '--set', 'fixed.jsonl');
    expect(passing.code, passing.stderr).toBe(0);
    expect(passing.stdout).toContain('evals of double: 2 passed, 0 failed, 0 not run (2 cases)');

    const run = await sluice('run', 'double', '--input', '{"n": 5}');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('evals of double: 2 passed, 0 failed, 0 not run (2 cases)');
  });

  it('sluice worker re-runs the evals of a pipeline after a run of it succeeds', async () => {
    writeFileSync(path.join(tmp.dir, 'double.yaml'), DOUBLE);
    writeFileSync(path.join(tmp.dir, 'cases.json'), JSON.stringify({ evals: [{ input: { n: 4 }, desired_output: 8 }] }));
    expect((await sluice('run', 'double.yaml', '--detach', '--input', '{"n": 1}')).code).toBe(0);
    expect((await sluice('eval', 'double', '--set', 'cases.json', '--no-run')).stdout).toContain('0 passed, 0 failed, 1 not run');
    const worker = startCli(['worker', '--store', `sqlite:${path.join(tmp.dir, 's.db')}`], { cwd: tmp.dir });
    const output = waitCli(worker);
    let stderr = '';
    worker.stderr?.on('data', (d: string) => (stderr += d));
    await waitFor('the worker to run the evals', () => stderr.includes('evals of double'), 60_000, 50);
    worker.kill('SIGTERM');
    const done = await output;
    expect(done.code, done.stderr).toBe(0);
    expect(done.stderr).toContain('evals of double: 1 passed, 0 failed, 0 not run (1 case)');
    expect((await sluice('eval', 'double', '--no-run')).code).toBe(0);
  });

  it('exits 2 on an unknown pipeline or a bad file, naming the file and the case, and stores nothing', async () => {
    writeFileSync(path.join(tmp.dir, 'double.yaml'), DOUBLE);
    expect((await sluice('run', 'double.yaml', '--input', '{"n": 1}')).code).toBe(0);
    const unknown = await sluice('eval', 'nope');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('PIPELINE_NOT_FOUND: no pipeline named nope');

    writeFileSync(path.join(tmp.dir, 'bad.json'), JSON.stringify([{ input: { n: 1 }, desired_output: 2 }, { input: { n: 2 }, desired_output: 4, comparator: 'fuzzy' }]));
    const bad = await sluice('eval', 'double', '--set', 'bad.json');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('bad.json: eval case 1: unknown comparator "fuzzy"');
    writeFileSync(path.join(tmp.dir, 'typo.jsonl'), '{"input": {"n": 1}, "desired_output": 2}\n\n{"input": {"n": 2}, "desired": 4}\n');
    const typo = await sluice('eval', 'double', '--set', 'typo.jsonl');
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('typo.jsonl: eval case 1 (line 3): unknown key "desired"');

    const none = await sluice('eval', 'double');
    expect(none.code).toBe(0);
    expect(none.stdout).toContain('pipeline double has no eval cases');
  });
});
