-- hopluu store, schema 2 (PostgreSQL): replication peer state.
-- Keep in step with ../sqlite/0002_peers.sql.

CREATE TABLE peers (
    node_id      TEXT PRIMARY KEY,
    unit         TEXT NOT NULL,
    applied_upto BIGINT NOT NULL,
    acked_upto   BIGINT NOT NULL,
    last_seen    BIGINT NOT NULL
);

CREATE TABLE peer_docs (
    peer  TEXT NOT NULL,
    doc   BIGINT NOT NULL REFERENCES docs (id),
    heads BYTEA NOT NULL,
    sync  BYTEA,
    PRIMARY KEY (peer, doc)
);

-- Moves and late-arriving units look up campaigns, proposals and awards.
CREATE INDEX docs_kind ON docs (kind);
