/**
 * One DBOS Transact process for the DBOS peer benchmark (DBOS is a singleton per process).
 *
 *   node --import tsx bench/peers/dbos-child.ts SYSTEM_DATABASE_URL POOL_SIZE
 *
 * Talks to its parent over IPC only (prints nothing). Launches DBOS (which creates and migrates its
 * system database: outside any measured window) and sends {type:'ready'}. Then:
 * - {type:'w1', workerConcurrency, pollMs}: registers the queue `bench` with these settings, which starts
 *   dispatching the workflows the parent enqueued, and sends {type:'running'}; the parent watches the
 *   system database until every workflow succeeded.
 * - {type:'w2', steps, warm?}: runs one workflow of `warm` steps untimed (when given), then one of `steps` sequential
 *   no-op steps, and sends {type:'w2-done', ms} for the second.
 * - {type:'stop'}: shuts DBOS down, sends {type:'stopped'} and exits.
 * Exits if the parent goes away.
 */
import { performance } from 'node:perf_hooks';
import { DBOS } from '@dbos-inc/dbos-sdk';
import { DBOS_APP_NAME, DBOS_APP_VERSION, DBOS_QUEUE, DBOS_W1_WORKFLOW } from './dbos.js';

const noop = async (): Promise<null> => null;

const oneStep = DBOS.registerWorkflow(
  async (_i: number): Promise<null> => {
    await DBOS.runStep(noop, { name: 'noop' });
    return null;
  },
  { name: DBOS_W1_WORKFLOW },
);

const chain = DBOS.registerWorkflow(
  async (steps: number): Promise<number> => {
    for (let i = 0; i < steps; i++) await DBOS.runStep(noop, { name: `s${i}` });
    return steps;
  },
  { name: 'chain' },
);

async function main(): Promise<void> {
  const [url, poolArg] = process.argv.slice(2);
  if (!url || !process.send) {
    process.stderr.write('usage: node --import tsx bench/peers/dbos-child.ts URL POOL_SIZE (with an IPC channel)\n');
    process.exit(2);
  }
  const send = (msg: Record<string, unknown>) => process.send?.(msg);
  const fail = (err: unknown) => {
    send({ type: 'error', message: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  };
  DBOS.setConfig({
    name: DBOS_APP_NAME,
    applicationVersion: DBOS_APP_VERSION,
    systemDatabaseUrl: url,
    systemDatabasePoolSize: Number(poolArg ?? 10),
    logLevel: 'error',
  });
  await DBOS.launch();
  void oneStep; // registered for the queue; started only by the parent's enqueues

  process.on('message', (msg: { type?: string; workerConcurrency?: number; pollMs?: number; steps?: number; warm?: number }) => {
    if (msg.type === 'w1') {
      DBOS.registerQueue(DBOS_QUEUE, {
        workerConcurrency: msg.workerConcurrency ?? 256,
        minPollingIntervalMs: msg.pollMs ?? 10,
        onConflict: 'always_update',
      }).then(() => send({ type: 'running' }), fail);
    } else if (msg.type === 'w2') {
      const steps = msg.steps ?? 1000;
      let t0 = 0;
      // An untimed workflow of `warm` steps first, when asked for.
      (msg.warm ? chain(msg.warm) : Promise.resolve(0))
        .then(() => {
          t0 = performance.now();
          return chain(steps);
        })
        .then((n) => {
          if (n !== steps) fail(new Error(`chain returned ${n}, expected ${steps}`));
          else send({ type: 'w2-done', ms: performance.now() - t0 });
        }, fail);
    } else if (msg.type === 'stop') {
      DBOS.shutdown().then(
        () => {
          if (process.send) process.send({ type: 'stopped' }, () => process.exit(0));
          else process.exit(0);
        },
        () => process.exit(1),
      );
    }
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready' });
}

main().catch((err: unknown) => {
  process.send?.({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
