-- Carers and families kept informed (issue 16, point 9). With the person's agreement, recorded on the referral form,
-- their named carer is e-mailed when a decision is made and when support starts. The referral's carer as the form
-- named them, with the agreement, who recorded it and when: one row per referral that named a carer.
CREATE TABLE referral_carer (
    referral_id     BIGINT NOT NULL PRIMARY KEY REFERENCES referral (id),
    name            TEXT NOT NULL,
    relationship    TEXT NULL,
    email           TEXT NULL,
    agreed          BOOLEAN NULL,           -- the person agrees the carer is told: true, false, or NULL (not asked)
    recorded_by     TEXT NULL,              -- who recorded the answer (the referrer, or the partner system that sent it)
    recorded_at     TIMESTAMPTZ NULL
);

-- The outbox: a message is written in the same transaction as the decision or start it tells of, and a background
-- sender on any node delivers it. A node claims a message (claimed_by, claimed_until) before it sends, so two nodes
-- never send one at once; a claim that runs out (a node died mid-send) lets another node try again.
-- queued: waiting to be sent (again, from next_attempt_at); sent; failed: given up (last_error says why);
-- not-sent: never tried, and why (e-mail not configured, no agreement).
CREATE TABLE carer_message (
    id              {{id}},
    referral_id     BIGINT NOT NULL REFERENCES referral (id),
    organisation_id BIGINT NOT NULL REFERENCES organisation (id),
    kind            TEXT NOT NULL CHECK (kind IN ('accepted', 'declined', 'closed', 'started')),
    place           TEXT NULL,              -- the service or site, for accepted and started
    on_date         DATE NULL,              -- the planned start, or the day support started
    status          TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'failed', 'not-sent')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    claimed_by      TEXT NULL,
    claimed_until   TIMESTAMPTZ NULL,
    sent_to         TEXT NULL,              -- the address it went to, and exactly what it said, once sent
    subject         TEXT NULL,
    body            TEXT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    sent_at         TIMESTAMPTZ NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_carer_message_referral ON carer_message (referral_id);
CREATE INDEX ix_carer_message_due ON carer_message (status, next_attempt_at);
