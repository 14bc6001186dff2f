import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killSpawned, runCli, runCliJson } from '../support/cli.js';

afterAll(killSpawned);

/** `sluice emit` through the built CLI: the verb, its options and its exit codes. */
describe('sluice emit', () => {
  it('starts the pipelines whose trigger names the event, with --data as input; bad --data exits 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-emit-e2e-'));
    try {
      const store = `sqlite:${join(dir, 's.db')}`;
      const file = join(dir, 'pipeline.yaml');
      writeFileSync(file, 'name: on-signup\ntriggers: [{ event: user.signed_up }]\nsteps:\n  greet: { uses: command, with: { run: "true" } }\n');
      // Registers the pipeline (and queues one run, left for a worker).
      expect((await runCli(['run', file, '--detach', '--store', store])).code).toBe(0);

      const emitted = await runCliJson<{ event: string; runs: Array<{ id: string; pipeline: string; created: boolean }> }>(['emit', 'user.signed_up', '--data', '{"user":"ada"}', '--idempotency-key', 'k', '--store', store]);
      expect(emitted).toMatchObject({ event: 'user.signed_up', runs: [{ pipeline: 'on-signup', created: true }] });
      // Idempotency and the payload as input are covered in-process (test/engine/emit.test.ts).

      const bad = await runCli(['emit', 'user.signed_up', '--data', '{nope', '--store', store]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('INPUT_INVALID: --data is not valid JSON');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
