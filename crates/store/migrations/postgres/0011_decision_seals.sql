-- hopluu store, schema 11: the seals of reorganisation decisions (see
-- hopluu_model::reorg::Seal), projected from the `decision/{id}`
-- documents: the heads of each moved document when the decision was
-- applied. The replication gate accepts the changes they cover.
-- Keep in step with the other backend's file.

CREATE TABLE decision_seals (
    decision TEXT NOT NULL,
    doc_id   TEXT NOT NULL,
    head     TEXT NOT NULL,
    PRIMARY KEY (decision, doc_id, head)
);
CREATE INDEX decision_seals_doc ON decision_seals (doc_id);
