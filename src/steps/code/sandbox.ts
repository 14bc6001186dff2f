// The core and the one build used (release, sync), not `quickjs-emscripten`, which installs all four builds.
import releaseSyncModule from '@jitl/quickjs-wasmfile-release-sync';
import {
  newQuickJSWASMModuleFromVariant,
  newVariant,
  type QuickJSContext,
  type QuickJSHandle,
  type QuickJSRuntime,
  type QuickJSSyncVariant,
  type QuickJSWASMModule,
} from 'quickjs-emscripten-core';
import type { LogStream } from '../step-type.js';
import { HOST_LOG_STREAMS, MAX_LOG_LINE_CHARS, MAX_MESSAGE_CHARS, SETUP_FILE, SETUP_SOURCE } from './guest-source.js';
import { errorMessage } from '../../core/errors.js';

// Node imports the package's ES module build, whose default export is the variant; its typings describe the
// CommonJS build instead, so TypeScript sees the whole module there.
const RELEASE_SYNC = releaseSyncModule as unknown as QuickJSSyncVariant;

/**
 * Largest QuickJS stack. QuickJS checks its own stack (in WASM linear memory), but every interpreter frame
 * also takes a frame on the process's native stack, up to ~25x as much for the parser. Above ~40 KiB a deeply
 * nested literal (`((((...))))`) overflows a ~1 MB native stack before QuickJS notices; 32 KiB keeps a few
 * hundred KiB of headroom for the host's own frames and still allows ~160 levels of user recursion.
 */
const MAX_STACK_BYTES = 32 * 1024;
/** Console lines kept per execution; the rest are dropped so a loop cannot flood the log. */
const MAX_LOG_LINES = 1_000;
/**
 * Console characters kept per execution: 1,048,576 (1 Mi). Each line crossing to the engine is stored there, so a
 * step logging without end costs the server's event loop and store this much at most, not 1,000 full lines.
 */
const MAX_LOG_CHARS = 1024 * 1024;
/** Longest stack text read out of the sandbox. */
const MAX_STACK_CHARS = 2_000;

/** One entry into the sandbox, as plain data (it crosses to a sandbox process). */
export interface SandboxTask {
  /** Source evaluated first, under `fileName`; must evaluate to the user function. */
  functionSource: string;
  /** What the intrinsic `Function.prototype.toString` of that function must give: proof it spans the whole source. */
  functionText: string;
  fileName: string;
  /** JSON text handed to the driver along with the user function. */
  payload: string;
  timeoutMs: number;
  memoryBytes: number;
  maxOutputChars: number;
}

