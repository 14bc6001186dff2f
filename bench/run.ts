/**
 * The core benchmark: Sluice's figures and its peers' side by side, in one run.
 *
 *   npm run bench                 # everything (about 2 minutes)
 *   npm run bench -- --repeat 5   # more runs per figure (medians are reported)
 *   npm run bench -- --no-peers   # Sluice only
 *   npm run bench -- --only w2    # W2 alone, Sluice and the durable workflow engines, round by round
 *
 * W1: 20,000 runs of a one-step no-op pipeline, created in bulk then executed (one process, embedded SQLite,
 *     WAL, synchronous=NORMAL), next to BullMQ 6 (20,000 no-op jobs, concurrency 10, local Redis) and
 *     graphile-worker 0.17 with batching on (local embedded PostgreSQL, fsync on).
 * W2: one run of a chain of 1,000 dependent no-op steps: time per step transition. Every engine first runs an
 *     untimed chain of 200 in the same process (W2_WARM), so that all are measured with their code compiled.
 * W3: one run of N independent steps joined by one final step, N = 1,000 and 10,000: cost per step.
 * Latency: enqueue-to-start in-process, p50 and p99 over idle gaps.
 * Durable workflow engines beside W1 and W2: DBOS Transact 5 (PostgreSQL, a child process) and LangGraph.js 1
 *     (SQLite checkpointer, durability 'sync'); their figures and Sluice's ratio to each are printed last.
 */
import { formatPeerTable, runBullmqPeer, runGraphilePeer, runGraphileTwoProcessPeer, type PeerResult } from './peers/run-peers.js';
import { latency, w1, w2, w3, type Figure } from './sluice-workloads.js';
import { loadLine } from './support/load.js';
import { runDbosW1Peer, runDbosW2AsyncCommitPeer, runDbosW2Peer, runLanggraphW1Peer, runLanggraphW2Peer, W2_WARM } from './peers/run-peers.js';

interface Args {
  repeat: number;
  peers: boolean;
  concurrency: number;
  /** `w2`: only W2, for Sluice and the workflow engines. */
  only?: 'w2';
}

function parseArgs(argv: string[]): Args {
  const args: Args = { repeat: 3, peers: true, concurrency: 256 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--repeat') args.repeat = Number(argv[++i]);
    else if (argv[i] === '--no-peers') args.peers = false;
    else if (argv[i] === '--concurrency') args.concurrency = Number(argv[++i]);
    else if (argv[i] === '--only') {
      const only = argv[++i];
      if (only !== 'w2') throw new Error(`--only takes w2, not ${only}`);
      args.only = only;
    }
  }
  return args;
}

/** Runs `fn` `times` times and keeps, per figure name, the median value. */
async function median(times: number, fn: () => Promise<Figure[]>): Promise<Figure[]> {
  const runs: Figure[][] = [];
  for (let i = 0; i < times; i++) runs.push(await fn());
  return runs[0]!.map((f, idx) => {
    const sorted = runs.map((r) => r[idx]!).sort((a, b) => a.value - b.value);
    return sorted[Math.floor(sorted.length / 2)]!;
  });
}

/** A peer's median figure, or why it could not be measured (e.g. redis-server is not installed). */
async function tryPeer(fn: () => Promise<PeerResult>): Promise<PeerResult | string> {
  try {
    return await fn();
  } catch (err) {
    return `not measured: ${err instanceof Error ? err.message : String(err)}`;
  }
}

function fmt(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2);
}

function row(name: string, value: string, goal: string, detail = ''): string {
  return `${name.padEnd(34)} ${value.padStart(16)}  ${goal.padEnd(34)} ${detail}`;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.only === 'w2') return w2Rounds(args);
  console.log(`Sluice core benchmark (Node ${process.version}, ${process.platform}, medians of ${args.repeat}); ${loadLine('at the start')}\n`);

  const peers: Array<PeerResult | string> = [];
  if (args.peers) {
    peers.push(await tryPeer(() => runBullmqPeer({ repeat: args.repeat })));
    peers.push(await tryPeer(() => runGraphilePeer({ repeat: args.repeat })));
    peers.push(await tryPeer(() => runGraphileTwoProcessPeer({ repeat: args.repeat })));
  }
  const engines: EngineFigures[] = [];
  if (args.peers) {
    engines.push({
      name: 'DBOS Transact',
      w1: await tryPeer(() => runDbosW1Peer({ repeat: args.repeat })),
      w2: await tryPeer(() => runDbosW2Peer({ repeat: args.repeat })),
    });
    engines.push({
      name: 'DBOS, async WAL',
      w1: 'W1 not measured with synchronous_commit off',
      w2: await tryPeer(() => runDbosW2AsyncCommitPeer({ repeat: args.repeat })),
    });
    engines.push({
      name: 'LangGraph.js',
      w1: await tryPeer(() => runLanggraphW1Peer({ repeat: args.repeat })),
      w2: await tryPeer(() => runLanggraphW2Peer({ repeat: args.repeat })),
    });
  }
  const ours = [
    ...(await median(args.repeat, () => w1(20_000, args.concurrency))),
    ...(await median(args.repeat, () => w2(1000, W2_WARM))),
    ...(await median(args.repeat, async () => [await w3(1000)])),
    ...(await median(args.repeat, async () => [await w3(10_000)])),
    ...(await median(args.repeat, () => latency(200))),
  ];

  const measured = peers.filter((p): p is PeerResult => typeof p !== 'string');
  const bull = measured.find((p) => p.name.startsWith('BullMQ'));
  const graphile = measured.find((p) => p.name.startsWith('graphile') && !p.name.includes('2 processes'));
  const exec = ours.find((f) => f.name === 'W1 execute')!;
  const w3small = ours.find((f) => f.name === 'W3 fan-in of 1000')!;
  const w3big = ours.find((f) => f.name === 'W3 fan-in of 10000')!;

  console.log(row('figure', 'value', 'goal', 'detail'));
  console.log(row('-'.repeat(34), '-'.repeat(16), '-'.repeat(34), '-'.repeat(10)));
  for (const f of ours) {
    let goal = '';
    if (f.name === 'W1 execute') {
      const parts = [];
      if (bull) parts.push(`>= BullMQ ${fmt(bull.perSecond)} ${exec.value >= bull.perSecond ? 'met' : 'NOT met'}`);
      if (graphile) parts.push(`>= 2x graphile ${fmt(2 * graphile.perSecond)} ${exec.value >= 2 * graphile.perSecond ? 'met' : 'NOT met'}`);
      goal = parts.join('; ');
    }
    if (f.name.startsWith('W2')) goal = `< 0.3 ms/step ${f.value < 0.3 ? 'met' : 'NOT met'}`;
    if (f.name === 'W3 fan-in of 10000') goal = `10k/1k per-step cost ${(w3big.value / w3small.value).toFixed(2)}x (1.0 = linear)`;
    if (f.name === 'enqueue-to-start p50') goal = `< 0.5 ms ${f.value < 0.5 ? 'met' : 'NOT met'}`;
    console.log(row(f.name, `${fmt(f.value)} ${f.unit}`, goal, f.detail ?? ''));
  }
  if (args.peers) {
    console.log('\nPeers, same machine, same run:\n');
    const failed = peers.filter((p): p is string => typeof p === 'string');
    if (measured.length > 0) console.log(formatPeerTable(measured));
    for (const f of failed) console.log(f);
    printEngines(engines, exec, ours.find((f) => f.name.startsWith('W2'))!);
  }
}

