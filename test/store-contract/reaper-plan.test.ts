import { describe, expect, it } from 'vitest';
import { OVERDUE_RUNS } from '../../src/store/ledger/upkeep.js';
import { withSqlitePlans } from '../support/sqlite-plan.js';

describe("the reaper's scan for overdue runs", () => {
  it('on SQLite, reads the partial deadline index, not every live run by status', async () => {
    const plan = await withSqlitePlans((plan) => plan(OVERDUE_RUNS.sqlite, OVERDUE_RUNS.sqliteArgs([Date.now()])));
    expect(plan).toMatch(/USING INDEX runs_deadline/);
    expect(plan).not.toMatch(/runs_by_status_created/);
  });
});
