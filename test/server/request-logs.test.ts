/**
 * The server's request log: probes (/healthz, /readyz, /metrics) are logged at debug, so an info log is not
 * flooded by monitoring; other requests at info; a live stream's `?token=` never reaches the log.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { requestSerializers } from '../../src/server/log-redaction.js';
import { startHarness, type Harness } from './server-harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function memoryLogger(level: string): { logger: pino.Logger; lines: () => Array<Record<string, any>> } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  const logger = pino({ level, serializers: requestSerializers }, stream);
  return { logger, lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l)) };
}

describe('request logs', () => {
  it('logs probes at debug only, other requests at info, and never a token', async () => {
    const info = memoryLogger('info');
    h = await startHarness({}, { loggerInstance: info.logger, webRoot: false });
    for (const url of ['/healthz', '/readyz', '/metrics', '/api/runs?token=s3cret-value']) await h.app.inject({ url });
    const urls = info.lines().filter((l) => l.req).map((l) => l.req.url);
    expect(urls).toEqual(['/api/runs?token=***']);
    expect(JSON.stringify(info.lines())).not.toContain('s3cret-value');
    await h.close();

    const debug = memoryLogger('debug');
    h = await startHarness({}, { loggerInstance: debug.logger, webRoot: false });
    await h.app.inject({ url: '/healthz' });
    expect(debug.lines().find((l) => l.msg === 'probe answered')).toMatchObject({ level: 20, req: { url: '/healthz' }, res: { statusCode: 200 } });
  });
});