/** A durable workflow engine's W1 and W2 figures (W2's `jobs` is its step count). */
interface EngineFigures {
  name: string;
  w1: PeerResult | string;
  w2: PeerResult | string;
}

/** The workflow engines next to Sluice: W1 per second and W2 per step, with Sluice's ratio per step transition. */
function printEngines(engines: readonly EngineFigures[], w1exec: Figure, w2: Figure): void {
  if (engines.length === 0) return;
  console.log('\nDurable workflow engines, same machine, same run (ratio: Sluice / peer per step transition):\n');
  console.log(`${'engine'.padEnd(16)} ${'W1 workflows/s'.padStart(16)} ${'Sluice / peer'.padStart(14)} ${'W2 ms/step'.padStart(12)} ${'Sluice / peer'.padStart(14)}`);
  console.log(`${'Sluice'.padEnd(16)} ${fmt(w1exec.value).padStart(16)} ${''.padStart(14)} ${w2.value.toFixed(2).padStart(12)}`);
  for (const e of engines) {
    const w1 = typeof e.w1 === 'string' ? null : e.w1.perSecond;
    const w2ms = typeof e.w2 === 'string' ? null : (e.w2.seconds * 1000) / e.w2.jobs;
    console.log(
      `${e.name.padEnd(16)} ${(w1 === null ? '-' : fmt(w1)).padStart(16)} ${(w1 === null ? '-' : `${(w1exec.value / w1).toFixed(1)}x`).padStart(14)} ` +
        `${(w2ms === null ? '-' : w2ms.toFixed(2)).padStart(12)} ${(w2ms === null ? '-' : `${(w2ms / w2.value).toFixed(1)}x`).padStart(14)}`,
    );
  }
  for (const e of engines) {
    for (const r of [e.w1, e.w2]) console.log(typeof r === 'string' ? `${e.name}: ${r}` : `  ${r.name}: ${r.jobs} in ${r.seconds.toFixed(2)} s`);
  }
}

/**
 * W2 alone, `repeat` rounds, each round running Sluice, DBOS (WAL flushed per commit, then not) and LangGraph one
 * after the other, so that all of a round shares the machine's load; prints ms per step and Sluice's ratio.
 */
async function w2Rounds(args: Args): Promise<void> {
  console.log(`W2 (a chain of 1,000 no-op steps), ms per step, ${args.repeat} rounds (Node ${process.version}); ${loadLine('at the start')}\n`);
  const perStep = (r: PeerResult | string) => (typeof r === 'string' ? r : ((r.seconds * 1000) / r.jobs).toFixed(2));
  console.log(`${'round'.padEnd(6)} ${'Sluice'.padStart(8)} ${'DBOS'.padStart(8)} ${'DBOS async WAL'.padStart(15)} ${'LangGraph'.padStart(10)}`);
  for (let round = 1; round <= args.repeat; round++) {
    const ours = (await w2(1000, W2_WARM))[0]!.value;
    const peers = [
      await tryPeer(() => runDbosW2Peer({ repeat: 1 })),
      await tryPeer(() => runDbosW2AsyncCommitPeer({ repeat: 1 })),
      await tryPeer(() => runLanggraphW2Peer({ repeat: 1 })),
    ];
    const [dbos, dbosAsync, langgraph] = peers.map(perStep);
    console.log(`${String(round).padEnd(6)} ${ours.toFixed(2).padStart(8)} ${dbos!.padStart(8)} ${dbosAsync!.padStart(15)} ${langgraph!.padStart(10)}`);
  }
}

await main();
console.log(`\n${loadLine('at the end')}`);
