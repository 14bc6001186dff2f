import type { Engine } from '../engine/engine.js';
import type { RunEvent, Store } from '../store/store.js';

/** Which events a subscriber wants. */
export interface EventSelector {
  runId?: string;
  pipeline?: string;
}

export interface LiveEventsOptions {
  /** How often the store is polled for events committed by other processes. Default: 250 ms. */
  pollMs?: number;
  /** Called with poll errors. Default: ignored (the next poll tries again). */
  onError?: (err: unknown) => void;
}

type Sink = (event: RunEvent) => void;

const SEEN_LIMIT = 50_000;
// Ids of PostgreSQL events are taken before commit, so a lower id can appear after a higher one; each poll
// looks back this many ids and the seen-set drops what was delivered already.
const LOOKBACK_IDS = 500;
const REPLAY_PAGE = 1000;

function matches(e: RunEvent, s: EventSelector): boolean {
  return (s.runId === undefined || e.runId === s.runId) && (s.pipeline === undefined || e.pipeline === s.pipeline);
}

/**
 * One fan-out of run events for every live subscriber of a server: events committed by this process arrive
 * from `engine.subscribe` at once; events of other processes are polled from the store. Each event id is
 * delivered once (a bounded seen-set dedupes the two sources).
 */
export class LiveEvents {
  private readonly sinks = new Set<Sink>();
  private readonly seen = new Set<number>();
  private cursor = 0;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private polling = false;
  private readonly listeners = new Set<Sink>();

  constructor(
    private readonly engine: Engine,
    private readonly options: LiveEventsOptions = {},
  ) {}

  get store(): Store {
    return this.engine.store;
  }

  async start(): Promise<void> {
    this.cursor = await latestEventId(this.store);
    this.unsubscribe = this.engine.subscribe((e) => this.deliver(e));
    this.timer = setInterval(() => void this.poll(), this.options.pollMs ?? 250);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.unsubscribe?.();
    this.sinks.clear();
  }

  /** Every event once, whatever the source (metrics use it). */
  onEvent(listener: Sink): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Polls the store now (tests and the stream call it instead of waiting for the timer). */
  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      for (;;) {
        // One writer at a time (SQLite) commits ids in order: no need to look back.
        const lookback = this.store.capabilities.concurrentWriters ? LOOKBACK_IDS : 0;
        const from = Math.max(0, this.cursor - lookback);
        const page = await this.store.listEvents({ afterId: from, limit: REPLAY_PAGE + lookback });
        for (const e of page) this.deliver(e);
        const last = page.at(-1);
        if (!last || last.id <= this.cursor || page.length < REPLAY_PAGE + lookback) break;
      }
    } catch (err) {
      this.options.onError?.(err);
    } finally {
      this.polling = false;
    }
  }

  private deliver(e: RunEvent): void {
    if (e.id <= 0 || this.seen.has(e.id)) return;
    this.seen.add(e.id);
    if (this.seen.size > SEEN_LIMIT) this.trimSeen();
    if (e.id > this.cursor) this.cursor = e.id;
    for (const l of this.listeners) l(e);
    for (const sink of this.sinks) sink(e);
  }

  private trimSeen(): void {
    const floor = this.cursor - LOOKBACK_IDS * 4;
    for (const id of this.seen) if (id < floor) this.seen.delete(id);
    if (this.seen.size > SEEN_LIMIT) this.seen.clear();
  }

  /**
   * Subscribes `send` to the events matching `selector`. With `afterId`, first replays the stored events after
   * it; live events arriving meanwhile are buffered and sent after the replay, without duplicates, so the
   * stream has no gap. Returns a function that unsubscribes.
   */
  async subscribe(selector: EventSelector, send: Sink, afterId?: number): Promise<() => void> {
    let buffer: RunEvent[] | null = afterId === undefined ? null : [];
    const sink: Sink = (e) => {
      if (!matches(e, selector)) return;
      if (buffer) buffer.push(e);
      else send(e);
    };
    this.sinks.add(sink);
    const unsubscribe = () => void this.sinks.delete(sink);
    if (afterId === undefined) return unsubscribe;
    const replayed = new Set<number>();
    try {
      let after = afterId;
      for (;;) {
        const page = await this.store.listEvents({ afterId: after, limit: REPLAY_PAGE, ...selector });
        for (const e of page) {
          replayed.add(e.id);
          send(e);
        }
        if (page.length < REPLAY_PAGE) break;
        after = page.at(-1)!.id;
      }
    } catch (err) {
      unsubscribe();
      throw err;
    }
    const pending = buffer ?? [];
    buffer = null;
    for (const e of pending) if (!replayed.has(e.id) && e.id > afterId) send(e);
    return unsubscribe;
  }
}

/** The largest event id in the store (0 when empty). */
async function latestEventId(store: Store): Promise<number> {
  if (store.latestEventId) return store.latestEventId();
  let after = 0;
  for (;;) {
    const page = await store.listEvents({ afterId: after, limit: 10_000 });
    if (page.length === 0) return after;
    after = page.at(-1)!.id;
  }
}
