import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';

/**
 * Copies the WAL back into the database file on a thread of its own, so that the thread running steps never does.
 *
 * SQLite's automatic checkpoint runs inside the commit that crosses its threshold (1,000 pages): that commit copies
 * the pages and waits for two fsyncs (with synchronous=NORMAL, a checkpoint is when the WAL and the file reach the
 * disk). A busy store paid it every hundred or so transactions on the thread that runs steps. The thread here opens
 * its own connection to the file and runs a PASSIVE checkpoint every `everyMs`: it copies what no reader still needs
 * and never blocks a writer, which goes on appending to the WAL meanwhile. Once a checkpoint has copied every frame,
 * the next write starts the WAL from its beginning again, so the file does not grow.
 *
 * The writing connection keeps an automatic checkpoint with a higher threshold, for when this thread falls behind.
 */
export class Checkpointer {
  private readonly worker: Worker;

  /** `onFailure`: the thread stopped on an error (the file could not be opened, say); the writer checkpoints again. */
  constructor(path: string, onFailure: () => void, everyMs = 50) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(CHECKPOINT_THREAD, { eval: true, workerData: { driver, path: resolve(path), everyMs } });
    // It never keeps the process alive.
    this.worker.unref();
    this.worker.on('error', onFailure);
  }

  async stop(): Promise<void> {
    await this.worker.terminate();
  }
}

/**
 * The thread's code, CommonJS evaluated as is (the driver's path is resolved by the caller). A turn that finds
 * nothing written since the last waits twice as long for the next, up to a second, so that an idle store costs next
 * to nothing.
 */
const CHECKPOINT_THREAD = `
const { workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
// A checkpoint that finds the file busy skips this turn instead of waiting.
db.pragma('busy_timeout = 0');
let wait = workerData.everyMs;
let seen = '';
const turn = () => {
  // The WAL's frames and those copied: the same pair as last turn means nobody wrote since.
  let now = seen;
  try {
    const [row] = db.pragma('wal_checkpoint(PASSIVE)');
    now = row.log + ' ' + row.checkpointed;
  } catch {}
  wait = now !== seen ? workerData.everyMs : Math.min(wait * 2, 1000);
  seen = now;
  setTimeout(turn, wait);
};
setTimeout(turn, wait);
`;
