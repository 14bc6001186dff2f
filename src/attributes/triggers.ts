import type { StoredPipeline } from '../store/store.js';
import { RECORD_TRIGGER } from './attribute-step.js';
import { attributePipelinesOf } from './ordering.js';

/** What triggers need of the engine. */
export interface TriggerHost {
  listPipelines(): Promise<StoredPipeline[]>;
  /** Starts one run of an attribute pipeline. */
  startAttributeRun(pipeline: string, input: { records?: string[]; trigger: string }): Promise<unknown>;
  onError(err: unknown): void;
}

/** Records named in one triggered run at most; beyond that the run pages the dataset (hash skipping finds them). */
const MAX_NAMED_RECORDS = 1000;

/**
 * Record-save triggers: when records are written (or a derived value changes), the attribute pipelines of
 * the dataset that read a changed field get a run for those records. Saves are debounced per pipeline:
 * a record saved many times within `debounceMs` is computed once, and records saved together share a run.
 */
export class AttributeTriggers {
  /** pipeline -> record ids waiting (null: too many to name; compute the dataset by hash). */
  private readonly pending = new Map<string, Set<string> | null>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly host: TriggerHost,
    private readonly debounceMs = 1000,
  ) {}

  /**
   * Records of `dataset` were written; `changed` maps each id to the fields that changed (`'all'` when the
   * record is new or the old one was not compared).
   */
  async recordsWritten(dataset: string, changed: Map<string, Set<string> | 'all'>): Promise<void> {
    if (changed.size === 0) return;
    const readers = attributePipelinesOf(await this.host.listPipelines(), dataset);
    const targets = new Set(readers.map((p) => p.definition.attribute!.target));
    for (const p of readers) {
      // Fields other pipelines write change through valuesChanged, once their writer has run.
      const fields = p.definition.attribute!.fields.filter((f) => !targets.has(f));
      if (fields.length === 0) continue;
      const ids = [...changed].filter(([, f]) => f === 'all' || fields.some((x) => f.has(x))).map(([id]) => id);
      if (ids.length > 0) this.add(p.name, ids);
    }
  }

  /** `field` of these records got new values (an attribute run or an override): its readers recompute them. */
  async valuesChanged(dataset: string, field: string, recordIds: string[]): Promise<void> {
    const readers = attributePipelinesOf(await this.host.listPipelines(), dataset).filter((p) => p.definition.attribute!.fields.includes(field));
    for (const p of readers) this.add(p.name, recordIds);
  }

  private add(pipeline: string, ids: string[]): void {
    const current = this.pending.has(pipeline) ? this.pending.get(pipeline)! : new Set<string>();
    if (current !== null) for (const id of ids) current.add(id);
    this.pending.set(pipeline, current !== null && current.size > MAX_NAMED_RECORDS ? null : current);
    if (!this.timer) {
      this.timer = setTimeout(() => void this.flush().catch((err) => this.host.onError(err)), this.debounceMs);
      this.timer.unref();
    }
  }

  /** Starts the runs waiting now (a short-lived process calls this before it exits). */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = [...this.pending];
    this.pending.clear();
    this.flushing = this.flushing.then(async () => {
      for (const [pipeline, ids] of batch) {
        await this.host.startAttributeRun(pipeline, ids === null ? { trigger: RECORD_TRIGGER } : { records: [...ids], trigger: RECORD_TRIGGER });
      }
    });
    return this.flushing;
  }

  /** Pipelines with runs waiting to start. */
  get waiting(): string[] {
    return [...this.pending.keys()];
  }
}
