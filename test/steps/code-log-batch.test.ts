import { describe, expect, it } from 'vitest';
import { LOG_BATCH_MS, LogBatch, type SandboxLogLine } from '../../src/steps/code/log-batch.js';

// A code step that logs without end must not cost the main thread one message per line.
describe('code step: console lines cross from the sandbox thread in batches', () => {
  it('posts 1,000 lines of 8 KiB in about 125 messages, every line once and in order', () => {
    const posts: SandboxLogLine[][] = [];
    const batch = new LogBatch((lines) => posts.push(lines), () => 0);
    for (let i = 0; i < 1000; i += 1) batch.add('info', `${i} ${'x'.repeat(8 * 1024)}`);
    batch.flush();
    expect(posts.length).toBeLessThanOrEqual(126);
    expect(posts.flat().map((l) => Number(l.line.split(' ')[0]))).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  it('posts a line after a quiet spell at once, and one that follows closely on the next poll once it has waited', () => {
    let now = 100;
    const posts: SandboxLogLine[][] = [];
    const batch = new LogBatch((lines) => posts.push(lines), () => now);
    batch.add('warn', 'starting');
    expect(posts).toEqual([[{ stream: 'warn', line: 'starting' }]]);
    now += 1;
    batch.add('info', 'next');
    batch.poll();
    expect(posts).toHaveLength(1);
    now += LOG_BATCH_MS;
    batch.poll();
    expect(posts).toEqual([[{ stream: 'warn', line: 'starting' }], [{ stream: 'info', line: 'next' }]]);
    batch.flush();
    expect(posts).toHaveLength(2);
  });
});
