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
    steps               BIGINT NOT NULL,
    units_created       BIGINT NOT NULL,
    units_moved         BIGINT NOT NULL,
    units_closed        BIGINT NOT NULL,
    members_transferred BIGINT NOT NULL,
    members_ceased      BIGINT NOT NULL,
    doc                 BIGINT NOT NULL
);
CREATE INDEX decisions_issuing ON decisions (issuing_unit, effective_on);
