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
