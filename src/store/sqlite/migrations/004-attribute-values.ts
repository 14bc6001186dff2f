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
  status           TEXT    NOT NULL CHECK (status IN ('proposed', 'approved', 'overridden')),
  note             TEXT,
  updated_at       INTEGER NOT NULL,
  PRIMARY KEY (dataset, field, record_id)
) WITHOUT ROWID;

CREATE INDEX attribute_values_by_record ON attribute_values (dataset, record_id);
`;
