-- hopluu store, schema 10: reorganisation decisions (projection of the
-- `decision/{id}` documents). Keep in step with the other backend's file.

CREATE TABLE decisions (
    id                  TEXT PRIMARY KEY,
    number              TEXT NOT NULL,
    title               TEXT NOT NULL,
    issuing_unit        TEXT NOT NULL,
    decided_on          TEXT NOT NULL,
    effective_on        TEXT NOT NULL,
    applied_at          TEXT NOT NULL,
    applied_by          TEXT NOT NULL,
    steps               INTEGER NOT NULL,
    units_created       INTEGER NOT NULL,
    units_moved         INTEGER NOT NULL,
    units_closed        INTEGER NOT NULL,
    members_transferred INTEGER NOT NULL,
    members_ceased      INTEGER NOT NULL,
    doc                 INTEGER NOT NULL
);
CREATE INDEX decisions_issuing ON decisions (issuing_unit, effective_on);
