/** `sluice runs` in-process (the e2e suite drives the built CLI): pages with --limit and --cursor. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { captureOutput } from '../support/capture-output.js';
import { runsCommand, statusCommand } from '../../src/cli/commands/inspect.js';
import { openEngine } from '../../src/cli/context.js';
import { normalizePipeline } from '../../src/core/validate.js';

describe('sluice runs', () => {
  let dir: string;
  let store: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-runs-cli-'));
    store = `sqlite:${join(dir, 's.db')}`;
  });
  afterEach(() => {
    vi.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  const capture = captureOutput;

  it('lists --limit runs at a time and prints the --cursor of the next page on stderr until the last', async () => {
    const engine = await openEngine({ store });
    await engine.store.migrate();
    await engine.registerPipeline(normalizePipeline({ name: 'p', steps: { a: { uses: 'command', with: { run: 'true' } } } }, { stepTypes: engine.steps }));
    const created = await engine.startRuns('p', [{}, {}, {}, {}, {}]);
    await engine.close();
    const expected = created.map((c) => c.run.id).reverse();

    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 5; page++) {
      const { code, out, err } = await capture(() => runsCommand({ store, json: true, limit: '2', ...(cursor ? { cursor } : {}) }));
      expect(code).toBe(0);
      seen.push(...(JSON.parse(out) as Array<{ id: string }>).map((r) => r.id));
      cursor = /--cursor (\S+)/.exec(err)?.[1];
      if (!cursor) break;
      expect(err).toContain('sluice runs --limit 2 --cursor');
    }
    expect(seen).toEqual(expected);
  });

  it('shows a run held by a singleton queue as waiting for the active run, with no start time', async () => {
    const engine = await openEngine({ store });
    await engine.store.migrate();
    const spec = { name: 'one', singleton: { mode: 'queue' as const }, steps: { a: { uses: 'command', with: { run: 'true' } } } };
    await engine.registerPipeline(normalizePipeline(spec, { stepTypes: engine.steps }));
    const [first, second] = await engine.startRuns('one', [{}, {}]);
    await engine.close();
    const active = first!.run.id;
    const held = second!.run.id;

    const table = await capture(() => runsCommand({ store }));
    expect(table.out).toMatch(new RegExp(`${held}.*queued \\(after ${active}\\)`));
    expect(table.out).not.toMatch(new RegExp(`${active}.*\\(after`));
    const listed = JSON.parse((await capture(() => runsCommand({ store, json: true }))).out) as Array<{ id: string; run_at: number | null }>;
    expect(listed.find((r) => r.id === held)?.run_at).toBeNull();
    const status = await capture(() => statusCommand(held, { store }));
    expect(status.out).toContain(`waits for run ${active} to end (singleton queue); no start time until then`);
    const json = JSON.parse((await capture(() => statusCommand(held, { store, json: true }))).out) as { run_at: number | null; flow: unknown };
    expect(json).toMatchObject({ run_at: null, flow: { after_run_id: active } });
  });

  it('refuses a --limit that is not a whole number from 1 to 1000', async () => {
    await expect(runsCommand({ store, limit: 'ten' })).rejects.toMatchObject({ code: 'INPUT_INVALID', message: expect.stringContaining('--limit') });
  });
});
