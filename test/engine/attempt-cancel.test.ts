import { describe, expect, it } from 'vitest';
import { AttemptCancel } from '../../src/engine/attempt-cancel.js';

describe('AttemptCancel', () => {
  it('tells its listeners once, with the first reason', () => {
    const cancel = new AttemptCancel();
    const heard: unknown[] = [];
    cancel.onAbort((r) => heard.push(r));
    const first = new Error('first');
    cancel.abort(first);
    cancel.abort(new Error('second'));
    expect(cancel.aborted).toBe(true);
    expect(cancel.reason).toBe(first);
    expect(heard).toEqual([first]);
    // A listener added after the abort hears it at once.
    cancel.onAbort((r) => heard.push(r));
    expect(heard).toEqual([first, first]);
  });

  it('makes its AbortSignal on first use, aborted with the reason whether made before or after', () => {
    const before = new AttemptCancel();
    const signal = before.signal;
    expect(before.signal).toBe(signal);
    expect(signal.aborted).toBe(false);
    const reason = new Error('stop');
    before.abort(reason);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);

    const after = new AttemptCancel();
    after.abort(reason);
    expect(after.signal.aborted).toBe(true);
    expect(after.signal.reason).toBe(reason);
  });
});
