-- Staff sign-in through OpenID Connect is bound to the identity provider (its issuer) and the person's
-- subject there, never to a username or an email the provider reports: both of those can be changed or
-- reissued at the provider. An administrator links the pair to one account; the pair belongs to one account.
ALTER TABLE staff_user ADD COLUMN oidc_issuer TEXT NULL;
ALTER TABLE staff_user ADD COLUMN oidc_subject TEXT NULL;
ALTER TABLE staff_user ADD COLUMN oidc_linked_at TIMESTAMPTZ NULL;
ALTER TABLE staff_user ADD COLUMN oidc_linked_by BIGINT NULL REFERENCES staff_user (id);
CREATE UNIQUE INDEX ux_staff_user_oidc ON staff_user (oidc_issuer, oidc_subject);

-- The first sign-in of an identity nobody has linked, whose provider-verified email matches exactly one
-- active unlinked account, waits here for an administrator to approve (link) or refuse it.
CREATE TABLE sign_in_link_request (
    id              {{id}},
    issuer          TEXT NOT NULL,
    subject         TEXT NOT NULL,
    email           TEXT NOT NULL,
    name            TEXT NULL,          -- the name the identity provider gave, for the administrator to compare
    staff_user_id   BIGINT NOT NULL REFERENCES staff_user (id),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'refused')),
    requested_at    TIMESTAMPTZ NOT NULL,
    last_attempt_at TIMESTAMPTZ NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 1,
    decided_at      TIMESTAMPTZ NULL,
    decided_by      BIGINT NULL REFERENCES staff_user (id),
    decision_reason TEXT NULL
);
-- One open request per identity: a pending one is not asked twice, and a refused one stays refused
-- (sign-in keeps being turned away) until an administrator approves it after all.
CREATE UNIQUE INDEX ux_sign_in_link_request_open ON sign_in_link_request (issuer, subject) WHERE status IN ('pending', 'refused');
CREATE INDEX ix_sign_in_link_request_account ON sign_in_link_request (staff_user_id);
