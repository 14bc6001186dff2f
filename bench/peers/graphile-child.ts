/**
 * One graphile-worker process for the multi-process peer benchmark.
 *
 *   node --import tsx bench/peers/graphile-child.ts URL CONCURRENCY
 *
 * Talks to its parent over IPC only (prints nothing): sends {type:'ready'}
 * once loaded, starts the runner on {type:'go'} (then sends {type:'running'}),
 * stops it on {type:'stop'}, reports {type:'stopped', succeeded} (jobs it ran
 * successfully) and exits. Exits if the parent goes away.
 */
import { run, type Runner } from 'graphile-worker';
import { graphileRunnerOptions } from './graphile-config.js';

const [url, concurrencyArg] = process.argv.slice(2);
if (!url || !process.send) {
  process.stderr.write('usage: node --import tsx bench/peers/graphile-child.ts URL CONCURRENCY (with an IPC channel)\n');
  process.exit(2);
}
const concurrency = Number(concurrencyArg ?? 10);
const send = (msg: Record<string, unknown>) => process.send?.(msg);
let runner: Runner | undefined;
let succeeded = 0;

process.on('message', (msg: { type?: string }) => {
  if (msg.type === 'go' && !runner) {
    run(graphileRunnerOptions(url, concurrency)).then(
      (r) => {
        runner = r;
        r.events.on('job:success', () => {
          succeeded += 1;
        });
        r.promise.catch((err: unknown) => {
          send({ type: 'error', message: String(err instanceof Error ? err.message : err) });
          process.exit(1);
        });
        send({ type: 'running' });
      },
      (err: unknown) => {
        send({ type: 'error', message: String(err instanceof Error ? err.message : err) });
        process.exit(1);
      },
    );
  } else if (msg.type === 'stop') {
    const stopping = runner ? runner.stop() : Promise.resolve();
    stopping.then(
      () => {
        // Exit once the report is flushed to the parent.
        if (process.send) process.send({ type: 'stopped', succeeded }, () => process.exit(0));
        else process.exit(0);
      },
      () => process.exit(1),
    );
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
