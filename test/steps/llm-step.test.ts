import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SluiceError } from '../../src/core/errors.js';
import { renderTemplate } from '../../src/core/expressions.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import { createLlmStep, type LlmConfig, type LlmStepOptions } from '../../src/steps/llm/llm-step.js';
import { RateLimiter, systemClock, type LimiterClock } from '../../src/steps/llm/rate-limiter.js';
import { sqliteBackend } from '../support/backends.js';
import { errorReply, jsonReply, startChatServer, type ChatServer } from '../support/chat-server.js';
import { createTestContext, linesOf } from '../fixtures/steps/step-context.js';

const KEY = 'sk-test-0123456789';

const ticketSchema = {
  type: 'object',
  properties: {
    category: { enum: ['bug', 'feature', 'question'] },
    confidence: { type: 'number' },
  },
  required: ['category', 'confidence'],
  additionalProperties: false,
};

const withOptional = {
  type: 'object',
  properties: {
    category: { type: 'string' },
    note: { type: 'string' },
    tags: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, weight: { type: 'number' } }, required: ['name'] } },
  },
  required: ['category'],
};

let server: ChatServer;
beforeAll(async () => {
  server = await startChatServer();
});
afterAll(() => server.close());
afterEach(() => {
  server.requests.length = 0;
});

function context(secrets: Record<string, string> = { OPENAI_API_KEY: KEY }) {
  return createTestContext(process.cwd(), { secrets });
}

function run(config: Omit<LlmConfig, 'base_url'>, options: LlmStepOptions = {}, test = context()) {
  const result = createLlmStep(options).execute(test.ctx, { base_url: server.baseUrl, ...config });
  return { ...test, result };
}

async function failure(promise: Promise<unknown>): Promise<SluiceError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SluiceError);
  return err as SluiceError;
}

