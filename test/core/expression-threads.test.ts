/** Expressions that may run a regex, evaluated in worker threads (src/engine/expression-pool.ts). */
import { afterAll, describe, expect, it } from 'vitest';
import { evaluateCondition, renderTemplate, useIsolatedEvaluator } from '../../src/core/expressions.js';
import type { ExpressionContext } from '../../src/core/model.js';
import { ExpressionPool } from '../../src/engine/expression-pool.js';

const ctx: ExpressionContext = { input: { text: `${'a'.repeat(40)}!`, word: 'hello' }, steps: {}, run: { id: 'r', attempt: 1, pipeline: 'p', version: 1 }, secrets: { token: 's3cr3t-value' } };

describe('expression threads', () => {
  const pool = new ExpressionPool({ size: 1, timeoutMs: 1000 });
  let isolated = 0;
  useIsolatedEvaluator((expr, c) => {
    isolated += 1;
    return pool.evaluate(expr, c);
  });
  afterAll(async () => {
    useIsolatedEvaluator(null);
    await pool.close();
  });

  it('evaluates regex and $eval expressions in a thread, with the results and errors of in-process evaluation', async () => {
    isolated = 0;
    expect(await renderTemplate('${{ $replace(input.word, /l+/, "L") }}', ctx)).toBe('heLo');
    expect(await evaluateCondition('$contains(input.word, /^h/)', ctx)).toBe(true);
    expect(await renderTemplate('${{ input.word }} and ${{ $uppercase(input.word) }}', ctx)).toBe('hello and HELLO');
    expect(isolated).toBe(2);
    // A JSONata error inside the thread keeps its code and message; secrets stay blanked.
    await expect(renderTemplate('${{ $eval("$error(\'bad \' & $$.secrets.token)", $) }}', ctx)).rejects.toMatchObject({
      code: 'EXPRESSION_FAILED',
      message: expect.not.stringContaining('s3cr3t-value'),
    });
  });

  it('terminates a thread stuck in a regex and runs the next expression in a fresh one', async () => {
    // One thread: the second expression waits for the first, which only the time limit ends.
    const stuck = renderTemplate({ check: '${{ $eval("$match(input.text, /^(a+)+$/)") }}' }, ctx);
    const next = renderTemplate('${{ $split(input.word, /l/) }}', ctx);
    await expect(stuck).rejects.toMatchObject({ code: 'EXPRESSION_TIMEOUT', message: expect.stringMatching(/^check: expression .* ran longer than 1000 ms and was stopped/) });
    expect(await next).toEqual(['he', '', 'o']);
    expect(pool.threadCount).toBe(1);
  });
});
