-- hopluu store, schema 9 (SQLite): the unit tree as dated links, and when
-- each member record began. Keep in step with ../postgres/0009_unit_links.sql.

-- One row per interval of a unit's life under one parent
-- (`hopluu_model::timeline::parent_links`): `parent` is '' for a root;
-- dates are ISO `YYYY-MM-DD` text, which compares in date order; the link
-- holds from `valid_from` (inclusive) to `valid_to` (exclusive), and
-- '9999-12-31' means it still holds. Reports as of a date walk it down
-- from a unit, one index lookup per level.
CREATE TABLE unit_links (
    unit       TEXT NOT NULL,
    parent     TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to   TEXT NOT NULL,
    PRIMARY KEY (unit, valid_from)
);
CREATE INDEX unit_links_parent ON unit_links (parent, valid_from);

-- The day the member's record in its unit began
-- (`hopluu_model::timeline::member_since`).
ALTER TABLE members ADD COLUMN since_on TEXT NOT NULL DEFAULT '';

-- Existing rows, as well as the projections know them: each unit under
-- its current parent from the first day (until it closed), each record
-- since the day its active status began, else since its member joined.
-- The exact history is written when a unit's or member's document is
-- next projected.
INSERT INTO unit_links (unit, parent, valid_from, valid_to)
SELECT id, COALESCE(parent, ''), '1900-01-01',
       CASE WHEN status <> 'active' AND closed_on <> '' THEN closed_on ELSE '9999-12-31' END
FROM units;
UPDATE members SET since_on =
    CASE WHEN status = 'active' AND status_on <> '' THEN status_on ELSE joined_on END;
