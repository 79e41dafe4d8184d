-- hopluu store, schema 2 (SQLite): replication peer state.
-- Keep in step with ../postgres/0002_peers.sql.

-- One row per peer node (parent, fallback upstream or child).
CREATE TABLE peers (
    node_id      TEXT PRIMARY KEY,
    unit         TEXT NOT NULL,
    -- The last sequence of the peer's feed applied here without a gap:
    -- written in the same transaction as what was applied.
    applied_upto INTEGER NOT NULL,
    -- The last sequence of this node's feed the peer has acknowledged.
    acked_upto   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL
);

-- Per peer and document: the heads the peer is known to have (so a warm
-- sync sends only the changes after them) and, while they are unknown,
-- the automerge sync state (encoded, so in-flight state never survives a
-- reconnect).
CREATE TABLE peer_docs (
    peer  TEXT NOT NULL,
    doc   INTEGER NOT NULL REFERENCES docs (id),
    heads BLOB NOT NULL,
    sync  BLOB,
    PRIMARY KEY (peer, doc)
);

-- Moves and late-arriving units look up campaigns, proposals and awards.
CREATE INDEX docs_kind ON docs (kind);
