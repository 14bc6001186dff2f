/**
 * W2 round after round in one process: a chain of `--steps` no-op steps (default 1,000), each round on a fresh
 * SQLite store, `--rounds` times (default 8). Prints each round's wall time per step and the process's CPU for
 * the round, then the minimum and median per step over the rounds after the first `--warm` (default 2), while V8
 * still compiles the hot path. The bench's W2 (`bench/run.ts`) is one such round in a process that ran other work.
 *
 *   npx tsx bench/chain.ts [--steps 1000] [--rounds 8] [--warm 2]
 */
import { loadLine } from './support/load.js';
import { w2 } from './sluice-workloads.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const steps = arg('steps', 1000);
const rounds = arg('rounds', 8);
const warm = Math.min(arg('warm', 2), rounds - 1);

console.log(`W2, a chain of ${steps} steps, ${rounds} rounds in one process (Node ${process.version}); ${loadLine('at the start')}`);
const perStep: number[] = [];
const cells: string[] = [];
for (let i = 0; i < rounds; i++) {
  const cpu0 = process.cpuUsage();
  const [figure] = await w2(steps);
  const cpu = process.cpuUsage(cpu0);
  perStep.push(figure!.value);
  cells.push(`${figure!.value.toFixed(3)} (${((cpu.user + cpu.system) / 1000).toFixed(0)} ms CPU)`);
}
console.log(`ms per step by round: ${cells.join(', ')}`);
const kept = perStep.slice(warm).sort((a, b) => a - b);
const mid = kept.length / 2;
const median = kept.length % 2 === 1 ? kept[Math.floor(mid)]! : (kept[mid - 1]! + kept[mid]!) / 2;
console.log(`after the first ${warm}: min ${kept[0]!.toFixed(3)} / median ${median.toFixed(3)} ms per step`);
console.log(loadLine('at the end'));
