import { describe, expect, it } from 'vitest';
import { START_RUNS_SQL } from '../../src/store/sqlite/attempt-batches.js';
import { withSqlitePlans } from '../support/sqlite-plan.js';

describe('a batch claim starting its runs', () => {
  it('on SQLite, finds each run by its id, not by walking every queued run through the status index', async () => {
    const plan = await withSqlitePlans((plan) => plan(START_RUNS_SQL, { now: Date.now(), ids: '["a","b"]' }));
    expect(plan).toMatch(/SEARCH runs USING INDEX sqlite_autoindex_runs_1 \(id=\?\)/);
    expect(plan).not.toMatch(/runs_by_status_created/);
  });
});
