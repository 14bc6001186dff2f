import { SluiceError } from '../../core/errors.js';
import type Database from 'better-sqlite3';
import type { RunRow } from '../rows.js';
import type { AttemptBatches } from './attempt-batches.js';
import type { RunTransitions } from './run-transitions.js';
import type { SQL } from './store-sql.js';

/** Fields of a run that never change after creation, so hot paths need not read the row again. */
export interface RunHeader {
  id: string;
  pipeline: string;
  version: number;
  /** JSON text: parsed per claim so that no two attempts share (and could mutate) one object. */
  input: string;
  /** The run whose `pipeline` step started this one. */
  parentRunId: string | null;
}

/** What the SQLite store's run functions (run-create, claims, completions) work with. */
export interface SqliteCtx {
  /** The run-state transitions; throws until the store is migrated. */
  readonly transitions: RunTransitions;
  readonly batches: AttemptBatches;
  /** A named statement of store-sql.ts, prepared once. */
  stmt(key: keyof typeof SQL): Database.Statement;
  /** Runs `fn` in a write transaction taken at once. */
  write<T>(fn: () => T): T;
  /** The immutable fields of a run, cached. */
  header(id: string): RunHeader;
  /** Caches the immutable fields of a run just read or written. */
  remember(row: HeaderRow): RunHeader;
}

/** The columns a run header is made of. */
export type HeaderRow = Pick<RunRow, 'id' | 'pipeline' | 'version' | 'input' | 'parent_run_id'>;

/** Headers kept at most; the cache starts over when full. */
const HEADER_CACHE_SIZE = 50_000;

/** The immutable fields of runs, cached; `lookup` reads one from the store on a miss. */
export class RunHeaders {
  private readonly headers = new Map<string, RunHeader>();

  constructor(private readonly lookup: (id: string) => HeaderRow | undefined) {}

  /** The header of run `id`; throws RUN_NOT_FOUND when there is no such run. */
  get(id: string): RunHeader {
    const cached = this.headers.get(id);
    if (cached) return cached;
    const row = this.lookup(id);
    if (!row) throw new SluiceError('RUN_NOT_FOUND', `no run ${id}`);
    return this.remember(row);
  }

  forget(id: string): void {
    this.headers.delete(id);
  }

  remember(row: HeaderRow): RunHeader {
    if (this.headers.size >= HEADER_CACHE_SIZE) this.headers.clear();
    const h: RunHeader = { id: row.id, pipeline: row.pipeline, version: row.version, input: row.input, parentRunId: row.parent_run_id ?? null };
    this.headers.set(row.id, h);
    return h;
  }
}
