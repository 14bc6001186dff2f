/**
 * Migration 7: packed events. One events row may hold several consecutive events of one run written by one
 * transaction (a run that starts with its step, a step that succeeds with its run): its columns are those of
 * the first event, `more` holds the later ones as a JSON array of [step, type, data, at], and `id` is the id of
 * the last, the row's events taking the ids up to it. Ids still only grow and MAX(id) is the latest event.
 */
export const sql = `
ALTER TABLE events ADD COLUMN more TEXT;
`;
