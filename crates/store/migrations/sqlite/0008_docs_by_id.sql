-- hopluu store, schema 8 (SQLite): documents in id order, byte-wise.
-- Keep in step with ../postgres/0008_docs_by_id.sql.

-- Nothing to do here: SQLite compares text byte-wise (BINARY) by default,
-- so the unique index on doc_id already serves paging by id. PostgreSQL
-- needs an index of its own for that order.
SELECT 1;
