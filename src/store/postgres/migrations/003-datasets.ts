/** Migration 3: datasets and their records. */
export const sql = `
CREATE TABLE datasets (
  name            text   PRIMARY KEY,
  ingest_pipeline text,              -- pipeline every written record passes through; NULL = none
  created_at      bigint NOT NULL
);

-- One row per record; data is a JSON object (json keeps the key order of what was written). Ids compare
-- bytewise (COLLATE "C") so that pages follow the same order as on SQLite.
CREATE TABLE dataset_records (
  dataset    text   NOT NULL REFERENCES datasets (name) ON DELETE CASCADE,
  id         text   COLLATE "C" NOT NULL,
  data       json   NOT NULL,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  PRIMARY KEY (dataset, id)
);
`;
