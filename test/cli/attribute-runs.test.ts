/**
 * `sluice dataset import` and `sluice dataset run` together, in-process, with an `llm` attribute pipeline
 * against the local OpenAI-compatible test server: a record the import queued a run for is computed once,
 * the evals run again after the dataset run, an aborted run keeps its stats, and eight records in flight at
 * once do not pile listeners onto one abort signal.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { datasetRunCommand } from '../../src/cli/commands/attributes.js';
import { datasetCreateCommand, datasetImportCommand } from '../../src/cli/commands/dataset.js';
import { openEngine } from '../../src/cli/context.js';
import { errorReply, startChatServer, type ChatServer } from '../support/chat-server.js';
import { storeTargets } from '../support/store-targets.js';

vi.setConfig({ testTimeout: 60_000 });

/** An `llm` attribute pipeline: the size of a gadget from its title. */
function sizePipeline(baseUrl: string, extra = ''): string {
  return `name: gadget-size
dataset: gadgets
target: size
source: { fields: [title] }
batch_size: 6
concurrency: 8
${extra}
steps:
  ask:
    uses: llm
    retry: { attempts: 1 }
    with:
      base_url: ${baseUrl}
      model: test-model
      prompt: "Title: \${{ input.title }}. Small or large?"
      schema:
        type: object
        required: [value]
        properties: { value: { enum: [small, large] }, confidence: { type: number } }
`;
}

const gadgets = (n: number, title = (i: number) => `gadget ${i}${i % 2 ? ' large' : ''}`) =>
  Array.from({ length: n }, (_, i) => ({ id: `g${String(i).padStart(2, '0')}`, title: title(i) }));
const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
const titleOf = (body: { messages: Array<{ content: string }> }) => /Title: (.*)\. Small/.exec(body.messages.at(-1)!.content)?.[1] ?? '';

