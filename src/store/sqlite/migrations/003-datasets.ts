/** Migration 3: datasets and their records. */
export const sql = `
CREATE TABLE datasets (
  name            TEXT    PRIMARY KEY,
  ingest_pipeline TEXT,              -- pipeline every written record passes through; NULL = none
  created_at      INTEGER NOT NULL
);

-- One row per record; data is a JSON object (text). Paged by (dataset, id).
CREATE TABLE dataset_records (
  dataset    TEXT    NOT NULL REFERENCES datasets (name) ON DELETE CASCADE,
  id         TEXT    NOT NULL,
  data       TEXT    NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (dataset, id)
) WITHOUT ROWID;
`;
