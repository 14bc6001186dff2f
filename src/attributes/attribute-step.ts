import { SluiceError, type ErrorRecord } from '../core/errors.js';
import { sha256, stableStringify } from '../core/hash.js';
import { isRecord } from '../core/key-path.js';
import type { AttributeConfig } from '../core/model.js';
import { ATTRIBUTE_STEP_TYPE } from '../core/validate.js';
import type { AttributeWorkItem, ComputedAttributeValue } from '../store/attributes.js';
import type { Store } from '../store/store.js';
import type { StepContext, StepRegistry, StepType } from '../steps/step-type.js';
import { runBatch, type BatchItem } from './batch.js';
import type { AttributeRecordsPort } from './attribute-port.js';

/** Input of an attribute run. Everything is optional: `{}` computes every record whose input changed. */
export interface AttributeRunInput {
  /** Compute these records only (a record save names the records it wrote). */
  records?: string[];
  /** Recompute even when the input hash and version match (as `sluice run --force`). */
  force?: boolean;
  /** What started the run: manual, schedule, record or a pipeline name. For the record only. */
  trigger?: string;
}

/** What an attribute run reports as the output of its step, and what `stats` shows of the last run. */
export interface AttributeRunStats {
  processed: number;
  failed: number;
  skipped: number;
  tokens_in: number;
  tokens_out: number;
  duration_ms: number;
  batches: number;
  /** Source fields no record of the run had (a warning: the steps saw them as absent). */
  missing_fields: string[];
  /** The first failed records (at most 20) under `on_record_failure: continue`. */
  failures: Array<{ record: string; step: string; error: ErrorRecord }>;
}

export interface AttributeStepDeps {
  /** The attempt's fenced access to records and values (see attribute-port.ts); the step holds nothing else of the store. */
  port: (ctx: StepContext) => AttributeRecordsPort;
  /** The step types the written steps use (read when a run starts, so custom types registered later count). */
  steps: () => StepRegistry;
  /** Told which records got a new value of `field`, after each batch is stored (record-save triggers of readers). */
  onValuesChanged?: (dataset: string, field: string, recordIds: string[]) => void;
}

/** `trigger` of the runs a dataset run starts (see dataset-runs.ts). */
export const DATASET_TRIGGER = 'dataset';
/** `trigger` of the runs record saves (and changed values of a source field) start (see triggers.ts). */
export const RECORD_TRIGGER = 'record';

/** Records read from the store at once; batches are cut from these pages. */
const PAGE_SIZE = 1000;
/** Failed records listed in the run output. */
const MAX_LISTED_FAILURES = 20;
/** How often a long run writes a progress line to its log. */
const PROGRESS_EVERY_MS = 5000;

/**
 * The internal step type that runs an attribute pipeline (PRODUCT.md "Attribute pipelines"). It pages through
 * the dataset (or the records named in the input), skips records whose stored value has the same input hash
 * and version (unless forced) or was overridden by a person, runs the written steps over batches of
 * `batch_size` records and stores each value with its provenance in one transaction per batch. Memory holds
 * one page and one batch, never the dataset.
 *
 * A value is stored as soon as its batch is done, so a run that stops half-way (a crash, a cancel, a failed
 * record under `on_record_failure: abort`) keeps what it computed, and the next run picks up the rest by hash.
 */
export function createAttributeStep(deps: AttributeStepDeps): StepType<Record<string, unknown>> {
  return {
    type: ATTRIBUTE_STEP_TYPE,
    configSchema: { type: 'object' },
    async execute(ctx) {
      const port = deps.port(ctx);
      const stored = await port.getPipeline(ctx.run.pipeline, ctx.run.version);
      const attr = stored?.definition.attribute;
      if (!stored || !attr) throw new SluiceError('STEP_FAILED', `pipeline ${ctx.run.pipeline} v${ctx.run.version} is not an attribute pipeline`, { retryable: false });
      const input = readInput(ctx.input);
      const derived = await derivedFields(port, attr, stored.name);
      // A dataset run starts every reader itself, in order: its runs tell nobody of new values.
      const notify = input.trigger === DATASET_TRIGGER ? undefined : deps.onValuesChanged;
      const run = new AttributeRun({ port, steps: deps.steps, onValuesChanged: notify }, ctx, attr, stored.name, stored.version, input.force === true || ctx.force === true);
      return run.execute(input.records, derived);
    },
  };
}

function readInput(input: unknown): AttributeRunInput {
  if (input === null || input === undefined) return {};
  if (!isRecord(input)) throw new SluiceError('INPUT_INVALID', 'the input of an attribute run is an object: { records?, force?, trigger? }', { retryable: false });
  const out: AttributeRunInput = {};
  if (input.records !== undefined) {
    if (!Array.isArray(input.records) || !input.records.every((r) => typeof r === 'string')) {
      throw new SluiceError('INPUT_INVALID', 'input.records must be an array of record ids', { retryable: false });
    }
    out.records = input.records as string[];
  }
  if (input.force !== undefined) out.force = input.force === true;
  if (typeof input.trigger === 'string') out.trigger = input.trigger;
  return out;
}

