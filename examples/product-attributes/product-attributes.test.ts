/**
 * End to end: 1,000 products through a `code` attribute pipeline and an `llm` attribute pipeline that reads
 * the first one's field, run by the CLI (in this process) against a local OpenAI-compatible server; evals of both;
 * re-runs skip unchanged products; an override and an edited record recompute exactly what depends on them.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChatServer, type ChatServer } from '../../test/support/chat-server.js';
import { killSpawned, tempDir, type CliResult } from '../../test/support/cli.js';
import { runCliInProcess, runCliJsonInProcess } from '../../test/support/cli-in-process.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const file = (name: string) => path.join(here, name);

let tmp: ReturnType<typeof tempDir>;
let chat: ChatServer;
let store: string;

const env = () => ({ OPENAI_BASE_URL: chat.baseUrl, SLUICE_SECRET_OPENAI_API_KEY: 'test-key' });
const sluice = (args: string[]): Promise<CliResult> => runCliInProcess([...args, '--store', `sqlite:${store}`], { cwd: tmp.dir, env: env() });
const sluiceJson = <T = any>(args: string[]): Promise<T> => runCliJsonInProcess<T>([...args, '--store', `sqlite:${store}`], { cwd: tmp.dir, env: env() });

type RunRow = { pipeline: string; status: string; processed: number; failed: number; skipped: number; tokens_in: number; tokens_out: number };
const byPipeline = (rows: RunRow[]) => Object.fromEntries(rows.map((r) => [r.pipeline, r]));

/** The model's stand-in: reads the price from the prompt, as a model would, and answers in the schema. */
function audienceOf(prompt: string): { value: string; confidence: number; justification: string } {
  const price = Number(/Price: ([\d.]+) EUR/.exec(prompt)?.[1] ?? NaN);
  const value = price < 100 ? 'budget' : price < 600 ? 'mainstream' : 'premium';
  return { value, confidence: 0.9, justification: `priced at ${price} EUR` };
}

beforeAll(async () => {
  tmp = tempDir('sluice-attributes-');
  store = path.join(tmp.dir, 'sluice.db');
  chat = await startChatServer();
  chat.respond((body: { messages: Array<{ content: string }> }) => ({ content: JSON.stringify(audienceOf(body.messages.at(-1)!.content)) }));
});

afterAll(async () => {
  await killSpawned();
  await chat.close();
  tmp.cleanup();
});

describe('examples/product-attributes', () => {
  it('derives category with code and audience with a model, in order, with provenance and evals', async () => {
    expect((await sluice(['dataset', 'create', 'products'])).code).toBe(0);
    const imported = await sluice(['dataset', 'import', 'products', file('products.jsonl')]);
    expect(imported.stdout).toContain('1000 record(s) imported');

    // The files are given reader first: the order comes from the fields they read, not from the command line.
    const first = byPipeline(await sluiceJson<RunRow[]>(['dataset', 'run', 'products', file('audience.yaml'), file('category.yaml')]));
    expect(first['product-category']).toMatchObject({ status: 'succeeded', processed: 1000, failed: 0, skipped: 0 });
    expect(first['product-audience']).toMatchObject({ status: 'succeeded', processed: 1000, tokens_in: 12_000, tokens_out: 5000 });
    expect(chat.requests).toHaveLength(1000);
    const prompt = chat.requests[0]!.body.messages.at(-1).content as string;
    expect(prompt).toMatch(/Category: (lighting|seating|tables|storage|textiles|kitchen|outdoor|decor|other)\n/);
    expect(chat.requests[0]!.body).toMatchObject({ model: 'gpt-4o-mini', temperature: 0, response_format: { type: 'json_schema' } });

    const chair = await sluiceJson(['dataset', 'get', 'products', 'p0002']);
    expect(chair.attributes.category).toMatchObject({ value: 'seating', pipeline: 'product-category', pipeline_version: 1, status: 'proposed' });
    expect(chair.attributes.audience).toMatchObject({ value: 'premium', confidence: 0.9, justification: 'priced at 908.46 EUR', pipeline: 'product-audience' });

    const category = await sluice(['eval', 'product-category', '--set', file('category-evals.yaml')]);
    expect(category.code, category.stdout + category.stderr).toBe(0);
    expect(category.stdout).toContain('10 passed, 0 failed');
    const audience = await sluice(['eval', 'product-audience', '--set', file('audience-evals.yaml')]);
    expect(audience.code, audience.stdout + audience.stderr).toBe(0);
    expect(audience.stdout).toContain('3 passed, 0 failed');

    // Nothing changed: every product is skipped by its input hash, and no model is asked about a product; the
    // evals run again after the runs (the 3 audience cases ask the model).
    const again = byPipeline(await sluiceJson<RunRow[]>(['dataset', 'run', 'products']));
    expect(again['product-category']).toMatchObject({ processed: 0, skipped: 1000, evals: { passed: 10, failed: 0 } });
    expect(again['product-audience']).toMatchObject({ processed: 0, skipped: 1000, evals: { passed: 3, failed: 0 } });
    expect(chat.requests).toHaveLength(1000 + 3 + 3);

    // A person overrides one category: the category run leaves it alone, the audience of that product only is recomputed.
    expect((await sluice(['dataset', 'override', 'products', 'p0002', 'category', 'tables', '--note', 'sold as a table set'])).code).toBe(0);
    const afterOverride = byPipeline(await sluiceJson<RunRow[]>(['dataset', 'run', 'products']));
    expect(afterOverride['product-category']).toMatchObject({ processed: 0, skipped: 1000 });
    expect(afterOverride['product-audience']).toMatchObject({ processed: 1, skipped: 999 });
    expect(chat.requests.at(-1)!.body.messages.at(-1).content).toContain('Category: tables');

    // One product edited: exactly one processed by each pipeline that reads the changed field.
    const edited = path.join(tmp.dir, 'edit.jsonl');
    writeFileSync(edited, `${JSON.stringify({ id: 'p0003', title: 'Compact oak lamp', description: 'An oak lamp with a warm LED bulb.', brand: 'Casa Nova', price: 40 })}\n`);
    expect((await sluice(['dataset', 'import', 'products', edited])).code).toBe(0);
    const asked = chat.requests.length;
    const afterEdit = byPipeline(await sluiceJson<RunRow[]>(['dataset', 'run', 'products']));
    expect(afterEdit['product-category']).toMatchObject({ processed: 1, skipped: 999 });
    expect(afterEdit['product-audience']).toMatchObject({ processed: 1, skipped: 999 });
    // The runs the import queued for p0003 are absorbed by the dataset run: the model is asked about it once
    // (plus the 3 eval cases).
    expect(chat.requests.slice(asked).filter((r) => (r.body.messages.at(-1).content as string).includes('Compact oak lamp'))).toHaveLength(1);
    expect(chat.requests).toHaveLength(asked + 1 + 3);
    const lamp = await sluiceJson(['dataset', 'get', 'products', 'p0003']);
    expect(lamp.attributes.category.value).toBe('lighting');
    expect(lamp.attributes.audience.value).toBe('budget');

    // The desk eval (p0003) now fails: the product became a lamp. `sluice eval` says so and exits 1.
    const failing = await sluice(['eval', 'product-category']);
    expect(failing.code).toBe(1);
    expect(failing.stdout).toMatch(/record p0003\s+"tables"\s+"lighting"\s+exact\s+FAIL/);
    expect(failing.stdout).toContain('9 passed, 1 failed');
  }, 120_000);
});
