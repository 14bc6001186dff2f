/**
 * Sluice as users run it: the built package in dist/ (what `sluice` and `import 'sluice'` load), typed by src/.
 * Benchmarks take the engine from here rather than from src/ through tsx, because tsx compiles with esbuild's
 * keepNames, which renames every closure as it is created: that alone made W1 about a tenth slower than the built
 * code. `npm run bench` builds first.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type * as LoadModule from '../../src/core/load-pipeline.js';
import type * as ValidateModule from '../../src/core/validate.js';
import type * as EngineModule from '../../src/engine/engine.js';
import type * as BuiltinModule from '../../src/steps/builtin.js';
import type * as PostgresModule from '../../src/store/postgres/postgres-store.js';
import type * as SqliteModule from '../../src/store/sqlite/sqlite-store.js';

const dist = new URL('../../dist/', import.meta.url);
if (!existsSync(fileURLToPath(new URL('index.js', dist)))) {
  throw new Error('dist/ is missing: run `npm run build` first (`npm run bench` does)');
}
const load = <T>(path: string) => import(new URL(path, dist).href) as Promise<T>;

export const { normalizePipeline, pipelineVersionHash } = await load<typeof ValidateModule>('core/validate.js');
export const { parsePipelineText } = await load<typeof LoadModule>('core/load-pipeline.js');
export const { Engine } = await load<typeof EngineModule>('engine/engine.js');
export type Engine = EngineModule.Engine;
export const { builtinStepTypes } = await load<typeof BuiltinModule>('steps/builtin.js');
export const { SqliteStore } = await load<typeof SqliteModule>('store/sqlite/sqlite-store.js');
export const { PostgresStore } = await load<typeof PostgresModule>('store/postgres/postgres-store.js');
export type PostgresStore = PostgresModule.PostgresStore;
