import { Cron } from 'croner';
import type { Engine } from './engine.js';
import { DEFAULT_CATCHUP, MAX_CATCHUP_SLOTS, type CronCatchup } from '../core/model.js';
import { attributeOrder } from '../core/attribute-order.js';
import type { StoredPipeline } from '../store/store.js';

export interface CronTriggersOptions {
  /** How often schedules are checked. Default: 1 s. */
  tickMs?: number;
  onError?: (err: unknown) => void;
  /**
   * Whether this process leads the store: only the leader fires (a follower's ticks do nothing, and it catches
   * up when it starts leading). Default: always (a slot is still claimed in the store, so exactly one process
   * fires it).
   */
  isLeading?: () => boolean;
}

/**
 * Fires the `cron` triggers of enabled pipelines (croner, in each trigger's time zone). Every server and worker
 * runs one, and the one that leads the store fires: a slot (pipeline, trigger, scheduled time) is claimed in the
 * store before its run starts, so exactly one process starts it whatever runs; the run also carries the
 * idempotency key `cron:<slot ms>` as a second guard. On start and on taking the lead, slots missed since the
 * trigger's latest claimed slot (while nothing fired) follow its `catchup`: `none` skips them, `latest` (the
 * default) fires the last, `all` fires each, at most the latest {@link MAX_CATCHUP_SLOTS}. The run input is
 * `{trigger, cron, timezone, slot}`. Attribute pipelines of one dataset due at the same time run in Kahn's
 * order, one after the other.
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
  /** Whether the last tick led; a tick that leads after one that did not catches up first. */
  private led = false;
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
    if (!(this.options.isLeading?.() ?? true)) {
      // A follower fires nothing; what passes meanwhile is caught up when it leads.
      this.led = false;
      this.checkedUntil = now;
      return 0;
    }
    this.ticking = true;
    const from = this.checkedUntil;
    const catchingUp = !this.led;
    try {
      let started = 0;
      const chained = new Map<string, Due[]>();
      for (const p of await this.engine.store.listPipelines()) {
        if (p.definition.disabled) continue;
        for (const t of p.definition.triggers) {
          if (t.kind !== 'cron') continue;
          const missed = catchingUp ? await this.missedSlots(p, t.cron, t.timezone, t.catchup ?? DEFAULT_CATCHUP, from) : [];
          for (const due of [...(await this.claim(p, t.cron, t.timezone, missed, now)), ...(await this.claimDue(p, t.cron, t.timezone, from, now))]) {
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
      this.led = true;
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
    return this.claim(p, pattern, timezone, this.slotsBetween(pattern, timezone, from, now), now);
  }

  /** Slots of the trigger in (from, until], oldest first; at most `limit` (the latest ones). */
  private slotsBetween(pattern: string, timezone: string, from: number, until: number, limit = Number.POSITIVE_INFINITY): number[] {
    const out: number[] = [];
    let next = this.cron(pattern, timezone).nextRun(new Date(from));
    while (next && next.getTime() <= until) {
      out.push(next.getTime());
      if (out.length > limit) out.shift();
      next = this.cron(pattern, timezone).nextRun(next);
    }
    return out;
  }

  /**
   * Slots in (the trigger's latest claimed slot, `until`] that no process fired, as its `catchup` keeps them.
   * A trigger never fired before has missed nothing.
   */
  private async missedSlots(p: StoredPipeline, pattern: string, timezone: string, catchup: CronCatchup, until: number): Promise<number[]> {
    const last = await this.engine.store.lastCronSlot(p.name, triggerKey(pattern, timezone));
    if (last === undefined || catchup === 'none') return [];
    return this.slotsBetween(pattern, timezone, last, until, catchup === 'all' ? MAX_CATCHUP_SLOTS : 1);
  }

  /** The slots this process claimed (exactly one process claims each). */
  private async claim(p: StoredPipeline, pattern: string, timezone: string, slots: number[], now: number): Promise<Due[]> {
    const store = this.engine.store;
    const out: Due[] = [];
    for (const slot of slots) {
      if (await store.claimCronSlot(p.name, triggerKey(pattern, timezone), slot, now)) out.push({ pipeline: p, pattern, timezone, slot });
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

/** How a trigger is named in slot claims: its time zone and pattern. */
function triggerKey(pattern: string, timezone: string): string {
  return `${timezone} ${pattern}`;
}
