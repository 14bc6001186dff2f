/**
 * `sluice serve` on PostgreSQL rides out a restart of PostgreSQL while requests are in flight: the process stays
 * up, requests meanwhile succeed or are answered 503 STORE_UNAVAILABLE (never 500, never a crash), /readyz says
 * not ready while the server is down and ready after, and a run started after the restart succeeds.
 * Needs the embedded server (it restarts it): runs only without SLUICE_TEST_POSTGRES_URL. Needs dist/.
 */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killSpawned, REPO_ROOT, sleep, startCli, tempDir, waitFor } from '../support/cli.js';
import { acquirePrivatePostgres, createDatabase, postgresDisabled, releasePrivatePostgres, type PostgresServer } from '../support/postgres.js';

const PIPELINE = `name: restart
steps:
  add:
    uses: code
    with:
      code: 'return { sum: input.a + input.b };'
`;

/** Reads the address `sluice serve` prints once it listens. */
function listening(child: ChildProcess, log: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      log.push(d);
      const m = /sluice serve on (http:\/\/\S+)/.exec(log.join(''));
      if (m) resolve(m[1]!);
    });
    child.stdout!.setEncoding('utf8').on('data', (d: string) => log.push(d));
    child.once('exit', (code) => reject(new Error(`sluice serve exited ${code}:\n${log.join('')}`)));
  });
}

describe.skipIf(postgresDisabled() || process.env['SLUICE_TEST_POSTGRES_URL'] !== undefined)('sluice serve while PostgreSQL restarts', () => {
  let server: PostgresServer;
  let url = '';
  let drop: (() => Promise<void>) | undefined;
  const tmp = tempDir('sluice-pg-restart-');
  beforeAll(async () => {
    if (!existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
    // A server of this file alone: the test restarts it.
    server = await acquirePrivatePostgres();
    const db = await createDatabase(server);
    url = db.url;
    drop = db.drop;
  });
  afterEach(() => killSpawned());
  afterAll(async () => {
    await drop?.().catch(() => undefined);
    await releasePrivatePostgres();
    tmp.cleanup();
  });

  it('stays up, answers 503 STORE_UNAVAILABLE or succeeds meanwhile, and works again by itself', async () => {
    writeFileSync(path.join(tmp.dir, 'restart.yaml'), PIPELINE);
    const log: string[] = [];
    const serve = startCli(['--store', url, 'serve', '--port', '0', '--workers', '2', '--no-cron'], { cwd: tmp.dir, env: { SLUICE_LOG_LEVEL: 'fatal' } });
    const base = await listening(serve, log);
    const put = await fetch(`${base}/api/pipelines/restart`, { method: 'PUT', headers: { 'content-type': 'application/yaml' }, body: PIPELINE });
    expect(put.status, await put.clone().text()).toBe(201);

    // Traffic until told to stop: run creations, listings and readiness probes, each answer kept.
    const answers: Array<{ status: number; code?: string }> = [];
    const ready: number[] = [];
    let stop = false;
    // Requests start every 20 ms without waiting for earlier ones (at most 16 in flight per loop), so some arrive
    // while PostgreSQL is down even when the ones in flight wait for it.
    const traffic = async (request: () => Promise<Response>, into: (r: Response, body: any) => void) => {
      const inFlight = new Set<Promise<void>>();
      while (!stop) {
        if (inFlight.size < 16) {
          const one: Promise<void> = request()
            .then(async (res) => into(res, await res.json().catch(() => null)))
            // The server process itself stopped answering: the checks below report it.
            .catch(() => void answers.push({ status: 0 }))
            .finally(() => inFlight.delete(one));
          inFlight.add(one);
        }
        await sleep(20);
      }
      await Promise.all(inFlight);
    };
    const keep = (r: Response, body: any) => answers.push({ status: r.status, ...(body?.error ? { code: body.error.code as string } : {}) });
    const post = () => fetch(`${base}/api/pipelines/restart/runs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: { a: 1, b: 2 } }) });
    const loops = [
      traffic(post, keep),
      traffic(post, keep),
      traffic(() => fetch(`${base}/api/runs?limit=5`), keep),
      traffic(() => fetch(`${base}/readyz`), (r) => ready.push(r.status)),
    ];
    await waitFor('traffic before the restart', () => answers.length >= 10);
    await server.restart();
    await waitFor('ready again', async () => {
      if (serve.exitCode !== null) throw new Error(`sluice serve exited ${serve.exitCode} during the restart:\n${log.join('')}`);
      return (await fetch(`${base}/readyz`).catch(() => null))?.status === 200;
    });
    const after = answers.length;
    await waitFor('traffic after the restart', () => answers.length >= after + 10);
    stop = true;
    await Promise.all(loops);

    console.log(`${answers.length} answers while PostgreSQL restarted: ${answers.filter((a) => a.status === 503).length} were 503, readyz 503 ${ready.filter((r) => r === 503).length} times`);
    expect(serve.exitCode, log.join('')).toBeNull();
    const failures = answers.filter((a) => a.status !== 200 && a.status !== 201);
    for (const f of failures) expect(f, log.join('')).toEqual({ status: 503, code: 'STORE_UNAVAILABLE' });
    expect(answers.slice(after).every((a) => a.status === 200 || a.status === 201)).toBe(true);
    // Requests that arrive while the server is down are answered at once rather than left waiting for it.
    expect(failures.length).toBeGreaterThan(0);
    expect(ready).toContain(503);
    expect(ready.at(-1)).toBe(200);

    const res = await post();
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const run = await waitFor('the new run to succeed', async () => {
      const r = (await (await fetch(`${base}/api/runs/${id}`)).json()) as { status: string };
      return r.status === 'succeeded' ? r : null;
    });
    expect(run.status).toBe('succeeded');
    serve.kill('SIGTERM');
  });
});
