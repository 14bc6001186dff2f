import { useEffect, useRef } from 'react';
import { getToken, type LiveEvent } from './api';

export const EVENT_TYPES = [
  'run.queued', 'run.started', 'run.paused', 'run.resumed', 'run.waiting', 'run.succeeded', 'run.failed', 'run.cancelled',
  'step.queued', 'step.started', 'step.retrying', 'step.succeeded', 'step.cached', 'step.skipped', 'step.failed', 'step.blocked',
  'step.waiting', 'step.woken', 'step.timed_out',
  'gate.decided', 'checkpoint.created',
] as const;

/**
 * Subscribes to the server's SSE stream (`/api/stream`, filtered by run and pipeline) while mounted.
 * EventSource cannot send headers, so the token goes in `?token=`; it reconnects with Last-Event-ID by itself.
 */
export function useLiveEvents(filter: { run?: string | undefined; pipeline?: string | undefined }, onEvent: (e: LiveEvent) => void, enabled = true): void {
  const handler = useRef(onEvent);
  handler.current = onEvent;
  useEffect(() => {
    if (!enabled) return;
    const q = new URLSearchParams();
    if (filter.run) q.set('run', filter.run);
    if (filter.pipeline) q.set('pipeline', filter.pipeline);
    const token = getToken();
    if (token) q.set('token', token);
    const source = new EventSource(`/api/stream?${q.toString()}`);
    const listener = (m: MessageEvent<string>) => {
      try {
        handler.current(JSON.parse(m.data) as LiveEvent);
      } catch {
        // A frame that is not an event (never sent by the server) is ignored.
      }
    };
    for (const t of EVENT_TYPES) source.addEventListener(t, listener);
    return () => source.close();
  }, [filter.run, filter.pipeline, enabled]);
}

/** The step status an event announces, if it is a step event. */
export function stepStatusOf(type: string): string | undefined {
  if (!type.startsWith('step.')) return undefined;
  const s = type.slice(5);
  // A wait woken or timed out is run again: its next step.started (or its end) says the status.
  if (s === 'woken' || s === 'timed_out') return undefined;
  return s === 'started' ? 'running' : s;
}

/** Calls `fn` at most once per `ms`, trailing (bursts of events cause one refresh). */
export function throttle(fn: () => void, ms: number): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      fn();
    }, ms);
  };
}
