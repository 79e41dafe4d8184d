-- hopluu store, schema 5 (SQLite): members de-identified on request
-- (Law 91/2025). Keep in step with ../postgres/0005_deidentified.sql.

-- When a record was de-identified, by which node, at whose request (the
-- caller's certificate identity), why and under which reference; empty for every other record. The removed fields themselves
-- (name, birth date, position, reasons) are projected as the record's
-- current state has them, and the member's member_private rows are deleted.
ALTER TABLE members ADD COLUMN deidentified_at TEXT NOT NULL DEFAULT '';
ALTER TABLE members ADD COLUMN deidentified_by TEXT NOT NULL DEFAULT '';
ALTER TABLE members ADD COLUMN deidentified_operator TEXT NOT NULL DEFAULT '';
ALTER TABLE members ADD COLUMN deidentified_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE members ADD COLUMN deidentified_reference TEXT NOT NULL DEFAULT '';
