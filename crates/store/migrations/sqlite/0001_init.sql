-- hopluu store, schema 1 (SQLite). Keep in step with ../postgres/0001_init.sql.

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('feed', 0);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row per automerge document: a compacted snapshot, plus incremental
-- chunks in doc_chunks until they outgrow the snapshot.
CREATE TABLE docs (
    id           INTEGER PRIMARY KEY,
    doc_id       TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    owner        TEXT NOT NULL,
    addressed    TEXT NOT NULL,
    snapshot     BLOB NOT NULL,
    snapshot_len INTEGER NOT NULL,
    chunks_len   INTEGER NOT NULL,
    heads        BLOB NOT NULL,
    seq          INTEGER NOT NULL,
    changed_at   INTEGER NOT NULL
);
CREATE INDEX docs_seq ON docs (seq);
CREATE INDEX docs_owner ON docs (owner);

CREATE TABLE doc_chunks (
    doc  INTEGER NOT NULL REFERENCES docs (id),
    seq  INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (doc, seq)
);

-- The change feed: one row per document update, numbered by a local
-- sequence that only grows. Replication reads it from a peer's checkpoint.
CREATE TABLE feed (
    seq INTEGER PRIMARY KEY,
    doc INTEGER NOT NULL REFERENCES docs (id),
    at  INTEGER NOT NULL
);

-- Projections: derived from the documents in the same transaction.
CREATE TABLE units (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    parent       TEXT,
    status       TEXT NOT NULL,
    successors   TEXT NOT NULL,
    closed_on    TEXT NOT NULL,
    close_reason TEXT NOT NULL,
    doc          INTEGER NOT NULL
);
CREATE INDEX units_parent ON units (parent);

CREATE TABLE unit_closure (
    ancestor   TEXT NOT NULL,
    descendant TEXT NOT NULL,
    depth      INTEGER NOT NULL,
    PRIMARY KEY (ancestor, descendant)
);
CREATE INDEX unit_closure_descendant ON unit_closure (descendant);

CREATE TABLE members (
    member_id     TEXT NOT NULL,
    unit_id       TEXT NOT NULL,
    doc           INTEGER NOT NULL,
    bucket        INTEGER NOT NULL,
    full_name     TEXT NOT NULL,
    name_key      TEXT NOT NULL,
    birth_date    TEXT NOT NULL,
    gender        TEXT NOT NULL,
    card_number   TEXT NOT NULL,
    joined_on     TEXT NOT NULL,
    position      TEXT NOT NULL,
    status        TEXT NOT NULL,
    status_reason TEXT NOT NULL,
    status_on     TEXT NOT NULL,
    PRIMARY KEY (member_id, unit_id)
);
CREATE INDEX members_unit ON members (unit_id, status);
CREATE INDEX members_card ON members (card_number, status);
CREATE INDEX members_doc ON members (doc);

CREATE TABLE member_private (
    member_id   TEXT NOT NULL,
    unit_id     TEXT NOT NULL,
    national_id TEXT NOT NULL,
    ethnicity   TEXT NOT NULL,
    religion    TEXT NOT NULL,
    PRIMARY KEY (member_id, unit_id)
);

CREATE TABLE campaigns (
    id             TEXT PRIMARY KEY,
    launching_unit TEXT NOT NULL,
    title          TEXT NOT NULL,
    theme          TEXT NOT NULL,
    starts_on      TEXT NOT NULL,
    ends_on        TEXT NOT NULL,
    scope_unit     TEXT NOT NULL,
    status         TEXT NOT NULL,
    doc            INTEGER NOT NULL
);

CREATE TABLE campaign_plans (
    campaign         TEXT NOT NULL,
    unit_id          TEXT NOT NULL,
    initiative_quota INTEGER NOT NULL,
    works_quota      INTEGER NOT NULL,
    PRIMARY KEY (campaign, unit_id)
);

CREATE TABLE registrations (
    unit_id       TEXT NOT NULL,
    campaign      TEXT NOT NULL,
    registered    INTEGER NOT NULL,
    registered_on TEXT NOT NULL,
    pledge        TEXT NOT NULL,
    doc           INTEGER NOT NULL,
    PRIMARY KEY (unit_id, campaign)
);

CREATE TABLE initiatives (
    id               TEXT PRIMARY KEY,
    unit_id          TEXT NOT NULL,
    campaign         TEXT NOT NULL,
    title            TEXT NOT NULL,
    authors          TEXT NOT NULL,
    status           TEXT NOT NULL,
    recognised_level TEXT NOT NULL,
    value_vnd        INTEGER NOT NULL,
    submitted_on     TEXT NOT NULL,
    doc              INTEGER NOT NULL
);
CREATE INDEX initiatives_campaign ON initiatives (campaign, unit_id);
CREATE INDEX initiatives_doc ON initiatives (doc);

CREATE TABLE works (
    id           TEXT PRIMARY KEY,
    unit_id      TEXT NOT NULL,
    campaign     TEXT NOT NULL,
    name         TEXT NOT NULL,
    value_vnd    INTEGER NOT NULL,
    plaque       INTEGER NOT NULL,
    completed_on TEXT NOT NULL,
    doc          INTEGER NOT NULL
);
CREATE INDEX works_unit ON works (unit_id, campaign);
CREATE INDEX works_doc ON works (doc);

CREATE TABLE proposals (
    id              TEXT PRIMARY KEY,
    proposing_unit  TEXT NOT NULL,
    addressed_unit  TEXT NOT NULL,
    award_type      TEXT NOT NULL,
    campaign        TEXT NOT NULL,
    reason          TEXT NOT NULL,
    proposed_on     TEXT NOT NULL,
    status          TEXT NOT NULL,
    award_id        TEXT NOT NULL,
    doc             INTEGER NOT NULL
);

CREATE TABLE awards (
    id            TEXT PRIMARY KEY,
    issuing_unit  TEXT NOT NULL,
    decision_no   TEXT NOT NULL,
    decided_on    TEXT NOT NULL,
    effective_on  TEXT NOT NULL,
    year          INTEGER NOT NULL,
    award_type    TEXT NOT NULL,
    level         TEXT NOT NULL,
    campaign      TEXT NOT NULL,
    proposal      TEXT NOT NULL,
    reason        TEXT NOT NULL,
    revoked       INTEGER NOT NULL,
    revoked_on    TEXT NOT NULL,
    revoke_reason TEXT NOT NULL,
    doc           INTEGER NOT NULL
);

CREATE TABLE award_recipients (
    award     TEXT NOT NULL,
    n         INTEGER NOT NULL,
    member_id TEXT NOT NULL,
    unit_id   TEXT NOT NULL,
    PRIMARY KEY (award, n)
);
CREATE INDEX award_recipients_unit ON award_recipients (unit_id);
