/**
 * End to end: the 13-phase script DAG run by the CLI (in this process, see test/support/cli-in-process.ts) with
 * real processes for its phases, on a temporary copy of the example (its phases write work/ beside the pipeline,
 * and some tests edit its scripts). Each phase (phases/lib.mjs) appends an execution line to
 * $SCRIPT_DAG_MARKERS/<phase> and a `start end` span to <phase>.spans.
 */
import { appendFileSync, cpSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { countLines, killSpawned, stepStatuses, tempDir, type CliResult } from '../../test/support/cli.js';
import { runCliInProcess as runCli, runCliJsonInProcess as runCliJson } from '../../test/support/cli-in-process.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const PHASES = [
  'import',
  'typing',
  'statistics',
  'statistical_quality',
  'relationships',
  'correlations',
  'semantic',
  'temporal',
  'slicing',
  'topology',
  'business_cycles',
  'validation',
  'entropy',
];

let tmp: ReturnType<typeof tempDir>;
let store: string;
let markers: string;
let env: Record<string, string>;
/** The copy of the example the test runs: its folder and its pipeline file. */
let example: string;
let pipelineFile: string;

function sluice(args: string[], delayMs = 300): Promise<CliResult> {
  return runCli([...args, '--store', `sqlite:${store}`], { cwd: tmp.dir, env: { ...env, SCRIPT_DAG_DELAY_MS: String(delayMs) } });
}

function executions(): Record<string, number> {
  return Object.fromEntries(PHASES.map((p) => [p, countLines(path.join(markers, p))]));
}

function spans(phase: string): Array<[number, number]> {
  const file = path.join(markers, `${phase}.spans`);
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ').map(Number) as [number, number]);
}

