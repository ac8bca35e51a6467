-- A draft is a form in progress, not yet a referral: it may lack even the person's NHS number, so it
-- cannot point at a person row. The form is kept whole as JSON and becomes a referral on submission.
CREATE TABLE referral_draft (
    id              {{id}},
    organisation_id BIGINT NOT NULL REFERENCES organisation (id),
    author_user_id  BIGINT NULL REFERENCES staff_user (id),
    author_name     TEXT NOT NULL,
    person_label    TEXT NOT NULL,   -- what the author can recognise it by in their list
    form            TEXT NOT NULL,   -- JSON of the referral form as last saved
    version         INTEGER NOT NULL DEFAULT 1,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_referral_draft_organisation ON referral_draft (organisation_id);

-- Which locality a postcode district belongs to: the coordination centres and bed matching work by locality.
CREATE TABLE postcode_district (
    district    TEXT PRIMARY KEY,
    locality    TEXT NOT NULL
);

-- "Carer or next of kin" is only useful with who they are to the person.
ALTER TABLE person ADD COLUMN carer_relationship TEXT NULL;
