import {
  newQuickJSWASMModuleFromVariant,
  newVariant,
  RELEASE_SYNC,
  type QuickJSContext,
  type QuickJSHandle,
  type QuickJSWASMModule,
} from 'quickjs-emscripten';
import type { LogStream } from '../step-type.js';
import { HOST_LOG_STREAMS, SETUP_FILE, SETUP_SOURCE } from './guest-source.js';

/**
 * Largest QuickJS stack. QuickJS checks its own stack (in WASM linear memory), but every interpreter frame
 * also takes a frame on Node's native stack, up to ~25x as much for the parser. Above ~40 KiB a deeply nested
 * literal (`((((...))))`) overflows Node's ~1 MB stack before QuickJS notices; 32 KiB keeps a few hundred
 * KiB of headroom for the host's own frames and still allows ~160 levels of user recursion.
 */
const MAX_STACK_BYTES = 32 * 1024;
/** Console lines kept per execution; the rest are counted and dropped so a loop cannot flood the log. */
const MAX_LOG_LINES = 1_000;

/** One entry into the sandbox. */
export interface SandboxRequest {
  /** Source evaluated first, under `fileName`; must evaluate to the user function. */
  functionSource: string;
  fileName: string;
  /** JSON text handed to the driver along with the user function. */
  payload: string;
  timeoutMs: number;
  memoryBytes: number;
  maxOutputChars: number;
  signal: AbortSignal;
  log(stream: LogStream, line: string): void;
}

/** A value thrown inside the sandbox, as plain data. */
export interface GuestError {
  name: string;
  message: string;
  stack: string;
}

/** How an entry into the sandbox ended. `returned` carries the driver's JSON text, not yet parsed. */
export type SandboxResult =
  | { status: 'returned'; text: string }
  | { status: 'threw'; error: GuestError }
  | { status: 'timeout' }
  | { status: 'cancelled' }
  | { status: 'out_of_memory' }
  | { status: 'output_too_large'; chars: number }
  | { status: 'crashed'; message: string };

type InterruptReason = 'timeout' | 'cancelled';

/** A loaded WASM instance, confined to a linear memory of fixed maximum size. */
interface SandboxModule {
  module: QuickJSWASMModule;
}

/** The project's `lib` has no WebAssembly types; this is the one constructor used here. */
const WasmMemory = (globalThis as unknown as { WebAssembly: { Memory: new (size: { initial: number; maximum: number }) => object } })
  .WebAssembly.Memory;

const WASM_PAGE_BYTES = 64 * 1024;
/** Room above the QuickJS heap limit for the WASM image, its C stack and allocator overhead. */
const WASM_OVERHEAD_BYTES = 16 * 1024 * 1024;
/** Emscripten's default initial memory. */
const INITIAL_PAGES = 256;
/** Distinct memory limits kept loaded at once; the least recently used beyond this is dropped. */
const MAX_MODULES = 4;

/** Loaded modules by their maximum number of WASM pages, least recently used first. */
const modules = new Map<number, Promise<SandboxModule>>();

/**
 * Returns the module whose linear memory is capped at `memoryBytes` plus overhead, loading it (~15 ms) on
 * first use. QuickJS's own limit (`setMemoryLimit`) does not count large strings and array buffers
 * (quickjs-emscripten#271), so the hard cap is the WASM memory itself: growing past its maximum fails and
 * QuickJS throws "out of memory". One module per distinct limit is shared by every execution; each
 * execution still gets its own runtime and context, so nothing a script does survives it.
 */
function loadModule(memoryBytes: number): Promise<SandboxModule> {
  const maxPages = Math.ceil((memoryBytes + WASM_OVERHEAD_BYTES) / WASM_PAGE_BYTES);
  let loading = modules.get(maxPages);
  if (loading === undefined) {
    const attempt = instantiate(maxPages);
    attempt.catch(() => forgetModule(attempt));
    loading = attempt;
  }
  // Re-inserting keeps the map in least-recently-used order.
  modules.delete(maxPages);
  modules.set(maxPages, loading);
  for (const key of modules.keys()) {
    if (modules.size <= MAX_MODULES) break;
    modules.delete(key);
  }
  return loading;
}

async function instantiate(maxPages: number): Promise<SandboxModule> {
  const memory = new WasmMemory({ initial: Math.min(INITIAL_PAGES, maxPages), maximum: maxPages });
  return { module: await newQuickJSWASMModuleFromVariant(newVariant(RELEASE_SYNC, { wasmMemory: memory })) };
}

function forgetModule(loading: Promise<SandboxModule>): void {
  for (const [maxPages, entry] of modules) if (entry === loading) modules.delete(maxPages);
}

/**
 * Runs `request.functionSource` and the driver in a fresh QuickJS runtime and context, then disposes both.
 * Everything inside is synchronous, so the event loop is blocked for at most `timeoutMs`; the interrupt
 * handler enforces that deadline and also stops when `signal` has aborted.
 *
 * If the WASM instance itself fails (an exception thrown out of QuickJS rather than inside it, such as a
 * native stack overflow or an abort), its state can no longer be trusted: the module is dropped without
 * further calls into it and the next execution loads a fresh one.
 */
export async function runInSandbox(request: SandboxRequest): Promise<SandboxResult> {
  const loading = loadModule(request.memoryBytes);
  const { module } = await loading;
  if (request.signal.aborted) return { status: 'cancelled' };
  try {
    return runInFreshRuntime(module, request);
  } catch (err) {
    forgetModule(loading);
    return { status: 'crashed', message: err instanceof Error ? err.message : String(err) };
  }
}

