-- A read of several records of one kind (a page of FHIR search results, a page of a list) is one audit row naming the
-- kind, with each person it disclosed named against it here; it was one full audit row per record returned, with its
-- three indexes: a partner polling Task?status=requested wrote 20 rows a poll, the largest part of the audit trail's growth
-- (issue 14). Keyed by the read first, so that its people are written together and read back together (the FHIR
-- AuditEvent lists them); "who has seen this person's record" seeks the person in the index. Unlike audit_person (a bulk
-- export's hundreds of thousands of people, which a person-first index would scatter over every page), a page names tens.
CREATE TABLE audit_read_person (
    audit_id  BIGINT NOT NULL REFERENCES audit_event (id),
    person_id BIGINT NOT NULL,
    PRIMARY KEY (audit_id, person_id)
){{without_rowid}};

CREATE INDEX ix_audit_read_person_person ON audit_read_person (person_id);
