-- hopluu store, schema 14 (SQLite): held changes an old host set
-- aside. Keep in step with ../postgres/0014_quarantine_archived.sql.

-- The decision that took a held change's document out of this node's
-- subtree, once the node set the change aside (NULL: not set aside). The
-- change stays held for the gate and the sync protocol, which judge it
-- as before; only what the node reports of it changes: it shows as
-- archived, not as held, and does not count as undelivered.
ALTER TABLE quarantine ADD COLUMN archived_by TEXT;
