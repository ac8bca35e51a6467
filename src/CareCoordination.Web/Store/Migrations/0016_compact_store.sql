-- Issue 14: a referral's store growth near its bare rows. What is kept only to be given back exactly (a partner's
-- message, a FHIR version once superseded) is packed with Brotli (Store/Packing.cs); rows kept before this stay as
-- they were and are read as they were.

-- The message as received: body holds it packed when body_encoding is 'br', as received when 'identity'.
-- body_bytes stays the length as received.
ALTER TABLE fhir_received ADD COLUMN body_encoding TEXT NOT NULL DEFAULT 'identity' CHECK (body_encoding IN ('identity', 'br'));

-- A FHIR version: resource (its JSON text: versions kept before this) or packed (the JSON's UTF-8, Brotli), one of the two.
-- SQLite cannot drop NOT NULL in place; both engines can add a column, copy, drop the old one and rename.
ALTER TABLE fhir_version ADD COLUMN resource_text TEXT NULL;
UPDATE fhir_version SET resource_text = resource;
ALTER TABLE fhir_version DROP COLUMN resource;
ALTER TABLE fhir_version RENAME COLUMN resource_text TO resource;
ALTER TABLE fhir_version ADD COLUMN packed BYTEA NULL;

-- Scale of history (issue 14): what the live screens and partners' searches ask of a store holding years of referrals
-- reaches the rows it wants through an index, not by reading every referral or task ever sent (bench history).
-- The capacity board's open tasks; the fortnight's triage decisions and a referral's tasks.
CREATE INDEX ix_triage_task_status ON triage_task (status);
CREATE INDEX ix_triage_task_completed ON triage_task (completed_at);
CREATE INDEX ix_triage_task_referral ON triage_task (referral_id);
-- Referrals sent today and in the fortnight; those waiting by status.
CREATE INDEX ix_referral_submitted ON referral (submitted_at);
CREATE INDEX ix_referral_status ON referral (status);
