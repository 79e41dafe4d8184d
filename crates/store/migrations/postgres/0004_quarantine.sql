-- hopluu store, schema 4 (PostgreSQL): quarantined changes.
-- Keep in step with ../sqlite/0004_quarantine.sql.

-- A change received from a peer that failed the authority check (or waits
-- for one that did). It is not applied and not acknowledged as applied;
-- an administrator releases or discards it. Released and discarded rows
-- stay as the record of the decision (a discarded change's bytes are
-- dropped, and the same change arriving again is dropped on sight).
CREATE TABLE quarantine (
    id          BIGSERIAL PRIMARY KEY,
    doc_id      TEXT NOT NULL,
    hash        BYTEA NOT NULL,
    -- Who the change's actor names, and whom it came from.
    origin_node TEXT NOT NULL,
    origin_unit TEXT NOT NULL,
    peer_node   TEXT NOT NULL,
    peer_unit   TEXT NOT NULL,
    -- Stable reason code and its explanation (never personal data).
    code        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    -- For code 'waits': the held change this one depends on.
    waits_for   BYTEA,
    change      BYTEA,
    change_len  BIGINT NOT NULL,
    state       TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    decided_at  BIGINT,
    decided_by  TEXT,
    UNIQUE (doc_id, hash)
);

CREATE INDEX quarantine_state ON quarantine (state, doc_id);
