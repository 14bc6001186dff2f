import { randomBytes } from 'node:crypto';

/**
 * Run ids sort by creation time and stay short enough to type: 9 base-36 characters of epoch
 * milliseconds then 8 random hex characters, e.g. `r0lz3k9x2a1b2c3d4`.
 */
export function newRunId(now: number): string {
  return `r${now.toString(36).padStart(9, '0')}${randomBytes(4).toString('hex')}`;
}
