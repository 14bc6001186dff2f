/**
 * Run ids sort by creation time and stay short enough to type: 9 base-36 characters of epoch
 * milliseconds then 8 random hex characters, e.g. `r0lz3k9x2a1b2c3d4`.
 */
export function newRunId(now: number): string {
  // Not a secret, only unique: Math.random is plenty and far cheaper than a crypto call per run.
  const random = Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, '0');
  return `r${now.toString(36).padStart(9, '0')}${random}`;
}
