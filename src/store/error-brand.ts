import type { SluiceError } from '../core/errors.js';

/*
 * Errors cross processes and are persisted, and a store may see errors from another copy of a module: the store
 * recognises them by their shape and `code`, never with `instanceof`.
 */

/** Whether `err` is an error object (has a message). */
export function isErrorLike(err: unknown): err is Error {
  return typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string';
}

/** Whether `err` is a {@link SluiceError}: named so and carrying a string code. */
export function isSluiceError(err: unknown): err is SluiceError {
  return isErrorLike(err) && err.name === 'SluiceError' && typeof (err as { code?: unknown }).code === 'string';
}

/** The message of an error, or the value as text. */
export function messageOf(err: unknown): string {
  return isErrorLike(err) ? err.message : String(err);
}
