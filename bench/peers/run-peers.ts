/**
 * Peer benchmarks, printed as a small table; also importable so bench/run.ts
 * can print the same figures next to Sluice's.
 *
 *   npx tsx bench/peers/run-peers.ts [--jobs 20000] [--concurrency 10] [--repeat 3]
 *                                    [--only bullmq,graphile,graphile-2p]
 *
 * Each configuration runs `repeat` times (each on a fresh Redis / Postgres) and
 * reports the median run by throughput (default 3 runs: the machine is small
 * and shared, single runs are noisy).
 */
import { pathToFileURL } from 'node:url';
import { measureBullmq } from './bullmq.js';
import { measureGraphileWorker } from './graphile.js';
import { measureDbosW1, measureDbosW2 } from './dbos.js';
import { measureLanggraphW1, measureLanggraphW2 } from './langgraph.js';
import type { PeerResult } from './types.js';

export type { PeerResult } from './types.js';
export { measureBullmq } from './bullmq.js';
export { measureGraphileWorker } from './graphile.js';
export { measureDbosW1, measureDbosW2 } from './dbos.js';
export { measureLanggraphW1, measureLanggraphW2 } from './langgraph.js';

export interface PeerRunOptions {
  /** Jobs per run. Default 20,000. */
  jobs?: number;
  /** Worker concurrency (per process). Default 10. */
  concurrency?: number;
  /** Runs per configuration; the median is reported. Default 3. */
  repeat?: number;
  /** Bound on each timed run. Default 180 s. */
  timeoutMs?: number;
}

export interface PeerBenchmark {
  key: 'bullmq' | 'graphile' | 'graphile-2p' | 'dbos-w1' | 'dbos-w2' | 'dbos-w2-async' | 'langgraph-w1' | 'langgraph-w2';
  /** Short label for a side-by-side table. */
  label: string;
  run(opts?: PeerRunOptions): Promise<PeerResult>;
}

const DEFAULT_JOBS = 20_000;
const DEFAULT_CONCURRENCY = 10;

/** Runs `once` `repeat` times and returns the run with the median throughput. */
async function median(repeat: number, once: () => Promise<PeerResult>): Promise<PeerResult> {
  const runs: PeerResult[] = [];
  for (let i = 0; i < Math.max(1, repeat); i++) runs.push(await once());
  runs.sort((a, b) => a.perSecond - b.perSecond);
  return runs[Math.floor((runs.length - 1) / 2)]!;
}

/** BullMQ, 20,000 no-op jobs, one Worker with concurrency 10, on a local Redis. */
export function runBullmqPeer(opts: PeerRunOptions = {}): Promise<PeerResult> {
  return median(opts.repeat ?? 3, () =>
    measureBullmq({
      jobs: opts.jobs ?? DEFAULT_JOBS,
      concurrency: opts.concurrency ?? DEFAULT_CONCURRENCY,
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    }),
  );
}

/** graphile-worker, 20,000 no-op jobs, batching on, 1 process with concurrency 10. */
export function runGraphilePeer(opts: PeerRunOptions = {}): Promise<PeerResult> {
  return median(opts.repeat ?? 3, () =>
    measureGraphileWorker({
      jobs: opts.jobs ?? DEFAULT_JOBS,
      concurrency: opts.concurrency ?? DEFAULT_CONCURRENCY,
      processes: 1,
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    }),
  );
}

/** graphile-worker, 20,000 no-op jobs, batching on, 2 processes with concurrency 10 each. */
export function runGraphileTwoProcessPeer(opts: PeerRunOptions = {}): Promise<PeerResult> {
  return median(opts.repeat ?? 3, () =>
    measureGraphileWorker({
      jobs: opts.jobs ?? DEFAULT_JOBS,
      concurrency: opts.concurrency ?? DEFAULT_CONCURRENCY,
      processes: 2,
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    }),
  );
}

/** The durable workflow engines run far slower than the queues: a longer bound on each timed run. */
const WORKFLOW_TIMEOUT_MS = 600_000;
/** Steps of the W2 chain. */
const W2_STEPS = 1000;
/** Steps of the untimed chain each engine runs first, in the same process, before its timed W2. */
export const W2_WARM = 1000;

/** DBOS Transact, 20,000 one-step workflows enqueued in bulk, then run by one DBOS process (queue worker concurrency 256). */
export function runDbosW1Peer(opts: PeerRunOptions = {}): Promise<PeerResult> {
  return median(opts.repeat ?? 3, () =>
    measureDbosW1({ jobs: opts.jobs ?? DEFAULT_JOBS, timeoutMs: opts.timeoutMs ?? WORKFLOW_TIMEOUT_MS }),
  );
}

/** DBOS Transact, one workflow of 1,000 sequential no-op steps; `jobs` of the result is the step count. */
export function runDbosW2Peer(opts: PeerRunOptions = {}): Promise<PeerResult> {
  return median(opts.repeat ?? 3, () => measureDbosW2({ steps: W2_STEPS, warm: W2_WARM, timeoutMs: opts.timeoutMs ?? WORKFLOW_TIMEOUT_MS }));
}

/** As runDbosW2Peer with `synchronous_commit = off` on the system database (no WAL flush per step, as SQLite's synchronous=NORMAL). */
export function runDbosW2AsyncCommitPeer(opts: PeerRunOptions = {}): Promise<PeerResult> {
  return median(opts.repeat ?? 3, () =>
    measureDbosW2({ steps: W2_STEPS, warm: W2_WARM, synchronousCommit: false, timeoutMs: opts.timeoutMs ?? WORKFLOW_TIMEOUT_MS }),
  );
}

