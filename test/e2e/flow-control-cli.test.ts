import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killSpawned, runCli } from '../support/cli.js';

afterAll(killSpawned);

/** Flow rules through the built `sluice run`: a delayed start is said on stderr, a refused one fails with its code. */
describe('sluice run under flow rules', () => {
  it('says a throttled run is queued until its run_at, and refuses a start over rate_limit with RATE_LIMITED', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-flow-e2e-'));
    try {
      const store = `sqlite:${join(dir, 's.db')}`;
      const file = join(dir, 'pipeline.yaml');
      writeFileSync(file, 'name: spaced\nthrottle: { limit: 1, period: 1h }\nrate_limit: { limit: 2, period: 1h }\nsteps:\n  go: { uses: command, with: { run: "true" } }\n');
      expect((await runCli(['run', file, '--detach', '--store', store])).code).toBe(0);
      const second = await runCli(['run', file, '--detach', '--store', store]);
      expect(second.code).toBe(0);
      expect(second.stderr).toMatch(/throttle: run \S+ is queued until \d{4}-\d\d-\d\dT[\d:.]+Z \(run_at\)/);
      const third = await runCli(['run', file, '--detach', '--store', store]);
      expect(third.code).toBe(1);
      expect(third.stderr).toContain('RATE_LIMITED');
      expect(third.stderr).toContain('pipeline spaced is rate limited');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
