/**
 * Migration 19: packed events, as SQLite's migration 7. One events row may hold up to eight consecutive events of
 * one run written by one statement (a run that starts with its step, a step that succeeds with its run): its
 * columns are those of the first event, `more` holds the later ones as a JSON array of [step, type, data, at], and
 * `id` is the id of the last, the row's events taking the ids up to it. The sequence steps by 8, so the seven ids
 * below a row's own are never another row's: ids still only grow, and MAX(id) is the latest event. Rows written
 * before stay as they are (one event each, `more` null). The `setval` makes the next id the last one given out plus 8
 * even on a sequence never used (whose first value would otherwise be 1, leaving a packed row's first ids below 1).
 */
export const sql = `
ALTER TABLE events ADD COLUMN more text;
ALTER SEQUENCE events_id_seq INCREMENT BY 8;
SELECT setval('events_id_seq', (SELECT last_value FROM events_id_seq), true);
`;
