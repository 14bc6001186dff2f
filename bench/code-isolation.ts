/**
 * Does a `code` step at its limits stall the server? Starts `sluice serve` (the built package, `bin/sluice.js`)
 * on a SQLite file, then for each scenario starts one run of N parallel `code` steps and, until the run ends,
 * asks `GET /healthz` every 10 ms from this process (one request at a time). Prints the health-check latency
 * (p50, p99, max), how long the run took against the steps' time limit, the server's peak resident memory
 * (its own, not its sandbox processes'), how many sandbox processes it had at most, and how much the store file
 * grew. After the server stopped, it says how many of its sandbox processes were left (should be none).
 *
 * Scenarios: `spin` (`while (true) {}` until the time limit), `native` (one long native call: `eval` of a
 * 6 MB expression, which the interrupt handler cannot stop), `flood` (console.log of 100 kB lines without end),
 * `throw` (an error with a 50-million-character message thrown from outside the function wrapper).
 * `--repeat N` runs each scenario N times and prints each run, then the medians of p50, p99 and max.
 * The server stops with SIGTERM (SIGKILL after 10 s), so `--node-args "--cpu-prof --cpu-prof-dir=DIR"` profiles it.
 *
 *   npm run build && npx tsx bench/code-isolation.ts [--steps 8] [--timeout 2s] [--scenarios spin,native,flood,throw] [--repeat 1] [--node-args ""] [--cli bin/sluice.js]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(fileURLToPath(import.meta.url), '..', '..');
const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '8' },
    timeout: { type: 'string', default: '2s' },
    scenarios: { type: 'string', default: 'spin,native,flood,throw' },
    repeat: { type: 'string', default: '1' },
    'node-args': { type: 'string', default: '' },
    cli: { type: 'string', default: join(root, 'bin', 'sluice.js') },
  },
});

const SCENARIOS: Record<string, { code: string; memory?: string }> = {
  spin: { code: 'while (true) {}' },
  native: { code: 'return eval("1+".repeat(3e6) + "1")', memory: '256MiB' },
  flood: { code: 'const line = "x".repeat(100000); for (;;) console.log(line)' },
  throw: { code: '}); throw new Error("t".repeat(5e7)); (function () {', memory: '256MiB' },
};

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}

function waitForLine(child: ChildProcess, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const match = pattern.exec(buffer);
      if (match) resolve(match);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${buffer}`)));
  });
}

function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

/** Child processes of `pid` (Linux), each thread's list read from /proc. */
function childPids(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) => readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
  } catch {
    return [];
  }
}

/** Running and not a zombie. */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/** Every sandbox process the server started, for the check that none is left after it stopped. */
const sandboxes = new Set<number>();

function storeBytes(dir: string): number {
  let total = 0;
  for (const name of ['s.db', 's.db-wal']) total += statSync(join(dir, name), { throwIfNoEntry: false })?.size ?? 0;
  return total;
}

async function json(base: string, path: string, init?: RequestInit): Promise<{ status: number; body: unknown; bytes: number }> {
  const res = await fetch(`${base}${path}`, init);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // A non-JSON answer is reported as text.
  }
  return { status: res.status, body, bytes: text.length };
}

/** /healthz latency of one scenario run: p50, p99 and max in ms. */
type Latency = [p50: number, p99: number, max: number];

