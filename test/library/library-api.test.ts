import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  builtinStepTypes,
  createEngine,
  FolderArtifactStore,
  isArtifactRef,
  loadPipelineFile,
  normalizePipeline,
  openStore,
  type ArtifactContent,
  type ArtifactRef,
  type PipelineSpec,
} from '../../src/index.js';

describe('library API', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  function tempDir(): string {
    const d = mkdtempSync(join(tmpdir(), 'sluice-lib-'));
    dirs.push(d);
    return d;
  }

  it('runs a pipeline written as a TypeScript object with functions registered in code', async () => {
    const dir = tempDir();
    const spec: PipelineSpec = {
      name: 'lib-object',
      input: { type: 'object', required: ['n'], properties: { n: { type: 'number' } } },
      steps: {
        double: { uses: 'function', with: { name: 'double', args: '${{ input.n }}' } },
        label: { uses: 'function', needs: ['double'], with: { name: 'label', args: '${{ steps.double.value }}' } },
      },
    };
    const steps = builtinStepTypes({
      functions: {
        double: (ctx) => ({ value: (ctx.args as number) * 2 }),
        label: (ctx) => `value is ${String(ctx.args)}`,
      },
    });
    const engine = createEngine({ store: await openStore(`sqlite:${join(dir, 's.db')}`), steps });
    try {
      const stored = await engine.registerPipeline(normalizePipeline(spec, { stepTypes: steps }));
      engine.startWorker();
      const { run } = await engine.startRun(stored, { input: { n: 21 } });
      const done = await engine.waitForRun(run.id);
      expect(done.status).toBe('succeeded');
      const outputs = await engine.store.getStepOutputs(run.id, ['double', 'label']);
      expect(outputs).toEqual({ double: { value: 42 }, label: 'value is 42' });
    } finally {
      await engine.close();
    }
  });

  it('loads a TypeScript pipeline module without a build step, and bumps the version only on change', async () => {
    const dir = tempDir();
    const file = join(dir, 'pipeline.ts');
    const write = (cmd: string) =>
      writeFileSync(file, `const pipeline = { name: 'lib-ts', steps: { hello: { uses: 'command', with: { run: ${JSON.stringify(cmd)} } } } };\nexport default pipeline;\n`);
    write('echo hello');
    const engine = createEngine({ store: await openStore(`sqlite:${join(dir, 's.db')}`) });
    try {
      const first = await loadPipelineFile(file, engine.steps);
      const v1 = await engine.registerPipeline(first.pipeline, { text: first.source, file });
      const again = await engine.registerPipeline((await loadPipelineFile(file, engine.steps)).pipeline, { file });
      write('echo changed');
      const v2 = await engine.registerPipeline((await loadPipelineFile(file, engine.steps)).pipeline, { file });
      expect([v1.version, again.version, v2.version]).toEqual([1, 1, 2]);
      engine.startWorker();
      const { run } = await engine.startRun('lib-ts');
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      expect((await engine.store.listLogs(run.id, 'hello')).map((l) => l.line)).toEqual(['changed']);
    } finally {
      await engine.close();
    }
  });

  it('keeps large outputs and ctx.artifacts in an artifact store the caller supplies', async () => {
    const dir = tempDir();
    // A user's own store: here a folder that also counts what goes through it.
    class CountingStore extends FolderArtifactStore {
      puts = 0;
      reads = 0;
      override put(content: ArtifactContent, contentType?: string): Promise<ArtifactRef> {
        this.puts += 1;
        return super.put(content, contentType);
      }
      override get(ref: ArtifactRef | string): Promise<Buffer> {
        this.reads += 1;
        return super.get(ref);
      }
    }
    const artifacts = new CountingStore(join(dir, 'mine'));
    const steps = builtinStepTypes({
      functions: {
        big: () => ({ text: 'z'.repeat(300 * 1024) }),
        blob: async (ctx) => ({ ref: await ctx.artifacts.put(Buffer.from('raw bytes')) }),
        read: async (ctx) => ({
          length: (ctx.steps['big'] as { text: string }).text.length,
          raw: (await ctx.artifacts.get((ctx.steps['blob'] as { ref: ArtifactRef }).ref)).toString(),
        }),
      },
    });
    const engine = createEngine({ store: await openStore(`sqlite:${join(dir, 's.db')}`), steps, artifacts });
    try {
      expect(engine.artifacts).toBe(artifacts);
      const spec: PipelineSpec = {
        name: 'lib-artifacts',
        steps: {
          big: { uses: 'function', with: { name: 'big' } },
          blob: { uses: 'function', with: { name: 'blob' } },
          read: { uses: 'function', needs: ['big', 'blob'], with: { name: 'read' } },
        },
      };
      const stored = await engine.registerPipeline(normalizePipeline(spec, { stepTypes: steps }));
      engine.startWorker();
      const { run } = await engine.startRun(stored);
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      const outputs = await engine.store.getStepOutputs(run.id, ['big', 'read']);
      expect(isArtifactRef(outputs['big'])).toBe(true);
      expect(outputs['read']).toEqual({ length: 300 * 1024, raw: 'raw bytes' });
      expect(artifacts.puts).toBe(2);
      expect(artifacts.reads).toBeGreaterThanOrEqual(2);
    } finally {
      await engine.close();
    }
  });
});
