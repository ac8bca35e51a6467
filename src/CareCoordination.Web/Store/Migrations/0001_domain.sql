-- The whole domain of DESIGN.md. Portable SQL: both engines accept these type names and partial
-- indexes; the one dialect difference, the identity column, is written {{id}} and filled in by Migrator.
-- Times are UTC (TIMESTAMPTZ; ISO text in SQLite). Business rules the database can hold live here,
-- not only in code.

CREATE TABLE organisation (
    id              {{id}},
    code            TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('acute-trust', 'community-trust', 'community-hospital',
                        'gp-practice', 'coordination-centre', 'bed-bureau', 'council', 'provider')),
    locality        TEXT NULL,
    cqc_rating      TEXT NULL CHECK (cqc_rating IN ('outstanding', 'good', 'requires-improvement', 'inadequate', 'not-rated')),
    caution         TEXT NOT NULL DEFAULT 'none' CHECK (caution IN ('none', 'amber', 'red')),
    caution_note    TEXT NULL,
    active          BOOLEAN NOT NULL DEFAULT TRUE,
    created_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE staff_user (
    id              {{id}},
    username        TEXT NOT NULL UNIQUE,
    display_name    TEXT NOT NULL,
    email           TEXT NULL UNIQUE,
    password_hash   TEXT NULL,          -- NULL for users who only sign in through OpenID Connect
    role            TEXT NOT NULL CHECK (role IN ('referrer', 'coordinator', 'bed-bureau', 'manager', 'admin')),
    organisation_id BIGINT NOT NULL REFERENCES organisation (id),
    active          BOOLEAN NOT NULL DEFAULT TRUE,
    created_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE partner_client (
    id              {{id}},
    client_id       TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    organisation_id BIGINT NOT NULL REFERENCES organisation (id),
    secret_hash     TEXT NOT NULL,
    scopes          TEXT NOT NULL,      -- space-separated SMART v2 system scopes the client may ask for
    active          BOOLEAN NOT NULL DEFAULT TRUE,
    created_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE person (
    id                      {{id}},
    nhs_number              TEXT NOT NULL UNIQUE CHECK (length(nhs_number) = 10),
    given_name              TEXT NOT NULL,
    family_name             TEXT NOT NULL,
    date_of_birth           DATE NOT NULL,
    sex                     TEXT NOT NULL CHECK (sex IN ('female', 'male', 'other', 'unknown')),
    address_line            TEXT NULL,
    postcode                TEXT NULL,
    locality                TEXT NULL,
    ethnicity               TEXT NULL,  -- NHS data dictionary ethnic category code; 'Z' = not stated
    interpreter_language    TEXT NULL,
    easy_read               BOOLEAN NOT NULL DEFAULT FALSE,
    bsl                     BOOLEAN NOT NULL DEFAULT FALSE,
    lives_alone             BOOLEAN NOT NULL DEFAULT FALSE,
    carer_name              TEXT NULL,
    carer_contact           TEXT NULL,
    carer_wants_assessment  BOOLEAN NOT NULL DEFAULT FALSE,
    gp_practice_code        TEXT NULL,
    version                 INTEGER NOT NULL DEFAULT 1,
    created_at              TIMESTAMPTZ NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL
);

CREATE TABLE service (
    id                  {{id}},
    organisation_id     BIGINT NOT NULL REFERENCES organisation (id),  -- the provider
    name                TEXT NOT NULL,
    kind                TEXT NOT NULL CHECK (kind IN ('reablement', 'home-care', 'therapy', 'voluntary-sector',
                            'community-hospital', 'care-home')),
    locality            TEXT NULL,
    capacity_unit       TEXT NOT NULL CHECK (capacity_unit IN ('slots', 'hours')),
    capacity_per_day    INTEGER NOT NULL CHECK (capacity_per_day >= 0),
    available_today     INTEGER NOT NULL CHECK (available_today >= 0),
    confirmed_at        TIMESTAMPTZ NOT NULL,
    active              BOOLEAN NOT NULL DEFAULT TRUE,
    version             INTEGER NOT NULL DEFAULT 1,
    UNIQUE (organisation_id, name)
);

CREATE TABLE site (
    id              {{id}},
    organisation_id BIGINT NOT NULL REFERENCES organisation (id),
    name            TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL CHECK (kind IN ('community-hospital', 'care-home', 'step-down-unit')),
    locality        TEXT NOT NULL,
    postcode        TEXT NOT NULL,
    active          BOOLEAN NOT NULL DEFAULT TRUE
);

CREATE TABLE ward (
    id              {{id}},
    site_id         BIGINT NOT NULL REFERENCES site (id),
    name            TEXT NOT NULL,
    UNIQUE (site_id, name)
);

CREATE TABLE bed (
    id              {{id}},
    ward_id         BIGINT NOT NULL REFERENCES ward (id),
    label           TEXT NOT NULL,
    bed_type        TEXT NOT NULL CHECK (bed_type IN ('rehabilitation', 'step-down-nursing', 'residential', 'nursing', 'dementia')),
    allowed_sex     TEXT NOT NULL CHECK (allowed_sex IN ('any', 'female', 'male')),
    status          TEXT NOT NULL CHECK (status IN ('available', 'reserved', 'occupied', 'closed', 'cleaning')),
    closed_reason   TEXT NULL,
    confirmed_at    TIMESTAMPTZ NOT NULL,
    version         INTEGER NOT NULL DEFAULT 1,
    UNIQUE (ward_id, label),
    CHECK ((status = 'closed') = (closed_reason IS NOT NULL))
);

CREATE TABLE referral (
    id                          {{id}},
    person_id                   BIGINT NOT NULL REFERENCES person (id),
    organisation_id             BIGINT NOT NULL REFERENCES organisation (id),  -- the referring organisation
    referrer_user_id            BIGINT NULL REFERENCES staff_user (id),
    partner_client_id           BIGINT NULL REFERENCES partner_client (id),
    idempotency_key             TEXT NULL,
    status                      TEXT NOT NULL CHECK (status IN ('draft', 'submitted', 'in-triage', 'awaiting-information',
                                    'accepted', 'redirected', 'placed', 'completed', 'declined', 'cancelled')),
    source                      TEXT NOT NULL CHECK (source IN ('acute-hospital', 'community-hospital', 'gp', 'community-step-up')),
    pathway                     TEXT NOT NULL CHECK (pathway IN ('0', '1', '2', '3', 'step-up')),
    urgency                     TEXT NOT NULL CHECK (urgency IN ('routine', 'urgent', 'immediate')),
    ward                        TEXT NULL,
    bed_label                   TEXT NULL,
    medically_optimised_on      DATE NULL,
    expected_discharge_on       DATE NULL,
    needs                       TEXT NOT NULL DEFAULT '[]',   -- JSON: Care Act outcomes and other needs with detail
    strengths                   TEXT NULL,
    goals                       TEXT NULL,
    safeguarding_concern        BOOLEAN NOT NULL DEFAULT FALSE,
    infection_status            TEXT NULL,
    falls_risk                  BOOLEAN NOT NULL DEFAULT FALSE,
    self_neglect                BOOLEAN NOT NULL DEFAULT FALSE,
    cognition_concern           BOOLEAN NOT NULL DEFAULT FALSE,
    mental_capacity_concern     BOOLEAN NOT NULL DEFAULT FALSE,
    best_interests_decision     TEXT NULL,
    self_funding                BOOLEAN NOT NULL DEFAULT FALSE,
    consent_to_share            BOOLEAN NOT NULL DEFAULT FALSE,
    consent_given_by            TEXT NULL,
    lawful_reason               TEXT NULL,
    person_wishes               TEXT NULL,
    family_expectations         TEXT NULL,
    staff_expectations          TEXT NULL,
    summary                     TEXT NULL,
    early_request               BOOLEAN NOT NULL DEFAULT FALSE,  -- sent before the person was medically optimised
    duplicate_of_referral_id    BIGINT NULL REFERENCES referral (id),
    duplicate_answer            TEXT NULL CHECK (duplicate_answer IN ('new-need', 'update')),
    outcome_reason              TEXT NULL,    -- decline or cancel reason
    version                     INTEGER NOT NULL DEFAULT 1,
    created_at                  TIMESTAMPTZ NOT NULL,
    submitted_at                TIMESTAMPTZ NULL,
    updated_at                  TIMESTAMPTZ NOT NULL,
    CHECK (status = 'draft' OR consent_to_share OR lawful_reason IS NOT NULL)
);
CREATE UNIQUE INDEX ux_referral_idempotency ON referral (organisation_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX ix_referral_person ON referral (person_id);
CREATE INDEX ix_referral_organisation_status ON referral (organisation_id, status);

CREATE TABLE referral_note (
    id              {{id}},
    referral_id     BIGINT NOT NULL REFERENCES referral (id),
    author_user_id  BIGINT NULL REFERENCES staff_user (id),
    author_name     TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('note', 'information-request', 'information-response')),
    text            TEXT NOT NULL,
    at              TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_referral_note_referral ON referral_note (referral_id);

-- The coordination work on a referral; status follows the FHIR Task state machine.
CREATE TABLE triage_task (
    id              {{id}},
    referral_id     BIGINT NOT NULL REFERENCES referral (id),
    queue           TEXT NOT NULL CHECK (queue IN ('coordination', 'bed-bureau')),
    status          TEXT NOT NULL CHECK (status IN ('requested', 'received', 'accepted', 'rejected', 'ready',
                        'cancelled', 'in-progress', 'on-hold', 'failed', 'completed', 'entered-in-error')),
    business_status TEXT NULL,
    owner_user_id   BIGINT NULL REFERENCES staff_user (id),
    taken_at        TIMESTAMPTZ NULL,
    decision        TEXT NULL,
    reason          TEXT NULL,
    version         INTEGER NOT NULL DEFAULT 1,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    completed_at    TIMESTAMPTZ NULL
);
-- One live task per referral at a time: a redirect closes one task and opens the next.
CREATE UNIQUE INDEX ux_triage_task_open ON triage_task (referral_id)
    WHERE status IN ('requested', 'received', 'accepted', 'ready', 'in-progress', 'on-hold');
CREATE INDEX ix_triage_task_queue_status ON triage_task (queue, status);

CREATE TABLE placement (
    id              {{id}},
    referral_id     BIGINT NOT NULL REFERENCES referral (id),
    service_id      BIGINT NULL REFERENCES service (id),
    bed_id          BIGINT NULL REFERENCES bed (id),
    status          TEXT NOT NULL CHECK (status IN ('reserved', 'active', 'ended', 'cancelled')),
    start_on        DATE NOT NULL,
    reserved_until  TIMESTAMPTZ NULL,
    started_at      TIMESTAMPTZ NULL,
    ended_at        TIMESTAMPTZ NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    CHECK ((service_id IS NULL) <> (bed_id IS NULL))
);
-- A bed cannot hold two live placements, and a referral has at most one live placement.
CREATE UNIQUE INDEX ux_placement_bed_live ON placement (bed_id) WHERE bed_id IS NOT NULL AND status IN ('reserved', 'active');
CREATE UNIQUE INDEX ux_placement_referral_live ON placement (referral_id) WHERE status IN ('reserved', 'active');

-- Append-only record of every state change; seq is the global order that live screens resync by.
CREATE TABLE change (
    seq             {{id}},
    at              TIMESTAMPTZ NOT NULL,
    kind            TEXT NOT NULL,
    entity_type     TEXT NOT NULL,
    entity_id       BIGINT NOT NULL,
    organisation_id BIGINT NULL,   -- the referring organisation, for referral changes
    actor           TEXT NULL,
    data            TEXT NULL      -- JSON detail of the change
);
CREATE INDEX ix_change_entity ON change (entity_type, entity_id);

-- Who read or changed what; every read of a person's record lands here.
CREATE TABLE audit_event (
    id              {{id}},
    at              TIMESTAMPTZ NOT NULL,
    actor_kind      TEXT NOT NULL CHECK (actor_kind IN ('staff', 'partner', 'system', 'anonymous')),
    actor_id        TEXT NULL,
    actor_name      TEXT NULL,
    organisation_id BIGINT NULL,
    action          TEXT NOT NULL,
    outcome         TEXT NOT NULL CHECK (outcome IN ('success', 'denied', 'invalid', 'failed')),
    entity_type     TEXT NULL,
    entity_id       BIGINT NULL,
    person_id       BIGINT NULL,
    detail          TEXT NULL
);
CREATE INDEX ix_audit_person ON audit_event (person_id);

CREATE TABLE app_setting (
    key     TEXT PRIMARY KEY,
    value   TEXT NOT NULL
);
