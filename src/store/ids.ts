let lastMs = -1;
let seq = 0;

/**
 * Run ids sort by creation time, also within one millisecond of one process: 9 base-36 characters of
 * epoch milliseconds, 3 of a per-millisecond counter, then 6 random hex characters (uniqueness across
 * processes), e.g. `r0mwugmhj00a3f9c1d`. Ids that follow creation order keep every run-keyed index
 * (steps, attempts, events) appending near its end instead of writing all over it.
 */
export function newRunId(now: number): string {
  if (now === lastMs) seq += 1;
  else {
    lastMs = now;
    seq = 0;
  }
  // Not a secret, only unique: Math.random is plenty and far cheaper than a crypto call per run.
  const random = Math.floor(Math.random() * 0x1000000).toString(16).padStart(6, '0');
  return `r${now.toString(36).padStart(9, '0')}${(seq % 46656).toString(36).padStart(3, '0')}${random}`;
}
