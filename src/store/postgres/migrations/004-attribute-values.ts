/** Migration 4: derived values of attribute pipelines, one row per record and field. */
export const sql = `
-- The key leads with (dataset, field) so a run reads one field of a page of records as a range; record ids
-- compare bytewise (COLLATE "C") like dataset_records.id. Rows go when their record goes.
CREATE TABLE attribute_values (
  dataset          text             NOT NULL,
  field            text             NOT NULL,
  record_id        text COLLATE "C" NOT NULL,
  value            json             NOT NULL,
  confidence       double precision,
  justification    text,
  input_hash       text,
  pipeline         text,
  pipeline_version integer,
  run_id           text,
  status           text             NOT NULL CHECK (status IN ('proposed', 'approved', 'overridden')),
  note             text,
  updated_at       bigint           NOT NULL,
  PRIMARY KEY (dataset, field, record_id)
);

CREATE INDEX attribute_values_by_record ON attribute_values (dataset, record_id);
`;
