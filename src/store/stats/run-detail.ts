import { bucketOf } from './histogram.js';
import { MINUTE, readVarint, varintEnd, type RawRow, type Tally } from './tally.js';

/**
 * What a series needs of the runs of one folded minute, run by run: when each was created, its status, its
 * duration's histogram bucket, and its attempts' tokens and cost. A series bucket edge that cuts a folded minute
 * reads this (one row) instead of the minute's raw rows.
 *
 * Layout: the statuses (u8 count, then u16 length and UTF-8 each); the run groups (u32 count, then per group the
 * creation time's offset in the minute, the status's index, the duration bucket + 1 (0: not finished) and how
 * many runs, as unsigned LEB128 varints); the usage (u32 count, then per creation time its offset as a varint and
 * tokens in, tokens out and cost as f64 little-endian).
 */
export function encodeRunDetail(minute: number, rows: RawRow[]): Buffer {
  const statuses: string[] = [];
  const runs: number[] = [];
  const usage = new Map<number, [number, number, number]>();
  for (const r of rows) {
    const offset = Number(r.at) - minute * MINUTE;
    if (r.kind === 'r') {
      if (!statuses.includes(r.status)) statuses.push(r.status);
      runs.push(offset, statuses.indexOf(r.status), r.ms === null ? 0 : bucketOf(Number(r.ms)) + 1, Number(r.n));
    } else if (r.kind === 'a' && (Number(r.tokens_in ?? 0) !== 0 || Number(r.tokens_out ?? 0) !== 0 || Number(r.cost ?? 0) !== 0)) {
      const u = usage.get(offset) ?? [0, 0, 0];
      usage.set(offset, [u[0] + Number(r.tokens_in ?? 0), u[1] + Number(r.tokens_out ?? 0), u[2] + Number(r.cost ?? 0)]);
    }
  }
  const names = statuses.map((s) => Buffer.from(s, 'utf8'));
  const b = Buffer.alloc(1 + names.reduce((n, s) => n + 2 + s.length, 0) + 4 + runs.length * 5 + 4 + usage.size * 29);
  let at = b.writeUInt8(names.length);
  for (const s of names) {
    at = b.writeUInt16LE(s.length, at);
    at += s.copy(b, at);
  }
  at = b.writeUInt32LE(runs.length / 4, at);
  for (const v of runs) at = writeVarint(b, at, v);
  at = b.writeUInt32LE(usage.size, at);
  for (const [offset, [tokensIn, tokensOut, cost]] of usage) {
    at = writeVarint(b, at, offset);
    at = b.writeDoubleLE(tokensIn, at);
    at = b.writeDoubleLE(tokensOut, at);
    at = b.writeDoubleLE(cost, at);
  }
  return b.subarray(0, at);
}

/** Adds the runs and usage of a minute's detail to the tally `place` gives for each creation time (if any). */
export function addRunDetail(minute: number, detail: Uint8Array, place: (at: number) => Tally | undefined): void {
  const b = Buffer.from(detail.buffer, detail.byteOffset, detail.byteLength);
  let at = 0;
  const statuses: string[] = [];
  const count = b.readUInt8(at++);
  for (let i = 0; i < count; i++) {
    const len = b.readUInt16LE(at);
    statuses.push(b.toString('utf8', at + 2, at + 2 + len));
    at += 2 + len;
  }
  const next = () => {
    const v = readVarint(b, at);
    at = varintEnd(b, at);
    return v;
  };
  const groups = b.readUInt32LE(at);
  at += 4;
  const start = minute * MINUTE;
  for (let i = 0; i < groups; i++) {
    const [offset, status, bucket, n] = [next(), next(), next(), next()];
    const c = place(start + offset)?.cell('r', '', statuses[status]!);
    if (!c) continue;
    c.n += n;
    if (bucket > 0) c.hist.add(bucket - 1, n);
  }
  const usages = b.readUInt32LE(at);
  at += 4;
  for (let i = 0; i < usages; i++) {
    const offset = next();
    const c = place(start + offset)?.cell('a', '', '');
    if (c) {
      c.tokensIn += b.readDoubleLE(at);
      c.tokensOut += b.readDoubleLE(at + 8);
      c.cost += b.readDoubleLE(at + 16);
    }
    at += 24;
  }
}

/** Writes `v` (a non-negative integer) as an unsigned LEB128 varint at `at`; answers the offset after it. */
export function writeVarint(b: Buffer, at: number, v: number): number {
  while (v >= 0x80) {
    b[at++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  b[at++] = v;
  return at;
}
