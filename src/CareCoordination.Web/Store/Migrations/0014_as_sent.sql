-- A person as partners name them: every name (official, usual, maiden, ...) with every given name, and the
-- identifiers other than the NHS number (a hospital number, a local authority's own), as JSON arrays. NULL when only
-- the form's one name is known (given_name and family_name, which stay what staff pages show and search).
-- Kept on the whole record and on what each referral said, as every other part of the person is.
ALTER TABLE person ADD COLUMN names TEXT NULL;
ALTER TABLE person ADD COLUMN other_identifiers TEXT NULL;
ALTER TABLE referral_person ADD COLUMN names TEXT NULL;
ALTER TABLE referral_person ADD COLUMN other_identifiers TEXT NULL;
ALTER TABLE person_registration ADD COLUMN names TEXT NULL;
ALTER TABLE person_registration ADD COLUMN other_identifiers TEXT NULL;

-- Nothing a partner sends is lost: each FHIR write that made or changed a referral, kept byte for byte as received,
-- with who sent it and when, written in the same transaction as what it did (a refused write keeps nothing).
-- receipt is the one HTTP request it came in, so a transaction or message that makes several referrals is kept once.
CREATE TABLE fhir_received (
    id                  {{id}},
    receipt             TEXT NOT NULL UNIQUE,
    organisation_id     BIGINT NOT NULL REFERENCES organisation (id),
    partner_client_id   BIGINT NULL REFERENCES partner_client (id),
    sender              TEXT NOT NULL,      -- the partner client (or user) as the audit trail names it
    interaction         TEXT NOT NULL,      -- e.g. POST /fhir/$process-message
    content_type        TEXT NOT NULL,
    bundle_id           TEXT NULL,          -- Bundle.id of a message, transaction or batch
    body                BYTEA NOT NULL,     -- exactly the bytes received (at most Fhir:MaxRequestBytes)
    body_bytes          INTEGER NOT NULL,
    received_at         TIMESTAMPTZ NOT NULL
);

-- Which referrals each one made or changed (a transaction can make several; a referral can be changed by several).
CREATE TABLE fhir_received_referral (
    received_id         BIGINT NOT NULL REFERENCES fhir_received (id),
    referral_id         BIGINT NOT NULL REFERENCES referral (id),
    PRIMARY KEY (received_id, referral_id)
);
CREATE INDEX ix_fhir_received_referral_referral ON fhir_received_referral (referral_id);
