import { openEngine, storeUrl, type GlobalOptions } from '../context.js';
import { openStore } from '../../store/open-store.js';
import { maskStoreUrl } from '../../store/store-url.js';
import { positiveInt } from './run.js';
import { EvalScheduler } from '../../evals/eval-scheduler.js';
import { formatEvalSummary } from '../../evals/eval-views.js';
import { registerModules } from '../../define/load-pipelines.js';
import { createCommandLogger } from '../log.js';
import { loggedShutdown, parseGrace, untilSignal } from '../shutdown.js';
import { errorMessage } from '../../core/errors.js';

/**
 * `sluice worker`: claims and executes attempts of every run in the store until SIGINT/SIGTERM. After a run it
 * finished succeeds, the pipeline's evals run again (summary on stderr).
 */
export async function workerCommand(opts: GlobalOptions & { concurrency?: string; load?: string[]; grace?: string }): Promise<number> {
  const graceMs = parseGrace(opts.grace);
  // Listening before any attempt is claimed: a signal that comes right after the first claim is a shutdown too.
  const stopping = untilSignal();
  const logger = await createCommandLogger('info');
  const engine = await openEngine(opts, { logger });
  await loadModules(engine, opts.load);
  const concurrency = opts.concurrency === undefined ? undefined : positiveInt(opts.concurrency, '--concurrency');
  // On a store shared by several processes (PostgreSQL), one worker leads: it reaps expired leases.
  const onLeadership = (leading: boolean) => process.stderr.write(`sluice worker ${worker.owner} ${leading ? 'leads' : 'no longer leads'}\n`);
  const worker = engine.startWorker({ ...(concurrency === undefined ? {} : { concurrency }), onLeadership });
  const evals = new EvalScheduler(engine, {
    onReport: (r) => process.stderr.write(`${formatEvalSummary(r.pipeline, r.summary)}\n`),
    onError: (err, pipeline) => process.stderr.write(`sluice: evals of ${pipeline} failed: ${errorMessage(err)}\n`),
  });
  evals.start();
  // While this worker leads the store: cron triggers and the periodic prune, as in `sluice serve`.
  const stopSchedules = engine.startSchedules({ onError: (err) => process.stderr.write(`sluice: ${errorMessage(err)}\n`) });
  process.stderr.write(`sluice worker ${worker.owner} on ${maskStoreUrl(engine.store.url)}\n`);
  logger.info({ owner: worker.owner, concurrency: concurrency ?? 16, grace_ms: graceMs }, 'worker started');
  const signal = await stopping;
  await loggedShutdown(logger, { signal, owner: worker.owner, grace_ms: graceMs, running: worker.activeCount }, async () => {
    await stopSchedules();
    await evals.stop();
    const { handedBack } = await engine.interruptWorker(graceMs);
    await engine.close();
    return { handed_back: handedBack };
  });
  return 0;
}

/** `sluice migrate`: applies pending migrations and exits. */
export async function migrateCommand(opts: GlobalOptions): Promise<number> {
  const store = await openStore(storeUrl(opts));
  await store.close();
  if (opts.json) process.stdout.write(`${JSON.stringify({ store: maskStoreUrl(store.url), migrated: true })}\n`);
  else process.stdout.write(`${maskStoreUrl(store.url)} is up to date\n`);
  return 0;
}

/**
 * `--load FILE` (repeatable): registers the pipelines each JS/TS module exports (TypeScript without a build step),
 * so this process can run their inline functions. A module that fails to load or a pipeline that does not validate
 * stops the command before it works anything.
 */
export async function loadModules(engine: Parameters<typeof registerModules>[0] & { close(): Promise<void> }, files: string[] | undefined): Promise<void> {
  if (!files || files.length === 0) return;
  try {
    const names = await registerModules(engine, files);
    process.stderr.write(`sluice: loaded ${names.join(', ')} from ${files.join(', ')}\n`);
  } catch (err) {
    await engine.close();
    throw err;
  }
}