/** Disposal is skipped when the run throws: the caller then drops the whole module instead. */
function runInFreshRuntime(module: QuickJSWASMModule, request: SandboxRequest): SandboxResult {
  const interrupt: Interrupt = {};
  const deadline = Date.now() + request.timeoutMs;
  const runtime = module.newRuntime({ maxStackSizeBytes: MAX_STACK_BYTES });
  const context = runtime.newContext();
  // Set after the context exists so the limit applies to user code, not to the intrinsics' setup.
  runtime.setMemoryLimit(request.memoryBytes);
  runtime.setInterruptHandler(() => {
    if (request.signal.aborted) interrupt.reason = 'cancelled';
    else if (Date.now() > deadline) interrupt.reason = 'timeout';
    return interrupt.reason !== undefined;
  });
  const result = runGuest(context, request, interrupt);
  context.dispose();
  runtime.dispose();
  return result;
}

type Interrupt = { reason?: InterruptReason };

function runGuest(context: QuickJSContext, request: SandboxRequest, interrupt: Interrupt): SandboxResult {
  const fail = (error: QuickJSHandle) => describeFailure(context, error, interrupt.reason);
  const drive = createDriver(context, request.log, fail);
  if ('status' in drive) return drive;
  const fn = context.evalCode(request.functionSource, request.fileName);
  if (fn.error) {
    drive.handle.dispose();
    return fail(fn.error);
  }
  const payload = context.newString(request.payload);
  const out = context.callFunction(drive.handle, context.undefined, fn.value, payload);
  payload.dispose();
  fn.value.dispose();
  drive.handle.dispose();
  if (out.error) return fail(out.error);
  return readOutput(context, out.value, request.maxOutputChars);
}

/** Evaluates the setup code, which installs `console` (backed by the one host function) and returns the driver. */
function createDriver(
  context: QuickJSContext,
  log: SandboxRequest['log'],
  fail: (error: QuickJSHandle) => SandboxResult,
): { handle: QuickJSHandle } | SandboxResult {
  const setup = context.evalCode(SETUP_SOURCE, SETUP_FILE);
  if (setup.error) return fail(setup.error);
  const hostLog = context.newFunction('log', createHostLog(context, log));
  const result = context.callFunction(setup.value, context.undefined, hostLog);
  hostLog.dispose();
  setup.value.dispose();
  if (result.error) return fail(result.error);
  return { handle: result.value };
}

/**
 * The only host function the sandbox can reach. It takes two strings (stream index, line) and returns
 * nothing, so no host object or value ever crosses into the guest.
 */
function createHostLog(context: QuickJSContext, log: SandboxRequest['log']): (...args: QuickJSHandle[]) => void {
  let lines = 0;
  return (streamHandle, lineHandle) => {
    lines += 1;
    if (lines > MAX_LOG_LINES + 1 || streamHandle === undefined || lineHandle === undefined) return;
    if (lines === MAX_LOG_LINES + 1) {
      log('warn', `code step: console output beyond ${MAX_LOG_LINES} lines dropped`);
      return;
    }
    if (context.typeof(streamHandle) !== 'number' || context.typeof(lineHandle) !== 'string') return;
    const stream = HOST_LOG_STREAMS[context.getNumber(streamHandle)] ?? 'info';
    log(stream, context.getString(lineHandle));
  };
}

/** Interrupts and out-of-memory are recognised first; anything else is reported as what the code threw. */
function describeFailure(context: QuickJSContext, error: QuickJSHandle, reason: InterruptReason | undefined): SandboxResult {
  try {
    if (reason !== undefined) return { status: reason };
    const thrown = dumpError(context, error);
    if (thrown === null || (thrown.name === 'InternalError' && thrown.message === 'out of memory')) {
      return { status: 'out_of_memory' };
    }
    return { status: 'threw', error: thrown };
  } finally {
    error.dispose();
  }
}

/**
 * The thrown value as plain data, or `null` when QuickJS threw `null`: it does that when it runs out of memory
 * while building the "out of memory" error itself.
 */
function dumpError(context: QuickJSContext, error: QuickJSHandle): GuestError | null {
  let dumped: unknown;
  try {
    dumped = context.dump(error);
  } catch {
    dumped = undefined;
  }
  if (dumped === null) return null;
  if (typeof dumped !== 'object') {
    return { name: 'Error', message: typeof dumped === 'string' ? dumped : String(dumped), stack: '' };
  }
  const { name, message, stack } = dumped as Record<string, unknown>;
  return {
    name: typeof name === 'string' ? name : 'Error',
    message: typeof message === 'string' ? message : String(message),
    stack: typeof stack === 'string' ? stack : '',
  };
}

/** Checks the length before copying the string out, so an oversized result never reaches host memory. */
function readOutput(context: QuickJSContext, value: QuickJSHandle, maxChars: number): SandboxResult {
  try {
    if (context.typeof(value) !== 'string') {
      return { status: 'threw', error: { name: 'Error', message: 'the sandbox driver was tampered with', stack: '' } };
    }
    const chars = context.getLength(value) ?? 0;
    if (chars > maxChars) return { status: 'output_too_large', chars };
    return { status: 'returned', text: context.getString(value) };
  } finally {
    value.dispose();
  }
}