function expectOk(r: CliResult): void {
  expect(r.code, `exit ${r.code ?? r.signal}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(0);
}

function runIdOf(stdout: string): string {
  const id = /^run (\S+) {2}/m.exec(stdout)?.[1];
  if (!id) throw new Error(`no run id in:\n${stdout}`);
  return id;
}

beforeAll(() => {
  if (!existsSync(path.join(here, '..', '..', 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  // The list above must be the example's phases: one script per phase next to lib.mjs.
  const scripts = readdirSync(path.join(here, 'phases'))
    .filter((f) => f !== 'lib.mjs')
    .map((f) => f.replace(/\.mjs$/, ''));
  expect([...scripts].sort()).toEqual([...PHASES].sort());
});

beforeEach(() => {
  tmp = tempDir('sluice-script-dag-');
  store = path.join(tmp.dir, 's.db');
  markers = path.join(tmp.dir, 'markers');
  example = path.join(tmp.dir, 'example');
  cpSync(path.join(here, 'phases'), path.join(example, 'phases'), { recursive: true });
  cpSync(path.join(here, 'pipeline.yaml'), path.join(example, 'pipeline.yaml'));
  pipelineFile = path.join(example, 'pipeline.yaml');
  env = { SCRIPT_DAG_MARKERS: markers };
});

afterEach(async () => {
  await killSpawned();
  tmp.cleanup();
});

describe('examples/script-dag', () => {
  it('runs every phase once, respecting needs, with independent phases overlapping', async () => {
    // A long phase delay so the overlap of parallel phases does not depend on process start-up jitter.
    const r = await sluice(['run', pipelineFile], 1000);
    expectOk(r);
    expect(r.stdout).toMatch(/run \S+ succeeded/);
    expect(executions()).toEqual(Object.fromEntries(PHASES.map((p) => [p, 1])));
    expect(existsSync(path.join(example, 'work', 'entropy.json'))).toBe(true);

    // Every phase started after each phase it needs had ended.
    const { pipeline } = await runCliJson<{ pipeline: { steps: Array<{ name: string; needs: string[] }> } }>(['validate', pipelineFile]);
    for (const step of pipeline.steps) {
      const [[start]] = spans(step.name) as [[number, number]];
      for (const need of step.needs) {
        const [[, end]] = spans(need) as [[number, number]];
        expect(start, `${step.name} started before ${need} ended`).toBeGreaterThanOrEqual(end);
      }
    }

    // temporal, statistics and relationships only need typing: they ran at the same time (max_parallel: 4).
    const parallel = ['temporal', 'statistics', 'relationships'].map((p) => spans(p)[0]!);
    const latestStart = Math.max(...parallel.map(([s]) => s));
    const earliestEnd = Math.min(...parallel.map(([, e]) => e));
    expect(latestStart, `spans ${JSON.stringify(parallel)} do not share an instant`).toBeLessThan(earliestEnd);

    const status = await runCliJson(['status', runIdOf(r.stdout), '--store', `sqlite:${store}`]);
    expect(status.status).toBe('succeeded');
    expect(Object.values(stepStatuses(status))).toEqual(PHASES.map(() => 'succeeded'));
  }, 180_000);

  it('a re-run executes nothing: every phase is cached', async () => {
    expectOk(await sluice(['run', pipelineFile]));
    const before = executions();
    expect(Object.values(before).every((n) => n === 1)).toBe(true);

    const again = await sluice(['run', pipelineFile]);
    expectOk(again);
    expect(executions()).toEqual(before);
    expect(again.stdout).not.toContain('step.succeeded');
    expect(again.stdout.match(/step\.cached/g)).toHaveLength(PHASES.length);

    const status = await runCliJson(['status', runIdOf(again.stdout), '--store', `sqlite:${store}`]);
    expect(status.status).toBe('succeeded');
    expect(stepStatuses(status)).toEqual(Object.fromEntries(PHASES.map((p) => [p, 'cached'])));
    // Both runs are listed, the cached one first.
    const runs = await runCliJson<Array<{ id: string; status: string }>>(['runs', '--store', `sqlite:${store}`]);
    expect(runs.map((x) => x.status)).toEqual(['succeeded', 'succeeded']);
    expect(runs[0]!.id).toBe(status.id);
  }, 180_000);

  it('an edited phase script or a deleted output re-runs exactly the phases it affects; --explain says why', async () => {
    expectOk(await sluice(['run', pipelineFile]));
    const once = Object.fromEntries(PHASES.map((p) => [p, 1]));
    expect(executions()).toEqual(once);

    // A comment in typing's script (its output stays the same) and statistics' output file gone.
    appendFileSync(path.join(example, 'phases', 'typing.mjs'), '// reviewed\n');
    rmSync(path.join(example, 'work', 'statistics.json'));
    const second = await sluice(['run', pipelineFile, '--explain']);
    expectOk(second);
    expect(executions()).toEqual({ ...once, typing: 2, statistics: 2 });
    expect(existsSync(path.join(example, 'work', 'statistics.json'))).toBe(true);
    expect(second.stdout).toMatch(/^ {2}typing +succeeded +ran: input files changed \(phases\/typing\.mjs\)$/m);
    expect(second.stdout).toMatch(/^ {2}statistics +succeeded +ran: declared output missing \(work\/statistics\.json\)$/m);
    expect(second.stdout).toMatch(/^ {2}entropy +cached +cached: nothing changed since run \S+$/m);

    // temporal now prints one more line: its output changes, so the phases that read it run again too.
    appendFileSync(path.join(example, 'phases', 'temporal.mjs'), "console.log('temporal: checked');\n");
    const third = await sluice(['run', pipelineFile, '--explain']);
    expectOk(third);
    expect(executions()).toEqual({ ...once, typing: 2, statistics: 2, temporal: 2, slicing: 2, business_cycles: 2 });
    expect(third.stdout).toMatch(/^ {2}slicing +succeeded +ran: upstream outputs changed$/m);
    const status = await runCliJson(['status', runIdOf(third.stdout), '--store', `sqlite:${store}`]);
    const rerun = ['temporal', 'slicing', 'business_cycles'];
    expect(stepStatuses(status)).toEqual(Object.fromEntries(PHASES.map((p) => [p, rerun.includes(p) ? 'succeeded' : 'cached'])));
  }, 180_000);

  it('--steps semantic runs semantic and its dependencies only', async () => {
    const r = await sluice(['run', pipelineFile, '--steps', 'semantic']);
    expectOk(r);
    const ran = ['import', 'typing', 'statistics', 'semantic'];
    expect(executions()).toEqual(Object.fromEntries(PHASES.map((p) => [p, ran.includes(p) ? 1 : 0])));
    const status = await runCliJson(['status', runIdOf(r.stdout), '--store', `sqlite:${store}`]);
    expect(status.status).toBe('succeeded');
    expect(stepStatuses(status)).toEqual(Object.fromEntries(PHASES.map((p) => [p, ran.includes(p) ? 'succeeded' : 'skipped'])));
  });

  it.each(['ascii', 'mermaid', 'dot'])('graph --format %s draws all 13 phases and every edge', async (format) => {
    const r = await sluice(['graph', pipelineFile, '--format', format]);
    expectOk(r);
    for (const phase of PHASES) expect(r.stdout).toContain(phase);
    const { pipeline } = await runCliJson<{ pipeline: { steps: Array<{ name: string; needs: string[] }> } }>(['validate', pipelineFile]);
    const edges = pipeline.steps.reduce((n, s) => n + s.needs.length, 0);
    expect(edges).toBe(16);
    if (format === 'mermaid') {
      expect(r.stdout).toMatch(/^flowchart TD$/m);
      expect(r.stdout.match(/^ {2}s\d+ --> s\d+$/gm)).toHaveLength(edges);
    } else if (format === 'dot') {
      expect(r.stdout).toMatch(/^digraph "script-dag" \{$/m);
      expect(r.stdout.match(/^ {2}"[a-z_]+" -> "[a-z_]+";$/gm)).toHaveLength(edges);
      expect(r.stdout).toContain('"typing" -> "statistics";');
    } else {
      expect(r.stdout).toContain('script-dag (13 steps)');
      expect(r.stdout).toMatch(/^ {2}entropy +command {2}<- statistical_quality, semantic, relationships, correlations$/m);
    }
  });

  it('validate accepts the example', async () => {
    const r = await sluice(['validate', pipelineFile]);
    expectOk(r);
    expect(r.stdout).toContain('pipeline script-dag is valid (13 steps)');
    expect(r.stderr).toBe('');
  });
});
