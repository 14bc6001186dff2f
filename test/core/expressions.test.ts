import { describe, expect, it } from 'vitest';
import {
  checkExpression,
  evaluateCondition,
  findTemplates,
  parseTemplate,
  referencedSteps,
  renderTemplate,
} from '../../src/core/expressions.js';
import type { ExpressionContext } from '../../src/core/model.js';

const ctx: ExpressionContext = {
  input: { source: 'db', limit: 10, tags: ['a', 'b'] },
  steps: { typing: { rows: 21, columns: ['id', 'name'] }, score: { value: 42 }, empty: null },
  run: { id: 'run-1', attempt: 1, pipeline: 'demo', version: 3 },
  secrets: { TOKEN: 's3cr3t' },
};

describe('findTemplates', () => {
  it('finds every expression in nested strings, in order', () => {
    const value = { a: 'x ${{ input.source }} y ${{run.id}}', b: [{ c: '${{ steps.typing.rows * 2 }}' }], d: 5, e: 'plain' };
    expect(findTemplates(value)).toEqual(['input.source', 'run.id', 'steps.typing.rows * 2']);
  });

  it('keeps braces and "}}" inside an expression together', () => {
    expect(findTemplates('${{ {"a": {"b": 1}} }}')).toEqual(['{"a": {"b": 1}}']);
    expect(findTemplates('${{ "}}" & input.source }} rest')).toEqual(['"}}" & input.source']);
  });
});

describe('parseTemplate', () => {
  it('reports an unterminated template', () => {
    expect(parseTemplate('run ${{ input.source').error).toMatch(/unterminated "\$\{\{" at character 5/);
  });
});

describe('renderTemplate', () => {
  it('keeps the value type when a string is exactly one template', async () => {
    const rendered = await renderTemplate(
      { rows: '${{ steps.typing.rows }}', typing: '${{ steps.typing }}', cols: ' ${{ steps.typing.columns }} ', ok: '${{ true }}' },
      ctx,
    );
    expect(rendered).toEqual({ rows: 21, typing: { rows: 21, columns: ['id', 'name'] }, cols: ['id', 'name'], ok: true });
  });

  it('interpolates strings as they are and other values as JSON', async () => {
    const rendered = await renderTemplate('src=${{ input.source }} n=${{ input.limit }} t=${{ input.tags }} o=${{ steps.score }} z=${{ steps.empty }}', ctx);
    expect(rendered).toBe('src=db n=10 t=["a","b"] o={"value":42} z=null');
  });

  it('renders undefined as nothing inside text, drops the key for a whole template, null in lists', async () => {
    const rendered = await renderTemplate({ text: 'a${{ input.missing }}b', gone: '${{ input.missing }}', list: ['${{ input.missing }}'] }, ctx);
    expect(rendered).toEqual({ text: 'ab', list: [null] });
  });

  it('returns plain arrays, not JSONata sequences', async () => {
    const rendered = (await renderTemplate('${{ input.tags.($ & "!") }}', ctx)) as unknown[];
    expect(rendered).toEqual(['a!', 'b!']);
    expect(Object.keys(rendered)).toEqual(['0', '1']);
  });

  it('copies deeply and leaves the original alone', async () => {
    const original = { nested: { list: [1, '${{ run.attempt }}'] }, n: 1, b: false, z: null };
    const rendered = await renderTemplate(original, ctx);
    expect(rendered).toEqual({ nested: { list: [1, 1] }, n: 1, b: false, z: null });
    expect(original.nested.list[1]).toBe('${{ run.attempt }}');
  });

  it('reads secrets', async () => {
    expect(await renderTemplate('Bearer ${{ secrets.TOKEN }}', ctx)).toBe('Bearer s3cr3t');
  });

  it('throws EXPRESSION_FAILED naming the expression on evaluation errors', async () => {
    await expect(renderTemplate({ a: 'x ${{ $number("abc") }}' }, ctx)).rejects.toMatchObject({
      code: 'EXPRESSION_FAILED',
      message: expect.stringContaining('expression "$number(\\"abc\\")" failed'),
    });
  });

  it('throws EXPRESSION_FAILED on syntax errors and unterminated templates', async () => {
    await expect(renderTemplate('${{ 1 + }}', ctx)).rejects.toMatchObject({ code: 'EXPRESSION_FAILED' });
    await expect(renderTemplate('${{ 1 + 1', ctx)).rejects.toMatchObject({ code: 'EXPRESSION_FAILED' });
  });

  it('keeps secret values out of error messages', async () => {
    const err = await renderTemplate('${{ $number(secrets.TOKEN) }}', ctx).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).not.toContain('s3cr3t');
    expect((err as Error).message).toContain('***');
  });
});

describe('evaluateCondition', () => {
  it.each([
    ['steps.score.value > 10', true],
    ['steps.score.value > 100', false],
    ['input.missing', false],
    ['input.source', true],
    ['""', false],
    ['0', false],
    ['[]', false],
    ['steps.typing', true],
    ['steps.empty', false],
    ['run.attempt = 1 and input.limit = 10', true],
  ])('%s is %s', async (expr, expected) => {
    expect(await evaluateCondition(expr, ctx)).toBe(expected);
  });

  it('fails with EXPRESSION_FAILED on errors', async () => {
    await expect(evaluateCondition('$number("x") > 1', ctx)).rejects.toMatchObject({ code: 'EXPRESSION_FAILED' });
  });
});

describe('checkExpression', () => {
  it('returns null for valid expressions', () => {
    expect(checkExpression('steps.score.value > 10')).toBeNull();
    expect(checkExpression('$length(steps.summarize.summary) > 20')).toBeNull();
  });

  it('returns the syntax error with its position', () => {
    expect(checkExpression('a +')).toBe('Unexpected end of expression (at position 3)');
    expect(checkExpression('$foo(')).toMatch(/Expected "\)".*\(at position 5\)/);
  });
});

describe('referencedSteps', () => {
  it('finds steps.X in if and in with templates, deduplicated', () => {
    const step = {
      if: 'steps.score.value > 10 and steps.typing.rows > 0',
      with: { prompt: 'Summarize: ${{ $string(steps.typing) }}', n: '${{ steps.`my-step`.count + steps["other"].n }}' },
    };
    expect(referencedSteps(step)).toEqual(['score', 'typing', 'my-step', 'other']);
  });

  it('ignores steps that are fields of something else, variables and text outside templates', () => {
    const step = { if: null, with: { a: '${{ record.steps.x + $steps.y + $$.steps.root }}', b: 'steps.plain is not a template' } };
    expect(referencedSteps(step)).toEqual(['root']);
  });
});
