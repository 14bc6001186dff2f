/**
 * LangGraph.js peer: graphs checkpointed to a SQLite file by `@langchain/langgraph-checkpoint-sqlite`.
 *
 * - W1: `jobs` invocations of a one-node graph (START -> only -> END), each with its own thread id,
 *   `concurrency` invocations in flight, on one compiled graph and one checkpointer.
 * - W2: one invocation of a chain of `steps` nodes (n0 -> n1 -> ... -> END): one super-step per node.
 *
 * Durability: invoked with `durability: 'sync'`, so each super-step's checkpoint is written before the
 * next super-step starts (LangGraph's default, 'async', writes it while the next step runs). The
 * checkpointer's better-sqlite3 connection is opened here with WAL (the saver sets it too) and
 * `synchronous=NORMAL`, the settings Sluice's SQLite store uses: a commit survives a crash of the
 * process, not necessarily a power loss.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { packageVersion } from '../support/versions.js';
import { result, withTimeout, type PeerResult } from './types.js';

export interface LanggraphW1Options {
  jobs: number;
  /** Invocations in flight at once. Default 256. */
  concurrency?: number;
  /** Bound on the timed run. Default 180 s. */
  timeoutMs?: number;
}

export interface LanggraphW2Options {
  steps: number;
  /** Nodes of an untimed chain invoked first, on the same checkpointer. Default 0: none. */
  warm?: number;
  /** Bound on the timed run. Default 180 s. */
  timeoutMs?: number;
}

const label = () =>
  `LangGraph ${packageVersion('@langchain/langgraph')} + checkpoint-sqlite ` +
  `${packageVersion('@langchain/langgraph-checkpoint-sqlite')} (durability sync, WAL, synchronous=NORMAL)`;

/** A fresh SQLite file with the checkpointer on it; `close` closes it and removes the file. */
async function checkpointer() {
  const { SqliteSaver } = await import('@langchain/langgraph-checkpoint-sqlite');
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-bench-langgraph-'));
  const db = new Database(path.join(dir, 'checkpoints.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const saver = new SqliteSaver(db);
  return {
    saver,
    db,
    close() {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A compiled graph whose nodes n0..n(length-1) run one after the other, each setting `n` to its index + 1. */
async function chainGraph(length: number, saver: import('@langchain/langgraph').BaseCheckpointSaver) {
  const { Annotation, END, START, StateGraph } = await import('@langchain/langgraph');
  const State = Annotation.Root({ n: Annotation<number> });
  // The node names are only known at run time, so the builder is typed loosely.
  const graph = new StateGraph(State) as unknown as {
    addNode(name: string, fn: (s: typeof State.State) => Partial<typeof State.State>): void;
    addEdge(from: string, to: string): void;
    compile(o: { checkpointer: unknown }): {
      invoke(input: unknown, config: Record<string, unknown>): Promise<typeof State.State>;
    };
  };
  for (let i = 0; i < length; i++) graph.addNode(`n${i}`, () => ({ n: i + 1 }));
  graph.addEdge(START, 'n0');
  for (let i = 1; i < length; i++) graph.addEdge(`n${i - 1}`, `n${i}`);
  graph.addEdge(`n${length - 1}`, END);
  return graph.compile({ checkpointer: saver });
}

const invokeConfig = (threadId: string, steps: number) => ({
  configurable: { thread_id: threadId },
  durability: 'sync',
  recursionLimit: steps + 10,
});

/** W1: `jobs` one-node graph invocations, each on its own thread. */
export async function measureLanggraphW1(opts: LanggraphW1Options): Promise<PeerResult> {
  const { jobs } = opts;
  const concurrency = opts.concurrency ?? 256;
  const cp = await checkpointer();
  try {
    const graph = await chainGraph(1, cp.saver);
    let next = 0;
    const lane = async () => {
      while (next < jobs) {
        const i = next++;
        const out = await graph.invoke({ n: 0 }, invokeConfig(`t${i}`, 1));
        if (out.n !== 1) throw new Error(`LangGraph W1: thread t${i} ended with n = ${out.n}`);
      }
    };
    const t0 = performance.now();
    await withTimeout(Promise.all(Array.from({ length: concurrency }, lane)), opts.timeoutMs ?? 180_000, 'LangGraph W1');
    const seconds = (performance.now() - t0) / 1000;
    const threads = cp.db.prepare('select count(distinct thread_id) as n from checkpoints').get() as { n: number };
    if (threads.n !== jobs) throw new Error(`LangGraph W1: ${threads.n} threads checkpointed, expected ${jobs}`);
    return result(`${label()} W1 (one-node graph, ${concurrency} in flight)`, jobs, seconds);
  } finally {
    cp.close();
  }
}

/** W2: one invocation of a chain of `steps` nodes; `jobs` is the step count. */
export async function measureLanggraphW2(opts: LanggraphW2Options): Promise<PeerResult> {
  const { steps } = opts;
  const cp = await checkpointer();
  try {
    const graph = await chainGraph(steps, cp.saver);
    if (opts.warm) await (await chainGraph(opts.warm, cp.saver)).invoke({ n: 0 }, invokeConfig('warm', opts.warm));
    const t0 = performance.now();
    const out = await withTimeout(graph.invoke({ n: 0 }, invokeConfig('chain', steps)), opts.timeoutMs ?? 180_000, 'LangGraph W2');
    const seconds = (performance.now() - t0) / 1000;
    if (out.n !== steps) throw new Error(`LangGraph W2: chain ended with n = ${out.n}, expected ${steps}`);
    const saved = cp.db.prepare(`select count(*) as n from checkpoints where thread_id = 'chain'`).get() as { n: number };
    if (saved.n < steps) throw new Error(`LangGraph W2: ${saved.n} checkpoints for ${steps} steps`);
    return result(`${label()} W2 (chain of ${steps} nodes)`, steps, seconds);
  } finally {
    cp.close();
  }
}
