import { Cron } from 'croner';
import type { Engine } from '../engine/engine.js';
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
 */
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
      for (const p of await this.engine.store.listPipelines()) {
        if (p.definition.disabled) continue;
        for (const t of p.definition.triggers) if (t.kind === 'cron') started += await this.fire(p, t.cron, t.timezone, from, now);
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

  private async fire(p: StoredPipeline, pattern: string, timezone: string, from: number, now: number): Promise<number> {
    let started = 0;
    let next = this.cron(pattern, timezone).nextRun(new Date(from));
    while (next && next.getTime() <= now) {
      const slot = next.getTime();
      const store = this.engine.store;
      const mine = store.claimTriggerSlot ? await store.claimTriggerSlot(p.name, slot, now) : true;
      if (mine) {
        const input = { trigger: 'cron', cron: pattern, timezone, slot: new Date(slot).toISOString() };
        const { created } = await this.engine.startRun(p, { input, idempotencyKey: `cron:${slot}` });
        if (created) started += 1;
      }
      next = this.cron(pattern, timezone).nextRun(next);
    }
    return started;
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
