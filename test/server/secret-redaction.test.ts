/**
 * Secret values never reach what Sluice writes (outputs, errors, events, logs, attribute values, the database
 * file) nor processes that do not name them; store passwords and stream tokens stay out of answers and logs.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { secretsFromEnv } from '../../src/cli/context.js';
import { Engine } from '../../src/engine/engine.js';
import { createServer } from '../../src/server/create-server.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { REPO_ROOT } from '../support/cli.js';
import { acquirePostgres, createDatabase, postgresDisabled, releasePostgres } from '../support/postgres.js';
import { startProbeServer, type ProbeServer } from '../support/probe-server.js';
import { attributePipelines } from '../../src/attributes/extension.js';

// `/` and `+` make the percent-encoded form (in URLs) differ from the value.
const API_KEY = 'sk-live/Q9x+7ZpLw3';
const UNUSED = 'unused-secret-4f1d';

let dir: string;
let engine: Engine;
let app: FastifyInstance;
let probe: ProbeServer;

const leakyYaml = (base: string) => `
name: leaky
fail_fast: false
steps:
  env_dump:
    uses: command
    with: { run: "env | grep SLUICE_SECRET_ || true" }
  named:
    uses: command
    with: { run: "echo token=\${{ secrets.API_KEY }}; echo from-env=$SLUICE_SECRET_API_KEY; env | grep '^SLUICE_SECRET_' | cut -d= -f1" }
  failing:
    uses: command
    on_failure: continue
    with: { run: "echo using \${{ secrets.API_KEY }} >&2; exit 3" }
  call:
    uses: http
    with: { url: "${base}/echo", headers: { authorization: "Bearer \${{ secrets.API_KEY }}" } }
  call_basic:
    uses: http
    with: { url: "http://probe:\${{ secrets.API_KEY }}@${base.slice('http://'.length)}/echo" }
  call_fail:
    uses: http
    on_failure: continue
    retry: { attempts: 1 }
    with: { url: "${base}/fail?key=\${{ secrets.API_KEY }}" }
  thrower:
    uses: function
    on_failure: continue
    with: { name: boom }
`;

const attributeYaml = `
name: keyed
dataset: things
target: tagged
source: { fields: [title] }
steps:
  tag:
    uses: command
    with: { run: "printf '%s-%s' \${{ input.title }} \${{ secrets.API_KEY }}" }
`;

interface StepView {
  name: string;
  status: string;
  output: unknown;
  error: { code: string; message: string; stack?: string } | null;
}

let steps: Record<string, StepView>;
let runText: string;
let eventsText: string;
let logsText: string;

beforeAll(async () => {
  process.env['SLUICE_SECRET_API_KEY'] = API_KEY;
  process.env['SLUICE_SECRET_UNUSED'] = UNUSED;
  dir = mkdtempSync(join(tmpdir(), 'sluice-secrets-'));
  probe = await startProbeServer();
  const store = new SqliteStore({ path: join(dir, 'sluice.db') });
  await store.migrate();
  const functions = {
    boom: (ctx: { secrets: Record<string, string> }) => {
      throw new Error(`bad key ${ctx.secrets['API_KEY']}`);
    },
  };
  engine = new Engine({ store, steps: builtinStepTypes({ functions }), secrets: secretsFromEnv(), onError: () => {}, artifactsDir: join(dir, 'artifacts'), extensions: [attributePipelines()] });
  engine.startWorker({ concurrency: 4 });
  app = await createServer({ engine, pollMs: 50 });
  const yaml = { 'content-type': 'application/yaml' };
  expect((await app.inject({ method: 'PUT', url: '/api/pipelines/leaky', payload: leakyYaml(probe.base), headers: yaml })).statusCode).toBe(201);
  const started = await app.inject({ method: 'POST', url: '/api/pipelines/leaky/runs', payload: { input: {} } });
  const runId = started.json().id as string;
  await engine.waitForRun(runId);
  const view = (await app.inject({ url: `/api/runs/${runId}` })).json() as { steps: StepView[] };
  steps = Object.fromEntries(view.steps.map((s) => [s.name, s]));
  runText = JSON.stringify(view);
  eventsText = (await app.inject({ url: `/api/runs/${runId}/events` })).body;
  logsText = (await app.inject({ url: `/api/runs/${runId}/steps/named/logs` })).body;

  await app.inject({ method: 'PUT', url: '/api/datasets/things', payload: {} });
  await app.inject({ method: 'PUT', url: '/api/datasets/things/records/t1', payload: { title: 'lamp' } });
  expect((await app.inject({ method: 'PUT', url: '/api/pipelines/keyed', payload: attributeYaml, headers: yaml })).statusCode).toBe(201);
  const attr = await app.inject({ method: 'POST', url: '/api/pipelines/keyed/runs', payload: { input: {} } });
  expect((await engine.waitForRun(attr.json().id as string)).status).toBe('succeeded');
});

afterAll(async () => {
  delete process.env['SLUICE_SECRET_API_KEY'];
  delete process.env['SLUICE_SECRET_UNUSED'];
  await app?.close();
  await engine?.close();
  await probe?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Every file under `root` (the database, its WAL, artifacts), as bytes. */
