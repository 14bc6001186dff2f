import { describe, expect, it } from 'vitest';
import { errorCodeOf, hasErrorCode, isSluiceError, isValidationError, SluiceError, toErrorRecord, ValidationError } from '../../src/core/errors.js';

/** A second copy of the errors module, as when two copies of the package are loaded (or a plugin bundles its own). */
async function secondCopy(): Promise<typeof import('../../src/core/errors.js')> {
  // @ts-expect-error: the query makes the loader evaluate the module again, as a separate copy.
  return import('../../src/core/errors.ts?second-copy');
}

describe('the SluiceError brand', () => {
  it('recognises a SluiceError of another copy of the package, where instanceof does not', async () => {
    const other = await secondCopy();
    expect(other.SluiceError).not.toBe(SluiceError);
    const err = new other.SluiceError('VALUE_REFUSED', 'refused by a plugin', { retryable: false });
    expect(err instanceof SluiceError).toBe(false);
    expect(isSluiceError(err)).toBe(true);
    // Stored as a Sluice error: its code, not retried, no engine stack.
    expect(toErrorRecord(err)).toEqual({ code: 'VALUE_REFUSED', message: 'refused by a plugin', retryable: false });
    expect(isValidationError(new other.ValidationError([{ message: 'bad' }]))).toBe(true);
  });

  it('does not take a plain Error or an error record for a thrown SluiceError, but reads their code', () => {
    const plain = Object.assign(new Error('x'), { code: 'STEP_FAILED' });
    const record = JSON.parse(JSON.stringify(new SluiceError('GATE_FAILED', 'gate check: retry budget of 1 spent')));
    expect(isSluiceError(plain)).toBe(false);
    expect(isSluiceError(record)).toBe(false);
    expect(errorCodeOf(record)).toBe('GATE_FAILED');
    expect(hasErrorCode(plain, 'STEP_FAILED')).toBe(true);
    expect(errorCodeOf('text')).toBeUndefined();
    expect(isValidationError(new ValidationError([{ message: 'bad' }]))).toBe(true);
    expect(isValidationError(new SluiceError('VALIDATION_FAILED', 'no issues listed'))).toBe(false);
  });
});