/** LangGraph.js, 20,000 one-node graph invocations (each its own thread), 256 in flight, SQLite checkpointer. */
export function runLanggraphW1Peer(opts: PeerRunOptions = {}): Promise<PeerResult> {
  return median(opts.repeat ?? 3, () =>
    measureLanggraphW1({ jobs: opts.jobs ?? DEFAULT_JOBS, timeoutMs: opts.timeoutMs ?? WORKFLOW_TIMEOUT_MS }),
  );
}

/** LangGraph.js, one invocation of a chain of 1,000 nodes, SQLite checkpointer; `jobs` of the result is the step count. */
export function runLanggraphW2Peer(opts: PeerRunOptions = {}): Promise<PeerResult> {
  return median(opts.repeat ?? 3, () =>
    measureLanggraphW2({ steps: W2_STEPS, warm: W2_WARM, timeoutMs: opts.timeoutMs ?? WORKFLOW_TIMEOUT_MS }),
  );
}

export const PEER_BENCHMARKS: readonly PeerBenchmark[] = [
  { key: 'bullmq', label: 'BullMQ (Redis)', run: runBullmqPeer },
  { key: 'graphile', label: 'graphile-worker batched, 1 process', run: runGraphilePeer },
  { key: 'graphile-2p', label: 'graphile-worker batched, 2 processes', run: runGraphileTwoProcessPeer },
  { key: 'dbos-w1', label: 'DBOS Transact W1', run: runDbosW1Peer },
  { key: 'dbos-w2', label: 'DBOS Transact W2 (steps/s)', run: runDbosW2Peer },
  { key: 'dbos-w2-async', label: 'DBOS Transact W2, synchronous_commit off (steps/s)', run: runDbosW2AsyncCommitPeer },
  { key: 'langgraph-w1', label: 'LangGraph.js W1', run: runLanggraphW1Peer },
  { key: 'langgraph-w2', label: 'LangGraph.js W2 (steps/s)', run: runLanggraphW2Peer },
];

/** Runs the peer benchmarks in order (all, or those in `only`). */
export async function runPeers(
  opts: PeerRunOptions & { only?: readonly PeerBenchmark['key'][] } = {},
  onResult?: (result: PeerResult, bench: PeerBenchmark) => void,
): Promise<PeerResult[]> {
  const results: PeerResult[] = [];
  for (const bench of PEER_BENCHMARKS) {
    if (opts.only && !opts.only.includes(bench.key)) continue;
    const r = await bench.run(opts);
    results.push(r);
    onResult?.(r, bench);
  }
  return results;
}

const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');

/** An aligned plain-text table: name, jobs, seconds, jobs/s. */
export function formatPeerTable(results: readonly PeerResult[]): string {
  const head = ['peer', 'jobs', 'seconds', 'jobs/s'];
  const rows = results.map((r) => [r.name, fmtInt(r.jobs), r.seconds.toFixed(2), fmtInt(r.perSecond)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function parseArgs(argv: string[]): PeerRunOptions & { only?: PeerBenchmark['key'][] } {
  const out: PeerRunOptions & { only?: PeerBenchmark['key'][] } = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=') ? (arg.split('=', 2) as [string, string]) : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const positive = (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got ${v}`);
      return n;
    };
    switch (flag) {
      case '--jobs':
        out.jobs = positive(value());
        break;
      case '--concurrency':
        out.concurrency = positive(value());
        break;
      case '--repeat':
        out.repeat = positive(value());
        break;
      case '--timeout':
        out.timeoutMs = positive(value()) * 1000;
        break;
      case '--only': {
        const keys = value().split(',').map((s) => s.trim()).filter(Boolean);
        const known = PEER_BENCHMARKS.map((b) => b.key) as string[];
        for (const k of keys) if (!known.includes(k)) throw new Error(`--only: unknown peer ${k} (${known.join(', ')})`);
        out.only = keys as PeerBenchmark['key'][];
        break;
      }
      case '-h':
      case '--help':
        process.stdout.write(
          'usage: npx tsx bench/peers/run-peers.ts [--jobs N] [--concurrency N] [--repeat N] ' +
            '[--timeout SECONDS] [--only bullmq,graphile,graphile-2p,dbos-w1,dbos-w2,dbos-w2-async,langgraph-w1,langgraph-w2]\n',
        );
        return process.exit(0);
      default:
        throw new Error(`unknown argument ${arg}`);
    }
  }
  return out;
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  // Whole-run bound: each run has its own timeouts; this is the backstop.
  const perRun = (opts.timeoutMs ?? 180_000) + 120_000;
  const budget = perRun * PEER_BENCHMARKS.length * (opts.repeat ?? 3);
  const backstop = setTimeout(() => {
    process.stderr.write(`run-peers: gave up after ${Math.round(budget / 1000)} s\n`);
    process.exit(1);
  }, budget);
  backstop.unref();
  const repeat = opts.repeat ?? 3;
  process.stdout.write(
    `Peer throughput: ${fmtInt(opts.jobs ?? DEFAULT_JOBS)} no-op jobs` +
      (repeat > 1 ? `, median of ${repeat} runs` : '') +
      ` (${process.platform}, Node ${process.versions.node})\n\n`,
  );
  const results = await runPeers(opts);
  process.stdout.write(formatPeerTable(results) + '\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`run-peers: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