/** Source fields that other attribute pipelines of the dataset write: read from their stored values. */
export async function derivedFields(store: Pick<Store, 'listPipelines'>, attr: AttributeConfig, self: string): Promise<string[]> {
  const targets = new Set(
    (await store.listPipelines())
      .filter((p) => p.name !== self && p.definition.attribute?.dataset === attr.dataset)
      .map((p) => p.definition.attribute!.target),
  );
  return attr.fields.filter((f) => targets.has(f));
}

/**
 * Identity of what a value was computed from: the source fields, the step settings and the version. Two
 * records with equal source fields hash alike; any change to the pipeline changes every hash.
 */
export function inputHasher(attr: AttributeConfig, version: number): (fields: Record<string, unknown>) => string {
  const settings = sha256(stableStringify(attr.steps));
  return (fields) => sha256(`${settings}\n${version}\n${stableStringify(fields)}`);
}

/** The source fields of a record: derived fields from their stored values, the others from the data. */
export function sourceFields(attr: AttributeConfig, item: Pick<AttributeWorkItem, 'data' | 'derived'>, derived: ReadonlySet<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of attr.fields) {
    const from = derived.has(f) ? item.derived : item.data;
    if (f in from) out[f] = from[f];
  }
  return out;
}

/** What one attribute run works with: the attempt's port, not the port factory. */
type RunDeps = Omit<AttributeStepDeps, 'port'> & { port: AttributeRecordsPort };

class AttributeRun {
  private readonly stats: AttributeRunStats = {
    processed: 0,
    failed: 0,
    skipped: 0,
    tokens_in: 0,
    tokens_out: 0,
    duration_ms: 0,
    batches: 0,
    missing_fields: [],
    failures: [],
  };
  private readonly hash: (fields: Record<string, unknown>) => string;
  private readonly seenFields = new Set<string>();
  private readonly started: number;
  private lastProgress: number;
  private pending: Array<BatchItem & { inputHash: string; rev: number }> = [];
  private unchanged: Array<{ recordId: string; sourceRev: number }> = [];
  private readonly ctx: StepContext;
  private derivedList: string[] = [];

  constructor(
    private readonly deps: RunDeps,
    ctx: StepContext,
    private readonly attr: AttributeConfig,
    private readonly pipeline: string,
    private readonly version: number,
    private readonly force: boolean,
  ) {
    this.hash = inputHasher(attr, version);
    this.started = ctx.now();
    this.lastProgress = this.started;
    this.ctx = {
      ...ctx,
      reportUsage: (usage) => {
        this.stats.tokens_in += usage.tokensIn ?? 0;
        this.stats.tokens_out += usage.tokensOut ?? 0;
        ctx.reportUsage(usage);
      },
    };
  }

  async execute(ids: string[] | undefined, derivedList: string[]): Promise<AttributeRunStats> {
    this.derivedList = derivedList;
    const derived = new Set(derivedList);
    const { dataset, target } = this.attr;
    // Records whose value is current by rev stay in the store, unread: unless forced, or when a source field
    // is another pipeline's value (those change without the record being written).
    const changedOnly = !this.force && derivedList.length === 0 ? { version: this.version } : undefined;
    const total = ids !== undefined ? ids.length : changedOnly ? await this.deps.port.countRecords(dataset) : 0;
    let read = 0;
    if (ids !== undefined) {
      for (let i = 0; i < ids.length; i += PAGE_SIZE) {
        const page = await this.deps.port.loadAttributeWork(dataset, target, derivedList, { ids: ids.slice(i, i + PAGE_SIZE), changedOnly });
        read += page.length;
        await this.consider(page, derived);
      }
    } else {
      for (let after: string | undefined; ; ) {
        const page = await this.deps.port.loadAttributeWork(dataset, target, derivedList, { after, limit: PAGE_SIZE, changedOnly });
        read += page.length;
        await this.consider(page, derived);
        if (page.length < PAGE_SIZE) break;
        after = page.at(-1)!.id;
      }
    }
    await this.flush();
    if (ids !== undefined || changedOnly) this.stats.skipped += Math.max(0, total - read);
    this.stats.missing_fields = read === 0 ? [] : this.attr.fields.filter((f) => !this.seenFields.has(f));
    if (this.stats.missing_fields.length > 0 && this.stats.processed + this.stats.failed > 0) {
      this.ctx.log('warn', `no record had source field(s) ${this.stats.missing_fields.join(', ')}: the steps saw them as absent`);
    }
    this.stats.duration_ms = this.ctx.now() - this.started;
    this.ctx.log('info', describe(this.stats));
    return this.stats;
  }

