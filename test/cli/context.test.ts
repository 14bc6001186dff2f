import { describe, expect, it } from 'vitest';
import { artifactsSetting, llmPricesFromEnv, secretsFromEnv } from '../../src/cli/context.js';

describe('CLI environment', () => {
  it('reads the llm price table from SLUICE_LLM_PRICES and names what is wrong in it', () => {
    expect(llmPricesFromEnv({})).toBeUndefined();
    expect(llmPricesFromEnv({ SLUICE_LLM_PRICES: '{"gpt-4o-mini":{"input_per_1k":0.00015,"output_per_1k":0.0006}}' })).toEqual({
      'gpt-4o-mini': { input_per_1k: 0.00015, output_per_1k: 0.0006 },
    });
    expect(() => llmPricesFromEnv({ SLUICE_LLM_PRICES: '{nope' })).toThrow(/SLUICE_LLM_PRICES is not valid JSON/);
    expect(() => llmPricesFromEnv({ SLUICE_LLM_PRICES: '{"m":{"input_per_1k":"1"}}' })).toThrow(/price of m needs numbers/);
  });

  it('takes secrets from SLUICE_SECRET_ variables and puts artifacts beside a SQLite store', () => {
    expect(secretsFromEnv({ SLUICE_SECRET_OPENAI_API_KEY: 'k', OTHER: 'x' })).toEqual({ OPENAI_API_KEY: 'k' });
    expect(artifactsSetting('sqlite:/data/s.db', {})).toBe('/data/artifacts');
    expect(artifactsSetting('postgres://h/db', { SLUICE_ARTIFACTS: '/shared/art' })).toBe('/shared/art');
  });

  it('keeps artifacts in a PostgreSQL database unless SLUICE_ARTIFACTS names a folder, a bucket or the store', () => {
    expect(artifactsSetting('postgres://h/db', {})).toBe('store');
    expect(artifactsSetting('postgresql://h/db', {})).toBe('store');
    expect(artifactsSetting('sqlite:/data/s.db', { SLUICE_ARTIFACTS: 's3://bucket/runs' })).toBe('s3://bucket/runs');
    expect(artifactsSetting('sqlite:/data/s.db', { SLUICE_ARTIFACTS: 'store' })).toBe('store');
  });
});
