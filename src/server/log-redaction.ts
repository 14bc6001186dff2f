import type { FastifyServerOptions } from 'fastify';

/**
 * A request URL fit for the request log: the value of a `token` query parameter (the live stream's
 * `?token=`, which browsers cannot send as a header) is replaced by `***`.
 */
export function redactUrlToken(url: string): string {
  return url.replace(/([?&]token=)[^&#]*/gi, '$1***');
}

interface LoggedRequest {
  method: string;
  url: string;
  hostname?: string;
  ip?: string;
  socket?: { remotePort?: number };
}

/** pino serializers of a server's logger: `req` keeps tokens out of logged URLs. */
export const requestSerializers = {
  req: (req: LoggedRequest) => ({ method: req.method, url: redactUrlToken(req.url), host: req.hostname, remoteAddress: req.ip, remotePort: req.socket?.remotePort }),
};

/** Fastify's logger option with a request serializer that keeps tokens out of logged URLs. */
export function withRedactedRequests(logger: FastifyServerOptions['logger']): FastifyServerOptions['logger'] {
  if (logger === false || logger === undefined) return logger;
  const serializers = requestSerializers;
  if (logger === true) return { serializers };
  const options = logger as { serializers?: Record<string, unknown> };
  return { ...logger, serializers: { ...options.serializers, ...serializers } } as FastifyServerOptions['logger'];
}
