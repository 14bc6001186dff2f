import { readFileSync } from 'node:fs';
import { SluiceError } from '../../core/errors.js';
import { openEngine, printJson, type GlobalOptions } from '../context.js';

export interface EmitCommandOptions extends GlobalOptions {
  /** The event's payload (each started run's input): JSON, or @file. Default: null. */
  data?: string;
  /** Starts nothing new when an emit with this key already started the runs. */
  idempotencyKey?: string;
}

/**
 * `sluice emit NAME`: fires an event; every enabled pipeline whose triggers name it gets a run with the payload as
 * its input. Prints one line per run (`--json`: `{ event, runs }`). The runs are queued for the workers
 * (`sluice worker`, `sluice serve`); nothing runs in this process. Exit 0 also when no pipeline listens.
 */
export async function emitCommand(name: string, opts: EmitCommandOptions): Promise<number> {
  const payload = parseData(opts.data);
  const engine = await openEngine(opts);
  try {
    const emitted = await engine.emit(name, payload, opts.idempotencyKey ? { idempotencyKey: opts.idempotencyKey } : {});
    if (opts.json) {
      printJson({ event: emitted.event, runs: emitted.runs.map(({ run, created }) => ({ id: run.id, pipeline: run.pipeline, version: run.version, status: run.status, created })) });
      return 0;
    }
    if (emitted.runs.length === 0) process.stdout.write(`event ${name}: no enabled pipeline has a trigger for it; nothing started (the event is kept for steps that wait for it)\n`);
    for (const { run, created } of emitted.runs) {
      process.stdout.write(`${run.id}  ${run.pipeline} v${run.version}  ${created ? run.status : `${run.status} (already started with this key)`}\n`);
    }
    return 0;
  } finally {
    await engine.close();
  }
}

/** `--data`: JSON text or @file; INPUT_INVALID naming which when it does not parse. */
function parseData(value: string | undefined): unknown {
  if (value === undefined) return null;
  const file = value.startsWith('@') ? value.slice(1) : undefined;
  let text: string;
  try {
    text = file === undefined ? value : readFileSync(file, 'utf8');
  } catch (err) {
    throw new SluiceError('INPUT_INVALID', `--data file ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new SluiceError('INPUT_INVALID', `${file === undefined ? '--data' : `--data file ${file}`} is not valid JSON: ${(err as Error).message}`);
  }
}
