/** One peer's throughput figure, as printed next to Sluice's. */
export interface PeerResult {
  /** What ran, with the settings that matter (version, batching, retention, processes). */
  name: string;
  jobs: number;
  /** Wall-clock seconds from worker start until every job was done. */
  seconds: number;
  /** jobs / seconds */
  perSecond: number;
}

export function result(name: string, jobs: number, seconds: number): PeerResult {
  return { name, jobs, seconds, perSecond: seconds > 0 ? jobs / seconds : 0 };
}

/** Rejects after `ms` with a message naming `what`; the timer is cleared either way. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