async function scenario(base: string, server: ChildProcess, dir: string, name: string, steps: number, timeout: string, round = 0): Promise<Latency> {
  const { code, memory } = SCENARIOS[name]!;
  const lines = Array.from({ length: steps }, (_, i) => `  s${i}: { uses: code, with: { code: ${JSON.stringify(code)}, timeout: ${timeout}${memory ? `, memory_limit: ${memory}` : ''} } }`);
  const put = await json(base, `/api/pipelines/iso-${name}-${round}`, { method: 'PUT', headers: { 'content-type': 'application/yaml' }, body: `max_parallel: ${steps}\nfail_fast: false\nsteps:\n${lines.join('\n')}\n` });
  if (put.status !== 201 && put.status !== 200) throw new Error(`could not register the pipeline: ${put.status} ${JSON.stringify(put.body)}`);
  const storeBefore = storeBytes(dir);
  const created = await json(base, `/api/pipelines/iso-${name}-${round}/runs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  const runId = (created.body as { run?: { id?: string }; id?: string }).run?.id ?? (created.body as { id?: string }).id;
  if (!runId) throw new Error(`could not start a run: ${created.status} ${JSON.stringify(created.body)}`);
  const started = performance.now();
  const latencies: number[] = [];
  let peakRss = 0;
  let peakSandboxes = 0;
  let status = '';
  let checks = 0;
  for (;;) {
    const t0 = performance.now();
    await fetch(`${base}/healthz`).then((res) => res.text());
    latencies.push(performance.now() - t0);
    peakRss = Math.max(peakRss, rssBytes(server.pid!));
    const children = childPids(server.pid!);
    for (const pid of children) sandboxes.add(pid);
    peakSandboxes = Math.max(peakSandboxes, children.length);
    if (++checks % 10 === 0) {
      const run = await json(base, `/api/runs/${runId}`);
      status = run.status === 200 ? String((run.body as { status?: string; run?: { status?: string } }).run?.status ?? (run.body as { status?: string }).status) : `HTTP ${run.status}`;
      if (status !== 'running' && status !== 'queued' && status !== 'undefined') break;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const wall = (performance.now() - started) / 1000;
  const events = await json(base, `/api/runs/${runId}/events`);
  latencies.sort((a, b) => a - b);
  const f = (ms: number) => `${ms.toFixed(1)} ms`;
  process.stdout.write(
    `${name.padEnd(7)} ${steps} steps, timeout ${timeout}: run ${status} after ${wall.toFixed(2)} s; /healthz over ${latencies.length} checks p50 ${f(percentile(latencies, 50))}, ` +
      `p99 ${f(percentile(latencies, 99))}, max ${f(latencies.at(-1)!)}; server peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB, ${peakSandboxes} sandbox processes; ` +
      `store grew ${((storeBytes(dir) - storeBefore) / 2 ** 20).toFixed(1)} MiB; events answer ${(events.bytes / 1024).toFixed(0)} kB (HTTP ${events.status})\n`,
  );
  return [percentile(latencies, 50), percentile(latencies, 99), latencies.at(-1)!];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** The floor on this machine now: /healthz with nothing running, 100 checks 10 ms apart. */
async function baseline(base: string): Promise<void> {
  const latencies: number[] = [];
  for (let i = 0; i < 100; i += 1) {
    const t0 = performance.now();
    await fetch(`${base}/healthz`).then((res) => res.text());
    latencies.push(performance.now() - t0);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  latencies.sort((a, b) => a - b);
  process.stdout.write(`idle    /healthz over 100 checks p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms\n`);
}

async function main(): Promise<void> {
  const steps = Number(values.steps);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-isolation-'));
  const server = spawn(process.execPath, [...values['node-args']!.split(' ').filter(Boolean), values.cli!, '--store', `sqlite:${join(dir, 's.db')}`, 'serve', '--port', '0', '--workers', String(steps * 2), '--no-cron'], {
    env: { ...process.env, SLUICE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  try {
    const base = (await waitForLine(server, /sluice serve on (http:\/\/\S+)/))[1]!;
    process.stdout.write(`sluice serve (${values.cli}), ${steps} parallel code steps per run, SQLite; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}\n`);
    await baseline(base);
    const repeat = Number(values.repeat);
    const runs = new Map<string, Latency[]>();
    for (let round = 0; round < repeat; round++) {
      for (const name of values.scenarios!.split(',')) runs.set(name, [...(runs.get(name) ?? []), await scenario(base, server, dir, name, steps, values.timeout!, round)]);
    }
    if (repeat > 1) {
      process.stdout.write(`medians of ${repeat} runs; load average now ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}\n`);
      for (const [name, list] of runs) {
        const [p50, p99, max] = [0, 1, 2].map((i) => median(list.map((l) => l[i]!)).toFixed(1));
        process.stdout.write(`${name.padEnd(7)} /healthz p50 ${p50} ms, p99 ${p99} ms, max ${max} ms\n`);
      }
    }
  } finally {
    const closed = new Promise((resolve) => server.once('close', resolve));
    server.kill('SIGTERM');
    const forced = setTimeout(() => server.kill('SIGKILL'), 10_000);
    await closed;
    clearTimeout(forced);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const left = [...sandboxes].filter(isRunning);
    process.stdout.write(`server stopped; ${sandboxes.size} sandbox processes seen, ${left.length} left running${left.length > 0 ? ` (${left.join(' ')})` : ''}\n`);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
