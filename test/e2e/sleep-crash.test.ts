/**
 * A durable sleep on real processes: the CLI working a run is killed with SIGKILL while a `sleep` step waits; a
 * new process (`sluice run --resume`) finishes the run once the sleep's time has come, neither sooner nor by
 * starting the sleep over.
 */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { countLines, exited, killSpawned, REPO_ROOT, startCli, tempDir, waitFor } from '../support/cli.js';
import { runCliInProcess, runCliJsonInProcess } from '../support/cli-in-process.js';

let tmp: ReturnType<typeof tempDir>;
let store: string;

beforeAll(() => {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
});

beforeEach(() => {
  tmp = tempDir('sluice-sleep-');
  store = path.join(tmp.dir, 's.db');
});

afterEach(async () => {
  await killSpawned();
  tmp.cleanup();
});

const storeArgs = () => ['--store', `sqlite:${store}`];

type Status = { id: string; status: string; steps: Array<{ name: string; status: string; output?: unknown }> };

describe('durable sleep', () => {
  it('kill -9 while a sleep waits: a new process finishes the run after the time, and the step after it runs once', async () => {
    const marker = path.join(tmp.dir, 'after');
    const file = path.join(tmp.dir, 'nap.yaml');
    writeFileSync(
      file,
      stringify({
        name: 'nap',
        steps: {
          nap: { uses: 'sleep', with: { for: '3s' } },
          after: { uses: 'command', needs: ['nap'], with: { run: `echo ran >> ${JSON.stringify(marker)}` } },
        },
      }),
    );
    const child = startCli(['run', file, ...storeArgs()], { cwd: tmp.dir });
    const runs = await waitFor('the run to start', async () => {
      const list = existsSync(store) ? await runCliJsonInProcess<Array<{ id: string }>>(['runs', ...storeArgs()], { cwd: tmp.dir }).catch(() => []) : [];
      return list.length > 0 ? list : undefined;
    });
    const id = runs[0]!.id;
    const status = () => runCliJsonInProcess<Status>(['status', id, ...storeArgs()], { cwd: tmp.dir });
    const waiting = await waitFor('nap to wait', async () => ((await status()).steps.find((s) => s.name === 'nap')?.status === 'waiting' ? true : undefined));
    expect(waiting).toBe(true);
    process.kill(child.pid!, 'SIGKILL');
    expect(await exited(child)).toEqual({ code: null, signal: 'SIGKILL' });

    const nap = (await status()).steps.find((s) => s.name === 'nap')!;
    const until = Date.parse((nap.output as { until: string }).until);
    const resumed = await runCliInProcess(['run', '--resume', id, ...storeArgs()], { cwd: tmp.dir });
    expect(resumed.code, resumed.stderr).toBe(0);
    const after = await status();
    expect(after.status).toBe('succeeded');
    const output = after.steps.find((s) => s.name === 'nap')!.output as { until: string; woke_at: string };
    // The same wake time as before the kill (not started over), and it did not wake before it.
    expect(Date.parse(output.until)).toBe(until);
    expect(Date.parse(output.woke_at)).toBeGreaterThanOrEqual(until);
    expect(countLines(marker)).toBe(1);
  }, 120_000);
});
