-- hopluu store, schema 3 (postgres): a member with records in two roster buckets
-- of one unit (two offices transferred the same person into the unit
-- before either saw the other's transfer) is projected from the lowest
-- bucket, whatever order the documents arrive in. The private projection
-- needs the bucket for that.
ALTER TABLE member_private ADD COLUMN bucket BIGINT NOT NULL DEFAULT 0;
