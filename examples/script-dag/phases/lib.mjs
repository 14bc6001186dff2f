// Shared helpers of the example phases: each phase reads the JSON its inputs wrote under work/,
// does a small computation and writes its own JSON. Set SCRIPT_DAG_MARKERS to a folder to have every
// execution append a line to <folder>/<phase> (tests count executions that way).
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const work = process.env.SCRIPT_DAG_WORK ?? join(process.cwd(), 'work');
const delayMs = Number(process.env.SCRIPT_DAG_DELAY_MS ?? 150);

export function read(name) {
  return JSON.parse(readFileSync(join(work, `${name}.json`), 'utf8'));
}

export async function phase(name, compute) {
  const started = Date.now();
  mkdirSync(work, { recursive: true });
  const markers = process.env.SCRIPT_DAG_MARKERS;
  if (markers) {
    mkdirSync(markers, { recursive: true });
    appendFileSync(join(markers, name), `${process.env.SLUICE_RUN_ID ?? '-'} ${started}\n`);
  }
  // Stands in for the real work of a phase, so parallel phases visibly overlap.
  await new Promise((r) => setTimeout(r, delayMs));
  const result = compute();
  writeFileSync(join(work, `${name}.json`), JSON.stringify(result));
  if (markers) appendFileSync(join(markers, `${name}.spans`), `${started} ${Date.now()}\n`);
  console.log(`${name}: ${JSON.stringify(result).slice(0, 120)}`);
}
