/**
 * Values from outside (run inputs, events, upstream outputs, dataset records) templated into a `command`'s shell
 * string stay one word of data, and templated into an `http` URL or header stay one component or one value:
 * none of the usual shell or HTTP injections runs a command or reaches the other end as anything but the
 * literal value.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { createServer } from '../../src/server/create-server.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { startProbeServer, type ProbeServer } from '../support/probe-server.js';
import { attributePipelines } from '../../src/attributes/extension.js';

let dir: string;
let marker: string;
let engine: Engine;
let app: FastifyInstance;
let probe: ProbeServer;

/** Each tries to make the shell run `touch MARKER`; the last one names a variable of the worker. */
function payloads(): string[] {
  return [
    `a; touch ${marker}`,
    `a && touch ${marker}`,
    `a | touch ${marker}`,
    `\`touch ${marker}\``,
    `$(touch ${marker})`,
    `a\ntouch ${marker}`,
    `a' ; touch ${marker} ; echo 'b`,
    `a" ; touch ${marker} ; echo "b`,
    `it's "quoted" \\ back`,
    '$HOME',
  ];
}

const pipelineYaml = (base: string) => `
name: probe
triggers:
  - event: probe.sent
steps:
  up:
    uses: function
    with: { name: pass, args: "\${{ input.value }}" }
  shell:
    uses: command
    with: { run: "printf '%s' \${{ input.value }}" }
  shell_double:
    uses: command
    with:
      run: printf '%s' "\${{ input.value }}"
  shell_single:
    uses: command
    with:
      run: printf '%s' 'v=\${{ input.value }}' "$(printf '%s' "\${{ input.value }}")"
  shell_upstream:
    needs: [up]
    uses: command
    with: { run: "printf '%s' \${{ steps.up.v }}" }
  web_url:
    needs: [up]
    uses: http
    with: { url: "${base}/items/\${{ input.value }}?q=\${{ steps.up.v }}&n=1" }
  web_header:
    uses: http
    cache: false
    on_failure: continue
    with: { url: "${base}/header", headers: { x-probe: "\${{ input.value }}" } }
`;

const attributeYaml = `
name: probe-echo
dataset: probes
target: echoed
source: { fields: [title] }
steps:
  echo:
    uses: command
    with: { run: "printf '%s' \${{ input.title }}" }
`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-inject-'));
  marker = join(dir, 'MARKER');
  probe = await startProbeServer();
  const store = new SqliteStore({ path: join(dir, 'sluice.db') });
  await store.migrate();
  const functions = { pass: (ctx: { args?: unknown }) => ({ v: ctx.args }) };
  engine = new Engine({ store, steps: builtinStepTypes({ functions }), onError: () => {}, artifactsDir: join(dir, 'artifacts'), extensions: [attributePipelines()] });
  engine.startWorker({ concurrency: 8 });
  app = await createServer({ engine, pollMs: 50 });
  const put = await app.inject({ method: 'PUT', url: '/api/pipelines/probe', payload: pipelineYaml(probe.base), headers: { 'content-type': 'application/yaml' } });
  expect(put.statusCode, put.body).toBe(201);
});

afterAll(async () => {
  await app?.close();
  await engine?.close();
  await probe?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface StepView {
  name: string;
  status: string;
  output: { stdout?: string; body?: { url: string; headers: Record<string, string> } } | null;
  error: { code: string; message: string } | null;
}

async function finishedSteps(runId: string): Promise<Record<string, StepView>> {
  await engine.waitForRun(runId);
  const view = (await app.inject({ url: `/api/runs/${runId}` })).json() as { steps: StepView[] };
  return Object.fromEntries(view.steps.map((s) => [s.name, s]));
}

function expectLiteral(steps: Record<string, StepView>, value: string): void {
  expect(steps['shell']?.output?.stdout).toBe(value);
  expect(steps['shell_double']?.output?.stdout).toBe(value);
  expect(steps['shell_single']?.output?.stdout).toBe(`v=${value}${value}`);
  expect(steps['shell_upstream']?.output?.stdout).toBe(value);
  const received = new URL(steps['web_url']!.output!.body!.url, probe.base);
  // One path segment and one query value: nothing added to the path or the query.
  expect(received.pathname.split('/').map(decodeURIComponent)).toEqual(['', 'items', value]);
  expect([...received.searchParams.entries()]).toEqual([
    ['q', value],
    ['n', '1'],
  ]);
  const header = steps['web_header']!;
  if (/[\r\n]/.test(value)) {
    expect(header.status).toBe('failed');
    expect(header.error?.code).toBe('VALIDATION_FAILED');
    expect(header.error?.message).toContain('headers.x-probe: the value contains a line break');
  } else {
    expect(header.output?.body?.headers['x-probe']).toBe(value);
  }
}

describe('templated values are data, not code', () => {
  it('run inputs and events reach command and http steps as literal values, and run no shell command', async () => {
    const runIds: string[] = [];
    for (const value of payloads()) {
      const started = await app.inject({ method: 'POST', url: '/api/pipelines/probe/runs', payload: { input: { value } } });
      expect(started.statusCode).toBe(201);
      runIds.push(started.json().id as string);
      const event = await app.inject({ method: 'POST', url: '/api/events/probe.sent', payload: { value } });
      expect(event.statusCode).toBe(201);
      runIds.push(event.json().runs[0].id as string);
    }
    for (const [i, runId] of runIds.entries()) expectLiteral(await finishedSteps(runId), payloads()[Math.floor(i / 2)]!);
    expect(existsSync(marker)).toBe(false);
    // A line break never reached the other end as a header.
    expect(probe.requests.filter((r) => r.url === '/header')).toHaveLength(payloads().length * 2 - 2);
  });

  it('dataset records reach an attribute pipeline\'s command as literal values', async () => {
    expect((await app.inject({ method: 'PUT', url: '/api/datasets/probes', payload: {} })).statusCode).toBeLessThan(300);
    for (const [i, title] of payloads().entries()) {
      expect((await app.inject({ method: 'PUT', url: `/api/datasets/probes/records/r${i}`, payload: { title } })).statusCode).toBeLessThan(300);
    }
    const put = await app.inject({ method: 'PUT', url: '/api/pipelines/probe-echo', payload: attributeYaml, headers: { 'content-type': 'application/yaml' } });
    expect(put.statusCode).toBe(201);
    const started = await app.inject({ method: 'POST', url: '/api/pipelines/probe-echo/runs', payload: { input: {} } });
    expect(started.statusCode).toBe(201);
    expect((await engine.waitForRun(started.json().id as string)).status).toBe('succeeded');
    for (const [i, title] of payloads().entries()) {
      const record = (await app.inject({ url: `/api/datasets/probes/records/r${i}` })).json();
      expect(record.attributes.echoed.value).toEqual({ exit_code: 0, stdout: title });
    }
    expect(existsSync(marker)).toBe(false);
  });
});
