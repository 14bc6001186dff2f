import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { captureOutput } from '../support/capture-output.js';
import { emitCommand } from '../../src/cli/commands/emit.js';
import { openEngine } from '../../src/cli/context.js';
import { normalizePipeline, type Engine, type PipelineSpec } from '../../src/index.js';
import { startHarness, type Harness } from '../server/server-harness.js';

/** Events fired from the library (`engine.emit`), the CLI (`sluice emit`) and HTTP (`POST /api/events/:name`). */

const listening = (name: string, event: string, extra: Partial<PipelineSpec> = {}): PipelineSpec => ({
  name,
  triggers: [{ event }],
  steps: { echo: { uses: 'command', with: { run: 'true' } } },
  ...extra,
});

async function registerAll(engine: Engine): Promise<void> {
  for (const spec of [
    listening('on-created', 'task.created'),
    listening('also-on-created', 'task.created'),
    listening('disabled-on-created', 'task.created', { disabled: true }),
    listening('on-other', 'task.deleted'),
  ]) {
    await engine.registerPipeline(normalizePipeline(spec, { stepTypes: engine.steps }));
  }
}

describe('events', () => {
  let dir: string;
  let store: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-emit-'));
    store = `sqlite:${join(dir, 's.db')}`;
  });
  afterEach(() => {
    vi.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  const capture = captureOutput;

  it('engine.emit starts every enabled pipeline whose trigger names the event, with the payload as input', async () => {
    const engine = await openEngine({ store });
    try {
      await engine.store.migrate();
      await registerAll(engine);
      const emitted = await engine.emit('task.created', { title: 'x' });
      expect(emitted.event).toBe('task.created');
      expect(emitted.runs.map((r) => r.run.pipeline).sort()).toEqual(['also-on-created', 'on-created']);
      expect(emitted.runs.every((r) => r.created && (r.run.input as { title: string }).title === 'x')).toBe(true);
      expect((await engine.emit('nobody.listens')).runs).toEqual([]);
      // The same key again starts nothing new.
      const first = await engine.emit('task.deleted', null, { idempotencyKey: 'k1' });
      const again = await engine.emit('task.deleted', null, { idempotencyKey: 'k1' });
      expect(again.runs.map((r) => [r.run.id, r.created])).toEqual([[first.runs[0]!.run.id, false]]);
      await expect(engine.emit('')).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    } finally {
      await engine.close();
    }
  });

  it('sluice emit NAME --data prints the runs it started; --json for machines; bad --data is INPUT_INVALID', async () => {
    const engine = await openEngine({ store });
    await engine.store.migrate();
    await registerAll(engine);
    await engine.close();

    const file = join(dir, 'payload.json');
    writeFileSync(file, '{"title":"from a file"}');
    const text = await capture(() => emitCommand('task.created', { store, data: `@${file}` }));
    expect(text.code).toBe(0);
    const lines = text.out.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines.map((l) => l.split(/\s+/)[1]).sort()).toEqual(['also-on-created', 'on-created']);

    const json = await capture(() => emitCommand('task.deleted', { store, json: true, data: '{"n":1}' }));
    expect(json.code).toBe(0);
    const body = JSON.parse(json.out) as { event: string; runs: Array<{ id: string; pipeline: string; created: boolean }> };
    expect(body).toMatchObject({ event: 'task.deleted', runs: [{ pipeline: 'on-other', created: true }] });

    const none = await capture(() => emitCommand('nobody.listens', { store }));
    expect(none.code).toBe(0);
    expect(none.out).toContain('nothing started');

    await expect(emitCommand('task.created', { store, data: '{oops' })).rejects.toMatchObject({ code: 'INPUT_INVALID' });

    const check = await openEngine({ store });
    try {
      const runs = await check.store.listRuns({ limit: 10 });
      expect(runs).toHaveLength(3);
      const fromFile = runs.find((r) => r.pipeline === 'on-created')!;
      expect(fromFile.input).toEqual({ title: 'from a file' });
      expect(runs.find((r) => r.id === body.runs[0]!.id)!.input).toEqual({ n: 1 });
    } finally {
      await check.close();
    }
  });

  describe('over HTTP', () => {
    let h: Harness;
    beforeEach(async () => {
      h = await startHarness({}, { worker: false });
      await registerAll(h.engine);
    });
    afterEach(async () => h.close());

    it('POST /api/events/:name starts what engine.emit starts, idempotent with idempotency_key', async () => {
      const res = await h.app.inject({ method: 'POST', url: '/api/events/task.created?idempotency_key=e1', payload: { title: 'http' } });
      expect(res.statusCode).toBe(201);
      expect(res.json().runs.map((r: { pipeline: string }) => r.pipeline).sort()).toEqual(['also-on-created', 'on-created']);
      const again = await h.app.inject({ method: 'POST', url: '/api/events/task.created?idempotency_key=e1', payload: { title: 'http' } });
      expect(again.statusCode).toBe(200);
      expect(again.json().runs.map((r: { id: string }) => r.id).sort()).toEqual(res.json().runs.map((r: { id: string }) => r.id).sort());
      // The library's emit with the same key returns the same runs: the route is that call.
      const lib = await h.engine.emit('task.created', { title: 'http' }, { idempotencyKey: 'e1' });
      expect(lib.runs.map((r) => r.run.id).sort()).toEqual(res.json().runs.map((r: { id: string }) => r.id).sort());
    });
  });
});
