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
 */
export function wrapUserCode(code: string): string {
  return `(function (${PARAMETERS.join(', ')}) {\n${code}\n})`;
}

/** Indexes of the streams `console` methods write to; the host maps them back. */
export const HOST_LOG_STREAMS: readonly LogStream[] = ['info', 'warn', 'error'];

/** Longest console line kept; cut inside the sandbox so a huge string is never copied out. */
const MAX_LOG_LINE_CHARS = 8 * 1024;
/** Longest error message carried out of the sandbox. */
const MAX_MESSAGE_CHARS = 1_000;

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
 * host log function, it installs `console` and returns `drive(fn, payloadJson)`.
 *
 * `drive` parses the payload once, calls `fn` once (single mode) or once per item (batch mode: `items` is an
 * array) and returns two JSON texts joined by a newline (JSON.stringify never emits a raw one): a head, either
 * {@link DriverSuccessHead} or {@link DriverFailureHead}, then the output. Out-of-memory errors (QuickJS throws
 * `null` when it cannot even build one) are rethrown so the host fails the step; interrupts are uncatchable.
 */
export const SETUP_SOURCE = `(function (hostLog) {
  'use strict';
  const parse = JSON.parse, stringify = JSON.stringify, str = String, InternalErr = InternalError;
  function show(v) {
    if (typeof v === 'string') return v;
    try { const t = stringify(v); return t === undefined ? str(v) : t; } catch (e) { return str(v); }
  }
  function writer(s) {
    return (...args) => hostLog(s, args.map(show).join(' ').slice(0, ${MAX_LOG_LINE_CHARS}));
  }
  globalThis.console = { log: writer(0), info: writer(0), debug: writer(0), warn: writer(1), error: writer(2) };
  function raw(e) {
    if (e === null || (e instanceof InternalErr && e.message === 'out of memory')) throw e;
    try {
      if (!(e instanceof Error)) return ['', str(e).slice(0, ${MAX_MESSAGE_CHARS}), ''];
      const stack = str(e.stack), at = stack.indexOf('${USER_FILE}:');
      return [str(e.name), str(e.message).slice(0, ${MAX_MESSAGE_CHARS}), at < 0 ? '' : stack.slice(at, at + 40)];
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
  return function drive(fn, json) {
    const d = parse(json), { input, steps, run, meta, items, values, itemSteps } = d;
    if (!Array.isArray(items)) {
      let output;
      try { output = fn(input, steps, run, input, null, meta, null); } catch (e) { return fail(null, e); }
      return finish(output, []);
    }
    const results = new Array(items.length), errors = [];
    for (let i = 0; i < items.length; i++) {
      try {
        const r = fn(input, itemSteps ? itemSteps[i] : steps, run, items[i], i, meta, values ? values[i] : null);
        results[i] = r === undefined ? null : r;
      } catch (e) {
        if (!d.continueOnError) return fail(i, e);
        errors.push([i, raw(e)]);
        results[i] = null;
      }
    }
    return finish(results, errors);
  };
})`;
