-- A person registered by an organisation (FHIR create of a Patient) before, or without, a referral: that organisation's
-- own record of them, as it sent it, exactly as referral_person keeps what each referral said. A referrer or partner
-- reads a person as the latest of what its own organisation's referrals and registrations said (FHIR Patient read,
-- search, vread and _history), and a referral that names the person by reference or NHS number starts from it.
-- A registration is its organisation's first word on the person (one per organisation and person: a second is refused
-- or answered with the first), so its person_version is always 1: the version of what that organisation reads, which
-- says nothing of what others said. The organisation's referrals after it carry the whole record's later versions.
CREATE TABLE person_registration (
    id                      {{id}},
    organisation_id         BIGINT NOT NULL REFERENCES organisation (id),
    person_id               BIGINT NOT NULL REFERENCES person (id),
    person_version          INTEGER NOT NULL,
    partner_client_id       BIGINT NULL REFERENCES partner_client (id),
    registered_by_user_id   BIGINT NULL REFERENCES staff_user (id),
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
    recorded_at             TIMESTAMPTZ NOT NULL,
    UNIQUE (organisation_id, person_id)
);
CREATE INDEX ix_person_registration_person ON person_registration (person_id);
