/** A failed step shows the user's error (exit code and stderr tail, or the user's own stack frames), never the engine's stack. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './server-harness.js';

const YAML = `
name: failing
fail_fast: false
steps:
  noisy:
    uses: command
    with: { run: "i=1; while [ $i -le 60 ]; do printf 'line %s %0100d\\\\n' $i 0 >&2; i=$((i+1)); done; exit 7" }
  killed:
    uses: command
    with: { run: "kill -TERM $$" }
  thrower:
    uses: function
    with: { name: explode }
`;

function explodeInUserCode(): never {
  throw new TypeError('the input has no rows');
}

interface StepView {
  name: string;
  error: { code: string; message: string; stack?: string } | null;
  history: Array<{ error: { code: string; message: string; stack?: string } | null }>;
}

let h: Harness;
let steps: Record<string, StepView>;
let answer: string;

beforeAll(async () => {
  h = await startHarness({ explode: () => explodeInUserCode() });
  const put = await h.app.inject({ method: 'PUT', url: '/api/pipelines/failing', payload: YAML, headers: { 'content-type': 'application/yaml' } });
  expect(put.statusCode).toBe(201);
  const run = (await h.app.inject({ method: 'POST', url: '/api/pipelines/failing/runs', payload: { input: {} } })).json();
  await h.engine.waitForRun(run.id as string);
  const view = await h.app.inject({ url: `/api/runs/${run.id}` });
  answer = view.body + (await h.app.inject({ url: `/api/runs/${run.id}/events` })).body + (await h.app.inject({ url: '/api/dead-letters' })).body;
  steps = Object.fromEntries((view.json().steps as StepView[]).map((s) => [s.name, s]));
});

afterAll(async () => h?.close());

describe('errors users can read', () => {
  it('a failed command shows its exit code and the last 20 stderr lines, within 4 KiB, and no command line or stack', () => {
    const error = steps['noisy']!.error!;
    expect(error.code).toBe('COMMAND_FAILED');
    expect(error.message).toMatch(/^command exited with code 7; last stderr lines:\n/);
    expect(error.message).toContain(`line 60 ${'0'.repeat(100)}`);
    expect(error.message).toContain('line 41 ');
    expect(error.message).not.toContain('line 40 ');
    expect(error.message.length).toBeLessThanOrEqual(4 * 1024 + 100);
    expect(error.message).not.toContain('while');
    expect(error.stack).toBeUndefined();
    expect(steps['killed']!.error!.message).toBe('command was killed by SIGTERM');
  });

  it('a function that throws shows its own stack frames, without the engine\'s', () => {
    const error = steps['thrower']!.error!;
    expect(error.message).toBe('the input has no rows');
    expect(error.stack).toContain('TypeError: the input has no rows');
    expect(error.stack).toContain('explodeInUserCode');
    expect(error.stack).toContain('readable-errors.test.ts');
    expect(error.stack).not.toMatch(/src\/(engine|steps)\//);
    expect(error.stack).not.toContain('node:internal');
  });

  it('no API answer (run, events, dead letters) holds an engine stack frame', () => {
    expect(answer).not.toMatch(/(dist|src)\/(engine|steps|core)\/[\w-]+\.(js|ts):\d+/);
    expect(answer).not.toContain('node:internal');
  });
});