describe('llm step: structured output', () => {
  it('sends the rendered prompt at temperature 0 with a json_schema response format and returns the parsed JSON', async () => {
    server.reply(jsonReply({ category: 'bug', confidence: 0.9 }));
    const test = context();
    const spec = { model: 'gpt-4o-mini', system: 'You triage tickets.', prompt: 'Classify: ${{ input.document }}', schema: ticketSchema };
    const config = (await renderTemplate(spec, { input: test.ctx.input, steps: {}, run: test.ctx.run, secrets: {} })) as LlmConfig;
    const { result } = run(config, {}, test);
    expect(await result).toEqual({ category: 'bug', confidence: 0.9 });
    expect(server.requests).toHaveLength(1);
    const request = server.requests[0]!;
    expect(request.path).toBe('/v1/chat/completions');
    expect(request.headers['authorization']).toBe(`Bearer ${KEY}`);
    expect(request.body).toMatchObject({
      model: 'gpt-4o-mini',
      temperature: 0,
      messages: [
        { role: 'system', content: 'You triage tickets.' },
        { role: 'user', content: 'Classify: doc-1' },
      ],
      // Every property required and the object closed: strict mode can be on.
      response_format: { type: 'json_schema', json_schema: { name: 'output', schema: ticketSchema, strict: true } },
    });
    expect(request.body).not.toHaveProperty('max_tokens');
  });

  it('sends a schema with optional properties non-strict, so the server does not reject it', async () => {
    server.reply(jsonReply({ category: 'bug', note: 'n', tags: [] }));
    await run({ model: 'm', prompt: 'p', schema: withOptional, temperature: 0.3, max_tokens: 50 }).result;
    expect(server.requests[0]!.body).toMatchObject({ temperature: 0.3, max_tokens: 50, response_format: { json_schema: { strict: false } } });
  });

  it('puts the schema in the system message in json_object mode', async () => {
    server.reply(jsonReply({ category: 'question', confidence: 0.5 }));
    const { result } = run({ model: 'llama3', prompt: 'p', system: 'Be brief.', schema: ticketSchema, schema_mode: 'json_object' });
    expect(await result).toEqual({ category: 'question', confidence: 0.5 });
    const body = server.requests[0]!.body;
    expect(body.response_format).toEqual({ type: 'json_object' });
    expect(body.messages[0].content).toContain('Be brief.');
    expect(body.messages[0].content).toContain(JSON.stringify(ticketSchema));
  });

  it('unwraps a reply fenced as a Markdown code block', async () => {
    server.reply({ content: '```json\n{"category":"feature","confidence":1}\n```' });
    expect(await run({ model: 'm', prompt: 'p', schema: ticketSchema }).result).toEqual({ category: 'feature', confidence: 1 });
  });

  it('fails the attempt, retryably, when the reply is not JSON, quoting the content', async () => {
    server.reply({ content: 'Sure! The category is bug.' });
    const err = await failure(run({ model: 'm', prompt: 'p', schema: ticketSchema }).result);
    expect(err.code).toBe('STEP_FAILED');
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/not valid JSON/);
    expect(err.message).toContain('Sure! The category is bug.');
  });

  it('says when invalid JSON was cut off at max_tokens', async () => {
    server.reply({ content: '{"category": "bu', finishReason: 'length' });
    const err = await failure(run({ model: 'm', prompt: 'p', schema: ticketSchema, max_tokens: 5 }).result);
    expect(err.message).toMatch(/cut off at max_tokens/);
  });

  it('fails the attempt, retryably, when the JSON does not match the schema, naming the problem', async () => {
    server.reply(jsonReply({ category: 'complaint', confidence: 'high' }));
    const err = await failure(run({ model: 'm', prompt: 'p', schema: ticketSchema }).result);
    expect(err.code).toBe('STEP_FAILED');
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/does not match the schema/);
    expect(err.message).toContain('/category must be equal to one of the allowed values ("bug", "feature", "question")');
    expect(err.message).toContain('/confidence must be number');
    expect(err.message).toContain('"complaint"');
  });

  it('accepts a reply missing an optional property and logs a warning naming it', async () => {
    server.reply(jsonReply({ category: 'bug', tags: [{ name: 'ui' }, { name: 'api', weight: 1 }] }));
    const { result, logs } = run({ model: 'm', prompt: 'p', schema: withOptional });
    expect(await result).toEqual({ category: 'bug', tags: [{ name: 'ui' }, { name: 'api', weight: 1 }] });
    expect(linesOf(logs, 'warn')).toEqual([
      'optional property "note" is missing from the model output',
      'optional property "tags[].weight" is missing from the model output',
    ]);
  });

  it('does not retry a refusal', async () => {
    server.reply({ content: null, refusal: 'I cannot help with that.' });
    const err = await failure(run({ model: 'm', prompt: 'p', schema: ticketSchema }).result);
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('I cannot help with that.');
  });

  it('rejects a schema that is not a JSON Schema before calling the server', async () => {
    const err = await failure(run({ model: 'm', prompt: 'p', schema: { type: 'nonsense' } }).result);
    expect(err.code).toBe('VALIDATION_FAILED');
    expect(server.requests).toHaveLength(0);
  });
});

