import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RunEvent } from '../../store/store.js';
import type { ServerContext } from '../create-server.js';
import type { EventSelector, LiveBatch } from '../live-events.js';
import { apiResponses, textAnswer } from '../response-schemas.js';
import { streamQuery } from '../schemas.js';
import { eventView } from '../views.js';

interface StreamQuery {
  run?: string;
  pipeline?: string;
  after?: number;
}

/**
 * Live events. SSE at GET /api/stream and WebSocket at GET /api/ws, both filtered by `run` and `pipeline`.
 * A stream first replays stored events after `Last-Event-ID` (SSE) or `?after=`; with neither, a stream of
 * one run replays that run from its start, and any other stream starts live.
 */
export function registerStreamRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Querystring: StreamQuery }>(
    '/api/stream',
    { schema: { tags: ['events'], operationId: 'streamEvents', summary: 'Server-sent events (id, event type, JSON data); resumes from Last-Event-ID', querystring: streamQuery, response: apiResponses({ 200: textAnswer('One SSE frame per event: `id`, `event` (its type) and `data` (the event as JSON, as in GET /api/runs/{id}/events)', 'text/event-stream') }, 400) } },
    async (request, reply) => {
      const raw = reply.raw;
      reply.hijack();
      raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      raw.write(': connected\n\n');
      const send = (batch: LiveBatch) => {
        if (raw.destroyed) return;
        // A client that does not keep up is dropped; it reconnects with Last-Event-ID and replays from the store.
        if (raw.writableLength > MAX_BUFFERED_BYTES) raw.destroy();
        else raw.write(sseBytes(batch));
      };
      const heartbeat = setInterval(() => raw.write(': heartbeat\n\n'), ctx.heartbeatMs);
      let unsubscribe: (() => void) | undefined;
      let closed = false;
      raw.on('close', () => {
        closed = true;
        clearInterval(heartbeat);
        unsubscribe?.();
      });
      try {
        const u = await ctx.live.subscribe(selectorOf(request.query), send, replayFrom(request, request.query));
        if (closed) u();
        else unsubscribe = u;
      } catch (err) {
        raw.write(`event: error\ndata: ${JSON.stringify({ error: { code: 'STORE_ERROR', message: String(err) } })}\n\n`);
        raw.end();
      }
    },
  );

  app.get<{ Querystring: StreamQuery }>(
    '/api/ws',
    { websocket: true, schema: { tags: ['events'], operationId: 'websocketEvents', summary: 'WebSocket: one JSON message per event', querystring: streamQuery, response: apiResponses({ 101: { description: 'Switching to the WebSocket protocol; each message is one event as JSON' } }, 400) } },
    (socket, request) => {
      let unsubscribe: (() => void) | undefined;
      let closed = false;
      socket.on('close', () => {
        closed = true;
        unsubscribe?.();
      });
      const send = (batch: LiveBatch) => {
        for (const e of batch.events) {
          if (socket.readyState !== socket.OPEN) return;
          if (socket.bufferedAmount > MAX_BUFFERED_BYTES) return socket.close(1013, 'too slow: reconnect with ?after=<last id>');
          socket.send(jsonBytes(e), { binary: false });
        }
      };
      ctx.live.subscribe(selectorOf(request.query), send, replayFrom(request, request.query)).then(
        (u) => {
          if (closed) u();
          else unsubscribe = u;
        },
        (err: unknown) => socket.close(1011, String(err).slice(0, 120)),
      );
    },
  );
}

/** Unsent bytes a live client may fall behind by before it is disconnected. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

// Each event is serialized once, however many subscribers receive it, and each batch of a selector (shared by
// every stream with that selector) is turned into bytes once: the streams write one Buffer.
const json = new WeakMap<RunEvent, Buffer>();
const frames = new WeakMap<RunEvent, string>();
const batchBytes = new WeakMap<LiveBatch, Buffer>();

/** The event as one WebSocket message (JSON, UTF-8). */
function jsonBytes(e: RunEvent): Buffer {
  let bytes = json.get(e);
  if (bytes === undefined) {
    bytes = Buffer.from(JSON.stringify(eventView(e)));
    json.set(e, bytes);
  }
  return bytes;
}

function sseFrame(e: RunEvent): string {
  let text = frames.get(e);
  if (text === undefined) {
    text = `id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(eventView(e))}\n\n`;
    frames.set(e, text);
  }
  return text;
}

/** The SSE frames of a batch, as the bytes every stream of its selector writes. */
function sseBytes(batch: LiveBatch): Buffer {
  let bytes = batchBytes.get(batch);
  if (bytes === undefined) {
    bytes = Buffer.from(batch.events.map(sseFrame).join(''));
    batchBytes.set(batch, bytes);
  }
  return bytes;
}

function selectorOf(q: StreamQuery): EventSelector {
  return { ...(q.run ? { runId: q.run } : {}), ...(q.pipeline ? { pipeline: q.pipeline } : {}) };
}

/** The id to replay after: Last-Event-ID, else ?after=, else 0 for a one-run stream, else none (live only). */
function replayFrom(request: FastifyRequest, q: StreamQuery): number | undefined {
  const header = request.headers['last-event-id'];
  const fromHeader = typeof header === 'string' && /^\d+$/.test(header.trim()) ? Number(header.trim()) : undefined;
  if (fromHeader !== undefined) return fromHeader;
  if (q.after !== undefined) return q.after;
  return q.run ? 0 : undefined;
}