  /** Sorts a page into skipped records and records to compute; computes whenever a batch is full. */
  private async consider(page: AttributeWorkItem[], derived: ReadonlySet<string>): Promise<void> {
    for (const item of page) {
      if (this.ctx.signal.aborted) throw this.ctx.signal.reason instanceof Error ? this.ctx.signal.reason : new SluiceError('CANCELLED', 'the run was cancelled');
      const current = item.current;
      if (current?.status === 'overridden') {
        this.stats.skipped += 1;
        continue;
      }
      const fields = sourceFields(this.attr, item, derived);
      for (const f in fields) this.seenFields.add(f);
      const inputHash = this.hash(fields);
      if (!this.force && current !== null && current.inputHash === inputHash && current.pipelineVersion === this.version) {
        this.stats.skipped += 1;
        // Written since, but not in a field this pipeline reads: remember the rev so the next run need not look.
        this.unchanged.push({ recordId: item.id, sourceRev: item.rev });
        continue;
      }
      this.pending.push({ id: item.id, fields, value: current?.value ?? null, inputHash, rev: item.rev });
      if (this.pending.length >= this.attr.batchSize) await this.flush();
    }
  }

  /**
   * The records of a batch that still need computing, read again just before the batch runs: another run of
   * this pipeline (a record save's, in any process) may have stored a value from the same input meanwhile, or a
   * person overridden it; those are skipped, not asked of a model again. Unless forced, and only for pipelines
   * with a step other than `code` (a model, an HTTP call: what costs per record); a sandbox batch costs less
   * than reading it again (the re-read made a 100,000-record `code` run about a third slower).
   */
  private async stillDue(batch: Array<BatchItem & { inputHash: string; rev: number }>): Promise<Array<BatchItem & { inputHash: string; rev: number }>> {
    if (this.force || this.attr.steps.every((s) => s.uses === 'code')) return batch;
    const now = await this.deps.port.loadAttributeWork(this.attr.dataset, this.attr.target, this.derivedList, { ids: batch.map((b) => b.id) });
    const current = new Map(now.map((w) => [w.id, w.current]));
    const due = batch.filter((b) => {
      const value = current.get(b.id);
      if (!value) return true;
      return value.status !== 'overridden' && !(value.inputHash === b.inputHash && value.pipelineVersion === this.version);
    });
    this.stats.skipped += batch.length - due.length;
    return due;
  }

  private async flush(): Promise<void> {
    const batch = this.pending.length === 0 ? [] : await this.stillDue(this.pending.splice(0));
    if (batch.length === 0) {
      if (this.unchanged.length > 0) await this.deps.port.saveAttributeValues(this.attr.dataset, this.attr.target, this.pipeline, [], this.ctx.now(), this.unchanged.splice(0));
      return;
    }
    const outcomes = await runBatch(this.attr, { name: this.pipeline }, batch, { steps: this.deps.steps(), ctx: this.ctx, concurrency: this.attr.concurrency });
    const values: ComputedAttributeValue[] = [];
    let firstFailure: { record: string; step: string; error: ErrorRecord } | undefined;
    outcomes.forEach((o, i) => {
      const item = batch[i]!;
      if (o.ok) {
        values.push({
          recordId: item.id,
          value: o.value,
          confidence: o.confidence,
          justification: o.justification,
          inputHash: item.inputHash,
          pipelineVersion: this.version,
          runId: this.ctx.run.id,
          sourceRev: item.rev,
        });
        return;
      }
      const failure = { record: item.id, step: o.step, error: o.error };
      firstFailure ??= failure;
      this.stats.failed += 1;
      if (this.stats.failures.length < MAX_LISTED_FAILURES) this.stats.failures.push(failure);
      if (this.attr.onRecordFailure === 'continue') this.ctx.log('warn', `record "${item.id}" failed in step ${o.step}: ${o.error.message}`);
    });
    const written = await this.deps.port.saveAttributeValues(this.attr.dataset, this.attr.target, this.pipeline, values, this.ctx.now(), this.unchanged.splice(0));
    this.stats.processed += values.length;
    this.stats.batches += 1;
    const changed = new Set(batch.filter((b, i) => outcomes[i]!.ok && stableStringify((outcomes[i] as { value: unknown }).value) !== stableStringify(b.value)).map((b) => b.id));
    const changedWritten = written.filter((id) => changed.has(id));
    if (changedWritten.length > 0) this.deps.onValuesChanged?.(this.attr.dataset, this.attr.target, changedWritten);
    if (firstFailure && this.attr.onRecordFailure === 'abort') {
      const { record, step, error } = firstFailure;
      // The stats up to here are stored with the error: the run has no output, and they say what the abort kept.
      throw new SluiceError('RECORD_FAILED', `record "${record}" failed in step ${step}: ${error.message}`, {
        retryable: false,
        recordDetails: true,
        details: { record, step, error, stats: { ...this.stats, duration_ms: this.ctx.now() - this.started } },
      });
    }
    const now = this.ctx.now();
    if (now - this.lastProgress >= PROGRESS_EVERY_MS) {
      this.lastProgress = now;
      this.ctx.log('info', `progress: ${describe(this.stats)}`);
    }
  }
}

function describe(s: AttributeRunStats): string {
  const tokens = s.tokens_in + s.tokens_out > 0 ? `, ${s.tokens_in} tokens in, ${s.tokens_out} out` : '';
  return `${s.processed} processed, ${s.failed} failed, ${s.skipped} skipped in ${s.batches} batch(es)${tokens}`;
}
