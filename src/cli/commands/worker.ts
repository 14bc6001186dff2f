import { openEngine, storeUrl, type GlobalOptions } from '../context.js';
import { openStore } from '../../store/open-store.js';
import { maskStoreUrl } from '../../store/store-url.js';
import { positiveInt } from './run.js';
import { EvalScheduler } from '../../evals/eval-scheduler.js';
import { formatEvalSummary } from '../../evals/eval-views.js';

/**
 * `sluice worker`: claims and executes attempts of every run in the store until SIGINT/SIGTERM. After a run it
 * finished succeeds, the pipeline's evals run again (summary on stderr).
 */
export async function workerCommand(opts: GlobalOptions & { concurrency?: string }): Promise<number> {
  const engine = await openEngine(opts);
  const concurrency = opts.concurrency === undefined ? undefined : positiveInt(opts.concurrency, '--concurrency');
  // On a store shared by several processes (PostgreSQL), one worker leads: it reaps expired leases.
  const onLeadership = (leading: boolean) => process.stderr.write(`sluice worker ${worker.owner} ${leading ? 'leads' : 'no longer leads'}\n`);
  const worker = engine.startWorker({ ...(concurrency === undefined ? {} : { concurrency }), onLeadership });
  const evals = new EvalScheduler(engine, {
    onReport: (r) => process.stderr.write(`${formatEvalSummary(r.pipeline, r.summary)}\n`),
    onError: (err, pipeline) => process.stderr.write(`sluice: evals of ${pipeline} failed: ${err instanceof Error ? err.message : String(err)}\n`),
  });
  evals.start();
  // While this worker leads the store: cron triggers and the periodic prune, as in `sluice serve`.
  const stopSchedules = engine.startSchedules({ onError: (err) => process.stderr.write(`sluice: ${err instanceof Error ? err.message : String(err)}\n`) });
  process.stderr.write(`sluice worker ${worker.owner} on ${maskStoreUrl(engine.store.url)}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await stopSchedules();
  await evals.stop();
  await engine.close();
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
