-- Issue 14: store growth on PostgreSQL. The people a page read disclosed (0033) were a row each in audit_read_person: on
-- PostgreSQL a row of two numbers carries 28 B of tuple header and line pointer, and its key and person index two
-- entries more, about 100 B a person, 2 KB for a partner's poll of twenty waiting tasks. Here they are one row per read,
-- its people as one array, and "who has seen this person" finds the read through a GIN index of the arrays, whose posting
-- lists are compressed: about a fifth of the bytes. SQLite keeps audit_read_person: a row there is a key in one b-tree
-- (WITHOUT ROWID) with no header, about 30 B, and SQLite has no index into an array.
{{postgres}}
CREATE TABLE audit_read_people (
    audit_id   BIGINT PRIMARY KEY REFERENCES audit_event (id),
    person_ids BIGINT[] NOT NULL
);
LOCK TABLE audit_read_person IN SHARE ROW EXCLUSIVE MODE;
INSERT INTO audit_read_people (audit_id, person_ids)
SELECT audit_id, array_agg(person_id ORDER BY person_id) FROM audit_read_person GROUP BY audit_id;
DROP TABLE audit_read_person;
CREATE INDEX ix_audit_read_people_person ON audit_read_people USING GIN (person_ids);
{{end}}
