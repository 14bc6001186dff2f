import type { RunEvent } from '../store/store.js';

export type EventListener = (event: RunEvent) => void;
/** Receives the events of one commit together, in id order. */
export type BatchListener = (events: readonly RunEvent[]) => void;

/** In-process fan-out of events committed by this process. Listeners must not throw. */
export class EventBus {
  private readonly listeners = new Set<EventListener>();
  private readonly batchListeners = new Set<BatchListener>();

  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Like {@link subscribe}, but once per published batch (one transaction's events): a listener that writes to
   * sockets writes once per commit instead of once per event.
   */
  subscribeBatches(listener: BatchListener): () => void {
    this.batchListeners.add(listener);
    return () => this.batchListeners.delete(listener);
  }

  publish(events: readonly RunEvent[]): void {
    if (events.length === 0) return;
    for (const listener of this.batchListeners) listener(events);
    if (this.listeners.size === 0) return;
    for (const event of events) for (const listener of this.listeners) listener(event);
  }
}
