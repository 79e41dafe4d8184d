-- hopluu store, schema 8 (PostgreSQL): documents in id order, byte-wise.
-- Keep in step with ../sqlite/0008_docs_by_id.sql.

-- Paging through documents by id (`hopluu docs list`, the convergence
-- check's ScopeHeads) compares ids byte-wise, `doc_id COLLATE "C"`, so
-- that both backends, and a node and its peer, page in the same order.
-- The unique index on doc_id uses the database's collation and cannot
-- serve that order: without this one, every page would sort the whole
-- table (a national node holds millions of documents).
CREATE INDEX docs_doc_id_bytewise ON docs (doc_id COLLATE "C");
