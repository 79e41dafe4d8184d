-- hopluu store, schema 4 (SQLite): quarantined changes.
-- Keep in step with ../postgres/0004_quarantine.sql.

-- A change received from a peer that failed the authority check (or waits
-- for one that did). It is not applied and not acknowledged as applied;
-- an administrator releases or discards it. Released and discarded rows
-- stay as the record of the decision (a discarded change's bytes are
-- dropped, and the same change arriving again is dropped on sight).
CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id      TEXT NOT NULL,
    hash        BLOB NOT NULL,
    -- Who the change's actor names, and whom it came from.
    origin_node TEXT NOT NULL,
    origin_unit TEXT NOT NULL,
    peer_node   TEXT NOT NULL,
    peer_unit   TEXT NOT NULL,
    -- Stable reason code and its explanation (never personal data).
    code        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    -- For code 'waits': the held change this one depends on.
    waits_for   BLOB,
    change      BLOB,
    change_len  INTEGER NOT NULL,
    state       TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    decided_at  INTEGER,
    decided_by  TEXT,
    UNIQUE (doc_id, hash)
);

CREATE INDEX quarantine_state ON quarantine (state, doc_id);
