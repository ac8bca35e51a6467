-- The people a bulk read disclosed (the client-level events export: a quarter names about 150,000, a year 450,000), each
-- named against the one audit_event row of that read, rather than a full audit row of their own: a full row with its
-- two indexes was 3-4x the work and ten times the bytes, in the store's only write turn (issue 13). "Who has seen this person's record"
-- is audit_event.person_id, and for bulk reads audit_person.person_id joined to its audit_event row (docs/reports-client-level-data.md).
CREATE TABLE audit_person (
    person_id BIGINT NOT NULL,
    audit_id  BIGINT NOT NULL REFERENCES audit_event (id),
    PRIMARY KEY (person_id, audit_id)
);

-- The waiting lists reach the referrals with a placement started since the period began by the start; with the referral
-- in the index too, that is an index read, not a placement row read for each (a year: 242,000, 0.27 s of CPU in each of
-- the report's parts, issue 13).
CREATE INDEX ix_placement_started_referral ON placement (started_at, referral_id);
