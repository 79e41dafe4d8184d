-- hopluu store, schema 7 (PostgreSQL): delivery receipts.
-- Keep in step with ../sqlite/0007_receipts.sql.

-- A document reached a node above this one with these heads, at that
-- node's clock: from a parent's acknowledgement, or carried down by the
-- parent from the levels above it. `hopluu trace` reads them; a parent
-- sends its children those of their subtree, in id order.
CREATE TABLE receipts (
    id      BIGSERIAL PRIMARY KEY,
    doc_id  TEXT NOT NULL,
    node_id TEXT NOT NULL,
    unit_id TEXT NOT NULL,
    heads   BYTEA NOT NULL,
    at      BIGINT NOT NULL,
    UNIQUE (doc_id, node_id, heads)
);
CREATE INDEX receipts_doc ON receipts (doc_id, node_id);

-- Per parent: the last of its receipt ids stored here (what the next hello
-- names as receipts_from_you).
CREATE TABLE receipt_cursors (
    peer TEXT PRIMARY KEY,
    upto BIGINT NOT NULL
);
