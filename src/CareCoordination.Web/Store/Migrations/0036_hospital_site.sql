-- The hospital sites of a referring trust, and the site a referral's person is in (issue 13): the discharge sitrep is
-- returned by trust and site. A site is known by its ODS site code, as partners' messages name it.
CREATE TABLE hospital_site (
    id              {{id}},
    organisation_id BIGINT NOT NULL REFERENCES organisation (id),
    code            TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    active          BOOLEAN NOT NULL DEFAULT TRUE,
    UNIQUE (organisation_id, name)
);

ALTER TABLE referral ADD COLUMN hospital_site_id BIGINT NULL REFERENCES hospital_site (id);
