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
  source_rev       bigint,           -- rev of the record the value was computed from
  status           text             NOT NULL CHECK (status IN ('proposed', 'approved', 'overridden')),
  note             text,
  updated_at       bigint           NOT NULL,
  PRIMARY KEY (dataset, field, record_id)
);

-- The fields of a dataset that have values: reads by record look each one up by the key above (no second
-- index to keep up on every write).
CREATE TABLE attribute_fields (
  dataset text NOT NULL,
  field   text NOT NULL,
  PRIMARY KEY (dataset, field)
);

-- Every write of records takes a number from this sequence and stamps it on what it writes, so a run can
-- leave records whose rev matches the one their value was computed from without reading them. Revs are
-- compared for equality only: concurrent writers may commit out of order.
CREATE SEQUENCE dataset_record_rev;
ALTER TABLE dataset_records ADD COLUMN rev bigint NOT NULL DEFAULT 0;
`;
