import type { RunEvent } from '../store/store.js';

export type EventListener = (event: RunEvent) => void;

/** In-process fan-out of events committed by this process. Listeners must not throw. */
export class EventBus {
  private readonly listeners = new Set<EventListener>();

  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  publish(events: readonly RunEvent[]): void {
    if (this.listeners.size === 0) return;
    for (const event of events) for (const listener of this.listeners) listener(event);
  }
}
