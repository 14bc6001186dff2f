/**
 * Migration 19: updates of `steps` are HOT (heap-only tuples: the new row version goes on the same page and no
 * index gets a new entry). A one-step run updates its step twice (started, then finished), and each update wrote
 * a new entry in every index of the table, because `steps_ready` named `status` (in its predicate) and
 * `waiting_on` (a key column), the two columns the run path changes. Every query of the ready steps names its
 * run, and the primary key (run_id, name) leads with the run: the index only cost writes.
 *
 * A HOT update needs room on the row's page. Runs created together share pages and start together, so a claim
 * updates most rows of a page at once: with `fillfactor` 80, a third of the step updates of W1 found room; with 50
 * (half of each new page left free; the versions a committed update left behind are pruned before the next),
 * four in five do (bench/README.md, "Fewer PostgreSQL writes per run").
 */
export const sql = `
DROP INDEX IF EXISTS steps_ready;
ALTER TABLE steps SET (fillfactor = 50);
`;