for (const target of storeTargets()) {
  describe(`attribute runs from the CLI on ${target.name}`, () => {
    let dir: string;
    let opts: { store: string };
    let out: string[];
    let chat: ChatServer;
    let warnings: string[];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);

    beforeAll(async () => {
      chat = await startChatServer();
    });
    afterAll(async () => {
      await chat.close();
      await target.cleanup();
    });
    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-attr-cli-'));
      opts = { store: await target.url(dir) };
      out = [];
      warnings = [];
      chat.requests.length = 0;
      // Several answers in flight at once: the eight lanes of a batch overlap.
      chat.respond((body) => {
        const title = titleOf(body);
        if (title.includes('broken')) return errorReply(400, `cannot size ${title}`);
        return { content: JSON.stringify({ value: title.includes('large') ? 'large' : 'small', confidence: 0.8 }), delayMs: 20 };
      });
      vi.stubEnv('SLUICE_SECRET_OPENAI_API_KEY', 'test-key');
      process.on('warning', onWarning);
      vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (out.push(String(chunk)), true));
      vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    });
    afterEach(() => {
      process.off('warning', onWarning);
      vi.restoreAllMocks();
      vi.unstubAllEnvs();
      rmSync(dir, { recursive: true, force: true });
    });

    it('computes an imported edit once, runs the evals again, and keeps one abort listener per record', async () => {
      writeFileSync(join(dir, 'size.yaml'), sizePipeline(chat.baseUrl));
      writeFileSync(join(dir, 'in.jsonl'), jsonl(gadgets(16)));
      expect(await datasetCreateCommand('gadgets', opts)).toBe(0);
      expect(await datasetImportCommand('gadgets', join(dir, 'in.jsonl'), opts)).toBe(0);
      out.length = 0;
      expect(await datasetRunCommand('gadgets', [join(dir, 'size.yaml')], { ...opts, json: true })).toBe(0);
      expect(JSON.parse(out.join(''))).toMatchObject([{ pipeline: 'gadget-size', status: 'succeeded', processed: 16, skipped: 0 }]);
      expect(chat.requests).toHaveLength(16);

      const engine = await openEngine(opts);
      try {
        await engine.store.replaceEvals('gadget-size', [{ input: { title: 'pocket gadget' }, desiredOutput: 'small' }], 1);
      } finally {
        await engine.close();
      }

      // One record edited: the import queues a run for it (no worker in that process).
      writeFileSync(join(dir, 'edit.jsonl'), jsonl([{ id: 'g02', title: 'gadget 2 now large' }]));
      out.length = 0;
      expect(await datasetImportCommand('gadgets', join(dir, 'edit.jsonl'), opts)).toBe(0);
      expect(out.join('')).toContain('queued runs of gadget-size');

      out.length = 0;
      expect(await datasetRunCommand('gadgets', [], opts)).toBe(0);
      const text = out.join('');
      expect(text).toMatch(/gadget-size +succeeded +1 +0 +15 /);
      // The model saw the edited record once (the queued run and the dataset run did not both compute it)...
      expect(chat.requests.filter((r) => titleOf(r.body) === 'gadget 2 now large')).toHaveLength(1);
      // ... and the evals ran again after the run.
      expect(text).toContain('evals of gadget-size: 1 passed, 0 failed');
      expect(chat.requests.filter((r) => titleOf(r.body) === 'pocket gadget')).toHaveLength(1);

      const check = await openEngine(opts);
      try {
        const runs = await check.store.listRuns({ pipeline: 'gadget-size' });
        const triggered = runs.filter((r) => (r.input as { trigger?: string }).trigger === 'record');
        expect(triggered.map((r) => r.status)).toEqual(['cancelled']);
        expect((await check.store.getAttributeValues('gadgets', 'g02'))['size']).toMatchObject({ value: 'large' });
        expect((await check.store.listEvals('gadget-size'))[0]).toMatchObject({ passed: true });
      } finally {
        await check.close();
      }
      expect(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning'))).toEqual([]);
    });

    it('an aborted run keeps its stats and the values of its failing batch that succeeded', async () => {
      writeFileSync(join(dir, 'size.yaml'), sizePipeline(chat.baseUrl, 'on_record_failure: abort'));
      // Batches of 6: g08 fails in the second batch; the third is never started.
      writeFileSync(join(dir, 'in.jsonl'), jsonl(gadgets(16, (i) => (i === 8 ? 'broken gadget' : `gadget ${i}`))));
      expect(await datasetCreateCommand('gadgets', opts)).toBe(0);
      expect(await datasetImportCommand('gadgets', join(dir, 'in.jsonl'), opts)).toBe(0);
      out.length = 0;
      expect(await datasetRunCommand('gadgets', [join(dir, 'size.yaml')], opts)).toBe(1);
      const text = out.join('');
      expect(text).toMatch(/gadget-size +failed +11 +1 +0 +\d+\/\d+ /);
      expect(text).toContain('record "g08" failed in step ask');
      const engine = await openEngine(opts);
      try {
        const stored = await Promise.all(gadgets(16).map(async (g) => ((await engine.store.getAttributeValues('gadgets', g.id))['size'] ? g.id : null)));
        // The first batch (g00-g05) and the rest of the failing one (g06, g07, g09-g11) are kept; g12-g15 never ran.
        expect(stored.filter(Boolean)).toEqual(['g00', 'g01', 'g02', 'g03', 'g04', 'g05', 'g06', 'g07', 'g09', 'g10', 'g11']);
        const [run] = await engine.store.listRuns({ pipeline: 'gadget-size' });
        const [step] = await engine.store.listSteps(run!.id);
        expect(step!.error).toMatchObject({ code: 'RECORD_FAILED', details: { record: 'g08', stats: { processed: 11, failed: 1, batches: 2, tokens_in: 11 * 12 } } });
      } finally {
        await engine.close();
      }
      expect(chat.requests).toHaveLength(12);
    });
  });
}
