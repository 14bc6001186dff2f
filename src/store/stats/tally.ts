import type { DurationStats, PipelineStats, SeriesOptions, StatsBucket } from '../store.js';
import { bucketOf, Histogram } from './histogram.js';
import { writeVarint } from './run-detail.js';
import { noDurations } from './percentiles.js';

/** What a rollup cell counts: runs (`r`), steps (`s`), finished attempts (`a`) or child runs (`c`, for prunes). */
export type Kind = 'r' | 's' | 'a' | 'c';

/**
 * One group of contributions: `n` rows (runs, steps or finished attempts) of one kind, name and status; `hist`
 * holds the durations of the finished runs or timed attempts among them. Runs have name '', attempts status ''.
 */
export interface Cell {
  kind: Kind;
  name: string;
  status: string;
  n: number;
  seq: number | null;
  tokensIn: number;
  tokensOut: number;
  cost: number;
  hist: Histogram;
}

/** A rollup row as stored and read: the cells of one pipeline's runs created in one minute. */
export interface RollupRow {
  pipeline?: string;
  minute: number | string;
  /** Child runs among the minute's runs (a prune of their parent's pipeline removes them). */
  children?: number | string;
  /** `Tally.encode` bytes. */
  cells: Uint8Array;
  /** `encodeRunDetail` bytes (written by the fold; read for the minutes a series edge cuts). */
  runs?: Uint8Array;
}

/** Raw rows grouped by run creation time: `n` rows of one kind, name, status and duration (null: none). */
export interface RawRow {
  pipeline: string;
  /** The run's creation time. */
  at: number | string;
  kind: Kind;
  name: string;
  status: string;
  seq: number | string | null;
  ms: number | string | null;
  n: number | string;
  tokens_in?: number | string | null;
  tokens_out?: number | string | null;
  cost?: number | string | null;
}

/** Cells by kind, name and status. */
export class Tally {
  readonly cells = new Map<string, Cell>();

  cell(kind: Kind, name: string, status: string): Cell {
    const key = `${kind}\u0000${name}\u0000${status}`;
    let c = this.cells.get(key);
    if (!c) {
      c = { kind, name, status, n: 0, seq: null, tokensIn: 0, tokensOut: 0, cost: 0, hist: new Histogram() };
      this.cells.set(key, c);
    }
    return c;
  }

  /** Adds one raw row (its duration goes to its histogram bucket). */
  addRaw(r: RawRow): void {
    const c = this.cell(r.kind, r.name, r.status);
    const n = Number(r.n);
    addCounts(c, n, r.seq, r.tokens_in, r.tokens_out, r.cost);
    if (r.ms !== null) c.hist.add(bucketOf(Number(r.ms)), n);
  }

  /** Adds the cells of one rollup row to this tally and to `also` (a series bucket), decoded once. */
  addRollup(r: RollupRow, also?: Tally): void {
    const buf = Buffer.from(r.cells.buffer, r.cells.byteOffset, r.cells.byteLength);
    let at = 0;
    const text = () => {
      const len = buf.readUInt16LE(at);
      at += 2 + len;
      return len === 0 ? '' : buf.toString('utf8', at - len, at);
    };
    const cells = buf.readUInt16LE(at);
    at += 2;
    for (let i = 0; i < cells; i++) {
      const kind = KINDS[buf.readUInt8(at++)]!;
      const name = text();
      const status = text();
      const seq = buf.readInt32LE(at + 8);
      const counts = [buf.readDoubleLE(at), seq < 0 ? null : seq, buf.readDoubleLE(at + 12), buf.readDoubleLE(at + 20), buf.readDoubleLE(at + 28)] as const;
      const pairs = buf.readUInt32LE(at + 36);
      at += 40;
      for (const t of also ? [this, also] : [this]) {
        const c = t.cell(kind, name, status);
        addCounts(c, ...counts);
        let bucket = 0;
        for (let k = 0, p = at; k < pairs; k++) {
          [bucket, p] = [bucket + readVarint(buf, p), varintEnd(buf, p)];
          c.hist.add(bucket, readVarint(buf, p));
          p = varintEnd(buf, p);
        }
      }
      for (let k = 0; k < 2 * pairs; k++) at = varintEnd(buf, at);
    }
  }

  /**
   * The cells as stored in a rollup row: a u16 count, then per cell its kind (u8), name and status (u16 length,
   * UTF-8), n (f64), seq (i32, -1: none), tokens in, tokens out and cost (f64), and its histogram's (bucket,
   * count) pairs (u32 count, then per pair the bucket's distance from the one before and the count, as unsigned
   * LEB128 varints: a minute's histogram of a hundred durations takes about 200 bytes); little-endian.
   */
  encode(): Buffer {
    const parts: Buffer[] = [];
    const head = Buffer.alloc(2);
    head.writeUInt16LE(this.cells.size);
    parts.push(head);
    for (const c of this.cells.values()) {
      const pairs = c.hist.pairs();
      const name = Buffer.from(c.name, 'utf8');
      const status = Buffer.from(c.status, 'utf8');
      const b = Buffer.alloc(1 + 2 + name.length + 2 + status.length + 40 + pairs.length * 10);
      let at = b.writeUInt8(KINDS.indexOf(c.kind));
      at = b.writeUInt16LE(name.length, at);
      at += name.copy(b, at);
      at = b.writeUInt16LE(status.length, at);
      at += status.copy(b, at);
      at = b.writeDoubleLE(c.n, at);
      at = b.writeInt32LE(c.seq ?? -1, at);
      at = b.writeDoubleLE(c.tokensIn, at);
      at = b.writeDoubleLE(c.tokensOut, at);
      at = b.writeDoubleLE(c.cost, at);
      at = b.writeUInt32LE(pairs.length, at);
      let prev = 0;
      for (const [bucket, n] of pairs) {
        at = writeVarint(b, at, bucket - prev);
        at = writeVarint(b, at, n);
        prev = bucket;
      }
      parts.push(b.subarray(0, at));
    }
    return Buffer.concat(parts);
  }
}

