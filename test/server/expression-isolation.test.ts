/** Expressions that may run a regex evaluate in worker threads: a backtracking regex never stalls the server. */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import { expressionPool, installExpressionPool } from '../../src/engine/expression-pool.js';
import { startHarness, type Harness } from './server-harness.js';

const YAML = { 'content-type': 'application/yaml' };

// `\d*\d*\d*x` passes the validation screen (it is polynomial, not exponential) and on 20,000 digits runs for
// hours; `(a+)+$` would be refused by the screen, but `$eval` builds it from run input, where no screen looks.
const REGEXES = `
name: regexes
steps:
  guarded:
    uses: function
    if: "$contains(input.digits, /\\\\d*\\\\d*\\\\d*x/)"
    with: { name: echo, args: guarded }
  shaped:
    uses: function
    with: { name: echo, args: "\${{ $eval(input.check) }}" }
  fine:
    uses: function
    with: { name: echo, args: "\${{ $replace(input.word, /o+/, '0') }}" }
`;

const PLAIN = `
name: plain
steps:
  hello:
    uses: function
    with: { name: echo, args: "\${{ input.name }}" }
`;

const INPUT = { digits: '1'.repeat(20_000), check: '$match(input.text, /^(a+)+$/)', text: `${'a'.repeat(40)}!`, word: 'foo' };

interface StepView {
  name: string;
  status: string;
  output?: unknown;
  history: Array<{ error?: { code: string; message: string } }>;
}

describe('expressions with regexes over HTTP', () => {
  let h: Harness;
  const put = (name: string, yaml: string) => h.app.inject({ method: 'PUT', url: `/api/pipelines/${name}`, payload: yaml, headers: YAML });
  const start = async (name: string, input: unknown) => (await h.app.inject({ method: 'POST', url: `/api/pipelines/${name}/runs`, payload: { input } })).json().id as string;
  const steps = async (id: string) => (await h.app.inject({ url: `/api/runs/${id}` })).json().steps as StepView[];

  beforeEach(async () => {
    h = await startHarness({ echo: (ctx) => ctx.args });
    expect((await put('regexes', REGEXES)).statusCode).toBe(201);
    expect((await put('plain', PLAIN)).statusCode).toBe(201);
  });
  afterEach(async () => h.close());
  afterAll(() => installExpressionPool({}));

  it('answers /healthz and finishes other runs while regexes backtrack in the if and with of a step', async () => {
    // Long enough that the order below never depends on the machine's speed; the pool is replaced at the end.
    installExpressionPool({ size: 2, timeoutMs: 600_000 });
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = h.app.server.address() as AddressInfo;
    const id = await start('regexes', INPUT);
    // Barrier: both backtracking expressions (the `if` and the `with`) are running in their threads.
    for (let i = 0; i < 2000 && expressionPool().busyCount < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(expressionPool().busyCount).toBe(2);

    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    const other = await start('plain', { name: 'still here' });
    expect((await h.engine.waitForRun(other, { pollMs: 20 })).status).toBe('succeeded');
    // Both regexes were still running throughout: nothing above waited for them.
    expect(expressionPool().busyCount).toBe(2);
    const during = await steps(id);
    expect(during.find((s) => s.name === 'guarded')!.status).toBe('running');
    expect(during.find((s) => s.name === 'shaped')!.status).toBe('running');
    installExpressionPool({ size: 2 });
  }, 60_000);

  it('stops a backtracking regex at the time limit and names the step and key; the pool keeps serving', async () => {
    installExpressionPool({ size: 2, timeoutMs: 1000 });
    const id = await start('regexes', INPUT);
    expect((await h.engine.waitForRun(id, { pollMs: 20 })).status).toBe('failed');
    const byName = new Map((await steps(id)).map((s) => [s.name, s]));
    expect(byName.get('guarded')!.history[0]!.error).toMatchObject({
      code: 'EXPRESSION_TIMEOUT',
      message: expect.stringMatching(/^step "guarded" if: expression "\$contains\(input\.digits, .*\)" ran longer than 1000 ms and was stopped/),
    });
    expect(byName.get('shaped')!.history[0]!.error).toMatchObject({
      code: 'EXPRESSION_TIMEOUT',
      message: expect.stringMatching(/^step "shaped" with\.args: expression "\$eval\(input\.check\)" ran longer than 1000 ms/),
    });
    // The terminated threads were replaced: regexes on ordinary input still evaluate (in a thread) as before.
    expect(byName.get('fine')).toMatchObject({ status: 'succeeded', output: 'f0' });
    const next = await start('regexes', { ...INPUT, digits: '123x', check: '$match(input.text, /^a+/).match', text: 'aab' });
    expect((await h.engine.waitForRun(next, { pollMs: 20 })).status).toBe('succeeded');
    expect(new Map((await steps(next)).map((s) => [s.name, s.output]))).toEqual(new Map([['guarded', 'guarded'], ['shaped', 'aa'], ['fine', 'f0']]));
  }, 60_000);
});
