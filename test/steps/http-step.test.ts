import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SluiceError } from '../../src/core/errors.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import { createHttpStep, type HttpConfig } from '../../src/steps/http/http-step.js';
import { createTestContext } from '../fixtures/steps/step-context.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

type Route = (res: ServerResponse, seen: Seen) => void;

/** Each test mounts its route under a path of its own. */
const routes = new Map<string, Route>();
const seen: Seen[] = [];
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(request);
      const route = routes.get(new URL(request.url, 'http://x').pathname);
      if (route) route(res, request);
      else res.writeHead(404, { 'content-type': 'text/plain' }).end(`no route ${request.url}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(
  () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
);

function mount(path: string, route: Route): string {
  routes.set(path, route);
  return `${base}${path}`;
}

function context(overrides: Parameters<typeof createTestContext>[1] = {}) {
  return createTestContext(process.cwd(), overrides);
}

function run(config: HttpConfig, test = context()) {
  return { ...test, result: createHttpStep().execute(test.ctx, config) };
}

async function failure(promise: Promise<unknown>): Promise<SluiceError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SluiceError);
  return err as SluiceError;
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Route => (res) => {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers }).end(JSON.stringify(body));
};

describe('http step', () => {
  it('GETs JSON and returns status, lower-cased headers and the parsed body', async () => {
    const url = mount('/get-json', json(200, { items: [1, 2] }, { 'X-Request-Id': 'abc' }));
    const output = await run({ url: `${url}?page=2`, headers: { Accept: 'application/json' } }).result;
    expect(output).toMatchObject({ status: 200, body: { items: [1, 2] } });
    expect((output as { headers: Record<string, string> }).headers).toMatchObject({ 'x-request-id': 'abc', 'content-type': 'application/json; charset=utf-8' });
    const request = seen.find((s) => s.url === '/get-json?page=2');
    expect(request?.method).toBe('GET');
    expect(request?.headers['accept']).toBe('application/json');
  });

  it('POSTs a JSON-encoded body with a JSON content-type', async () => {
    const url = mount('/post-json', (res, request) => json(201, { received: JSON.parse(request.body) as unknown })(res, request));
    const output = await run({ url, method: 'post', body: { name: 'Ada', tags: ['x'] } }).result;
    expect(output).toMatchObject({ status: 201, body: { received: { name: 'Ada', tags: ['x'] } } });
    const request = seen.find((s) => s.url === '/post-json');
    expect(request?.method).toBe('POST');
    expect(request?.headers['content-type']).toBe('application/json');
  });

  it('sends a string body as is, with the content-type the user set', async () => {
    const url = mount('/post-text', (res, request) => res.writeHead(200, { 'content-type': 'text/plain' }).end(`got ${request.body}`));
    const output = await run({ url, method: 'PUT', body: 'a=1&b=2', headers: { 'content-type': 'application/x-www-form-urlencoded' } }).result;
    expect(output).toMatchObject({ status: 200, body: 'got a=1&b=2' });
    expect(seen.find((s) => s.url === '/post-text')?.headers['content-type']).toBe('application/x-www-form-urlencoded');
  });

  it('returns text for a non-JSON content-type, and honours expect', async () => {
    const url = mount('/text', (res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('{"looks":"like json"}'));
    expect(await run({ url }).result).toMatchObject({ body: '{"looks":"like json"}' });
    expect(await run({ url, expect: 'json' }).result).toMatchObject({ body: { looks: 'like json' } });
    const jsonUrl = mount('/json-as-text', json(200, { a: 1 }));
    expect(await run({ url: jsonUrl, expect: 'text' }).result).toMatchObject({ body: '{"a":1}' });
  });

  it('returns null for an empty JSON body', async () => {
    const url = mount('/no-content', (res) => res.writeHead(204).end());
    expect(await run({ url, method: 'DELETE', expect: 'json' }).result).toMatchObject({ status: 204, body: null });
  });

  it('fails a 404 without retrying, quoting status and body', async () => {
    const url = mount('/missing', json(404, { error: 'no such user' }));
    const err = await failure(run({ url }).result);
    expect(err.code).toBe('STEP_FAILED');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain(`GET ${url} failed with 404 Not Found`);
    expect(err.message).toContain('no such user');
    expect(err.details).toMatchObject({ status: 404 });
  });

  it('treats statuses in ok_status as success', async () => {
    const url = mount('/maybe', json(404, { found: false }));
    expect(await run({ url, ok_status: [200, 404] }).result).toMatchObject({ status: 404, body: { found: false } });
  });

  it('retries a 503 and carries Retry-After in milliseconds', async () => {
    const url = mount('/busy', json(503, { error: 'busy' }, { 'Retry-After': '2' }));
    const err = await failure(run({ url }).result);
    expect(err.retryable).toBe(true);
    expect(err.details).toMatchObject({ status: 503, retryAfterMs: 2000 });
  });

  it('retries a 429 whose Retry-After is an HTTP date', async () => {
    const url = mount('/limited', json(429, {}, { 'Retry-After': 'Thu, 01 Jan 2026 00:01:00 GMT' }));
    const err = await failure(run({ url }, context({ now: () => Date.parse('2026-01-01T00:00:00Z') })).result);
    expect(err.retryable).toBe(true);
    expect(err.details).toMatchObject({ status: 429, retryAfterMs: 60_000 });
  });

  it('fails with a retryable STEP_TIMEOUT after `timeout`', async () => {
    const url = mount('/slow', (res) => {
      const timer = setTimeout(() => res.end('late'), 10_000);
      res.on('close', () => clearTimeout(timer));
    });
    // The server answers after 10 s; a STEP_TIMEOUT shows the step gave up before.
    const err = await failure(run({ url, timeout: '200ms' }).result);
    expect(err.code).toBe('STEP_TIMEOUT');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('timed out after 200 ms');
  });

  it('stops at once when ctx.signal aborts', async () => {
    const url = mount('/hang', (res) => {
      const timer = setTimeout(() => res.end('late'), 10_000);
      res.on('close', () => clearTimeout(timer));
    });
    const { result, controller } = run({ url });
    setTimeout(() => controller.abort(), 50);
    expect((await failure(result)).code).toBe('CANCELLED');
  });

  it('reports a network error as retryable', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const err = await failure(run({ url: `http://127.0.0.1:${port}/` }).result);
    expect(err.code).toBe('STEP_FAILED');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('ECONNREFUSED');
  });

  it('fails, retryably, when a JSON response does not parse', async () => {
    const url = mount('/bad-json', (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('<html>gateway</html>'));
    const err = await failure(run({ url }).result);
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('<html>gateway</html>');
  });

  it('keeps secret values out of error messages', async () => {
    const url = mount('/secret-echo', json(400, { error: 'bad token tok-0123456789' }));
    const test = context({ secrets: { TOKEN: 'tok-0123456789' } });
    const err = await failure(run({ url: `${url}?token=tok-0123456789` }, test).result);
    expect(err.message).not.toContain('tok-0123456789');
    expect(err.message).toContain('token=***');
  });

  it('sends credentials written in the URL as Basic authorization, and keeps them out of messages', async () => {
    const url = new URL(mount('/basic', json(401, { error: 'denied' })));
    url.username = 'ada';
    url.password = 'p@ss word';
    const err = await failure(run({ url: url.href }).result);
    expect(seen.find((s) => s.url === '/basic')?.headers['authorization']).toBe(`Basic ${Buffer.from('ada:p@ss word').toString('base64')}`);
    expect(err.message).not.toContain('ada');
    expect(err.retryable).toBe(false);
  });

  it('refuses a body on GET and a URL that is not http(s)', async () => {
    expect((await failure(run({ url: `${base}/x`, body: { a: 1 } }).result)).code).toBe('VALIDATION_FAILED');
    expect((await failure(run({ url: 'file:///etc/passwd' }).result)).code).toBe('VALIDATION_FAILED');
  });
});

describe('http step: config', () => {
  const stepTypes = builtinStepTypes();
  const load = (config: Record<string, unknown>) => () => normalizePipeline({ name: 'p', steps: { a: { uses: 'http', with: config } } }, { stepTypes });

  it('checks `with` when the pipeline loads, and lets templates through', () => {
    expect(load({ url: 'https://example.test', expect: 'xml' })).toThrow(/expect/);
    expect(load({ method: 'GET' })).toThrow(/url/);
    expect(load({ url: '${{ input.url }}', headers: { authorization: 'Bearer ${{ secrets.TOKEN }}' }, body: { a: 1 }, method: 'POST', ok_status: [200, 404], timeout: '5s' })).not.toThrow();
  });
});