/** What the sandbox needs from its host while it runs. */
export interface SandboxHost {
  log(stream: LogStream, line: string): void;
  /** Whether the execution was cancelled; polled by the interrupt handler. */
  cancelled(): boolean;
  /** Called once the user's code is about to run (after the module is loaded). */
  started?(): void;
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
  | { status: 'unsettled' }
  | { status: 'crashed'; message: string };

type InterruptReason = 'timeout' | 'cancelled';

/** The project's `lib` has no WebAssembly types; this is the one constructor used here. */
const WasmMemory = (
  globalThis as unknown as {
    WebAssembly: { Memory: new (size: { initial: number; maximum: number }) => { buffer: ArrayBuffer } };
  }
).WebAssembly.Memory;

const WASM_PAGE_BYTES = 64 * 1024;
/** Room above the QuickJS heap limit for the WASM image, its C stack and allocator overhead. */
const WASM_OVERHEAD_BYTES = 16 * 1024 * 1024;
/** Emscripten's default initial memory. */
const INITIAL_PAGES = 256;
/** Distinct memory limits kept loaded at once in one process; the least recently used beyond this is dropped. */
const MAX_MODULES = 2;

interface SandboxModule {
  module: QuickJSWASMModule;
  memory: { buffer: ArrayBuffer };
}

/** Loaded modules of this process by their maximum number of WASM pages, least recently used first. */
const modules = new Map<number, Promise<SandboxModule>>();

/**
 * Returns the module whose linear memory is capped at `memoryBytes` plus overhead, loading it (~15 ms) on
 * first use. QuickJS's own limit (`setMemoryLimit`) does not count large strings and array buffers
 * (quickjs-emscripten#271), so the hard cap is the WASM memory itself: growing past its maximum fails and
 * QuickJS throws "out of memory". A WASM memory never shrinks: the pool recycles a process whose memory grew
 * (see {@link wasmBytes}), which frees it.
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
  return { module: await newQuickJSWASMModuleFromVariant(newVariant(RELEASE_SYNC, { wasmMemory: memory })), memory };
}

function forgetModule(loading: Promise<SandboxModule>): void {
  for (const [maxPages, entry] of modules) if (entry === loading) modules.delete(maxPages);
}

/** Bytes of WASM linear memory the loaded modules of this process hold. */
export async function wasmBytes(): Promise<number> {
  let total = 0;
  for (const loading of modules.values()) total += (await loading.catch(() => undefined))?.memory.buffer.byteLength ?? 0;
  return total;
}

/**
 * Runs `task.functionSource` and the driver in a fresh QuickJS runtime and context, then disposes both.
 * Everything inside is synchronous and blocks the calling thread (the main thread of a sandbox process) for at most
 * about `timeoutMs`: the interrupt handler enforces that deadline and stops when the host cancels. One long
 * native call (a huge `JSON.parse`) is not interruptible; the pool enforces the deadline from outside.
 *
 * If the WASM instance itself fails (an exception thrown out of QuickJS rather than inside it, such as a
 * native stack overflow or an abort), its state can no longer be trusted: the module is dropped without
 * further calls into it and the next execution loads a fresh one.
 */
export async function runInSandbox(task: SandboxTask, host: SandboxHost): Promise<SandboxResult> {
  const loading = loadModule(task.memoryBytes);
  const { module } = await loading;
  if (host.cancelled()) return { status: 'cancelled' };
  try {
    host.started?.();
    const { result, disposed } = runInFreshRuntime(module, task, host);
    // A runtime stopped mid-job (a deadline inside a chain of promise jobs) can still hold objects when it is
    // freed, and QuickJS aborts on that: the outcome stands, the module is not trusted again.
    if (!disposed) forgetModule(loading);
    return result;
  } catch (err) {
    forgetModule(loading);
    return { status: 'crashed', message: errorMessage(err) };
  }
}

/** Disposal is skipped when the run throws: the caller then drops the whole module instead. */
function runInFreshRuntime(module: QuickJSWASMModule, task: SandboxTask, host: SandboxHost): { result: SandboxResult; disposed: boolean } {
  const interrupt: Interrupt = {};
  const deadline = Date.now() + task.timeoutMs;
  const runtime = module.newRuntime({ maxStackSizeBytes: MAX_STACK_BYTES });
  const context = runtime.newContext();
  // Set after the context exists so the limit applies to user code, not to the intrinsics' setup.
  runtime.setMemoryLimit(task.memoryBytes);
  runtime.setInterruptHandler(() => {
    if (host.cancelled()) interrupt.reason = 'cancelled';
    else if (Date.now() > deadline) interrupt.reason = 'timeout';
    return interrupt.reason !== undefined;
  });
  const result = runGuest(runtime, context, task, host, interrupt);
  try {
    context.dispose();
    runtime.dispose();
    return { result, disposed: true };
  } catch (err) {
    if (result.status !== 'timeout' && result.status !== 'cancelled') throw err;
    return { result, disposed: false };
  }
}

type Interrupt = { reason?: InterruptReason };

/** Handles taken from the setup code before any user code ran, so user code cannot replace them. */
interface Driver {
  drive: QuickJSHandle;
  /** The intrinsic `String.prototype.slice`, to cut long strings inside the sandbox before copying them out. */
  slice: QuickJSHandle;
  dispose(): void;
}

function runGuest(runtime: QuickJSRuntime, context: QuickJSContext, task: SandboxTask, host: SandboxHost, interrupt: Interrupt): SandboxResult {
  const reader = new GuestReader(context);
  const fail = (error: QuickJSHandle) => describeFailure(reader, error, interrupt.reason);
  const driver = createDriver(context, reader, host.log, fail);
  if ('status' in driver) return driver;
  try {
    reader.slice = driver.slice;
    const fn = context.evalCode(task.functionSource, task.fileName);
    if (fn.error) return fail(fn.error);
    const args = [fn.value, context.newString(task.payload), context.newString(task.functionText)];
    const out = context.callFunction(driver.drive, context.undefined, ...args);
    for (const arg of args) arg.dispose();
    if (out.error) return fail(out.error);
    return settle(runtime, context, out.value, task, fail, reader, interrupt);
  } finally {
    reader.slice = undefined;
    driver.dispose();
  }
}

/**
 * The driver returns its text, or a promise of it when user code returned a promise: pending jobs then run
 * (under the same interrupt handler, so within the time limit) until it settles. A promise still pending
 * when no job is left can never settle.
 */
function settle(
  runtime: QuickJSRuntime,
  context: QuickJSContext,
  value: QuickJSHandle,
  task: SandboxTask,
  fail: (error: QuickJSHandle) => SandboxResult,
  reader: GuestReader,
  interrupt: Interrupt,
): SandboxResult {
  for (;;) {
    const state = context.getPromiseState(value);
    if (state.type === 'fulfilled') {
      if (state.notAPromise) return readOutput(reader, value, task.maxOutputChars);
      value.dispose();
      return readOutput(reader, state.value, task.maxOutputChars);
    }
    if (state.type === 'rejected') {
      value.dispose();
      return fail(state.error);
    }
    const ran = runtime.executePendingJobs();
    // A job stopped by the interrupt handler is not always reported as an error: the queue may simply come back
    // short or empty, so the deadline (or a cancel) is checked before anything else is concluded.
    if (interrupt.reason !== undefined) {
      value.dispose();
      if (ran.error) ran.error.dispose();
      return { status: interrupt.reason };
    }
    if (ran.error) {
      value.dispose();
      return fail(ran.error);
    }
    if (ran.value === 0) {
      value.dispose();
      return { status: 'unsettled' };
    }
  }
}

/** Evaluates the setup code, which installs `console` (backed by the one host function) and returns the driver. */
function createDriver(
  context: QuickJSContext,
  reader: GuestReader,
  log: SandboxHost['log'],
  fail: (error: QuickJSHandle) => SandboxResult,
): Driver | SandboxResult {
  const setup = context.evalCode(SETUP_SOURCE, SETUP_FILE);
  if (setup.error) return fail(setup.error);
  const hostLog = context.newFunction('log', createHostLog(context, reader, log));
  const result = context.callFunction(setup.value, context.undefined, hostLog);
  hostLog.dispose();
  setup.value.dispose();
  if (result.error) return fail(result.error);
  const drive = context.getProp(result.value, 'drive');
  const slice = context.getProp(result.value, 'slice');
  result.value.dispose();
  return {
    drive,
    slice,
    dispose() {
      drive.dispose();
      slice.dispose();
    },
  };
}

/**
 * The only host function the sandbox can reach. It takes two values (stream index, line) and returns
 * nothing, so no host object or value ever crosses into the guest. The line's length is read before it is
 * copied out, so a tampered console cannot push a huge string through.
 */
function createHostLog(context: QuickJSContext, reader: GuestReader, log: SandboxHost['log']): (...args: QuickJSHandle[]) => void {
  let lines = 0;
  let chars = 0;
  let stopped = false;
  const stop = (why: string) => {
    stopped = true;
    log('warn', `code step: console output beyond ${why} dropped`);
  };
  return (streamHandle, lineHandle) => {
    if (stopped || streamHandle === undefined || lineHandle === undefined) return;
    if (lines === MAX_LOG_LINES) return stop(`${MAX_LOG_LINES} lines`);
    if (chars >= MAX_LOG_CHARS) return stop(`${MAX_LOG_CHARS} characters`);
    lines += 1;
    if (context.typeof(streamHandle) !== 'number') return;
    // The last line that fits is cut to what is left, so no more than the cap ever crosses to the host.
    const line = reader.string(lineHandle, Math.min(MAX_LOG_LINE_CHARS, MAX_LOG_CHARS - chars));
    if (line === undefined) return;
    chars += line.length;
    log(HOST_LOG_STREAMS[context.getNumber(streamHandle)] ?? 'info', line);
  };
}

/**
 * Length of the primitive string in `handle` (the caller checked its type). `context.getLength` answers only for
 * objects and gives undefined for a primitive string, which let every length check pass and copied strings of any
 * size out (a 50-million-character error message crossed to the engine). A primitive's `length` is its own
 * and cannot be redefined by user code.
 */
function stringLength(context: QuickJSContext, handle: QuickJSHandle): number {
  const length = context.getProp(handle, 'length');
  try {
    return context.typeof(length) === 'number' ? context.getNumber(length) : Number.POSITIVE_INFINITY;
  } finally {
    length.dispose();
  }
}

/** Copies values out of the sandbox with their length checked first. */
class GuestReader {
  slice: QuickJSHandle | undefined;

