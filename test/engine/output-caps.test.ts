import { afterAll, describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { builtinStepTypes, type StepFunction } from '../../src/steps/builtin.js';
import type { Store } from '../../src/store/store.js';
import { sqliteBackend } from '../support/backends.js';

const backend = sqliteBackend();
afterAll(() => backend.cleanup());

/** Runs a one-step pipeline to its end; returns the run, its attempts and its log lines. */
async function runOne(
  step: Record<string, unknown>,
  functions: Record<string, StepFunction> = {},
  maxLogBytesPerAttempt?: number,
  observe: (store: Store) => void = () => undefined,
) {
  const steps = builtinStepTypes({ functions });
  const store = await backend.create();
  observe(store);
  const engine = new Engine({ store, steps, onError: () => undefined, ...(maxLogBytesPerAttempt === undefined ? {} : { maxLogBytesPerAttempt }) });
  try {
    await engine.registerPipeline(normalizePipeline({ name: 'caps', steps: { work: step } }, { stepTypes: steps }));
    engine.startWorker({ pollMs: 20, reapMs: 50 });
    const { run } = await engine.startRun('caps');
    const ended = await engine.waitForRun(run.id);
    return { run: ended, attempts: await store.listAttempts(run.id), logs: await store.listLogs(run.id) };
  } finally {
    await engine.close();
  }
}

describe('log and error caps (every step type)', () => {
  it('keeps at most the configured log bytes of an attempt, then one marker line saying how much was dropped', async () => {
    const line = 'x'.repeat(10_000);
    const { run, logs } = await runOne({ uses: 'function', with: { name: 'chatty' } }, {
      chatty: (ctx) => {
        for (let i = 0; i < 300; i += 1) ctx.log('info', line);
        return 'done';
      },
    }, 100_000);
    expect(run.status).toBe('succeeded');
    const kept = logs.filter((l) => l.stream === 'info');
    expect(kept.reduce((sum, l) => sum + l.line.length, 0)).toBe(100_000);
    const markers = logs.filter((l) => l.line.includes('log truncated'));
    expect(markers).toHaveLength(1);
    expect(markers[0]!.line).toContain(`${300 * 10_000 - 100_000} bytes and 290 more lines dropped`);
  });

  it('writes megabytes of log in transactions of about 256 KiB, not one', async () => {
    const writes: number[] = [];
    const line = 'w'.repeat(1000);
    const { logs } = await runOne({ uses: 'function', with: { name: 'chatty' } }, {
      chatty: (ctx) => {
        for (let i = 0; i < 3000; i += 1) ctx.log('info', line);
        return 'done';
      },
    }, undefined, (store) => {
      const append = store.appendLogs.bind(store);
      store.appendLogs = (lines) => {
        writes.push(lines.reduce((sum, l) => sum + l.line.length, 0));
        return append(lines);
      };
    });
    expect(logs).toHaveLength(3000);
    expect(writes.length).toBeGreaterThanOrEqual(11);
    expect(Math.max(...writes)).toBeLessThanOrEqual(256 * 1024 + 1000);
  });

  it('takes the log limit from SLUICE_MAX_LOG_BYTES and refuses one that is no size', async () => {
    process.env['SLUICE_MAX_LOG_BYTES'] = '2kB';
    try {
      const { logs } = await runOne({ uses: 'function', with: { name: 'chatty' } }, {
        chatty: (ctx) => {
          for (let i = 0; i < 10; i += 1) ctx.log('info', 'y'.repeat(1000));
          return 'done';
        },
      });
      expect(logs.filter((l) => l.stream === 'info').reduce((sum, l) => sum + l.line.length, 0)).toBe(2000);
      process.env['SLUICE_MAX_LOG_BYTES'] = 'lots';
      const store = await backend.create();
      expect(() => new Engine({ store, steps: builtinStepTypes() })).toThrow(/SLUICE_MAX_LOG_BYTES: invalid size "lots"/);
      await store.close();
    } finally {
      delete process.env['SLUICE_MAX_LOG_BYTES'];
    }
  });

  it('caps a 5 MB error message at 64 KiB with a marker', async () => {
    const { run, attempts } = await runOne({ uses: 'function', with: { name: 'loud' } }, {
      loud: () => {
        throw new Error('e'.repeat(5_000_000));
      },
    });
    expect(run.status).toBe('failed');
    const error = attempts[0]!.error!;
    expect(error.message.length).toBeLessThan(64 * 1024 + 100);
    expect(error.message).toMatch(/more characters cut\)$/);
    expect((error.stack ?? '').length).toBeLessThan(64 * 1024 + 100);
  });
});
