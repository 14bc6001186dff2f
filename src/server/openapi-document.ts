import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../engine/engine.js';
import { builtinStepTypes } from '../steps/builtin.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { createServer } from './create-server.js';

/**
 * The OpenAPI document of the HTTP API, built without listening: a server over a throwaway SQLite store is
 * made ready, asked for its document and closed. The dashboard's API types are generated from it.
 */
export async function buildOpenApiDocument(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-openapi-'));
  const store = new SqliteStore({ path: join(dir, 'sluice.db') });
  const engine = new Engine({ store, steps: builtinStepTypes(), onError: () => {} });
  try {
    await store.migrate();
    const app = await createServer({ engine, webRoot: false });
    try {
      await app.ready();
      return app.swagger() as unknown as Record<string, unknown>;
    } finally {
      await app.close();
    }
  } finally {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
