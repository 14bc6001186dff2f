/**
 * Migration 11: artifacts in the database, so that workers on several machines share them with no shared folder.
 * An artifact is content-addressed (sha256, hex) and stored once, as numbered chunks (1 MiB by default) that are
 * written and read one at a time; its `artifacts` row is inserted last, in the same transaction as its chunks,
 * so a row means every chunk is there.
 */
export const sql = `
CREATE TABLE artifacts (
  sha256      text     PRIMARY KEY,
  size        bigint   NOT NULL,
  chunks      integer  NOT NULL,
  created_at  bigint   NOT NULL       -- epoch ms
);

-- While an artifact is being written its chunks carry a temporary key, renamed to the sha256 once it is known.
CREATE TABLE artifact_chunks (
  sha256  text     NOT NULL,
  seq     integer  NOT NULL,
  data    bytea    NOT NULL,
  PRIMARY KEY (sha256, seq)
);
`;
