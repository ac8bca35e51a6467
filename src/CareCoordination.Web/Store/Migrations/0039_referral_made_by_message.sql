-- Issue 14: store growth. The partner's message that made a referral is named on the referral itself, written with it,
-- instead of in a row of fhir_received_referral: on PostgreSQL that row, its key and its index were about 110 B a
-- referral, the most of any of the submission's links. fhir_received_referral keeps the messages that changed a
-- referral afterwards (a cancellation, an answer, a note), and every link written before this release: they are not
-- moved, because an old link cannot tell which message made the referral and which changed it.
ALTER TABLE referral ADD COLUMN received_id BIGINT NULL REFERENCES fhir_received (id);

-- Every message kept for a referral, whichever way it is linked (dropped again by 0043: AsSent.MessagesOf reads them).
CREATE VIEW referral_received AS
    SELECT id AS referral_id, received_id FROM referral WHERE received_id IS NOT NULL
    UNION ALL
    SELECT referral_id, received_id FROM fhir_received_referral;
