import { describe, expect, it } from 'vitest';
import { checkExpression, evaluateCondition, renderTemplate } from '../../src/core/expressions.js';
import type { ExpressionContext } from '../../src/core/model.js';
import { backtrackingRisk } from '../../src/core/regex-risk.js';

const ctx: ExpressionContext = { input: { text: `${'a'.repeat(27)}!` }, steps: {}, run: { id: 'r', attempt: 1, pipeline: 'p', version: 1 }, secrets: {} };

describe('regexes that may backtrack', () => {
  it('fails the expression with EXPRESSION_FAILED before running the regex', async () => {
    await expect(renderTemplate('${{ $match(input.text, /^(a+)+$/) }}', ctx)).rejects.toMatchObject({
      code: 'EXPRESSION_FAILED',
      message: expect.stringMatching(/^expression "\$match\(input\.text, \/\^\(a\+\)\+\$\/\)" failed: regex \/\^\(a\+\)\+\$\/ may backtrack/),
    });
    await expect(evaluateCondition('$contains(input.text, /(a|b*)*c/)', ctx)).rejects.toMatchObject({ code: 'EXPRESSION_FAILED' });
  });

  it('is a validation problem of the expression', () => {
    expect(checkExpression('$replace(input.text, /(\\w+\\s?)*$/, "")')).toMatch(/regex .* may backtrack: the group \(\\w\+\\s\?\) is repeated by "\*"/);
    expect(checkExpression('$match(input.text, /^(ab)+[0-9]{2,4}$/)')).toBeNull();
  });

  it('tells nested repetition from ordinary patterns', () => {
    for (const risky of ['(a+)+', '(a*)*b', '(?:x{1,3})+', '(\\d+)+$', '(a|a)*', '(\\w|\\d)+']) expect(backtrackingRisk(risky), risky).not.toBeNull();
    for (const fine of ['(a|b)+', '(\\d{3}-)+', 'a+b+', '[(a+)+]', '\\(a+\\)+', '(?:ab)+', '(a+)?', '^\\w+@\\w+\\.com$']) expect(backtrackingRisk(fine), fine).toBeNull();
  });

  it('leaves ordinary regexes working', async () => {
    expect(await renderTemplate('${{ $replace("a-b-c", /-/, "+") }}', ctx)).toBe('a+b+c');
  });
});

describe('long evaluations', () => {
  it('hand the event loop back while they run', async () => {
    let finished = false;
    let ranDuring = false;
    // Long past the 10 ms between yields, and far under the 5 s limit even on a loaded machine.
    const pending = renderTemplate('${{ $count([1..20000].($ * 2)) }}', ctx).finally(() => {
      finished = true;
    });
    setImmediate(() => {
      ranDuring = !finished;
    });
    expect(await pending).toBe(20_000);
    expect(ranDuring).toBe(true);
  });

  it('fail with EXPRESSION_FAILED once past the time limit', async () => {
    const endless = '${{ ($loop := function($n) { $loop($n + 1) }; $loop(0)) }}';
    await expect(renderTemplate(endless, ctx)).rejects.toMatchObject({ code: 'EXPRESSION_FAILED', message: expect.stringMatching(/took longer than 5000 ms/) });
  }, 30_000);
});
