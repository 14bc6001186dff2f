import type { Ajv, ValidateFunction } from 'ajv';
import { ajvPackage } from '../core/lazy-packages.js';
import { SluiceError } from '../core/errors.js';
import type { Step } from '../core/model.js';

/**
 * Runs one step invocation under its own abort signal: aborted when `parent` aborts or when the step's
 * timeout passes (STEP_TIMEOUT, retryable). Rejects as soon as the signal aborts, even if the step ignores
 * it. Shared by the executor and by simulate.
 */
export async function invokeWithTimeout<T>(step: Step, parent: AbortSignal | undefined, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  // The attempt may have been cancelled while its context was loading.
  if (parent?.aborted) throw abortError(parent);
  // Without a timeout the step's signal is the parent's: one signal and one listener fewer per invocation.
  if (step.timeoutMs === null && parent) return raceAbort(work(parent), parent);
  const controller = new AbortController();
  const onAbort = () => controller.abort(parent?.reason);
  parent?.addEventListener('abort', onAbort, { once: true });
  const timer =
    step.timeoutMs === null
      ? undefined
      : setTimeout(() => controller.abort(new SluiceError('STEP_TIMEOUT', `step ${step.name} timed out after ${step.timeoutMs} ms`, { retryable: true })), step.timeoutMs);
  try {
    return await raceAbort(work(controller.signal), controller.signal);
  } finally {
    if (timer) clearTimeout(timer);
    parent?.removeEventListener('abort', onAbort);
  }
}

/** Rejects as soon as the signal aborts, even if the work ignores it. */
function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export function abortError(signal: AbortSignal): unknown {
  return abortReasonError(signal.reason);
}

/** What an abort with `reason` rejects with: the reason when it is an Error, else CANCELLED. */
export function abortReasonError(reason: unknown): unknown {
  return reason instanceof Error ? reason : new SluiceError('CANCELLED', 'the attempt was cancelled');
}

/** Checks step outputs against their `output` JSON Schema; compiled schemas are kept per schema object. */
export class OutputChecker {
  // Made at the first step with an `output` schema: module-level checkers exist before any engine does.
  private ajv: Ajv | undefined;
  private readonly validators = new WeakMap<object, ValidateFunction>();

  check(step: Step, output: unknown): void {
    if (step.output === null) return;
    let validate = this.validators.get(step.output);
    if (!validate) {
      validate = (this.ajv ??= new (ajvPackage().Ajv)({ allErrors: true, strict: false })).compile(step.output);
      this.validators.set(step.output, validate);
    }
    if (!validate(output)) {
      const detail = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
      throw new SluiceError('STEP_FAILED', `output of step ${step.name} does not match its schema: ${detail}`, { retryable: false });
    }
  }
}