  constructor(readonly context: QuickJSContext) {}

  /**
   * The string in `handle` cut to `maxChars` (with a note of the cut), or undefined when it is no string. A
   * longer string is cut inside the sandbox with the intrinsic `slice`, so at most `maxChars` are copied.
   */
  string(handle: QuickJSHandle, maxChars: number): string | undefined {
    const { context } = this;
    if (context.typeof(handle) !== 'string') return undefined;
    const chars = stringLength(context, handle);
    if (chars <= maxChars) return context.getString(handle);
    if (this.slice === undefined) return `(a string of ${chars} characters)`;
    const start = context.newNumber(0);
    const end = context.newNumber(maxChars);
    const cut = context.callFunction(this.slice, handle, start, end);
    start.dispose();
    end.dispose();
    if (cut.error) {
      cut.error.dispose();
      return `(a string of ${chars} characters)`;
    }
    const head = context.typeof(cut.value) === 'string' && stringLength(context, cut.value) <= maxChars ? context.getString(cut.value) : '';
    cut.value.dispose();
    return `${head}... (${chars - head.length} more characters cut)`;
  }

  /** `handle[key]` as a bounded string, or undefined when it is no string (or reading it threw). */
  property(handle: QuickJSHandle, key: string, maxChars: number): string | undefined {
    const result = this.context.getProp(handle, key);
    try {
      return this.string(result, maxChars);
    } finally {
      result.dispose();
    }
  }
}

/** Interrupts and out-of-memory are recognised first; anything else is reported as what the code threw. */
function describeFailure(reader: GuestReader, error: QuickJSHandle, reason: InterruptReason | undefined): SandboxResult {
  try {
    if (reason !== undefined) return { status: reason };
    const thrown = readError(reader, error);
    if (thrown === null || (thrown.name === 'InternalError' && thrown.message === 'out of memory')) {
      return { status: 'out_of_memory' };
    }
    return { status: 'threw', error: thrown };
  } catch {
    // Reading the error ran into the limits (a getter that loops, memory): report what stopped it.
    return reason === undefined ? { status: 'threw', error: { name: 'Error', message: 'an unreadable value was thrown', stack: '' } } : { status: reason };
  } finally {
    error.dispose();
  }
}

/**
 * The thrown value as plain data, every string read with its length checked first, or `null` when QuickJS
 * threw `null`: it does that when it runs out of memory while building the "out of memory" error itself.
 */
function readError(reader: GuestReader, error: QuickJSHandle): GuestError | null {
  const context = reader.context;
  const type = context.typeof(error);
  if (type === 'object') {
    if (context.sameValue(error, context.null)) return null;
    const message = reader.property(error, 'message', MAX_MESSAGE_CHARS);
    return {
      name: reader.property(error, 'name', 100) ?? 'Error',
      message: message ?? 'a value that is not an Error was thrown',
      stack: reader.property(error, 'stack', MAX_STACK_CHARS) ?? '',
    };
  }
  const message = type === 'string' ? reader.string(error, MAX_MESSAGE_CHARS)! : String(context.dump(error));
  return { name: 'Error', message, stack: '' };
}

/** Checks the length before copying the string out, so an oversized result never reaches host memory. */
function readOutput(reader: GuestReader, value: QuickJSHandle, maxChars: number): SandboxResult {
  const context = reader.context;
  try {
    if (context.typeof(value) !== 'string') {
      return { status: 'threw', error: { name: 'Error', message: 'the sandbox driver was tampered with', stack: '' } };
    }
    const chars = stringLength(context, value);
    if (chars > maxChars) return { status: 'output_too_large', chars };
    return { status: 'returned', text: context.getString(value) };
  } finally {
    value.dispose();
  }
}
