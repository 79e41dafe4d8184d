-- hopluu store, schema 12: nodes and hosting as data (projection of the
-- `node/{id}` documents every node holds, see hopluu_model::hosting), and
-- the seals the old hosts of a handover recorded there: their heads of
-- each document a decision moved out of their subtree. The replication
-- gate accepts the changes they cover, as it does a decision's own seals.
-- Keep in step with the other backend's file.

CREATE TABLE nodes (
    id         TEXT PRIMARY KEY,
    unit       TEXT NOT NULL,
    upstream   TEXT NOT NULL,
    address    TEXT NOT NULL,
    status     TEXT NOT NULL,
    retired_at TEXT NOT NULL,
    doc        INTEGER NOT NULL
);
CREATE INDEX nodes_unit ON nodes (unit);

CREATE TABLE host_seals (
    node      TEXT NOT NULL,
    decision  TEXT NOT NULL,
    doc_id    TEXT NOT NULL,
    head      TEXT NOT NULL,
    sealed_at TEXT NOT NULL,
    PRIMARY KEY (node, decision, doc_id, head)
);
CREATE INDEX host_seals_doc ON host_seals (doc_id);
CREATE INDEX host_seals_decision ON host_seals (decision);