describe('llm step: text, usage and cost', () => {
  it('returns { text } without a schema and sends no response_format', async () => {
    server.reply({ content: 'A short summary.' });
    expect(await run({ model: 'm', prompt: 'Summarize' }).result).toEqual({ text: 'A short summary.' });
    expect(server.requests[0]!.body).not.toHaveProperty('response_format');
    expect(server.requests[0]!.body.messages).toEqual([{ role: 'user', content: 'Summarize' }]);
  });

  it('reports the model the server used, tokens and cost from the price table', async () => {
    server.reply({ content: 'ok', model: 'gpt-4o-mini-2024-07-18', usage: { prompt_tokens: 2000, completion_tokens: 500 } });
    const prices = { 'gpt-4o-mini': { input_per_1k: 0.15, output_per_1k: 0.6 } };
    const { result, usage, logs } = run({ model: 'gpt-4o-mini', prompt: 'p' }, { prices });
    await result;
    expect(usage).toHaveLength(1);
    expect(usage[0]).toMatchObject({ model: 'gpt-4o-mini-2024-07-18', tokensIn: 2000, tokensOut: 500 });
    expect(usage[0]!.cost).toBeCloseTo(0.6, 10);
    expect(linesOf(logs, 'info').join('\n')).toContain('2000 tokens in, 500 out');
  });

  it('reports no cost for a model missing from the price table', async () => {
    server.reply({ content: 'ok', usage: { prompt_tokens: 3, completion_tokens: 1 } });
    const { result, usage } = run({ model: 'local-model', prompt: 'p' }, { prices: { other: { input_per_1k: 1, output_per_1k: 1 } } });
    await result;
    expect(usage).toEqual([{ model: 'local-model', tokensIn: 3, tokensOut: 1 }]);
  });

  it('reports only the model, not zero tokens, when the server sends no usage', async () => {
    server.reply({ content: 'ok', usage: null });
    const { result, usage } = run({ model: 'local-model', prompt: 'p' }, { prices: { 'local-model': { input_per_1k: 1, output_per_1k: 1 } } });
    await result;
    expect(usage).toEqual([{ model: 'local-model' }]);
  });

  it('reports usage even when the reply then fails validation: the tokens were spent', async () => {
    server.reply({ content: 'not json', usage: { prompt_tokens: 30, completion_tokens: 2 } });
    const { result, usage } = run({ model: 'm', prompt: 'p', schema: ticketSchema });
    await failure(result);
    expect(usage).toEqual([{ model: 'm', tokensIn: 30, tokensOut: 2 }]);
  });

  it('never writes the API key to the log', async () => {
    server.reply({ content: 'ok' });
    const { result, logs } = run({ model: 'm', prompt: 'p' });
    await result;
    expect(logs.length).toBeGreaterThan(0);
    expect(JSON.stringify(logs)).not.toContain(KEY);
  });
});

