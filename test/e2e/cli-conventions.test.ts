import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killSpawned, REPO_ROOT, runCli } from '../support/cli.js';

afterAll(killSpawned);

describe('sluice command-line conventions', () => {
  it('prints its version with --version and -V, exit 0', async () => {
    const { version } = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = await runCli([flag]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(version);
    }
  });

  it('exits 2 on usage errors, naming what is wrong', async () => {
    const cases: Array<[string[], string]> = [
      [['nope'], "unknown command 'nope'"],
      [['run', '--bogus', 'x.yaml'], "unknown option '--bogus'"],
      [['rollback', 'r1'], "required option '--to <step>'"],
      [['logs'], "missing required argument 'run'"],
      [[], 'Usage: sluice'],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args);
      expect(r.code, `sluice ${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr + r.stdout).toContain(message);
    }
  });

  it('exits 0 for --help', async () => {
    const r = await runCli(['run', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: sluice run');
  });
});
