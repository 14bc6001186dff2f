/**
 * The cost of evaluating an expression in an expression thread (src/engine/expression-pool.ts) next to
 * evaluating it on the calling thread: the same regex expression, `--count` times one after another, each way,
 * over a small and a larger context. Uses the built package (dist/).
 *
 *   npm run build && npx tsx bench/expression-thread.ts [--count 2000]
 */
import { parseArgs } from 'node:util';
import type * as Expressions from '../src/core/expressions.js';
import type * as Pool from '../src/engine/expression-pool.js';

const dist = new URL('../dist/', import.meta.url);
const { renderTemplate, useIsolatedEvaluator } = (await import(new URL('core/expressions.js', dist).href)) as typeof Expressions;
const { expressionPool, installExpressionPool } = (await import(new URL('engine/expression-pool.js', dist).href)) as typeof Pool;

const { values } = parseArgs({ options: { count: { type: 'string', default: '2000' } } });
const count = Number(values.count);
const template = '${{ $replace(input.name, /o+/, "0") }}';
const plain = '${{ input.name & "!" }}';

function context(upstreamChars: number) {
  return { input: { name: 'foo' }, steps: { fetch: { body: 'x'.repeat(upstreamChars) } }, run: { id: 'r', attempt: 1, pipeline: 'p', version: 1 }, secrets: {} };
}

async function perCall(text: string, ctx: ReturnType<typeof context>): Promise<number> {
  for (let i = 0; i < 50; i++) await renderTemplate(text, ctx);
  const started = performance.now();
  for (let i = 0; i < count; i++) await renderTemplate(text, ctx);
  return ((performance.now() - started) / count) * 1000;
}

const us = (n: number) => `${n.toFixed(1)} µs`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
installExpressionPool({ size: 1 });
// Warm-up of both ways (JIT, the thread's start) before anything is measured.
for (const on of [false, true]) {
  if (on) installExpressionPool();
  else useIsolatedEvaluator(null);
  for (const text of [template, plain]) await perCall(text, context(1000));
}
for (const chars of [0, 100_000]) {
  const ctx = context(chars);
  const here: number[] = [];
  const threaded: number[] = [];
  const plainHere: number[] = [];
  const plainThen: number[] = [];
  // Rounds alternate between the two ways, so a busy spell of the machine weighs on both; medians of 5.
  for (let round = 0; round < 5; round++) {
    useIsolatedEvaluator(null);
    here.push(await perCall(template, ctx));
    plainHere.push(await perCall(plain, ctx));
    installExpressionPool();
    threaded.push(await perCall(template, ctx));
    plainThen.push(await perCall(plain, ctx));
  }
  process.stdout.write(
    `context with ${chars} characters upstream: regex expression ${us(median(here))} on the calling thread, ${us(median(threaded))} in a thread ` +
      `(+${us(median(threaded) - median(here))}); plain expression ${us(median(plainHere))} without the pool, ${us(median(plainThen))} with it (medians of 5 rounds of ${count})\n`,
  );
}
await expressionPool().close();
