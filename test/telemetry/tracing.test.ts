/**
 * OpenTelemetry tracing, turned on by OTEL_EXPORTER_OTLP_ENDPOINT: spans are exported over OTLP/HTTP to a real
 * receiver started here (a node:http server decoding the JSON export). A run started over HTTP with a traceparent
 * is one trace under the caller's span: a span for the run, one per step attempt under it, with their attributes;
 * the attempt's traceparent reaches `http` and `llm` requests and `command` processes. A run continued by another
 * engine (another worker) joins the same trace.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { createServer } from '../../src/server/create-server.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { startChatServer, type ChatServer } from '../support/chat-server.js';
import { startProbeServer, type ProbeServer } from '../support/probe-server.js';

interface ExportedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes: Record<string, unknown>;
  status?: { code?: number; message?: string };
}

/** OTLP JSON ids are hex (the spec's JSON mapping); attribute values are `{ stringValue | intValue | ... }`. */
function decodeSpan(raw: any): ExportedSpan {
  const attributes: Record<string, unknown> = {};
  for (const a of raw.attributes ?? []) {
    const v = a.value ?? {};
    attributes[a.key] = v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.doubleValue ?? v.boolValue;
  }
  return { traceId: raw.traceId, spanId: raw.spanId, ...(raw.parentSpanId ? { parentSpanId: raw.parentSpanId } : {}), name: raw.name, attributes, status: raw.status };
}

let receiver: Server;
const spans: ExportedSpan[] = [];
let chat: ChatServer;
let probe: ProbeServer;
const dirs: string[] = [];
const saved = { ...process.env };

