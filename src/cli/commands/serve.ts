import { createServer } from '../../server/create-server.js';
import { isLoopback, type AuthMode } from '../../server/auth.js';
import { SluiceError } from '../../core/errors.js';
import { DEFAULT_EVALS_CRON } from '../../evals/eval-scheduler.js';
import { openEngine, type GlobalOptions } from '../context.js';
import { maskStoreUrl } from '../../store/store-url.js';
import { positiveInt } from './run.js';
import { loadModules } from './worker.js';
import { createCommandLogger } from '../log.js';
import { loggedShutdown, parseGrace, untilSignal } from '../shutdown.js';
import { requestSerializers } from '../../server/log-redaction.js';

export interface ServeOptions extends GlobalOptions {
  port?: string;
  host?: string;
  workers?: string;
  auth?: boolean;
  bodyLimit?: string;
  cron?: boolean;
  evalsCron?: string;
  /** JS/TS modules whose exported pipelines are registered and run here. */
  load?: string[];
  grace?: string;
}

/**
 * `sluice serve`: the HTTP API with an in-process worker (`--workers N` attempts at once; 0 serves only) and
 * cron triggers, until SIGINT/SIGTERM. Evals are re-run after each run that succeeds here, and nightly on
 * `--evals-cron` (default 03:00; `off` for none, as does `--no-cron`). Refuses a non-loopback `--host` unless auth is on (`--auth`, or a token
 * exists in the store).
 */
export async function serveCommand(opts: ServeOptions): Promise<number> {
  const port = opts.port === undefined ? 8080 : nonNegativeInt(opts.port, '--port');
  const host = opts.host ?? '127.0.0.1';
  const workers = opts.workers === undefined ? 16 : nonNegativeInt(opts.workers, '--workers');
  const graceMs = parseGrace(opts.grace);
  // Listening before any attempt is claimed: a signal that comes right after the first claim is a shutdown too.
  const stopping = untilSignal();
  // One logger for the engine and the HTTP server: JSON lines on stderr, request URLs without `?token=`.
  const logger = await createCommandLogger('info', requestSerializers);
  const engine = await openEngine(opts, { logger });
  await loadModules(engine, opts.load);
  const auth: AuthMode = opts.auth ? 'on' : 'auto';
  const app = await createServer({
    engine,
    auth,
    loggerInstance: logger,
    ...(opts.bodyLimit === undefined ? {} : { bodyLimit: positiveInt(opts.bodyLimit, '--body-limit') }),
    evals: { cron: opts.cron === false || opts.evalsCron === 'off' ? null : (opts.evalsCron ?? DEFAULT_EVALS_CRON) },
  });
  let stopSchedules: (() => Promise<void>) | undefined;
  try {
    if (!isLoopback(host) && auth !== 'on' && (await engine.store.countTokens()) === 0) {
      throw new SluiceError('VALIDATION_FAILED', `refusing to listen on ${host} without auth: create a token (sluice token create --role admin) or pass --auth`);
    }
    if (workers > 0) engine.startWorker({ concurrency: workers });
    // While this process leads the store: cron triggers (unless --no-cron) and the periodic prune.
    stopSchedules = engine.startSchedules({ cron: opts.cron !== false, onError: (err) => app.log.error({ err }, 'cron trigger or prune failed') });
    const address = await app.listen({ port, host });
    process.stderr.write(`sluice serve on ${address} (store ${maskStoreUrl(engine.store.url)}, workers ${workers})\n`);
    const signal = await stopping;
    await loggedShutdown(logger, { signal, grace_ms: graceMs }, async () => {
      await stopSchedules?.();
      stopSchedules = undefined;
      await app.close();
      const { handedBack } = await engine.interruptWorker(graceMs);
      return { handed_back: handedBack };
    });
    return 0;
  } finally {
    await stopSchedules?.();
    await app.close();
    await engine.close();
  }
}

function nonNegativeInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new SluiceError('INPUT_INVALID', `${flag} must be a non-negative integer, got ${value}`);
  return n;
}
