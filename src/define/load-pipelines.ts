import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { SluiceError, ValidationError, type ErrorCode } from '../core/errors.js';
import type { PipelineSource } from '../store/store.js';
import type { StepRegistry } from '../steps/step-type.js';
import type { Pipeline } from '../core/model.js';
import { isTypedPipeline, type TypedPipeline } from './pipeline-builder.js';

type AnyTypedPipeline = TypedPipeline<any, any, any, any, any>;

/** Where each loaded pipeline came from, so its stored source names the module file. */
const loadedFrom = new WeakMap<object, string>();

/** The stored source of a pipeline defined in code: its YAML form, and the module it was loaded from when known. */
export function codePipelineSource(p: AnyTypedPipeline): PipelineSource {
  const file = loadedFrom.get(p);
  return { text: `# defined in TypeScript code${file ? ` (${file})` : ''}\n${p.toYaml()}`, ...(file ? { file } : {}) };
}

/**
 * Loads a JS/TS module (TypeScript through tsx, no build step) and returns the pipelines it exports (any
 * export that is a {@link TypedPipeline}, the default export included), in export order. A module that exports
 * none, or two pipelines of one name, is refused naming the file.
 */
export async function loadPipelineModule(file: string, cwd = process.cwd()): Promise<AnyTypedPipeline[]> {
  const absolute = path.resolve(cwd, file);
  let namespace: Record<string, unknown>;
  try {
    const { tsImport } = await import('tsx/esm/api');
    namespace = (await tsImport(pathToFileURL(absolute).href, import.meta.url)) as Record<string, unknown>;
  } catch (err) {
    throw new SluiceError('MODULE_LOAD_FAILED', `cannot load ${absolute}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const found = new Map<string, AnyTypedPipeline>();
  for (const [exportName, value] of Object.entries(namespace)) {
    const candidates = exportName === 'default' && Array.isArray(value) ? value : [value];
    for (const p of candidates) {
      if (!isTypedPipeline(p)) continue;
      const other = found.get(p.name);
      if (other && other !== p) throw new SluiceError('VALIDATION_FAILED', `${absolute}: two exported pipelines are named ${p.name}`);
      found.set(p.name, p);
      loadedFrom.set(p, absolute);
    }
  }
  if (found.size === 0) throw new SluiceError('VALIDATION_FAILED', `${absolute} exports no pipeline (export the values pipeline() returns)`);
  return [...found.values()];
}

/**
 * Splits `FILE#NAME` (as in `sluice run ./pipelines.ts#users`) into the module and the pipeline name; `name` is
 * undefined without `#`. Only a file with a JS/TS extension counts, so YAML paths pass through unchanged.
 */
export function parseModuleRef(ref: string): { file: string; name: string | undefined } | undefined {
  const match = /^(.+\.(?:[cm]?[jt]sx?))(?:#(.+))?$/.exec(ref);
  return match ? { file: match[1]!, name: match[2] } : undefined;
}

/** The one pipeline of `pipelines` named `name` (or the only one when `name` is undefined); refused by name otherwise. */
export function pickPipeline(pipelines: AnyTypedPipeline[], name: string | undefined, file: string): AnyTypedPipeline {
  const names = pipelines.map((p) => p.name).join(', ');
  if (name === undefined) {
    if (pipelines.length === 1) return pipelines[0]!;
    throw new SluiceError('VALIDATION_FAILED', `${file} exports several pipelines (${names}); pick one with ${file}#NAME`);
  }
  const p = pipelines.find((x) => x.name === name);
  if (!p) throw new SluiceError('PIPELINE_NOT_FOUND', `${file} exports no pipeline named ${name} (it exports: ${names})`);
  return p;
}

/**
 * The typed pipeline a `sluice run` target names: `FILE#NAME`, or a JS/TS `FILE` that exports typed pipelines
 * (exactly one, or pick with `#NAME`). Undefined for anything else (a YAML file, a module exporting a pipeline
 * object, a registered name), which the caller handles as before.
 */
export async function loadTypedTarget(target: string): Promise<AnyTypedPipeline | undefined> {
  const ref = parseModuleRef(target);
  if (!ref) return undefined;
  if (ref.name === undefined) {
    const pipelines = await loadPipelineModule(ref.file).catch(() => undefined);
    return pipelines ? pickPipeline(pipelines, undefined, ref.file) : undefined;
  }
  return pickPipeline(await loadPipelineModule(ref.file), ref.name, ref.file);
}

/** Registers every pipeline the modules export (`--load`), returning their names; nothing is stored when one is invalid. */
export async function registerModules(engine: { registerPipeline(p: AnyTypedPipeline): Promise<unknown>; steps: StepRegistry }, files: readonly string[]): Promise<string[]> {
  const exported = (await Promise.all(files.map((f) => loadPipelineModule(f)))).flat();
  // Children a module's pipelines run, exported or not, are registered before their parents.
  const pipelines = [...new Map(exported.flatMap((p) => [...p.children(), p]).map((p) => [p.name, p])).values()];
  // Normalize all before storing any: a bad pipeline in a module leaves the store as it was.
  for (const p of pipelines) normalizeLoaded(p, engine.steps);
  for (const p of pipelines) await engine.registerPipeline(p);
  return pipelines.map((p) => p.name);
}

/**
 * A loaded module may import another copy of this package than the CLI's own (its `sluice` resolved to the
 * sources through a tsconfig `paths` entry, say), so its errors are not instances of this copy's classes. These
 * wrappers give them back as this copy's errors, with the same code, message and details.
 */
export function normalizeLoaded(p: AnyTypedPipeline, steps: StepRegistry): void {
  normalizedLoaded(p, steps);
}

/** The normalized definition of a loaded pipeline, its errors as this copy's (see {@link normalizeLoaded}). */
export function normalizedLoaded(p: AnyTypedPipeline, steps: StepRegistry): Pipeline {
  try {
    return p.normalize(steps);
  } catch (err) {
    throw rehome(err);
  }
}

/** {@link TypedPipeline.parseInput} of a loaded pipeline, its errors as this copy's (see {@link normalizeLoaded}). */
export async function parseLoadedInput(p: AnyTypedPipeline, input: unknown): Promise<unknown> {
  try {
    return await p.parseInput(input);
  } catch (err) {
    throw rehome(err);
  }
}

function rehome(err: unknown): unknown {
  // Here the class itself is the question: an error of another copy of the package passes the brand check too.
  // eslint-disable-next-line no-restricted-syntax
  if (err instanceof SluiceError || typeof err !== 'object' || err === null) return err;
  const { code, message, details, issues } = err as { code?: unknown; message?: unknown; details?: unknown; issues?: unknown };
  if (typeof code !== 'string' || typeof message !== 'string') return err;
  if (code === 'VALIDATION_FAILED' && Array.isArray(issues)) return new ValidationError(issues);
  return new SluiceError(code as ErrorCode, message, { details, cause: err });
}
