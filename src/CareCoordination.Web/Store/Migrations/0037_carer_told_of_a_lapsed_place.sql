-- A carer told that a place had been agreed is told too when it is no longer held (a bed reservation nobody took up in
-- time): without it the family still expects the person at a place that has gone back to the board. A new kind of
-- carer message; the kind's CHECK cannot be altered in place on SQLite, so the table is made again with the same rows.
{{lock_for_copy:carer_message}}

CREATE TABLE carer_message_0037 (
    id              {{id}},
    referral_id     BIGINT NOT NULL REFERENCES referral (id),
    organisation_id BIGINT NOT NULL REFERENCES organisation (id),
    kind            TEXT NOT NULL CHECK (kind IN ('accepted', 'declined', 'closed', 'started', 'place-no-longer-held')),
    place           TEXT NULL,              -- the service or site, for accepted, started and a place no longer held
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

INSERT INTO carer_message_0037 (id, referral_id, organisation_id, kind, place, on_date, status, attempts, last_error, next_attempt_at,
    claimed_by, claimed_until, sent_to, subject, body, created_at, sent_at, updated_at)
SELECT id, referral_id, organisation_id, kind, place, on_date, status, attempts, last_error, next_attempt_at,
    claimed_by, claimed_until, sent_to, subject, body, created_at, sent_at, updated_at
FROM carer_message ORDER BY id;

DROP TABLE carer_message;

ALTER TABLE carer_message_0037 RENAME TO carer_message;

{{identity_after_copy:carer_message}}

CREATE INDEX ix_carer_message_referral ON carer_message (referral_id);
CREATE INDEX ix_carer_message_due ON carer_message (status, next_attempt_at);
