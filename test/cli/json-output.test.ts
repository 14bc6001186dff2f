/**
 * The CLI's `--json`, in-process: snake_case like the HTTP API, and `sluice run --json` tells each step's
 * status and output (and an attribute run's stats), not just the run row.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { datasetCreateCommand, datasetImportCommand } from '../../src/cli/commands/dataset.js';
import { statusCommand, validateCommand } from '../../src/cli/commands/inspect.js';
import { runCommand } from '../../src/cli/commands/run.js';

vi.setConfig({ testTimeout: 60_000 });

const PIPELINE = `name: shout
max_parallel: 2
steps:
  upper:
    uses: code
    timeout: 30s
    with: { code: "return { text: String($json.text).toUpperCase() }" }
  count:
    needs: [upper]
    uses: code
    with: { code: "return { chars: steps.upper.text.length }" }
`;

const ATTRIBUTE = `name: size
dataset: things
target: size
source: { fields: [title] }
steps:
  guess:
    uses: code
    with: { code: "return { value: $json.title.includes('big') ? 'large' : 'small', confidence: 0.9 }" }
`;

/** Paths of object keys holding an upper-case letter. */
function camelKeys(value: unknown, path = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => camelKeys(v, `${path}[${i}]`));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => [...(/[A-Z]/.test(k) ? [`${path}.${k}`] : []), ...camelKeys(v, `${path}.${k}`)]);
}

describe('CLI --json', () => {
  let dir: string;
  let opts: { store: string; json: true };
  let out: string[];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-json-cli-'));
    opts = { store: `sqlite:${join(dir, 's.db')}`, json: true };
    out = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (out.push(String(chunk)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  });
  afterEach(() => {
    vi.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  function take(): Record<string, unknown> & { steps: Array<Record<string, unknown>> } {
    const text = out.join('');
    out.length = 0;
    return JSON.parse(text) as Record<string, unknown> & { steps: Array<Record<string, unknown>> };
  }

  it('run and status print the run with each step status and output, in snake_case', async () => {
    writeFileSync(join(dir, 'shout.yaml'), PIPELINE);
    expect(await runCommand(join(dir, 'shout.yaml'), { ...opts, input: '{"text":"hey"}', maxParallel: '1' })).toBe(0);
    const run = take();
    expect(run).toMatchObject({ pipeline: 'shout', status: 'succeeded', max_parallel: 1, input: { text: 'hey' } });
    expect(run.steps.map((s) => [s.name, s.status, s.output])).toEqual([
      ['upper', 'succeeded', { text: 'HEY' }],
      ['count', 'succeeded', { chars: 3 }],
    ]);
    expect(run['created_at']).toEqual(expect.any(Number));
    expect(camelKeys(run)).toEqual([]);

    expect(await statusCommand(run['id'] as string, opts)).toBe(0);
    const status = take();
    expect(status).toMatchObject({ id: run['id'], status: 'succeeded', decisions: [] });
    expect(status.steps.map((s) => s.output)).toEqual([{ text: 'HEY' }, { chars: 3 }]);
    expect(camelKeys(status)).toEqual([]);

    expect(await validateCommand(join(dir, 'shout.yaml'), opts)).toBe(0);
    const valid = take();
    expect(valid['pipeline']).toMatchObject({ name: 'shout', max_parallel: 2, steps: [{ name: 'upper', timeout_ms: 30_000 }, { name: 'count' }] });
    expect(camelKeys(valid)).toEqual([]);
  });

  it("run --json of an attribute pipeline adds the run's stats", async () => {
    writeFileSync(join(dir, 'size.yaml'), ATTRIBUTE);
    writeFileSync(join(dir, 'things.jsonl'), '{"id":"a","title":"big box"}\n{"id":"b","title":"pin"}\n');
    expect(await datasetCreateCommand('things', opts)).toBe(0);
    expect(await datasetImportCommand('things', join(dir, 'things.jsonl'), opts)).toBe(0);
    out.length = 0;
    expect(await runCommand(join(dir, 'size.yaml'), opts)).toBe(0);
    const run = take();
    expect(run).toMatchObject({ pipeline: 'size', status: 'succeeded', stats: { processed: 2, failed: 0, skipped: 0 } });
    expect(run.steps).toMatchObject([{ name: 'attribute', status: 'succeeded' }]);
    expect(camelKeys(run)).toEqual([]);
  });
});