describe('llm step: failures', () => {
  it('turns a 429 into a retryable error that carries Retry-After in milliseconds', async () => {
    server.reply(errorReply(429, 'Rate limit reached for requests', { 'retry-after': '7' }));
    const err = await failure(run({ model: 'm', prompt: 'p' }).result);
    expect(err.code).toBe('STEP_FAILED');
    expect(err.retryable).toBe(true);
    expect(err.details).toEqual({ status: 429, retryAfterMs: 7000 });
    expect(err.message).toContain('429');
    expect(err.message).toContain('Rate limit reached for requests');
    expect(server.requests).toHaveLength(1); // the SDK did not retry on its own
  });

  it('reads a Retry-After given as an HTTP date', async () => {
    const test = createTestContext(process.cwd(), { secrets: { OPENAI_API_KEY: KEY }, now: () => Date.parse('2026-01-01T00:00:00Z') });
    server.reply(errorReply(503, 'overloaded', { 'retry-after': 'Thu, 01 Jan 2026 00:00:30 GMT' }));
    const err = await failure(run({ model: 'm', prompt: 'p' }, {}, test).result);
    expect(err.retryable).toBe(true);
    expect(err.details).toEqual({ status: 503, retryAfterMs: 30_000 });
  });

  it('retries a 500 without Retry-After and leaves the delay to the retry policy', async () => {
    server.reply(errorReply(500, 'internal'));
    const err = await failure(run({ model: 'm', prompt: 'p' }).result);
    expect(err.retryable).toBe(true);
    expect(err.details).toEqual({ status: 500 });
  });

  it('does not retry other 4xx and quotes the server, also when it answers in vLLM style', async () => {
    server.reply(errorReply(400, "Invalid schema for response_format 'output'"));
    const err = await failure(run({ model: 'm', prompt: 'p' }).result);
    expect(err.retryable).toBe(false);
    expect(err.message).toContain("400: Invalid schema for response_format 'output'");
    server.reply({ status: 404, body: { object: 'error', message: 'The model `nope` does not exist.', code: 404 } });
    const vllm = await failure(run({ model: 'nope', prompt: 'p' }).result);
    expect(vllm.retryable).toBe(false);
    expect(vllm.message).toContain('The model `nope` does not exist.');
  });

  it('points at the secret when the server rejects the key', async () => {
    server.reply(errorReply(401, 'Incorrect API key provided'));
    const err = await failure(run({ model: 'm', prompt: 'p', api_key_secret: 'MY_KEY' }, {}, context({ MY_KEY: 'sk-wrong-key' })).result);
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('check the API key in secret MY_KEY');
    expect(server.requests[0]!.headers['authorization']).toBe('Bearer sk-wrong-key');
  });

  it('fails clearly, without calling the server, when the key secret is missing', async () => {
    const err = await failure(run({ model: 'm', prompt: 'p' }, {}, context({})).result);
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('secret OPENAI_API_KEY is not set');
    expect(err.message).toContain('SLUICE_SECRET_OPENAI_API_KEY');
    const custom = await failure(run({ model: 'm', prompt: 'p', api_key_secret: 'OPENROUTER_KEY' }, {}, context({})).result);
    expect(custom.message).toContain('SLUICE_SECRET_OPENROUTER_KEY');
    expect(server.requests).toHaveLength(0);
  });

  it('reports an unreachable server as retryable', async () => {
    const closed = await startChatServer();
    await closed.close();
    const test = context();
    const err = await failure(createLlmStep().execute(test.ctx, { model: 'm', prompt: 'p', base_url: closed.baseUrl }));
    expect(err.retryable).toBe(true);
    expect(err.message).toContain(`cannot reach ${closed.baseUrl}`);
  });

  it('stops at once when ctx.signal aborts', async () => {
    // The answer would come after a minute: a step that ends CANCELLED before that did not wait for it.
    server.reply({ content: 'late', delayMs: 60_000 });
    const { result, controller } = run({ model: 'm', prompt: 'p' });
    await waitFor(() => server.requests.length === 1);
    controller.abort();
    const err = await failure(result);
    expect(err.code).toBe('CANCELLED');
  });

  it('keeps the abort reason when it is an error', async () => {
    server.reply({ content: 'late', delayMs: 10_000 });
    const { result, controller } = run({ model: 'm', prompt: 'p' });
    await waitFor(() => server.requests.length === 1);
    controller.abort(new SluiceError('STEP_TIMEOUT', 'step timed out', { retryable: true }));
    expect((await failure(result)).code).toBe('STEP_TIMEOUT');
  });

  it('gives up after `timeout` with a retryable STEP_TIMEOUT', async () => {
    server.reply({ content: 'late', delayMs: 10_000 });
    const err = await failure(run({ model: 'm', prompt: 'p', timeout: '150ms' }).result);
    expect(err.code).toBe('STEP_TIMEOUT');
    expect(err.retryable).toBe(true);
  });
});

