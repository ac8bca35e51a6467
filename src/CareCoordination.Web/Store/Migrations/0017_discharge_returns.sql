-- What the national discharge returns need, recorded as it happens (issue 13), so no manager counts by hand.
-- The discharge ready date (DRD) is the referral's medically_optimised_on: the day the person no longer meets
-- the criteria to reside.

-- The actual discharge from hospital, and where it was recorded from: the referrer's page, the placement
-- starting, or a partner's FHIR update.
ALTER TABLE referral ADD COLUMN discharged_at TIMESTAMPTZ NULL;
ALTER TABLE referral ADD COLUMN discharge_recorded_from TEXT NULL
    CHECK (discharge_recorded_from IN ('referrer', 'placement', 'partner', 'coordination'));

-- The discharge pathway intended at triage (the coordination centre's decision), and the one the person actually
-- left on, with the destination in the sitrep's subtypes and whether the care there is new, restarted, or a return
-- to the same level as before admission.
ALTER TABLE referral ADD COLUMN pathway_intended TEXT NULL CHECK (pathway_intended IN ('0', '1', '2', '3'));
ALTER TABLE referral ADD COLUMN pathway_at_discharge TEXT NULL CHECK (pathway_at_discharge IN ('0', '1', '2', '3'));
ALTER TABLE referral ADD COLUMN destination_at_discharge TEXT NULL CHECK (destination_at_discharge IN ('home',
    'temporary-accommodation', 'hospice-at-home', 'care-home', 'community-hospital', 'designated-setting'));
ALTER TABLE referral ADD COLUMN destination_care_level TEXT NULL
    CHECK (destination_care_level IN ('new', 'restart', 'return-to-same-level'));
CREATE INDEX ix_referral_discharged_at ON referral (discharged_at) WHERE discharged_at IS NOT NULL;
CREATE INDEX ix_referral_medically_optimised_on ON referral (medically_optimised_on) WHERE medically_optimised_on IS NOT NULL;

-- National code lists as dated, versioned data loaded from files in the repository: next year's list is a new file,
-- not a code change. A version applies to what happened from valid_from up to, not including, valid_to.
CREATE TABLE code_list (
    name            TEXT NOT NULL,          -- e.g. 'discharge-delay-reason'
    version         TEXT NOT NULL,          -- e.g. '2024-05'
    title           TEXT NOT NULL,
    valid_from      DATE NOT NULL,
    valid_to        DATE NULL,
    source_file     TEXT NOT NULL,          -- the file it was loaded from, relative to the repository
    content_hash    TEXT NOT NULL,          -- of the file, so a changed file is noticed rather than silently reloaded
    loaded_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE code_list_item (
    list_name       TEXT NOT NULL,
    list_version    TEXT NOT NULL,
    code            TEXT NOT NULL,
    family          TEXT NOT NULL,          -- e.g. 'capacity'; the 2024 list's five families
    family_label    TEXT NOT NULL,
    label           TEXT NOT NULL,
    sort_order      INTEGER NOT NULL,
    PRIMARY KEY (list_name, list_version, code),
    FOREIGN KEY (list_name, list_version) REFERENCES code_list (name, version)
);

-- Why a person past their DRD is still waiting, with history: each reason holds from from_at until to_at (open while
-- it still holds). The code is kept with the list version it was chosen from, so it reports under that list's labels.
CREATE TABLE discharge_delay (
    id                  {{id}},
    referral_id         BIGINT NOT NULL REFERENCES referral (id),
    list_name           TEXT NOT NULL,
    list_version        TEXT NOT NULL,
    code                TEXT NOT NULL,
    from_at             TIMESTAMPTZ NOT NULL,
    to_at               TIMESTAMPTZ NULL,
    note                TEXT NULL,
    recorded_by_user_id BIGINT NULL REFERENCES staff_user (id),
    recorded_by_name    TEXT NOT NULL,
    recorded_at         TIMESTAMPTZ NOT NULL,
    FOREIGN KEY (list_name, list_version, code) REFERENCES code_list_item (list_name, list_version, code),
    CHECK (to_at IS NULL OR to_at >= from_at)
);
CREATE INDEX ix_discharge_delay_referral ON discharge_delay (referral_id, from_at);
-- One reason holds at a time for a person: recording a new one closes the last.
CREATE UNIQUE INDEX ux_discharge_delay_open ON discharge_delay (referral_id) WHERE to_at IS NULL;
