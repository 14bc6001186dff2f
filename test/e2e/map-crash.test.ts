/**
 * A map step killed in the middle of a batch (after its items ran, before their results were recorded)
 * loses no item: the resumed run re-runs that batch and records every item. The CLI that crashes is the real
 * binary; the commands after it run in this process.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { killSpawned, runCli, tempDir } from '../support/cli.js';
import { runCliInProcess, runCliJsonInProcess as runCliJson } from '../support/cli-in-process.js';

let tmp: ReturnType<typeof tempDir>;

beforeEach(() => {
  tmp = tempDir('sluice-map-crash-');
});

afterEach(async () => {
  await killSpawned();
  tmp.cleanup();
});

describe('map step crash safety', () => {
  it('a crash in the middle of a batch drops no item', async () => {
    const file = path.join(tmp.dir, 'fan.yaml');
    const markers = path.join(tmp.dir, 'items.log');
    writeFileSync(
      file,
      [
        'name: fan-crash',
        'steps:',
        '  fan:',
        '    uses: map',
        '    with:',
        '      items: ${{ [1..12] }}',
        '      batch_size: 4',
        '      step:',
        '        uses: command',
        "        with: { run: \"echo ${{ index }} >> items.log && echo done ${{ item }}\" }",
        '',
      ].join('\n'),
    );
    const store = `sqlite:${path.join(tmp.dir, 's.db')}`;
    const crashed = await runCli(['run', file, '--store', store], { cwd: tmp.dir, env: { SLUICE_CRASH_POINT: 'map-batch-2:fan' } });
    expect(crashed.signal).toBe('SIGKILL');
    const before = readFileSync(markers, 'utf8').trim().split('\n').map(Number);
    expect(before.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);

    const [run] = await runCliJson(['runs', '--json', '--store', store], { cwd: tmp.dir });
    const resumed = await runCliInProcess(['run', '--resume', run.id, '--store', store], { cwd: tmp.dir });
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);

    const counts = new Map<number, number>();
    for (const i of readFileSync(markers, 'utf8').trim().split('\n').map(Number)) counts.set(i, (counts.get(i) ?? 0) + 1);
    // Batch 1 was recorded before the crash and never re-runs; batch 2 ran but was not recorded, so it runs
    // again (at least once); batch 3 runs once.
    expect(Object.fromEntries(counts)).toEqual({ 0: 1, 1: 1, 2: 1, 3: 1, 4: 2, 5: 2, 6: 2, 7: 2, 8: 1, 9: 1, 10: 1, 11: 1 });
    const status = await runCliJson(['status', run.id, '--json', '--store', store], { cwd: tmp.dir });
    const output = status.steps[0].output as { items: Array<{ stdout: string }>; succeeded: number };
    expect(output.succeeded).toBe(12);
    expect(output.items.map((i) => i.stdout)).toEqual(Array.from({ length: 12 }, (_, i) => `done ${i + 1}`));
  });
});
