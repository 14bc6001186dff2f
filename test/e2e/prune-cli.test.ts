/** `sluice prune` on a SQLite file: dry run, prune, and a clear error for a bad duration. Needs dist/: `npm run build`. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killSpawned, runCli, runCliJson, sleep, tempDir } from '../support/cli.js';

describe('sluice prune', () => {
  afterEach(() => killSpawned());

  it('prints what it would remove, removes it, and refuses a bad --older-than', async () => {
    const tmp = tempDir('sluice-prune-cli-');
    try {
      const store = `sqlite:${path.join(tmp.dir, 's.db')}`;
      const file = path.join(tmp.dir, 'hello.yaml');
      writeFileSync(file, 'name: hello\nsteps:\n  say: { uses: command, with: { run: "echo hi" } }\n');
      const run = await runCliJson<{ id: string }>(['run', file, '--store', store], { cwd: tmp.dir });
      await sleep(20);
      const dry = await runCli(['prune', '--older-than', '10ms', '--dry-run', '--store', store], { cwd: tmp.dir });
      expect(dry.code).toBe(0);
      expect(dry.stdout).toContain('hello: would remove 1 run finished more than 10ms ago');
      const kept = await runCliJson<{ runs: unknown[] }>(['runs', '--store', store], { cwd: tmp.dir });
      expect(JSON.stringify(kept)).toContain(run.id);
      const pruned = await runCliJson<{ runs: number; rows: Record<string, number>; dryRun: boolean }>(['prune', '--older-than', '10ms', '--store', store], { cwd: tmp.dir });
      expect(pruned).toMatchObject({ runs: 1, dryRun: false });
      expect(pruned.rows['logs']).toBeGreaterThan(0);
      expect(JSON.stringify(await runCliJson(['runs', '--store', store], { cwd: tmp.dir }))).not.toContain(run.id);
      const bad = await runCli(['prune', '--older-than', 'forever', '--store', store], { cwd: tmp.dir });
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toContain('--older-than');
      expect(bad.stderr).toContain('"forever"');
    } finally {
      tmp.cleanup();
    }
  });
});
