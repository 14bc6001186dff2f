/** Migration 4: derived values of attribute pipelines, one row per record and field. */
export const sql = `
-- value is JSON text. The key leads with (dataset, field) so a run reads one field of a page of records as a
-- range. Rows go when their record goes (deleted in the same transaction).
CREATE TABLE attribute_values (
  dataset          TEXT    NOT NULL,
  field            TEXT    NOT NULL,
  record_id        TEXT    NOT NULL,
  value            TEXT    NOT NULL,
  confidence       REAL,
  justification    TEXT,
  input_hash       TEXT,
  pipeline         TEXT,
  pipeline_version INTEGER,
  run_id           TEXT,
  source_rev       INTEGER,          -- rev of the record the value was computed from
  status           TEXT    NOT NULL CHECK (status IN ('proposed', 'approved', 'overridden')),
  note             TEXT,
  updated_at       INTEGER NOT NULL,
  PRIMARY KEY (dataset, field, record_id)
) WITHOUT ROWID;

-- The fields of a dataset that have values: reads by record look each one up by the key above (no second
-- index to keep up on every write).
CREATE TABLE attribute_fields (
  dataset TEXT NOT NULL,
  field   TEXT NOT NULL,
  PRIMARY KEY (dataset, field)
) WITHOUT ROWID;

-- Every write of records takes the next rev of its dataset and stamps it on what it writes, so a run can
-- leave records whose rev matches the one their value was computed from without reading them.
ALTER TABLE datasets ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
ALTER TABLE dataset_records ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
`;