describe('llm step: rate limits', () => {
  it('spaces requests to stay within rpm for one base URL and key', async () => {
    server.reply({ content: 'a' }, { content: 'b' }, { content: 'c' });
    const step = createLlmStep({ limiter: new RateLimiter(systemClock, 300) });
    const config = { model: 'm', prompt: 'p', base_url: server.baseUrl, rpm: 2 };
    const test = context();
    const started = Date.now();
    await Promise.all([step.execute(test.ctx, config), step.execute(test.ctx, config), step.execute(test.ctx, config)]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(linesOf(test.logs, 'info').some((line) => /rate limit .* waiting \d+ ms/.test(line))).toBe(true);
  });

  it('counts requests and estimated then actual tokens in a sliding window', async () => {
    const clock = fakeClock();
    const limiter = new RateLimiter(clock, 60_000);
    const signal = new AbortController().signal;
    const first = await limiter.acquire('k', { tpm: 1000 }, 600, signal);
    // 600 + 600 > 1000: waits until the first grant leaves the window.
    await limiter.acquire('k', { tpm: 1000 }, 600, signal);
    expect(clock.slept).toEqual([60_000]);
    first.settle(10);
    // Another key has its own budget.
    await limiter.acquire('other', { rpm: 1, tpm: 1000 }, 900, signal);
    await limiter.acquire('other', { rpm: 1 }, 1, signal);
    expect(clock.slept).toEqual([60_000, 60_000]);
    // A request larger than the whole budget still goes through once the window is empty.
    await limiter.acquire('big', { tpm: 100 }, 500, signal);
    expect(clock.slept).toHaveLength(2);
  });
});

describe('llm step: config', () => {
  const stepTypes = builtinStepTypes();
  const load = (config: Record<string, unknown>) => () => normalizePipeline({ name: 'p', steps: { a: { uses: 'llm', with: config } } }, { stepTypes });

  it('checks `with` when the pipeline loads, and lets templates through', () => {
    expect(load({ model: 'm', promt: 'typo' })).toThrow(/prompt/);
    expect(load({ model: 'm', prompt: 'p', schema_mode: 'yaml' })).toThrow(/schema_mode/);
    expect(load({ model: 'm', prompt: '${{ input.text }}', temperature: '${{ input.t }}', schema: { type: 'object' }, rpm: 60 })).not.toThrow();
  });

  it('rejects a templated limit that resolves to nothing sensible', async () => {
    const err = await failure(run({ model: 'm', prompt: 'p', rpm: 0 }).result);
    expect(err.code).toBe('VALIDATION_FAILED');
    expect(server.requests).toHaveLength(0);
  });
});

describe('llm step in the engine', () => {
  const backend = sqliteBackend();
  afterAll(() => backend.cleanup());

  it('retries a 429 after its Retry-After and records usage on the attempts', async () => {
    server.reply(errorReply(429, 'Rate limit reached', { 'retry-after': '1' }), jsonReply({ category: 'bug', confidence: 0.8 }, { usage: { prompt_tokens: 40, completion_tokens: 9 } }));
    const steps = builtinStepTypes({ llm: { baseUrl: server.baseUrl, prices: { 'gpt-4o-mini': { input_per_1k: 1, output_per_1k: 2 } } } });
    const store = await backend.create();
    const engine = new Engine({ store, steps, secrets: { OPENAI_API_KEY: KEY }, onError: (e) => console.error(e) });
    try {
      const spec = {
        name: 'triage',
        steps: {
          classify: {
            uses: 'llm',
            with: { model: 'gpt-4o-mini', prompt: 'Classify: ${{ input.ticket }}', schema: ticketSchema },
            retry: { attempts: 3, delay: '1ms', jitter: false },
          },
        },
      };
      await engine.registerPipeline(normalizePipeline(spec, { stepTypes: steps }));
      engine.startWorker({ pollMs: 20, reapMs: 50 });
      const { run } = await engine.startRun('triage', { input: { ticket: 'the save button crashes' } });
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      const [step] = await store.listSteps(run.id);
      expect(step?.output).toEqual({ category: 'bug', confidence: 0.8 });
      const attempts = await store.listAttempts(run.id, 'classify');
      expect(attempts.map((a) => a.status)).toEqual(['failed', 'succeeded']);
      expect(attempts[0]?.error?.message).toContain('429');
      expect(attempts[1]?.usage).toEqual({ model: 'gpt-4o-mini', tokensIn: 40, tokensOut: 9, cost: 0.058 });
      expect(attempts[1]!.startedAt! - attempts[0]!.finishedAt!).toBeGreaterThanOrEqual(1000);
      expect(server.requests.map((r) => r.body.messages.at(-1).content)).toEqual(['Classify: the save button crashes', 'Classify: the save button crashes']);
    } finally {
      await engine.close();
    }
  });
});

function fakeClock(): LimiterClock & { slept: number[] } {
  let now = 1_000_000;
  const slept: number[] = [];
  return {
    slept,
    now: () => now,
    sleep: async (ms) => {
      slept.push(ms);
      now += ms;
    },
  };
}

async function waitFor(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
