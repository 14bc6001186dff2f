import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One scripted answer of the chat server. */
export interface ChatReply {
  /** Default: 200. */
  status?: number;
  headers?: Record<string, string>;
  /** The whole body, sent as is (a string) or as JSON; replaces the completion built from the fields below. */
  body?: unknown;
  /** `choices[0].message.content` of the completion. Default: `''`. */
  content?: string | null;
  refusal?: string;
  /** Default: the model the request named. */
  model?: string;
  /** `null` leaves `usage` out. Default: 12 in, 5 out. */
  usage?: { prompt_tokens: number; completion_tokens: number } | null;
  /** Default: `stop`. */
  finishReason?: string;
  /** Waits this long before answering (or until the client goes away). */
  delayMs?: number;
}

/** A request the server got. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON, or the raw text when it is not JSON. */
  body: any;
}

/** A real HTTP server on 127.0.0.1 speaking `POST /v1/chat/completions`, answering from a script. */
export interface ChatServer {
  /** Base URL for the SDK, ending in `/v1`. */
  baseUrl: string;
  requests: RecordedRequest[];
  /** Appends answers; each request takes the next one. Unscripted requests get a 500 (or the responder's answer). */
  reply(...replies: ChatReply[]): void;
  /** Answers every request the script does not, from its parsed body (e.g. by reading the prompt). */
  respond(responder: (body: any) => ChatReply): void;
  close(): Promise<void>;
}

/** A 200 completion whose content is `value` as JSON. */
export function jsonReply(value: unknown, extra: Omit<ChatReply, 'content'> = {}): ChatReply {
  return { ...extra, content: JSON.stringify(value) };
}

/** An OpenAI-style error body `{ error: { message, type } }` with the given status. */
export function errorReply(status: number, message: string, headers: Record<string, string> = {}): ChatReply {
  return { status, headers, body: { error: { message, type: 'test_error', code: null } } };
}

export async function startChatServer(): Promise<ChatServer> {
  const script: ChatReply[] = [];
  const requests: RecordedRequest[] = [];
  let responder: ((body: any) => ChatReply) | undefined;
  const server = createServer((req, res) => {
    void handle(req, res, script, requests, responder);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    reply: (...replies) => script.push(...replies),
    respond: (fn) => {
      responder = fn;
    },
    close: () =>
      new Promise((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, script: ChatReply[], requests: RecordedRequest[], responder?: (body: any) => ChatReply): Promise<void> {
  const text = await readBody(req);
  const body = parseJson(text);
  requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body });
  if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
    send(res, { status: 404, body: { error: { message: `no route ${req.method} ${req.url}` } } });
    return;
  }
  const reply = script.shift() ?? responder?.(body) ?? { status: 500, body: { error: { message: 'chat-server: no scripted reply left' } } };
  if (reply.delayMs) await waitOrClose(res, reply.delayMs);
  if (!res.destroyed) send(res, reply, (body as { model?: string } | undefined)?.model);
}

function send(res: ServerResponse, reply: ChatReply, requestedModel = 'unknown'): void {
  const payload = reply.body !== undefined ? reply.body : completionOf(reply, requestedModel);
  const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const type = typeof payload === 'string' ? 'text/plain' : 'application/json';
  res.writeHead(reply.status ?? 200, { 'content-type': type, ...reply.headers });
  res.end(text);
}

function completionOf(reply: ChatReply, requestedModel: string): unknown {
  const usage = reply.usage === undefined ? { prompt_tokens: 12, completion_tokens: 5 } : reply.usage;
  return {
    id: 'chatcmpl-test',
    object: 'chat.completion',
    created: 1_700_000_000,
    model: reply.model ?? requestedModel,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: reply.content === undefined ? '' : reply.content, refusal: reply.refusal ?? null },
        finish_reason: reply.finishReason ?? 'stop',
        logprobs: null,
      },
    ],
    ...(usage === null ? {} : { usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } }),
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function waitOrClose(res: ServerResponse, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    res.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
