import { Cron } from 'croner';
import type { Engine } from '../engine/engine.js';
import { attributeOrder } from '../attributes/ordering.js';
import type { StoredPipeline } from '../store/store.js';

export interface CronTriggersOptions {
  /** How often schedules are checked. Default: 1 s. */
  tickMs?: number;
  onError?: (err: unknown) => void;
}

/**
 * Fires the `cron` triggers of enabled pipelines (croner, in each trigger's time zone). Every process may run
 * one: a slot (pipeline + scheduled time) is claimed in the store before its run starts, so exactly one
 * process starts it; the run also carries the idempotency key `cron:<slot ms>` as a second guard. Slots that
 * passed while no server was running are not fired afterwards. The run input is `{trigger, cron, slot}`.
 * Attribute pipelines of one dataset due at the same time run in Kahn's order, one after the other.
 */
/** A cron slot this process claimed. */
interface Due {
  pipeline: StoredPipeline;
  pattern: string;
  timezone: string;
  slot: number;
}

export class CronTriggers {
  private timer: NodeJS.Timeout | undefined;
  private checkedUntil = 0;
  private ticking = false;
  private readonly patterns = new Map<string, Cron>();

  constructor(
    private readonly engine: Engine,
    private readonly options: CronTriggersOptions = {},
  ) {}

  async start(): Promise<void> {
    this.checkedUntil = this.engine.clock.now();
    this.timer = setInterval(() => void this.tick(), this.options.tickMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Fires every slot in (last check, now]; returns how many runs this process started. */
  async tick(now = this.engine.clock.now()): Promise<number> {
    if (this.ticking) return 0;
    this.ticking = true;
    const from = this.checkedUntil;
    try {
      let started = 0;
      const chained = new Map<string, Due[]>();
      for (const p of await this.engine.store.listPipelines()) {
        if (p.definition.disabled) continue;
        for (const t of p.definition.triggers) {
          if (t.kind !== 'cron') continue;
          for (const due of await this.claimDue(p, t.cron, t.timezone, from, now)) {
            const dataset = p.definition.attribute?.dataset;
            if (dataset === undefined) started += (await this.startDue(due)).created ? 1 : 0;
            else chained.set(dataset, [...(chained.get(dataset) ?? []), due]);
          }
        }
      }
      for (const dues of chained.values()) {
        started += 1;
        void this.startInOrder(dues).catch((err: unknown) => this.options.onError?.(err));
      }
      this.checkedUntil = now;
      return started;
    } catch (err) {
      this.options.onError?.(err);
      return 0;
    } finally {
      this.ticking = false;
    }
  }

  /** The slots of one cron trigger in (from, now] that this process claimed (exactly one process claims each). */
  private async claimDue(p: StoredPipeline, pattern: string, timezone: string, from: number, now: number): Promise<Due[]> {
    const out: Due[] = [];
    let next = this.cron(pattern, timezone).nextRun(new Date(from));
    while (next && next.getTime() <= now) {
      const slot = next.getTime();
      const store = this.engine.store;
      if (store.claimTriggerSlot ? await store.claimTriggerSlot(p.name, slot, now) : true) out.push({ pipeline: p, pattern, timezone, slot });
      next = this.cron(pattern, timezone).nextRun(next);
    }
    return out;
  }

  private async startDue(due: Due): Promise<{ created: boolean; runId: string }> {
    const input = { trigger: 'cron', cron: due.pattern, timezone: due.timezone, slot: new Date(due.slot).toISOString() };
    const { created, run } = await this.engine.startRun(due.pipeline, { input, idempotencyKey: `cron:${due.slot}` });
    return { created, runId: run.id };
  }

  /**
   * Attribute pipelines of one dataset that are due together run one after the other in Kahn's order (a
   * pipeline after those whose fields it reads), each when the one before has ended.
   */
  private async startInOrder(dues: Due[]): Promise<void> {
    const order = attributeOrder(dues.map((d) => ({ name: d.pipeline.name, target: d.pipeline.definition.attribute!.target, fields: d.pipeline.definition.attribute!.fields })));
    for (const name of order) {
      for (const due of dues.filter((d) => d.pipeline.name === name)) {
        await this.engine.waitForRun((await this.startDue(due)).runId);
      }
    }
  }

  private cron(pattern: string, timezone: string): Cron {
    const key = `${timezone} ${pattern}`;
    let c = this.patterns.get(key);
    if (!c) {
      c = new Cron(pattern, { timezone, paused: true });
      this.patterns.set(key, c);
    }
    return c;
  }
}
