/**
 * JavaScript that runs inside the QuickJS sandbox, kept as source text. Nothing here is trusted by the host:
 * user code runs in the same realm and may tamper with it, which can only spoil its own output, because the
 * host treats everything that comes back as untrusted JSON text.
 */
import type { LogStream } from '../step-type.js';

/** File name user code is compiled under; stack frames naming it are the user's own. */
export const USER_FILE = 'code.js';
/** File name of the setup code, so its frames are never mistaken for the user's. */
export const SETUP_FILE = 'sluice-driver.js';

/** Names the user code sees as parameters, in call order. */
const PARAMETERS = ['input', 'steps', 'run', '$json', '$index', '$meta', '$value'];

/** Lines the wrapper puts before the first line of user code; subtracted from stack line numbers. */
export const USER_LINE_OFFSET = 1;

/**
 * Wraps a function body into a function expression. The body starts on a line of its own so its columns
 * need no adjustment, and the closing brace sits on the next line so a trailing `//` comment is harmless.
 * A body could close the wrapper itself (`}); ...; (function () {`): the driver refuses to run unless the
 * function it got spans the whole wrapper (see {@link wrappedFunctionText}).
 */
export function wrapUserCode(code: string): string {
  return `(${wrappedFunctionText(code)})`;
}

/**
 * What the intrinsic `Function.prototype.toString` gives for the function of {@link wrapUserCode}: QuickJS
 * keeps each function's source text. A body that closed the wrapper leaves a function that starts later in
 * the source, whose text is shorter, so equality proves the body parsed as one function body.
 */
export function wrappedFunctionText(code: string): string {
  // A body that says `await` runs as an async function (its promise is awaited); the others stay plain
  // functions, so a batch of synchronous items makes no promise at all.
  const kind = AWAIT.test(code) ? 'async function' : 'function';
  return `${kind} (${PARAMETERS.join(', ')}) {\n${code}\n}`;
}

const AWAIT = /\bawait\b/;

/** Indexes of the streams `console` methods write to; the host maps them back. */
export const HOST_LOG_STREAMS: readonly LogStream[] = ['info', 'warn', 'error'];

/** Longest console line kept; the host checks the length before copying a line out of the sandbox. */
export const MAX_LOG_LINE_CHARS = 8 * 1024;
/** Longest error message carried out of the sandbox (checked again by the host). */
export const MAX_MESSAGE_CHARS = 1_000;

/**
 * A value thrown by user code, as the driver reports it: `[name, message, where]`. `name` is empty for a
 * thrown non-error; `where` is the stack from its first `code.js:line:column` frame on (cut short), or empty.
 */
export type RawGuestError = [name: string, message: string, where: string];

/** First line of the driver's result on success: item errors of a batch with `continueOnError`. */
export interface DriverSuccessHead {
  errors: Array<[index: number, error: RawGuestError]>;
}

/** First line of the driver's result when user code threw or its output could not be serialized. */
export interface DriverFailureHead {
  failed: { index: number | null; error: RawGuestError; output?: boolean };
}

/** Length of the first line of a success with no item errors, `{"errors":[]}` plus its newline. */
export const EMPTY_HEAD_CHARS = '{"errors":[]}\n'.length;

/**
 * Setup code, kept small because it is compiled on every execution (~100 µs per KiB in QuickJS): given the
 * host log function, it installs `console` and returns `{ drive, slice }`. It runs before any user code, so
 * the intrinsics it keeps (`slice`, `then`, `toString`) are the real ones whatever user code replaces later;
 * the host cuts long strings with that `slice`.
 *
 * `drive(fn, payloadJson, fnText)` refuses a `fn` whose source text is not `fnText` (user code that closed its
 * wrapper), parses the payload once, calls `fn` once (single mode) or once per item (batch mode: `items` is an
 * array) and returns two JSON texts joined by a newline (JSON.stringify never emits a raw one): a head, either
 * {@link DriverSuccessHead} or {@link DriverFailureHead}, then the output. When `fn` returns a promise (an
 * async body), `drive` returns a promise of that text, which the host settles by running pending jobs.
 * Out-of-memory errors (QuickJS throws `null` when it cannot even build one) are rethrown so the host fails
 * the step; interrupts are uncatchable.
 */
