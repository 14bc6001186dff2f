import { createReadStream, existsSync, statSync } from 'node:fs';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { SluiceError } from '../core/errors.js';
import { sendError } from './http-errors.js';

/** The built dashboard: `dist/web` of the package (this file is `src/server/` or `dist/server/`, two levels deep). */
export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../../dist/web/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** Paths that belong to the API and operations, never answered with the dashboard. */
const RESERVED = /^\/(api(\/|$)|openapi\.json$|docs(\/|$)|metrics$|healthz$|readyz$)/;

// Vite puts content-hashed files under /assets/: they never change, so browsers may keep them for a year.
const IMMUTABLE = 'public, max-age=31536000, immutable';

const MISSING_PAGE = `<!doctype html><meta charset="utf-8"><title>Sluice</title>
<body style="font-family:system-ui;margin:3rem"><h1>The Sluice dashboard is not built</h1>
<p>Build it with <code>npm run build:web</code> (it writes <code>dist/web/</code>), then reload this page.</p>
<p>The HTTP API works meanwhile: see <a href="/docs">/docs</a>.</p></body>`;

/**
 * Serves the dashboard (a single-page app) from `root`: files as they are, and `index.html` for every other
 * GET outside the API so that client routes such as `/runs/42` load the app. No auth: the files hold no data.
 * When `root` has no index.html, `/` explains how to build it.
 */
export function registerStaticWeb(app: FastifyInstance, root: string = DEFAULT_WEB_ROOT): void {
  const base = resolve(root);
  app.get('/*', { schema: { hide: true } }, async (request, reply) => {
    const path = decodeURIComponent(request.url.split('?')[0] ?? '/');
    if (RESERVED.test(path)) return sendError(new SluiceError('ROUTE_NOT_FOUND', `no route ${request.method} ${path}`), request, reply);
    const file = fileUnder(base, path);
    if (file) return sendFile(reply, file, path.startsWith('/assets/') ? IMMUTABLE : 'no-cache');
    // A missing asset is a 404; any other path is a client route of the app.
    if (extname(path) !== '' && path !== '/index.html') return sendError(new SluiceError('ROUTE_NOT_FOUND', `no file ${path}`), request, reply);
    const index = join(base, 'index.html');
    if (!existsSync(index)) return reply.status(503).type(TYPES['.html']!).header('cache-control', 'no-store').send(MISSING_PAGE);
    return sendFile(reply, index, 'no-cache');
  });
}

/** The regular file `path` names inside `base`, or undefined (also for `..` escapes and folders). */
function fileUnder(base: string, path: string): string | undefined {
  if (path.includes('\0')) return undefined;
  const full = resolve(base, normalize(`.${path}`));
  if (full !== base && !full.startsWith(base + sep)) return undefined;
  try {
    return statSync(full).isFile() ? full : undefined;
  } catch {
    return undefined;
  }
}

function sendFile(reply: FastifyReply, file: string, cacheControl: string): FastifyReply {
  const type = TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
  return reply.type(type).header('cache-control', cacheControl).header('x-content-type-options', 'nosniff').send(createReadStream(file));
}
