import { stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { tsImport } from '../../core/optional-package.js';
import { SluiceError, errorMessage } from '../../core/errors.js';
import type { JsonSchema } from '../../core/model.js';
import { sha256 } from '../../core/hash.js';
import type { StepCacheInputs, StepContext, StepType } from '../step-type.js';
import { moduleFingerprint } from './module-fingerprint.js';
import { findCodeFunction } from './code-functions.js';

/** What a `function` step's function receives: the step context plus `with.args`. */
export type FunctionContext = StepContext & {
  /** `with.args` as resolved (templates already applied); `undefined` when not given. */
  args: unknown;
};

/** A trusted function run by a `function` step. Its return value is the step output (`undefined` becomes `null`). */
export type StepFunction = (ctx: FunctionContext) => unknown | Promise<unknown>;

/** `with` of a `function` step. Either `name` or `module` is required; `name` wins when both are given. */
export interface FunctionConfig {
  /** Path to a JS/TS module, resolved against the pipeline's `baseDir`, or a bare package specifier. */
  module?: string;
  /** Export of `module` to call. Default: `'default'`. */
  export?: string;
  /** Name of a function registered in code through {@link createFunctionStep}. */
  name?: string;
  /** Passed to the function as `ctx.args`. */
  args?: unknown;
}

const functionConfigSchema: JsonSchema = {
  type: 'object',
  properties: {
    module: { type: 'string', minLength: 1 },
    export: { type: 'string', minLength: 1 },
    name: { type: 'string', minLength: 1 },
    args: {},
  },
  additionalProperties: false,
  anyOf: [{ required: ['name'] }, { required: ['module'] }],
};

/** TypeScript sources go through tsx so users need no build step. */
const TS_EXTENSION = /\.[cm]?tsx?$/;

type ModuleNamespace = Record<string, unknown>;

/** Where a module comes from; `key` identifies it in the per-step cache. */
type ModuleTarget =
  | { kind: 'file'; key: string; file: string; url: string }
  | { kind: 'package'; key: string; specifier: string; parentURL: string };

/**
 * Creates the `function` step type: runs a trusted JS/TS function in-process.
 *
 * `with.name` picks one of `functions` (registered in code); otherwise `with.module` + `with.export`
 * (default `'default'`) is loaded. `.ts`, `.mts`, `.cts` and `.tsx` files load through tsx without a build
 * step; other files by a native dynamic import. A module is loaded once per step type instance, absolute
 * path and version (size and modification time), so its top level runs once however many times the step
 * executes, and an edited file is loaded again (its own imports stay as first loaded until the process
 * restarts). Load problems throw `MODULE_LOAD_FAILED` (not retryable); errors thrown by the function itself
 * pass through unchanged. `cacheInputs` gives the step cache the function's code: a registered function's
 * source, or the module file and its local imports (see module-fingerprint.ts).
 * When `ctx.signal` aborts while a function's promise is pending, `execute` rejects with the abort reason even if
 * the function ignores the signal; a synchronous function has finished when it returns, and its output stands.
 *
 * @param functions Functions callable by `with.name`. Default: none.
 */
export function createFunctionStep(functions: Record<string, StepFunction> = {}): StepType<FunctionConfig> {
  const loadModule = createModuleCache();
  return {
    type: 'function',
    configSchema: functionConfigSchema,
    cacheInputs: (config, ctx) => functionCode(functions, config, ctx.baseDir),
    async execute(ctx, config) {
      // A function registered by name needs no lookup on disk: no await before it runs.
      const fn = config.name !== undefined ? findRegistered(functions, config.name) : await loadFunction(loadModule, ctx.baseDir, config);
      const returned = fn(toFunctionContext(ctx, config.args));
      // A synchronous function has finished when it returns: there is nothing left to race against the signal
      // (reading ctx.signal here would also make a signal that nothing else asked for).
      const output = isThenable(returned) ? await raceAbort(Promise.resolve(returned), ctx.signal) : returned;
      return output === undefined ? null : output;
    },
  };
}

async function loadFunction(loadModule: (target: ModuleTarget) => Promise<ModuleNamespace>, baseDir: string, config: FunctionConfig): Promise<StepFunction> {
  if (config.module === undefined) {
    throw loadFailure('function step needs `with.name` or `with.module`');
  }
  const target = await resolveTarget(baseDir, config.module);
  const namespace = await loadModule(target);
  return pickExport(namespace, config.export ?? 'default', describeTarget(target));
}

/** A function's code: its source when registered in code, its module file and local imports when loaded. */
async function functionCode(functions: Record<string, StepFunction>, config: FunctionConfig, baseDir: string): Promise<StepCacheInputs> {
  if (config.name !== undefined) {
    const fn = Object.hasOwn(functions, config.name) ? functions[config.name] : findCodeFunction(config.name);
    return typeof fn === 'function' ? { code: sourceHash(fn) } : {};
  }
  if (config.module === undefined) return {};
  const target = await resolveTarget(baseDir, config.module).catch(() => undefined);
  // A package's code is its installed version's business; a file that does not load fails the step itself.
  return target?.kind === 'file' ? { code: await moduleFingerprint(target.file) } : {};
}

const sourceHashes = new WeakMap<StepFunction, string>();

function sourceHash(fn: StepFunction): string {
  let hash = sourceHashes.get(fn);
  if (hash === undefined) {
    hash = sha256(fn.toString());
    sourceHashes.set(fn, hash);
  }
  return hash;
}

function findRegistered(functions: Record<string, StepFunction>, name: string): StepFunction {
  // hasOwn keeps names like `toString` from reaching Object.prototype.
  const fn = Object.hasOwn(functions, name) ? functions[name] : findCodeFunction(name);
  if (typeof fn === 'function') return fn;
  const known = Object.keys(functions).join(', ') || 'none';
  // Names of inline functions of pipelines defined in code end in @ and a hash of their source.
  const hint = /@[0-9a-f]{12}$/.test(name) ? '; this step belongs to a pipeline defined in code: load its module in this process (sluice worker --load FILE)' : '';
  throw loadFailure(`no function registered under name "${name}" (registered: ${known})${hint}`);
}

/**
 * A path-like specifier (`./`, `../`, absolute) is a file. Anything else is a file when one exists at that
 * path relative to `baseDir` (users write `fns/score.ts` meaning a file), and a package specifier otherwise.
 */
async function resolveTarget(baseDir: string, specifier: string): Promise<ModuleTarget> {
  const file = path.resolve(baseDir, specifier);
  const pathLike = specifier.startsWith('.') || path.isAbsolute(specifier);
  const version = await fileVersion(file);
  if (version !== undefined) return { kind: 'file', key: `${file}\0${version}`, file, url: versionedUrl(file, version) };
  if (pathLike) throw loadFailure(`module file not found: ${file} (with.module "${specifier}")`);
  // A trailing separator makes the URL name the directory itself, so resolution starts inside baseDir.
  const parentURL = pathToFileURL(path.join(baseDir, path.sep)).href;
  return { kind: 'package', key: `${baseDir}\0${specifier}`, specifier, parentURL };
}

/** Size and modification time of a regular file (undefined when it is none): an edited module is loaded again. */
async function fileVersion(file: string): Promise<string | undefined> {
  try {
    const st = await stat(file);
    return st.isFile() ? `${st.size}-${st.mtimeMs}` : undefined;
  } catch {
    return undefined;
  }
}

/** The first version of a file seen loads by its plain URL; a later edit loads under a query, as a new module. */
const firstVersions = new Map<string, string>();

function versionedUrl(file: string, version: string): string {
  const url = pathToFileURL(file).href;
  const first = firstVersions.get(file);
  if (first === undefined) firstVersions.set(file, version);
  return first === undefined || first === version ? url : `${url}?v=${encodeURIComponent(version)}`;
}

/** Caches the load promise (not the result) so concurrent first calls share one evaluation. */
function createModuleCache(): (target: ModuleTarget) => Promise<ModuleNamespace> {
  const cache = new Map<string, Promise<ModuleNamespace>>();
  return (target) => {
    let loading = cache.get(target.key);
    if (loading === undefined) {
      loading = importTarget(target);
      cache.set(target.key, loading);
      // Forget failures so a module fixed on disk loads on the next attempt.
      loading.catch(() => cache.delete(target.key));
    }
    return loading;
  };
}

async function importTarget(target: ModuleTarget): Promise<ModuleNamespace> {
  try {
    if (target.kind === 'package') return (await tsImport(target.specifier, target.parentURL)) as ModuleNamespace;
    if (TS_EXTENSION.test(target.file)) return (await tsImport(target.url, import.meta.url)) as ModuleNamespace;
    return (await import(target.url)) as ModuleNamespace;
  } catch (err) {
    throw loadFailure(`cannot load module ${describeTarget(target)}: ${errorMessage(err)}`, err);
  }
}

function pickExport(namespace: ModuleNamespace, name: string, where: string): StepFunction {
  const value = lookupExport(namespace, name);
  if (value === undefined) throw loadFailure(`module ${where} has no export "${name}"`);
  if (typeof value !== 'function') {
    throw loadFailure(`export "${name}" of module ${where} is not a function (got ${typeof value})`);
  }
  return value as StepFunction;
}

/** CommonJS modules may expose their exports only on `default` (module.exports), so look there too. */
function lookupExport(namespace: ModuleNamespace, name: string): unknown {
  if (name in namespace) return namespace[name];
  const cjs = namespace.default;
  const isContainer = (typeof cjs === 'object' && cjs !== null) || typeof cjs === 'function';
  return isContainer ? (cjs as ModuleNamespace)[name] : undefined;
}

function describeTarget(target: ModuleTarget): string {
  return target.kind === 'file' ? target.file : `"${target.specifier}"`;
}

/** Builds the context field by field: spreading would drop methods of a class-based StepContext. */
function toFunctionContext(ctx: StepContext, args: unknown): FunctionContext {
  return {
    run: ctx.run,
    step: ctx.step,
    input: ctx.input,
    steps: ctx.steps,
    // Read through: a context that makes its signal on first use keeps doing so.
    get signal() {
      return ctx.signal;
    },
    log: (stream, line) => ctx.log(stream, line),
    secrets: ctx.secrets,
    baseDir: ctx.baseDir,
    now: () => ctx.now(),
    reportUsage: (usage) => ctx.reportUsage(usage),
    artifacts: ctx.artifacts,
    ...(ctx.feedback === undefined ? {} : { feedback: ctx.feedback }),
    args,
  };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/** A function may ignore its signal; the engine still needs the attempt to end when told to stop. */
function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * The abort reason when it is an Error. `signal.abort()` with no reason yields a DOMException without a
 * stable code, so that (and any non-Error reason) becomes `CANCELLED`.
 */
function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && !(reason instanceof DOMException)) return reason;
  return new SluiceError('CANCELLED', 'step was cancelled');
}

function loadFailure(message: string, cause?: unknown): SluiceError {
  return new SluiceError('MODULE_LOAD_FAILED', message, { retryable: false, cause });
}