export const SETUP_SOURCE = `(function (hostLog) {
  'use strict';
  const parse = JSON.parse, stringify = JSON.stringify, str = String, InternalErr = InternalError;
  const call = Function.prototype.call, P = Promise;
  const slice = call.bind(String.prototype.slice), then = call.bind(P.prototype.then);
  const fnText = call.bind(Function.prototype.toString), all = P.all.bind(P), isArray = Array.isArray;
  function show(v) {
    if (typeof v === 'string') return v;
    try { const t = stringify(v); return t === undefined ? str(v) : t; } catch (e) { return str(v); }
  }
  function writer(s) {
    return (...args) => hostLog(s, slice(args.map(show).join(' '), 0, ${MAX_LOG_LINE_CHARS}));
  }
  globalThis.console = { log: writer(0), info: writer(0), debug: writer(0), warn: writer(1), error: writer(2) };
  function raw(e) {
    if (e === null || (e instanceof InternalErr && e.message === 'out of memory')) throw e;
    try {
      if (!(e instanceof Error)) return ['', slice(str(e), 0, ${MAX_MESSAGE_CHARS}), ''];
      const stack = str(e.stack), at = stack.indexOf('${USER_FILE}:');
      return [slice(str(e.name), 0, 100), slice(str(e.message), 0, ${MAX_MESSAGE_CHARS}), at < 0 ? '' : slice(stack, at, at + 40)];
    } catch (x) {
      return ['', 'a value that cannot be converted to a string was thrown', ''];
    }
  }
  function fail(index, e) { return stringify({ failed: { index, error: raw(e) } }) + '\\n'; }
  function finish(output, errors) {
    let text;
    try { text = stringify(output === undefined ? null : output); } catch (e) {
      return stringify({ failed: { index: null, error: raw(e), output: true } }) + '\\n';
    }
    return stringify({ errors }) + '\\n' + text;
  }
  function batch(fn, d, input, steps, run, meta, items, values, itemSteps) {
    const results = new Array(items.length), errors = [], pending = [];
    let first = null;
    const failed = (i, e) => {
      if (d.continueOnError) { errors[errors.length] = [i, raw(e)]; results[i] = null; }
      else if (first === null || i < first.i) first = { i, e };
    };
    for (let i = 0; i < items.length && first === null; i++) {
      try {
        const r = fn(input, itemSteps ? itemSteps[i] : steps, run, items[i], i, meta, values ? values[i] : null);
        if (r instanceof P) pending[pending.length] = then(r, (v) => { results[i] = v === undefined ? null : v; }, (e) => failed(i, e));
        else results[i] = r === undefined ? null : r;
      } catch (e) {
        failed(i, e);
      }
    }
    const end = () => (first === null ? finish(results, errors) : fail(first.i, first.e));
    return pending.length === 0 ? end() : then(all(pending), end);
  }
  function drive(fn, json, text) {
    if (typeof fn !== 'function' || fnText(fn) !== text) {
      return fail(null, new SyntaxError('code must be a function body: it closes the function it is wrapped in'));
    }
    const d = parse(json), { input, steps, run, meta, items, values, itemSteps } = d;
    if (isArray(items)) return batch(fn, d, input, steps, run, meta, items, values, itemSteps);
    let output;
    try { output = fn(input, steps, run, input, null, meta, null); } catch (e) { return fail(null, e); }
    if (output instanceof P) return then(output, (v) => finish(v, []), (e) => fail(null, e));
    return finish(output, []);
  }
  return { drive, slice: String.prototype.slice };
})`;
