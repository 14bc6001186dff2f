import { loadTypedTarget, normalizeLoaded } from '../define/load-pipelines.js';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { SluiceError } from '../core/errors.js';
import { loadPipelineFile } from '../core/load-pipeline.js';
import { Engine, type EngineOptions } from '../engine/engine.js';
import { createCommandLogger, logLevel } from './log.js';
import { attributePipelines } from '../attributes/extension.js';
import { builtinStepTypes, type ModelPrice } from '../steps/builtin.js';
import { DEFAULT_STORE_URL, openStore } from '../store/open-store.js';
import type { StoredPipeline } from '../store/store.js';

/** Options every command accepts. */
export interface GlobalOptions {
  store?: string;
  json?: boolean;
}

/** The store URL: --store, else SLUICE_STORE, else the SQLite default. */
export function storeUrl(opts: GlobalOptions): string {
  return opts.store ?? process.env['SLUICE_STORE'] ?? DEFAULT_STORE_URL;
}

/** Secrets come from SLUICE_SECRET_<NAME> environment variables. */
export function secretsFromEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (k.startsWith('SLUICE_SECRET_') && v !== undefined) out[k.slice('SLUICE_SECRET_'.length)] = v;
  return out;
}

/**
 * Opens the store and an engine on it; the caller closes the engine. The engine logs (JSON lines on stderr) at
 * `SLUICE_LOG_LEVEL`; unless `extra` brings its own logger, a command logs nothing when that is unset.
 */
export async function openEngine(opts: GlobalOptions, extra: Pick<EngineOptions, 'logger'> = {}): Promise<Engine> {
  const url = storeUrl(opts);
  const logger = extra.logger ?? (logLevel('silent') === 'silent' ? undefined : await createCommandLogger('silent'));
  const store = await openStore(url);
  const prices = llmPricesFromEnv();
  try {
    return new Engine({ store, steps: builtinStepTypes(prices ? { llm: { prices } } : {}), secrets: secretsFromEnv(), artifacts: artifactsSetting(url), ...(logger ? { logger } : {}), extensions: [attributePipelines()] });
  } catch (err) {
    // A bad SLUICE_ARTIFACTS is refused before anything runs; the store's connections go with it.
    await store.close();
    throw err;
  }
}

/**
 * The price table of `llm` steps from SLUICE_LLM_PRICES: JSON (or @file) mapping a model to
 * `{ "input_per_1k": number, "output_per_1k": number }`; costs are recorded per attempt and summed per run.
 */
export function llmPricesFromEnv(env: NodeJS.ProcessEnv = process.env): Record<string, ModelPrice> | undefined {
  const raw = env['SLUICE_LLM_PRICES'];
  if (!raw) return undefined;
  const where = raw.startsWith('@') ? `file ${raw.slice(1)}` : 'SLUICE_LLM_PRICES';
  let table: unknown;
  try {
    table = JSON.parse(raw.startsWith('@') ? readFileSync(raw.slice(1), 'utf8') : raw);
  } catch (err) {
    throw new SluiceError('VALIDATION_FAILED', `${where} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof table !== 'object' || table === null || Array.isArray(table)) throw new SluiceError('VALIDATION_FAILED', `${where} must map model names to prices`);
  for (const [model, price] of Object.entries(table)) {
    const p = price as Partial<ModelPrice> | null;
    if (typeof p?.input_per_1k !== 'number' || typeof p.output_per_1k !== 'number') {
      throw new SluiceError('VALIDATION_FAILED', `${where}: price of ${model} needs numbers input_per_1k and output_per_1k`);
    }
  }
  return table as Record<string, ModelPrice>;
}

/**
 * Where artifacts live: SLUICE_ARTIFACTS (a folder path, `s3://bucket/prefix` or `store`), else the database of a
 * PostgreSQL store (`store`), else an `artifacts` folder beside a SQLite file, else `.sluice/artifacts`.
 */
export function artifactsSetting(url: string, env: NodeJS.ProcessEnv = process.env): string {
  const setting = env['SLUICE_ARTIFACTS']?.trim();
  if (setting) return setting === 'store' || /^[a-z][a-z0-9+.-]*:\/\//i.test(setting) ? setting : resolve(setting);
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return 'store';
  const file = url.startsWith('sqlite:') ? url.slice('sqlite:'.length) : '';
  if (file && file !== ':memory:') return join(dirname(resolve(file)), 'artifacts');
  return resolve('.sluice', 'artifacts');
}

const PIPELINE_FILE = /\.(ya?ml|json|[cm]?[jt]s)$/i;

/** Whether the argument names a pipeline file rather than a registered pipeline. */
export function looksLikeFile(arg: string): boolean {
  return PIPELINE_FILE.test(arg) || existsSync(arg);
}

/**
 * Resolves FILE|NAME: a file is validated and registered (a new version only when it changed);
 * a name must already be registered. Validation happens before anything is written.
 */
export async function resolvePipeline(engine: Engine, arg: string): Promise<StoredPipeline> {
  // FILE.ts#NAME: a pipeline defined in code, registered as a file is.
  const typed = await loadTypedTarget(arg);
  if (typed) {
    normalizeLoaded(typed, engine.steps);
    return engine.registerPipeline(typed);
  }
  if (!looksLikeFile(arg)) return engine.requirePipeline(arg);
  const file = resolve(arg);
  const loaded = await loadPipelineFile(file, engine.steps);
  return engine.registerPipeline(loaded.pipeline, { text: loaded.source, file });
}

/** Parses `--input JSON|@file`. */
export function parseInput(value: string | undefined): unknown {
  if (value === undefined) return null;
  const text = value.startsWith('@') ? readFileSync(value.slice(1), 'utf8') : value;
  try {
    return JSON.parse(text);
  } catch (err) {
    const where = value.startsWith('@') ? `file ${value.slice(1)}` : '--input';
    throw new SluiceError('INPUT_INVALID', `${where} is not valid JSON: ${(err as Error).message}`);
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Formats epoch ms as a local ISO-like time, or '-'. */
export function formatTime(ms: number | null): string {
  if (ms === null) return '-';
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function formatDuration(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}

/** Renders rows as an aligned text table. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}