beforeAll(async () => {
  receiver = createHttpServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (req.url === '/v1/traces') {
        const parsed = JSON.parse(body);
        for (const rs of parsed.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) spans.push(decodeSpan(s));
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  process.env['OTEL_BSP_SCHEDULE_DELAY'] = '50';
  chat = await startChatServer();
  probe = await startProbeServer();
});

afterAll(async () => {
  process.env = saved;
  await new Promise((resolve) => receiver.close(resolve));
  await chat.close();
  await probe.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function openEngine(path: string): Promise<Engine> {
  const store = new SqliteStore({ path });
  await store.migrate();
  return new Engine({ store, steps: builtinStepTypes(), secrets: { OPENAI_API_KEY: 'test-key' }, onError: () => {}, artifactsDir: join(path, '..', 'artifacts') });
}

function tempDb(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-tracing-'));
  dirs.push(dir);
  return join(dir, 's.db');
}

const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';

describe('tracing over OTLP/HTTP', () => {
  it('exports a run started with a traceparent as one trace: run span, attempt spans, attributes, propagation', async () => {
    const engine = await openEngine(tempDb());
    const steps = {
      fetch: { uses: 'http', with: { url: `${probe.base}/hello` } },
      ask: { uses: 'llm', needs: ['fetch'], with: { model: 'gpt-test', prompt: 'hi', base_url: chat.baseUrl } },
      shell: { uses: 'command', needs: ['ask'], retry: { attempts: 2, backoff: 'fixed', delay: '1ms' }, with: { run: 'printf %s "$TRACEPARENT"; [ "$SLUICE_ATTEMPT" != 1 ]' } },
    };
    await engine.registerPipeline(normalizePipeline({ name: 'traced', steps }, { stepTypes: engine.steps }));
    chat.reply({ content: 'hello', usage: { prompt_tokens: 12, completion_tokens: 5 } });
    engine.startWorker({ concurrency: 4 });
    const app = await createServer({ engine, webRoot: false });
    const started = await app.inject({ method: 'POST', url: '/api/pipelines/traced/runs', headers: { traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01`, 'content-type': 'application/json' }, payload: {} });
    expect(started.statusCode).toBe(201);
    const runId = (started.json() as { id: string }).id;
    const run = await engine.waitForRun(runId);
    expect(run.status).toBe('succeeded');
    const shellOutput = (await engine.store.listSteps(runId)).find((s) => s.name === 'shell')?.output as { stdout: string };
    await app.close();
    await engine.close(); // exports what is buffered

    const ofRun = spans.filter((s) => s.attributes['sluice.run.id'] === runId);
    const runSpan = ofRun.find((s) => s.name === 'run traced');
    expect(runSpan).toMatchObject({ traceId: CALLER_TRACE, parentSpanId: CALLER_SPAN, attributes: { 'sluice.pipeline': 'traced', 'sluice.pipeline.version': 1, 'sluice.run.status': 'succeeded' } });
    const attemptSpans = ofRun.filter((s) => s.name.startsWith('step '));
    expect(attemptSpans.map((s) => `${s.attributes['sluice.step']}#${s.attributes['sluice.attempt']}:${s.attributes['sluice.step.status']}`).sort()).toEqual([
      'ask#1:succeeded',
      'fetch#1:succeeded',
      'shell#1:failed',
      'shell#2:succeeded',
    ]);
    for (const s of attemptSpans) expect(s).toMatchObject({ traceId: CALLER_TRACE, parentSpanId: runSpan!.spanId, attributes: { 'sluice.pipeline': 'traced', 'sluice.pipeline.version': 1, 'sluice.run.id': runId } });
    const failed = attemptSpans.find((s) => s.attributes['sluice.step.status'] === 'failed');
    expect(failed?.attributes['sluice.error.code']).toBe('COMMAND_FAILED');
    expect(failed?.status?.code).toBe(2); // ERROR
    const ask = attemptSpans.find((s) => s.attributes['sluice.step'] === 'ask');
    expect(ask?.attributes).toMatchObject({ 'gen_ai.request.model': 'gpt-test', 'gen_ai.usage.input_tokens': 12, 'gen_ai.usage.output_tokens': 5 });

    // Each request and process got its own attempt's span as parent.
    const spanOf = (step: string, attempt = 1) => attemptSpans.find((s) => s.attributes['sluice.step'] === step && s.attributes['sluice.attempt'] === attempt)!;
    expect(probe.requests.at(-1)?.headers['traceparent']).toBe(`00-${CALLER_TRACE}-${spanOf('fetch').spanId}-01`);
    expect(chat.requests.at(-1)?.headers['traceparent']).toBe(`00-${CALLER_TRACE}-${spanOf('ask').spanId}-01`);
    expect(shellOutput.stdout).toBe(`00-${CALLER_TRACE}-${spanOf('shell', 2).spanId}-01`);
  }, 60_000);

  it('puts the spans of a run continued by another engine on the same store in the same trace', async () => {
    const db = tempDb();
    const first = await openEngine(db);
    const steps = {
      before: { uses: 'command', with: { run: 'true' } },
      ok: { uses: 'approval', needs: ['before'], with: { message: 'go on?' } },
      after: { uses: 'command', needs: ['ok'], with: { run: 'true' } },
    };
    await first.registerPipeline(normalizePipeline({ name: 'handover', steps }, { stepTypes: first.steps }));
    first.startWorker();
    const { run } = await first.startRun('handover');
    expect((await first.waitForRun(run.id, { untilSettled: true })).status).toBe('waiting');
    await first.close();

    // Another process (here: another engine with its own tracer) takes the run over after the approval.
    const second = await openEngine(db);
    second.startWorker();
    await second.decide(run.id, 'ok', { decision: 'approve' });
    expect((await second.waitForRun(run.id)).status).toBe('succeeded');
    await second.close();

    const ofRun = spans.filter((s) => s.attributes['sluice.run.id'] === run.id);
    const runSpan = ofRun.find((s) => s.name === 'run handover')!;
    expect(runSpan).toBeDefined();
    expect(runSpan.parentSpanId).toBeUndefined();
    const byStep = Object.fromEntries(ofRun.filter((s) => s.name.startsWith('step ')).map((s) => [s.attributes['sluice.step'], s]));
    expect(Object.keys(byStep).sort()).toEqual(['after', 'before', 'ok']);
    for (const s of Object.values(byStep)) expect(s).toMatchObject({ traceId: runSpan.traceId, parentSpanId: runSpan.spanId });
  }, 60_000);

  it('puts a child run started by a pipeline step in its parent\'s trace, under the spawning attempt', async () => {
    const engine = await openEngine(tempDb());
    await engine.registerPipeline(normalizePipeline({ name: 'child', steps: { inner: { uses: 'command', with: { run: 'true' } } } }, { stepTypes: engine.steps }));
    await engine.registerPipeline(normalizePipeline({ name: 'parent', steps: { call: { uses: 'pipeline', with: { pipeline: 'child' } } } }, { stepTypes: engine.steps }));
    engine.startWorker();
    const { run } = await engine.startRun('parent');
    expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
    const childId = ((await engine.store.listSteps(run.id))[0]?.output as { child_run: string }).child_run;
    await engine.close();

    const parentRun = spans.find((s) => s.name === 'run parent' && s.attributes['sluice.run.id'] === run.id)!;
    const call = spans.find((s) => s.attributes['sluice.run.id'] === run.id && s.attributes['sluice.step'] === 'call')!;
    const childRun = spans.find((s) => s.name === 'run child' && s.attributes['sluice.run.id'] === childId)!;
    const inner = spans.find((s) => s.attributes['sluice.run.id'] === childId && s.attributes['sluice.step'] === 'inner')!;
    expect(call).toMatchObject({ traceId: parentRun.traceId, parentSpanId: parentRun.spanId });
    expect(childRun).toMatchObject({ traceId: parentRun.traceId, parentSpanId: call.spanId });
    expect(inner).toMatchObject({ traceId: parentRun.traceId, parentSpanId: childRun.spanId });
  }, 60_000);
});
