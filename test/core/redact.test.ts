import { describe, expect, it } from 'vitest';
import { redactDeep, redactSecrets } from '../../src/core/redact.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { simulatePipeline } from '../../src/engine/simulate.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';

describe('secret redaction', () => {
  it('blanks secret values of 4 characters or more in text and in every string of a JSON value', () => {
    const secrets = { KEY: 'sk-12345', PIN: '12' };
    expect(redactSecrets('auth sk-12345 and sk-12345, pin 12', secrets)).toBe('auth *** and ***, pin 12');
    expect(redactDeep({ a: ['x sk-12345'], 'sk-12345': 1, n: 5, b: null }, secrets)).toEqual({ a: ['x ***'], '***': 1, n: 5, b: null });
  });

  it('lets simulated steps use secrets but answers with them blanked out', async () => {
    const steps = builtinStepTypes();
    const pipeline = normalizePipeline(
      { name: 'uses-secret', steps: { call: { uses: 'code', with: { code: "console.log('key is ' + input.key); return { header: 'Bearer ' + input.key }" } } } },
      { stepTypes: steps },
    );
    const templated = normalizePipeline(
      { name: 'templated', steps: { call: { uses: 'code', with: { code: 'return 1', timeout: '${{ secrets.TIMEOUT }}' } } } },
      { stepTypes: steps },
    );
    const [run] = await simulatePipeline(pipeline, [{ key: 'sk-live-abcdef' }], { steps, secrets: { API_KEY: 'sk-live-abcdef' }, verbose: true });
    expect(run!.status).toBe('succeeded');
    expect(run!.output).toEqual({ call: { header: 'Bearer ***' } });
    expect(run!.input).toEqual({ key: '***' });
    expect(run!.steps['call']!.logs).toEqual([{ stream: 'info', line: 'key is ***' }]);
    const [second] = await simulatePipeline(templated, [{}], { steps, secrets: { TIMEOUT: '2500ms' }, verbose: true });
    expect(second!.status).toBe('succeeded');
    expect(second!.steps['call']!.input).toMatchObject({ timeout: '***' });
  });
});
