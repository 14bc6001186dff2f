/**
 * The step cache sees code and files, on every backend: a `function` step's module (and its local imports)
 * and a registered function's body join the key; `cache.inputs` files, `cache.key` values and declared
 * `cache.outputs` decide reuse; each settled step stores why it ran or was cached.
 */
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { PipelineSpec } from '../../src/core/model.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import type { StepFunction } from '../../src/steps/function/function-step.js';
import type { StepRecord, Store } from '../../src/store/store.js';
import { backends } from '../support/backends.js';

for (const backend of backends()) {
  describe(`cache keys on ${backend.name}`, () => {
    const engines: Engine[] = [];
    const dirs: string[] = [];
    afterEach(async () => {
      for (const e of engines.splice(0)) await e.close();
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    });
    afterAll(() => backend.cleanup());

    /** A project folder with its pipeline file; steps resolve relative paths against it. */
    function project(files: Record<string, string>): string {
      const dir = mkdtempSync(join(tmpdir(), 'sluice-cache-keys-'));
      dirs.push(dir);
      for (const [name, text] of Object.entries(files)) write(dir, name, text);
      return dir;
    }

    function write(dir: string, name: string, text: string): void {
      writeFileSync(join(dir, name), text);
    }

    /** An engine over `store` (a fresh one by default) with `spec` registered from `dir/pipeline.yaml`. */
    async function engineFor(dir: string, spec: PipelineSpec, opts: { store?: Store; functions?: Record<string, StepFunction>; secrets?: Record<string, string> } = {}) {
      const store = opts.store ?? (await backend.create());
      const steps = builtinStepTypes({ functions: opts.functions ?? {} });
      const engine = new Engine({ store, steps, onError: (e) => console.error(e), artifactsDir: join(dir, '.artifacts'), secrets: opts.secrets ?? {} });
      engines.push(engine);
      await engine.registerPipeline(normalizePipeline(spec, { stepTypes: steps }), { text: JSON.stringify(spec), file: join(dir, 'pipeline.yaml') });
      engine.startWorker({ pollMs: 20, reapMs: 50 });
      return { engine, store };
    }

    async function runOnce(engine: Engine, name: string, options: { force?: boolean; input?: unknown } = {}): Promise<StepRecord[]> {
      const { run } = await engine.startRun(name, options);
      const done = await engine.waitForRun(run.id);
      expect(done.status, JSON.stringify((await engine.store.listSteps(run.id)).map((s) => s.error))).toBe('succeeded');
      return engine.store.listSteps(run.id);
    }

    const status = (steps: StepRecord[]) => Object.fromEntries(steps.map((s) => [s.name, s.status]));
    const explain = (steps: StepRecord[], name: string) => steps.find((s) => s.name === name)?.cacheExplain;

    it('runs a function step again when its module file changes, and says the code changed', async () => {
      const dir = project({ 'fn.mjs': 'export const go = () => ({ v: 1 });\n' });
      const { engine } = await engineFor(dir, { name: 'mod', steps: { a: { uses: 'function', with: { module: './fn.mjs', export: 'go' } } } });
      const first = await runOnce(engine, 'mod');
      expect(explain(first, 'a')).toEqual({ decision: 'ran', reason: 'first_run' });
      const second = await runOnce(engine, 'mod');
      expect(status(second)).toEqual({ a: 'cached' });
      expect(explain(second, 'a')).toMatchObject({ decision: 'cached', reason: 'unchanged', run_id: first[0]!.runId });
      write(dir, 'fn.mjs', 'export const go = () => ({ v: 2 });\n');
      const third = await runOnce(engine, 'mod');
      expect(status(third)).toEqual({ a: 'succeeded' });
      // The edited module is what runs, in the same process.
      expect(third[0]!.output).toEqual({ v: 2 });
      expect(explain(third, 'a')).toMatchObject({ decision: 'ran', reason: 'changed', changed: ['code'] });
    });

    it('runs a function step again when a local module it imports changes', async () => {
      const dir = project({ 'fn.ts': "import { factor } from './lib/factor.js';\nexport const go = () => ({ v: factor });\n" });
      const lib = join(dir, 'lib');
      mkdirSync(lib);
      write(lib, 'factor.ts', 'export const factor: number = 2;\n');
      const { engine } = await engineFor(dir, { name: 'imp', steps: { a: { uses: 'function', with: { module: 'fn.ts', export: 'go' } } } });
      await runOnce(engine, 'imp');
      expect(status(await runOnce(engine, 'imp'))).toEqual({ a: 'cached' });
      appendFileSync(join(lib, 'factor.ts'), '// reviewed\n');
      const after = await runOnce(engine, 'imp');
      expect(status(after)).toEqual({ a: 'succeeded' });
      expect(explain(after, 'a')).toMatchObject({ reason: 'changed', changed: ['code'] });
    });

    it('runs a registered function again when its body changes (a new build of the same name)', async () => {
      const dir = project({});
      const spec: PipelineSpec = { name: 'reg', steps: { a: { uses: 'function', with: { name: 'score' } } } };
      const before = await engineFor(dir, spec, { functions: { score: () => ({ score: 1 }) } });
      await runOnce(before.engine, 'reg');
      expect(status(await runOnce(before.engine, 'reg'))).toEqual({ a: 'cached' });
      // Another engine (a new build of the program) on the same store, the function's body edited.
      await before.engine.stopWorker();
      engines.splice(engines.indexOf(before.engine), 1);
      const after = await engineFor(dir, spec, { store: before.store, functions: { score: () => ({ score: 2 }) } });
      const steps = await runOnce(after.engine, 'reg');
      expect(status(steps)).toEqual({ a: 'succeeded' });
      expect(steps[0]!.output).toEqual({ score: 2 });
      expect(explain(steps, 'a')).toMatchObject({ reason: 'changed', changed: ['code'] });
    });

    it('runs a command again when a file of its cache.inputs glob changes, naming the file', async () => {
      const dir = project({ 'a.csv': '1,2\n', 'b.csv': '3,4\n', 'notes.txt': 'x' });
      const spec: PipelineSpec = {
        name: 'glob',
        steps: {
          load: { uses: 'command', with: { run: ['node', '-e', 'console.log(1)'] }, cache: { inputs: ['*.csv'] } },
          after: { uses: 'command', needs: ['load'], with: { run: ['node', '-e', 'console.log(2)'] } },
        },
      };
      const { engine } = await engineFor(dir, spec);
      await runOnce(engine, 'glob');
      write(dir, 'notes.txt', 'not an input');
      expect(status(await runOnce(engine, 'glob'))).toEqual({ load: 'cached', after: 'cached' });
      appendFileSync(join(dir, 'b.csv'), '5,6\n');
      const steps = await runOnce(engine, 'glob');
      // The output of load is the same, so its dependent is reused.
      expect(status(steps)).toEqual({ load: 'succeeded', after: 'cached' });
      expect(explain(steps, 'load')).toMatchObject({ reason: 'changed', changed: ['files'], files: { changed: ['b.csv'], added: [], removed: [] } });
    });

    it('covers the files a command line names when nothing is declared', async () => {
      const dir = project({ 'job.mjs': 'console.log("v1")\n', 'data.txt': 'a' });
      const { engine } = await engineFor(dir, { name: 'argv', steps: { job: { uses: 'command', with: { run: 'node job.mjs data.txt' } } } });
      await runOnce(engine, 'argv');
      expect(status(await runOnce(engine, 'argv'))).toEqual({ job: 'cached' });
      appendFileSync(join(dir, 'data.txt'), 'b');
      const steps = await runOnce(engine, 'argv');
      expect(status(steps)).toEqual({ job: 'succeeded' });
      expect(explain(steps, 'job')?.files).toEqual({ changed: ['data.txt'], added: [], removed: [] });
    });

    it('reuses a result only while its declared outputs exist (and, when asked, are unchanged)', async () => {
      const dir = project({});
      const make = ['node', '-e', "require('fs').writeFileSync('out.json', JSON.stringify({ n: 1 }))"];
      const spec: PipelineSpec = {
        name: 'outs',
        steps: {
          make: { uses: 'command', with: { run: make }, cache: { outputs: ['out.json'] } },
          strict: { uses: 'command', with: { run: ['node', '-e', "require('fs').writeFileSync('strict.txt', 'x')"] }, cache: { outputs: ['strict.txt'], outputs_unchanged: true } },
        },
      };
      const { engine } = await engineFor(dir, spec);
      await runOnce(engine, 'outs');
      expect(status(await runOnce(engine, 'outs'))).toEqual({ make: 'cached', strict: 'cached' });
      unlinkSync(join(dir, 'out.json'));
      writeFileSync(join(dir, 'strict.txt'), 'edited by hand');
      const steps = await runOnce(engine, 'outs');
      expect(status(steps)).toEqual({ make: 'succeeded', strict: 'succeeded' });
      expect(explain(steps, 'make')).toMatchObject({ decision: 'ran', reason: 'output_missing', outputs: ['out.json'] });
      expect(explain(steps, 'strict')).toMatchObject({ decision: 'ran', reason: 'output_changed', outputs: ['strict.txt'] });
      expect(status(await runOnce(engine, 'outs'))).toEqual({ make: 'cached', strict: 'cached' });
    });

    it('adds the value of cache.key to the key, and says when it changed or the run was forced', async () => {
      const dir = project({});
      // The model a secret names is not in `with`: only cache.key makes the cache see it.
      const spec: PipelineSpec = { name: 'keyed', steps: { a: { uses: 'function', with: { name: 'one' }, cache: { key: '${{ secrets.MODEL }}' } } } };
      const mini = await engineFor(dir, spec, { functions: { one: () => 1 }, secrets: { MODEL: 'mini' } });
      await runOnce(mini.engine, 'keyed');
      expect(status(await runOnce(mini.engine, 'keyed'))).toEqual({ a: 'cached' });
      await mini.engine.stopWorker();
      engines.splice(engines.indexOf(mini.engine), 1);
      const large = await engineFor(dir, spec, { store: mini.store, functions: { one: () => 1 }, secrets: { MODEL: 'large' } });
      const next = await runOnce(large.engine, 'keyed');
      expect(status(next)).toEqual({ a: 'succeeded' });
      expect(explain(next, 'a')).toMatchObject({ reason: 'changed', changed: ['key'] });
      expect(explain(await runOnce(large.engine, 'keyed', { force: true }), 'a')).toEqual({ decision: 'ran', reason: 'forced' });
    });
  });
}
