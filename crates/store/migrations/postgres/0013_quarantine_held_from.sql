-- hopluu store, schema 13 (PostgreSQL): what a node holds of each peer's
-- changes. Keep in step with ../sqlite/0013_quarantine_held_from.sql.

-- When a held change was made, by its maker's clock (automerge's change
-- time, ms since the epoch; 0 when the change names none, or for entries
-- from before this column): a sender's lag counts from the oldest change
-- its peer holds.
ALTER TABLE quarantine ADD COLUMN made_at BIGINT NOT NULL DEFAULT 0;

-- The changes held from one peer, counted for it in every
-- acknowledgement and for its row of `hopluu peers`.
CREATE INDEX quarantine_peer ON quarantine (peer_node, state);
