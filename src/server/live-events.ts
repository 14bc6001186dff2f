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

/**
 * Events matching a subscriber's selector, delivered together: those of one commit of this process, of one poll
 * page, or of one replay page. The same object goes to every subscriber with the same selector, so what a stream
 * makes of it (its bytes) can be made once and shared.
 */
export interface LiveBatch {
  readonly events: readonly RunEvent[];
}

export type BatchSink = (batch: LiveBatch) => void;

interface Member {
  send: BatchSink;
  /** Live events that arrived while the member's replay from the store was running. */
  buffer: RunEvent[] | null;
}

/** The subscribers of one selector. */
interface Channel {
  selector: EventSelector;
  members: Set<Member>;
  /** Events selected since the last flush, sent together by the next one. */
  pending: RunEvent[];
  /** When the channel last wrote (performance.now()). */
  flushedAt: number;
}

const SEEN_LIMIT = 50_000;
// Ids of PostgreSQL events are taken before commit, so a lower id can appear after a higher one; each poll
// looks back this many ids and the seen-set drops what was delivered already.
const LOOKBACK_IDS = 500;
const REPLAY_PAGE = 1000;
/** Shortest time between two writes of one channel. */
const MIN_FLUSH_MS = 10;

function matches(e: RunEvent, s: EventSelector): boolean {
  return (s.runId === undefined || e.runId === s.runId) && (s.pipeline === undefined || e.pipeline === s.pipeline);
}

const channelKey = (s: EventSelector) => `${s.runId ?? ''}\u0000${s.pipeline ?? ''}`;

/**
 * One fan-out of run events for every live subscriber of a server: events committed by this process arrive
 * from the engine once per commit, at once; events of other processes are polled from the store. Each event id
 * is delivered once (a bounded seen-set dedupes the two sources). Subscribers are grouped by selector and each
 * group gets one {@link LiveBatch} per delivery, so a thousand streams of one pipeline cost one filtering and,
 * in the stream routes, one serialization.
 */
export class LiveEvents {
  private readonly channels = new Map<string, Channel>();
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
    this.unsubscribe = this.engine.subscribeBatches((events) => this.deliver(events));
    this.timer = setInterval(() => void this.poll(), this.options.pollMs ?? 250);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.unsubscribe?.();
    this.channels.clear();
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
        this.deliver(page);
        const last = page.at(-1);
        if (!last || last.id <= this.cursor || page.length < REPLAY_PAGE + lookback) break;
      }
    } catch (err) {
      this.options.onError?.(err);
    } finally {
      this.polling = false;
    }
  }

  /** Hands the events not delivered before to the listeners, then to each channel as one batch. */
  private deliver(events: readonly RunEvent[]): void {
    const fresh: RunEvent[] = [];
    for (const e of events) {
      if (e.id <= 0 || this.seen.has(e.id)) continue;
      this.seen.add(e.id);
      if (e.id > this.cursor) this.cursor = e.id;
      for (const l of this.listeners) l(e);
      fresh.push(e);
    }
    if (this.seen.size > SEEN_LIMIT) this.trimSeen();
    if (fresh.length === 0) return;
    for (const channel of this.channels.values()) {
      const { selector } = channel;
      const selected = selector.runId === undefined && selector.pipeline === undefined ? fresh : fresh.filter((e) => matches(e, selector));
      if (selected.length === 0) continue;
      if (channel.pending.length === 0) this.scheduleFlush(channel);
      for (const e of selected) channel.pending.push(e);
    }
  }

  /**
   * A channel writes at the next turn of the event loop (commits come in bursts), and at most once per
   * {@link MIN_FLUSH_MS}: every write is a syscall per subscriber, which at thousands of commits a second costs
   * more CPU than the events themselves.
   */
  private scheduleFlush(channel: Channel): void {
    const wait = channel.flushedAt + MIN_FLUSH_MS - performance.now();
    if (wait <= 0) setImmediate(() => this.flush(channel));
    else setTimeout(() => this.flush(channel), wait);
  }

  private flush(channel: Channel): void {
    channel.flushedAt = performance.now();
    if (channel.pending.length === 0) return;
    const batch: LiveBatch = { events: channel.pending };
    channel.pending = [];
    for (const member of channel.members) {
      if (member.buffer) member.buffer.push(...batch.events);
      else member.send(batch);
    }
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
  async subscribe(selector: EventSelector, send: BatchSink, afterId?: number): Promise<() => void> {
    const member: Member = { send, buffer: afterId === undefined ? null : [] };
    const key = channelKey(selector);
    let channel = this.channels.get(key);
    if (!channel) {
      channel = { selector: { ...selector }, members: new Set(), pending: [], flushedAt: 0 };
      this.channels.set(key, channel);
    }
    channel.members.add(member);
    const unsubscribe = () => {
      channel.members.delete(member);
      if (channel.members.size === 0 && this.channels.get(key) === channel) this.channels.delete(key);
    };
    if (afterId === undefined) return unsubscribe;
    const replayed = new Set<number>();
    try {
      let after = afterId;
      for (;;) {
        const page = await this.store.listEvents({ afterId: after, limit: REPLAY_PAGE, ...selector });
        for (const e of page) replayed.add(e.id);
        if (page.length > 0) send({ events: page });
        if (page.length < REPLAY_PAGE) break;
        after = page.at(-1)!.id;
      }
    } catch (err) {
      unsubscribe();
      throw err;
    }
    const pending = (member.buffer ?? []).filter((e) => !replayed.has(e.id) && e.id > afterId);
    member.buffer = null;
    if (pending.length > 0) send({ events: pending });
    return unsubscribe;
  }
}

/** The largest event id in the store (0 when empty). */
function latestEventId(store: Store): Promise<number> {
  return store.latestEventId();
}
