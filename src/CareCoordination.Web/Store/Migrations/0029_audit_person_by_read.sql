-- The people a bulk read disclosed (0027), keyed by the read first: an export names its people all against one new
-- audit_event row, so its rows go at the end of the key, a few hundred fresh pages for a year's 450,000 people. Keyed by
-- person first, every export wrote into every page of an index spread over all the people ever exported (a year's export
-- on the 1M store: 1.0 s to insert and 0.85 s to commit, against 0.07 and 0.04 s keyed so, issue 13). On SQLite the key is
-- the table (WITHOUT ROWID): one b-tree, not a table and its key's index. "Who has seen this person's record" seeks
-- (read, person) once per bulk read, the reads found by the same key (docs/reports-client-level-data.md gives the query).
CREATE TABLE audit_person_by_read (
    audit_id  BIGINT NOT NULL REFERENCES audit_event (id),
    person_id BIGINT NOT NULL,
    PRIMARY KEY (audit_id, person_id)
){{without_rowid}};

INSERT INTO audit_person_by_read (audit_id, person_id)
SELECT audit_id, person_id FROM audit_person ORDER BY audit_id, person_id;

DROP TABLE audit_person;

ALTER TABLE audit_person_by_read RENAME TO audit_person;
