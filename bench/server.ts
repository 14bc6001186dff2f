/**
 * HTTP benchmark of `sluice serve` on SQLite, with load from other processes over loopback:
 *
 *   npx tsx bench/server.ts [--runs 20000] [--concurrency 64] [--subscribers 100] [--workers 0] [--rate 0]
 *
 * - run creation: POST /api/pipelines/bench/runs over keep-alive connections (`--concurrency` in flight),
 *   each with its own idempotency key; runs/s = runs / wall time. `--rate R` paces creation at R runs/s.
 * - SSE delivery: `--subscribers` connections to /api/stream?pipeline=bench held by a third process while
 *   the runs are created; delivery latency = arrival time - the event's `at` (same machine clock), p50/p99
 *   over every `run.queued` event at every subscriber.
 * - CPU seconds of the server and of the subscriber process (Linux /proc): steadier than wall times when other
 *   work shares the machine.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(import.meta.url), '..', '..');

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}

/** Subscriber role: holds N SSE streams, prints latencies as JSON when it gets SIGTERM. */
async function subscribers(base: string, n: number, expected: number): Promise<void> {
  const latencies: number[] = [];
  let done = 0;
  const agent = new Agent({ keepAlive: true, maxSockets: n });
  await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<void>((resolve) => {
          let seen = 0;
          let buffer = '';
          request(`${base}/api/stream?pipeline=bench`, { agent }, (res) => {
            res.setEncoding('utf8');
            resolve();
            res.on('data', (chunk: string) => {
              const now = Date.now();
              buffer += chunk;
              let end: number;
              while ((end = buffer.indexOf('\n\n')) >= 0) {
                const block = buffer.slice(0, end);
                buffer = buffer.slice(end + 2);
                if (!block.includes('event: run.queued')) continue;
                // `at` is the last field of the event's JSON: read it without parsing the whole event, so that
                // the many clients this one process plays take less of the CPU the server shares with them.
                latencies.push(now - Number(block.slice(block.lastIndexOf('"at":') + 5, block.lastIndexOf('}'))));
                if (++seen === expected) done += 1;
              }
            });
          }).end();
        }),
    ),
  );
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (done === n) {
        clearInterval(timer);
        resolve();
      }
    }, 50);
    process.once('SIGTERM', () => {
      clearInterval(timer);
      resolve();
    });
  });
  process.stdout.write(`${JSON.stringify({ latencies: latencies.length, done, ...summarize(latencies) })}\n`);
  process.exit(0);
}

function summarize(values: number[]): { p50: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? NaN };
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); NaN elsewhere. */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

function waitForLine(child: ChildProcess, stream: 'stdout' | 'stderr', pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let text = '';
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}: ${text}`)), 60_000);
    child[stream]!.on('data', (d: Buffer) => {
      text += d.toString();
      const m = pattern.exec(text);
      if (m) {
        clearTimeout(t);
        resolve(m);
      }
    });
  });
}

function post(agent: Agent, base: string, path: string, body: string, contentType = 'application/json', method = 'POST'): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, agent, headers: { 'content-type': contentType, 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function main(): Promise<void> {
  const runs = arg('runs', 20_000);
  const concurrency = arg('concurrency', 64);
  const subs = arg('subscribers', 100);
  const workers = arg('workers', 0);
  const rate = arg('rate', 0);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-server-'));
  const tsx = ['--import', 'tsx'];
  const server = spawn(process.execPath, [...tsx, join(root, 'src/cli/main.ts'), '--store', `sqlite:${join(dir, 's.db')}`, 'serve', '--port', '0', '--workers', String(workers), '--no-cron'], {
    env: { ...process.env, SLUICE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let subscriberProc: ChildProcess | undefined;
  try {
    const base = (await waitForLine(server, 'stderr', /sluice serve on (http:\/\/\S+)/))[1]!;
    const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
    const yaml = 'steps:\n  a: { uses: function, with: { name: noop } }\n';
    if ((await post(agent, base, '/api/pipelines/bench', yaml, 'application/yaml', 'PUT')) !== 201) throw new Error('could not register the pipeline');
    if (subs > 0) {
      subscriberProc = spawn(process.execPath, [...tsx, fileURLToPath(import.meta.url), '--role-subscribers', base, String(subs), String(runs)], { stdio: ['ignore', 'pipe', 'inherit'] });
      await waitForLine(subscriberProc, 'stdout', /ready/);
    }
    let next = 0;
    let failed = 0;
    const cpuAtStart = { server: cpuSeconds(server.pid), subscribers: cpuSeconds(subscriberProc?.pid) };
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < runs) {
          const i = next++;
          // With --rate, request i is sent no earlier than i / rate seconds after the start.
          const due = rate > 0 ? started + (i * 1000) / rate - performance.now() : 0;
          if (due > 0) await new Promise((r) => setTimeout(r, due));
          const status = await post(agent, base, '/api/pipelines/bench/runs', JSON.stringify({ input: { i }, idempotency_key: `k${i}` }));
          if (status !== 201) failed += 1;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write(`run creation over HTTP: ${runs} runs in ${seconds.toFixed(2)} s = ${Math.round(runs / seconds)} runs/s (concurrency ${concurrency}, workers ${workers}, rate ${rate || 'unlimited'}, failed ${failed})\n`);
    // CPU per 1,000 runs tells changes apart on a machine whose other load makes wall times noisy.
    const serverCpu = cpuSeconds(server.pid) - cpuAtStart.server;
    process.stdout.write(`server CPU: ${serverCpu.toFixed(2)} s = ${((serverCpu * 1000) / (runs / 1000)).toFixed(0)} ms per 1,000 runs\n`);
    if (subscriberProc) {
      const result = waitForLine(subscriberProc, 'stdout', /\{.*\}/);
      setTimeout(() => subscriberProc?.kill('SIGTERM'), 10_000).unref();
      const stats = JSON.parse((await result)[0]) as { latencies: number; done: number; p50: number; p99: number; max: number };
      const subscriberCpu = cpuSeconds(subscriberProc.pid) - cpuAtStart.subscribers;
      process.stdout.write(`subscriber process CPU: ${subscriberCpu.toFixed(2)} s\n`);
      process.stdout.write(
        `SSE delivery to ${subs} subscribers: ${stats.latencies} deliveries, ${stats.done}/${subs} complete, p50 ${stats.p50} ms, p99 ${stats.p99} ms, max ${stats.max} ms\n`,
      );
    }
    agent.destroy();
  } finally {
    subscriberProc?.kill('SIGKILL');
    server.kill('SIGTERM');
    await new Promise((r) => server.once('close', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

const role = process.argv.indexOf('--role-subscribers');
if (role >= 0) await subscribers(process.argv[role + 1]!, Number(process.argv[role + 2]), Number(process.argv[role + 3]));
else await main();
