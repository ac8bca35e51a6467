-- A bed's closure: the reason is a code, which the capacity board and partners see; the detail is free text,
-- which may name a patient, and stays with the bed for the bed bureau. Closures made before this kept both
-- in closed_reason as "code: detail": they are split here, and a reason that is not a code becomes "other".
ALTER TABLE bed ADD COLUMN closed_detail TEXT NULL;
UPDATE bed SET closed_detail = substr(closed_reason, length('infection: ') + 1), closed_reason = 'infection' WHERE closed_reason LIKE 'infection: %';
UPDATE bed SET closed_detail = substr(closed_reason, length('staffing: ') + 1), closed_reason = 'staffing' WHERE closed_reason LIKE 'staffing: %';
UPDATE bed SET closed_detail = substr(closed_reason, length('maintenance: ') + 1), closed_reason = 'maintenance' WHERE closed_reason LIKE 'maintenance: %';
UPDATE bed SET closed_detail = substr(closed_reason, length('other: ') + 1), closed_reason = 'other' WHERE closed_reason LIKE 'other: %';
UPDATE bed SET closed_detail = closed_reason, closed_reason = 'other' WHERE closed_reason NOT IN ('infection', 'staffing', 'maintenance', 'other');

-- What each referral said about the person, kept with the referral. The person row is the coordination centre's
-- whole record, brought up to date by every referral whichever organisation sent it; a referrer or partner reads
-- only what its own organisation's referrals said (FHIR Patient read, search, vread and _history; the referral's page).
-- person_version is the version of the person the referral's submission made, so each organisation's versions keep
-- the numbers the whole record gave them.
CREATE TABLE referral_person (
    referral_id             BIGINT PRIMARY KEY REFERENCES referral (id),
    person_id               BIGINT NOT NULL REFERENCES person (id),
    person_version          INTEGER NULL,   -- NULL: sent before this table, its version is not known
    nhs_number              TEXT NOT NULL,
    given_name              TEXT NOT NULL,
    family_name             TEXT NOT NULL,
    date_of_birth           DATE NOT NULL,
    sex                     TEXT NOT NULL,
    address_line            TEXT NULL,
    postcode                TEXT NULL,
    locality                TEXT NULL,
    ethnicity               TEXT NULL,
    interpreter_language    TEXT NULL,
    easy_read               BOOLEAN NOT NULL DEFAULT FALSE,
    bsl                     BOOLEAN NOT NULL DEFAULT FALSE,
    lives_alone             BOOLEAN NOT NULL DEFAULT FALSE,
    carer_name              TEXT NULL,
    carer_relationship      TEXT NULL,
    carer_contact           TEXT NULL,
    carer_wants_assessment  BOOLEAN NOT NULL DEFAULT FALSE,
    gp_practice_code        TEXT NULL,
    recorded_at             TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_referral_person_person ON referral_person (person_id, person_version);

-- Referrals sent before this: each person's latest referral wrote the record as it stands, so it keeps the whole
-- record and its version. What earlier referrals said was overwritten and may be another organisation's words now:
-- they keep only who the person is (NHS number, name, date of birth, sex), which their referrer gave too.
INSERT INTO referral_person (referral_id, person_id, person_version, nhs_number, given_name, family_name, date_of_birth, sex,
    address_line, postcode, locality, ethnicity, interpreter_language, easy_read, bsl, lives_alone,
    carer_name, carer_relationship, carer_contact, carer_wants_assessment, gp_practice_code, recorded_at)
SELECT r.id, p.id, CASE WHEN latest.id IS NULL THEN NULL ELSE p.version END, p.nhs_number, p.given_name, p.family_name, p.date_of_birth, p.sex,
    CASE WHEN latest.id IS NULL THEN NULL ELSE p.address_line END,
    CASE WHEN latest.id IS NULL THEN NULL ELSE p.postcode END,
    CASE WHEN latest.id IS NULL THEN NULL ELSE p.locality END,
    CASE WHEN latest.id IS NULL THEN NULL ELSE p.ethnicity END,
    CASE WHEN latest.id IS NULL THEN NULL ELSE p.interpreter_language END,
    CASE WHEN latest.id IS NULL THEN FALSE ELSE p.easy_read END,
    CASE WHEN latest.id IS NULL THEN FALSE ELSE p.bsl END,
    CASE WHEN latest.id IS NULL THEN FALSE ELSE p.lives_alone END,
    CASE WHEN latest.id IS NULL THEN NULL ELSE p.carer_name END,
    CASE WHEN latest.id IS NULL THEN NULL ELSE p.carer_relationship END,
    CASE WHEN latest.id IS NULL THEN NULL ELSE p.carer_contact END,
    CASE WHEN latest.id IS NULL THEN FALSE ELSE p.carer_wants_assessment END,
    CASE WHEN latest.id IS NULL THEN NULL ELSE p.gp_practice_code END,
    COALESCE(r.submitted_at, r.created_at)
FROM referral r
JOIN person p ON p.id = r.person_id
LEFT JOIN referral latest ON latest.id = r.id AND latest.id = (SELECT MAX(l.id) FROM referral l WHERE l.person_id = r.person_id);

-- A provider under amber caution takes a placement only on a manager's approval, after a risk discussion. The
-- coordinator (or the bed bureau) holding the referral asks, for one referral and one service (service_id NULL: the
-- provider's beds); a signed-in manager approves or refuses, and who, when and what was agreed are kept. A placement
-- records the approval it went ahead on, and an approval makes one placement. placement.caution_approval, the text a
-- coordinator used to type, stays for placements made before.
CREATE TABLE caution_approval (
    id                      {{id}},
    referral_id             BIGINT NOT NULL REFERENCES referral (id),
    provider_id             BIGINT NOT NULL REFERENCES organisation (id),
    service_id              BIGINT NULL REFERENCES service (id),
    status                  TEXT NOT NULL CHECK (status IN ('requested', 'approved', 'refused')),
    reason                  TEXT NOT NULL,
    requested_by_user_id    BIGINT NOT NULL REFERENCES staff_user (id),
    requested_by_name       TEXT NOT NULL,
    requested_at            TIMESTAMPTZ NOT NULL,
    decided_by_user_id      BIGINT NULL REFERENCES staff_user (id),
    decided_by_name         TEXT NULL,
    decided_at              TIMESTAMPTZ NULL,
    decision_note           TEXT NULL,
    CHECK ((status = 'requested') = (decided_at IS NULL)),
    CHECK ((decided_at IS NULL) = (decided_by_user_id IS NULL)),
    -- Nobody decides what they asked for.
    CHECK (decided_by_user_id IS NULL OR decided_by_user_id <> requested_by_user_id)
);
-- One open question per referral, provider and service at a time.
CREATE UNIQUE INDEX ux_caution_approval_asked ON caution_approval (referral_id, provider_id, COALESCE(service_id, 0)) WHERE status = 'requested';
CREATE INDEX ix_caution_approval_referral ON caution_approval (referral_id);
CREATE INDEX ix_caution_approval_status ON caution_approval (status, requested_at);
ALTER TABLE placement ADD COLUMN caution_approval_id BIGINT NULL REFERENCES caution_approval (id);
