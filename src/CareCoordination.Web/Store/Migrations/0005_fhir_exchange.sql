-- FHIR messaging ($process-message): each partner message processed, so that a repeat of the same message
-- id is refused as a duplicate and creates nothing. Unique per sending organisation, as BaRS message ids are.
CREATE TABLE fhir_message (
    id              {{id}},
    organisation_id BIGINT NOT NULL REFERENCES organisation (id),
    message_id      TEXT NOT NULL,
    event           TEXT NOT NULL,
    reason          TEXT NOT NULL,
    referral_id     BIGINT NULL REFERENCES referral (id),
    received_at     TIMESTAMPTZ NOT NULL,
    UNIQUE (organisation_id, message_id)
);

-- The sender's own identifier for a referral sent over FHIR (ServiceRequest.identifier): partners search
-- and conditionally create by it, and it is shown back to them. One referral per identifier per sender.
ALTER TABLE referral ADD COLUMN sender_system TEXT NULL;
ALTER TABLE referral ADD COLUMN sender_value TEXT NULL;
CREATE UNIQUE INDEX ux_referral_sender_identifier ON referral (organisation_id, sender_system, sender_value) WHERE sender_value IS NOT NULL;
