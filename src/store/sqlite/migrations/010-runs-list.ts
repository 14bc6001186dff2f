/**
 * Migration 10: run lists from indexes. `listRuns` pages newest first by (created_at, id), optionally of one
 * pipeline or status; each form reads one of these indexes in order and stops at the page size, instead of
 * scanning and sorting the whole table. The pipeline index replaces runs_by_pipeline, its prefix.
 */
export const sql = `
CREATE INDEX runs_by_created ON runs (created_at DESC, id DESC);
CREATE INDEX runs_by_pipeline_created ON runs (pipeline, created_at DESC, id DESC);
CREATE INDEX runs_by_status_created ON runs (status, created_at DESC, id DESC);
DROP INDEX runs_by_pipeline;
`;
