/** Multipliers of the accepted units: decimal (`kB`, `MB`, `GB`) and binary (`KiB`, `MiB`, `GiB`). */
const UNIT_BYTES: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

const SIZE = /^(\d+(?:\.\d+)?)\s*([a-z]+)?$/i;

/**
 * Parses a size such as `64MiB`, `512 kB` or `1048576` into whole bytes. A number or a bare numeric string is
 * bytes. Throws an `Error` naming the value and the accepted forms.
 */
export function parseByteSize(value: string | number): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return Math.floor(value);
  } else if (typeof value === 'string') {
    const match = SIZE.exec(value.trim());
    const unit = UNIT_BYTES[(match?.[2] ?? 'b').toLowerCase()];
    if (match && unit !== undefined) return Math.floor(Number(match[1]) * unit);
  }
  throw new Error(`invalid size ${JSON.stringify(value)}: expected bytes, or a number with B, kB, MB, GB, KiB, MiB or GiB`);
}
