-- hopluu store, schema 6 (PostgreSQL): conflicts.
-- Keep in step with ../sqlite/0006_conflicts.sql.

-- A field (a map key of a stored document) where concurrent writes left
-- more than one value. Written in the transaction that stored the change
-- which made the conflict, deleted in the one whose change left the field
-- with one value again (see crates/store/src/conflicts.rs). Only where
-- the field is: its values may be personal data and are read from the
-- document when an administrator asks.
CREATE TABLE conflicts (
    id          BIGSERIAL PRIMARY KEY,
    doc         BIGINT NOT NULL REFERENCES docs (id),
    doc_id      TEXT NOT NULL,
    -- The automerge object holding the field: `_root` or `counter@actor`.
    obj         TEXT NOT NULL,
    -- The field's key in that object.
    field       TEXT NOT NULL,
    -- Where the field was when found, e.g. `members/m-12/position`, and
    -- the record it belongs to (member, initiative, work, plan id, or the
    -- document's own subject). Ids only.
    path        TEXT NOT NULL,
    record      TEXT NOT NULL,
    detected_at BIGINT NOT NULL,
    UNIQUE (doc, obj, field)
);

CREATE INDEX conflicts_doc_id ON conflicts (doc_id, id);
