/** How each step type has `${{ }}` values written into its config: the quoting rule of README's `command` and `http` bullets. */
import { describe, expect, it } from 'vitest';
import type { ExpressionContext } from '../../src/core/model.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import { renderStepConfig } from '../../src/steps/render-config.js';

const types = builtinStepTypes();
const ctx: ExpressionContext = {
  input: { v: "it's; rm -rf ~", base: 'https://api.example.com/v1', list: ['a b', 'c'], n: 3 },
  steps: {},
  run: { id: 'r1', attempt: 1, pipeline: 'p', version: 1 },
  secrets: {},
};
const render = (type: string, written: Record<string, unknown>) => renderStepConfig(types.get(type), written, ctx);

describe('template values in step configs', () => {
  it('command: each value in a shell string is one single-quoted word; argv elements stay as they are', async () => {
    expect(await render('command', { run: 'echo ${{ input.v }} ${{ input.n }}' })).toEqual({ run: `echo 'it'\\''s; rm -rf ~' '3'` });
    expect(await render('command', { run: '${{ input.v }}' })).toEqual({ run: `'it'\\''s; rm -rf ~'` });
    expect(await render('command', { run: '${{ input.list }}' })).toEqual({ run: ['a b', 'c'] });
    expect(await render('command', { run: ['echo', '${{ input.v }}', 'x=${{ input.v }}'] })).toEqual({ run: ['echo', "it's; rm -rf ~", "x=it's; rm -rf ~"] });
    expect(await render('command', { run: 'true', env: { V: 'v=${{ input.v }}' } })).toEqual({ run: 'true', env: { V: "v=it's; rm -rf ~" } });
  });

  it('command: inside the author\'s quotes a value is escaped for them; where no quoting is safe it is refused', async () => {
    expect(await render('command', { run: 'echo "v=${{ input.v }}"' })).toEqual({ run: `echo "v=it's; rm -rf ~"` });
    expect(await render('command', { run: "echo 'v=${{ input.v }}'" })).toEqual({ run: `echo 'v=it'\\''s; rm -rf ~'` });
    const dollar = { ...ctx, input: { v: '$(id) `id` \\ "' } };
    expect(await renderStepConfig(types.get('command'), { run: 'echo "${{ input.v }}"' }, dollar)).toEqual({ run: 'echo "\\$(id) \\`id\\` \\\\ \\""' });
    for (const run of ['cat <<EOF\n${{ input.v }}\nEOF', 'echo `echo ${{ input.v }}`', 'echo ${X:-${{ input.v }}}']) {
      await expect(render('command', { run })).rejects.toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringContaining('cannot be quoted safely') });
    }
  });

  it('command: a non-POSIX shell gets no templated values in its run string', async () => {
    expect(await render('command', { run: 'echo ${{ input.n }}', shell: '/usr/bin/bash' })).toEqual({ run: "echo '3'", shell: '/usr/bin/bash' });
    await expect(render('command', { run: 'print(${{ input.v }})', shell: 'python3' })).rejects.toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringContaining('POSIX `shell`') });
  });

  it('command: shell_unsafe pastes values unquoted', async () => {
    expect(await render('command', { run: 'echo ${{ input.v }}', shell_unsafe: true })).toEqual({ run: "echo it's; rm -rf ~", shell_unsafe: true });
  });

  it('http: a value before the URL\'s :// is a base URL; every value after it is one percent-encoded component', async () => {
    const out = await render('http', { url: '${{ input.base }}/items/${{ input.v }}?q=${{ input.v }}', headers: { 'x-v': '${{ input.v }}' } });
    expect(out).toEqual({ url: `https://api.example.com/v1/items/${encodeURIComponent("it's; rm -rf ~")}?q=${encodeURIComponent("it's; rm -rf ~")}`, headers: { 'x-v': "it's; rm -rf ~" } });
    expect(await render('http', { url: '${{ input.base }}' })).toEqual({ url: 'https://api.example.com/v1' });
    const dots = { ...ctx, input: { v: '..' } };
    await expect(renderStepConfig(types.get('http'), { url: 'https://h/a/${{ input.v }}/b' }, dots)).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(await renderStepConfig(types.get('http'), { url: 'https://h/a?q=${{ input.v }}' }, dots)).toEqual({ url: 'https://h/a?q=..' });
  });

  it('other step types render values as plain text', async () => {
    expect(await render('function', { name: 'f', args: 'a ${{ input.v }}' })).toEqual({ name: 'f', args: "a it's; rm -rf ~" });
  });
});
