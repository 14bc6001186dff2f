import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLlmStep } from '../../src/steps/llm/llm-step.js';
import type { SharedRateLimit } from '../../src/steps/step-type.js';
import { createTestContext } from '../fixtures/steps/step-context.js';
import { jsonReply, startChatServer, type ChatServer } from '../support/chat-server.js';

let server: ChatServer;
beforeEach(async () => {
  server = await startChatServer();
});
afterEach(() => server.close());

describe('llm step rate limits inside the engine', () => {
  it('draws on the shared (store-kept) budget when the engine provides one, and settles the real token count', async () => {
    const calls: Array<{ key: string; limits: unknown; tokens: number }> = [];
    const settled: number[] = [];
    const rateLimit: SharedRateLimit = {
      async acquire(key, limits, tokens) {
        calls.push({ key, limits, tokens });
        return { settle: (t) => settled.push(t) };
      },
    };
    server.reply(jsonReply({ ok: true }, { usage: { prompt_tokens: 30, completion_tokens: 7 } }));
    const { ctx } = createTestContext(process.cwd(), { secrets: { OPENAI_API_KEY: 'k-secret' }, rateLimit });
    const output = await createLlmStep().execute(ctx, { base_url: server.baseUrl, model: 'm', prompt: 'hello', schema: { type: 'object' }, rpm: 60, tpm: 10_000 });
    expect(output).toEqual({ ok: true });
    expect(calls).toHaveLength(1);
    expect(calls[0]!.limits).toEqual({ rpm: 60, tpm: 10_000 });
    expect(calls[0]!.key).toContain(server.baseUrl);
    expect(calls[0]!.key).not.toContain('k-secret');
    expect(settled).toEqual([37]);
  });
});
