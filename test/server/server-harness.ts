import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Engine } from '../../src/engine/engine.js';
import { createServer, type ServerOptions } from '../../src/server/create-server.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import type { StepFunction } from '../../src/steps/builtin.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Backend } from '../support/backends.js';
import { attributePipelines } from '../../src/attributes/extension.js';
import { sqliteTemplate } from '../support/sqlite-template.js';

export interface Harness {
  engine: Engine;
  app: FastifyInstance;
  dir: string;
  close(): Promise<void>;
}

/** A server over a fresh SQLite store in a temp folder, with `functions` callable by `uses: function, with.name`. */
export async function startHarness(
  functions: Record<string, StepFunction> = {},
  options: Omit<ServerOptions, 'engine'> & { worker?: boolean; backend?: Backend } = {},
): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-server-'));
  // Without a backend: a copy of the run's migrated SQLite file (test/support/sqlite-template.ts).
  if (!options.backend) copyFileSync(sqliteTemplate(), join(dir, 'sluice.db'));
  const store = options.backend ? await options.backend.create() : new SqliteStore({ path: join(dir, 'sluice.db') });
  if (!options.backend) await store.migrate();
  const engine = new Engine({ store, steps: builtinStepTypes({ functions }), onError: () => {}, artifactsDir: join(dir, 'artifacts'), extensions: [attributePipelines()] });
  if (options.worker !== false) engine.startWorker({ concurrency: 8 });
  const { worker: _worker, backend, ...serverOptions } = options;
  const app = await createServer({ engine, pollMs: 50, ...serverOptions });
  return {
    engine,
    app,
    dir,
    async close() {
      await app.close();
      await engine.close();
      await backend?.cleanup();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const TASK_YAML = `
name: tasks
input: { type: object, required: [title], properties: { title: { type: string } } }
triggers:
  - event: task.created
steps:
  split:
    uses: function
    with: { name: split, args: "\${{ input.title }}" }
  enrich:
    needs: [split]
    uses: function
    with: { name: enrich, args: "\${{ steps.split }}" }
`;

export const taskFunctions: Record<string, StepFunction> = {
  split: (ctx) => {
    ctx.log('info', `splitting ${String(ctx.args)}`);
    return { parts: String(ctx.args).split(' ') };
  },
  enrich: (ctx) => ({ count: (ctx.args as { parts: string[] }).parts.length }),
};