const KINDS: readonly Kind[] = ['r', 's', 'a', 'c'];

/** The unsigned LEB128 varint at `at`. */
export function readVarint(b: Buffer, at: number): number {
  let v = 0;
  let scale = 1;
  for (;;) {
    const byte = b[at++]!;
    v += (byte & 0x7f) * scale;
    if (byte < 0x80) return v;
    scale *= 0x80;
  }
}

/** The offset just after the varint at `at`. */
export function varintEnd(b: Buffer, at: number): number {
  while (b[at++]! >= 0x80);
  return at;
}

function addCounts(c: Cell, n: number, seq: RawRow['seq'], tokensIn: RawRow['tokens_in'], tokensOut: RawRow['tokens_out'], cost: RawRow['cost']): void {
  c.n += n;
  if (seq !== null) c.seq = c.seq === null ? Number(seq) : Math.min(c.seq, Number(seq));
  c.tokensIn += Number(tokensIn ?? 0);
  c.tokensOut += Number(tokensOut ?? 0);
  c.cost += Number(cost ?? 0);
}

function ofKind(t: Tally, kind: Kind): Cell[] {
  return [...t.cells.values()].filter((c) => c.kind === kind && c.n !== 0);
}

function runsOf(t: Tally): { byStatus: Record<string, number>; duration: DurationStats } {
  const hist = new Histogram();
  const byStatus: Record<string, number> = {};
  for (const c of ofKind(t, 'r')) {
    byStatus[c.status] = (byStatus[c.status] ?? 0) + c.n;
    hist.merge(c.hist);
  }
  return { byStatus, duration: hist.stats() };
}

function usageOf(t: Tally): { tokensIn: number; tokensOut: number; cost: number } {
  // Every attempt cell, also those a series made of usage alone (run-detail.ts), which count no attempts.
  const attempts = [...t.cells.values()].filter((c) => c.kind === 'a');
  const sum = (k: 'tokensIn' | 'tokensOut' | 'cost') => attempts.reduce((acc, c) => acc + c[k], 0);
  return { tokensIn: sum('tokensIn'), tokensOut: sum('tokensOut'), cost: sum('cost') };
}

/** Steps in definition order (least `seq` seen), with counts by status, attempts, durations, tokens and cost. */
function stepsOf(t: Tally): PipelineStats['steps'] {
  const steps = new Map<string, PipelineStats['steps'][number] & { seq: number }>();
  const stepOf = (name: string) => {
    let s = steps.get(name);
    if (!s) {
      s = { name, seq: Number.MAX_SAFE_INTEGER, byStatus: {}, duration: noDurations(), attempts: 0, tokensIn: 0, tokensOut: 0, cost: 0 };
      steps.set(name, s);
    }
    return s;
  };
  for (const c of ofKind(t, 's')) {
    const s = stepOf(c.name);
    s.seq = Math.min(s.seq, c.seq ?? Number.MAX_SAFE_INTEGER);
    s.byStatus[c.status] = (s.byStatus[c.status] ?? 0) + c.n;
  }
  for (const c of ofKind(t, 'a')) Object.assign(stepOf(c.name), { attempts: c.n, tokensIn: c.tokensIn, tokensOut: c.tokensOut, cost: c.cost, duration: c.hist.stats() });
  return [...steps.values()].sort((a, b) => a.seq - b.seq).map(({ seq: _seq, ...rest }) => rest);
}

/** The totals part of `PipelineStats` from one tally. */
export function statsOfTally(pipeline: string, since: number, t: Tally): PipelineStats {
  return { pipeline, since, runs: runsOf(t), steps: stepsOf(t), ...usageOf(t) };
}

/** The series part of `PipelineStats`, one tally per bucket. */
export function seriesOfTallies(since: number, series: SeriesOptions, tallies: Tally[]): StatsBucket[] {
  const { width, count } = seriesShape(since, series);
  return Array.from({ length: count }, (_, i) => ({
    start: Math.round(since + i * width),
    end: Math.round(since + (i + 1) * width),
    ...runsOf(tallies[i]!),
    ...usageOf(tallies[i]!),
  }));
}

/** The bucket count and width of a series, as the stats have always cut it. */
export function seriesShape(since: number, series: SeriesOptions): { width: number; count: number } {
  const count = Math.max(1, Math.floor(series.buckets));
  return { count, width: Math.max(1, (series.until - since) / count) };
}

export const MINUTE = 60_000;