function filesUnder(root: string): Array<{ file: string; bytes: Buffer }> {
  return readdirSync(root, { recursive: true, encoding: 'utf8' })
    .map((name) => join(root, name))
    .filter((file) => statSync(file).isFile())
    .map((file) => ({ file, bytes: readFileSync(file) }));
}

/** The line `sluice serve` (run from source) prints once it listens; the server is then stopped. */
async function serveStartLine(storeUrl: string): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src/cli/main.ts'), '--store', storeUrl, 'serve', '--port', '0', '--workers', '1'], {
    cwd: REPO_ROOT,
    env: { ...process.env, SLUICE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no start line: ${stderr}`)), 30_000);
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        const line = /^sluice serve on .*$/m.exec(stderr);
        if (line) {
          clearTimeout(timer);
          resolve(line[0]);
        }
      });
      child.once('exit', () => reject(new Error(`serve exited: ${stderr}`)));
    });
  } finally {
    const exited = new Promise((resolve) => child.once('close', resolve));
    child.kill('SIGTERM');
    await exited;
  }
}

describe('secret values', () => {
  it('reach a command only when its step names them', () => {
    expect(steps['env_dump']).toMatchObject({ status: 'succeeded', output: { stdout: '' } });
    // The named secret is in the process's environment (its value blanked in the output), the other one is not.
    expect(steps['named']).toMatchObject({ status: 'succeeded', output: { stdout: 'token=***\nfrom-env=***\nSLUICE_SECRET_API_KEY' } });
  });

  it('are blanked in outputs, errors, events, logs and attribute values', async () => {
    expect(steps['failing']!.error).toMatchObject({ code: 'COMMAND_FAILED', message: 'command exited with code 3; last stderr lines:\nusing ***' });
    const echoed = steps['call']!.output as { body: { headers: Record<string, string> } };
    expect(echoed.body.headers['authorization']).toBe('Bearer ***');
    // Credentials in the URL become Basic authorization, whose base64 no secret value matches.
    const basic = steps['call_basic']!.output as { body: { headers: Record<string, string> } };
    expect(probe.requests.some((r) => r.headers.authorization === `Basic ${Buffer.from(`probe:${API_KEY}`).toString('base64')}`)).toBe(true);
    expect(basic.body.headers['authorization']).toBe('***');
    expect(steps['call_fail']!.error?.code).toBe('STEP_FAILED');
    expect(steps['call_fail']!.error?.message).toContain('/fail?key=***');
    expect(steps['thrower']!.error?.message).toBe('bad key ***');
    expect(logsText).toContain('token=***');
    const record = (await app.inject({ url: '/api/datasets/things/records/t1' })).json();
    expect(record.attributes.tagged.value).toEqual({ exit_code: 0, stdout: 'lamp-***' });
    for (const text of [runText, eventsText, logsText, JSON.stringify(record)]) {
      expect(text).not.toContain(API_KEY);
      expect(text).not.toContain(encodeURIComponent(API_KEY));
    }
  });

  it('are nowhere in the database file, its WAL or the artifacts', async () => {
    await engine.store.close?.();
    const files = filesUnder(dir);
    expect(files.some((f) => f.file.endsWith('sluice.db'))).toBe(true);
    for (const { file, bytes } of files) {
      expect(bytes.includes(API_KEY), file).toBe(false);
      expect(bytes.includes(encodeURIComponent(API_KEY)), file).toBe(false);
      expect(bytes.includes(UNUSED), file).toBe(false);
    }
  });
});

describe('passwords and tokens', () => {
  it('the request log shows the live stream\'s ?token= blanked', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const store = new SqliteStore({ path: join(dir, 'log.db') });
    await store.migrate();
    const quiet = new Engine({ store, steps: builtinStepTypes(), onError: () => {}, extensions: [attributePipelines()] });
    const server = await createServer({ engine: quiet, logger: { level: 'info', stream } });
    try {
      // Not a probe: probes are logged at debug only.
      await server.inject({ url: '/api/runs?limit=1&token=sluice_abcdefSECRET' });
    } finally {
      await server.close();
      await quiet.close();
    }
    const logged = lines.join('');
    expect(logged).toContain('/api/runs?limit=1&token=***');
    expect(logged).not.toContain('sluice_abcdefSECRET');
  });

  it.skipIf(postgresDisabled())('/readyz and the serve start line show the store URL with its password masked, also given as ?password=', async () => {
    const server = await acquirePostgres();
    const db = await createDatabase(server);
    const url = new URL(db.url);
    const password = decodeURIComponent(url.password);
    expect(password).not.toBe('');
    // libpq's other spelling: the password as a query parameter.
    url.password = '';
    url.searchParams.set('password', password);
    const store = new PostgresStore({ url: url.toString(), poolSize: 1 });
    await store.migrate();
    const pg = new Engine({ store, steps: builtinStepTypes(), onError: () => {}, extensions: [attributePipelines()] });
    const api = await createServer({ engine: pg });
    try {
      const ready = (await api.inject({ url: '/readyz' })).json();
      expect(ready.status).toBe('ready');
      expect(ready.store).toContain('password=***');
      expect(ready.store).not.toContain(`password=${password}`);
      const line = await serveStartLine(url.toString());
      expect(line).toContain('password=***');
      expect(line).not.toContain(`password=${password}`);
    } finally {
      await api.close();
      await pg.close();
      await db.drop();
      await releasePostgres();
    }
  });
});
