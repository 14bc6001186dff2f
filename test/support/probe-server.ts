import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as the probe server received it. */
export interface ProbeRequest {
  /** The raw request target, still percent-encoded. */
  url: string;
  headers: IncomingHttpHeaders;
}

/** A real HTTP server on 127.0.0.1 that records every request and answers with its own view of it as JSON. */
export interface ProbeServer {
  base: string;
  requests: ProbeRequest[];
  close(): Promise<void>;
}

/** Starts a {@link ProbeServer}; a request whose path starts with `/fail` gets a 500 echoing the request. */
export async function startProbeServer(): Promise<ProbeServer> {
  const requests: ProbeRequest[] = [];
  const server: Server = createServer((req, res) => {
    const seen = { url: req.url ?? '', headers: req.headers };
    requests.push(seen);
    req.resume();
    req.on('end', () => {
      res.writeHead(req.url?.startsWith('/fail') ? 500 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(seen));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
