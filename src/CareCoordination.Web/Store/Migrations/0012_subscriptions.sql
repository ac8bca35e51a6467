-- Topic-based subscriptions (HL7 FHIR Subscriptions R5 Backport, R4): a partner client asks to be told of its
-- own organisation's referrals' Task changes at its rest-hook endpoint instead of polling.
-- Event numbers are per subscription and kept here, so they survive a restart, $events can replay them, and
-- any node can carry on the numbering. One node delivers a subscription at a time: the one holding its lease.
CREATE TABLE fhir_subscription (
    id                  {{id}},
    client_id           TEXT NOT NULL,                              -- the partner client that made it: only it sees it
    organisation_id     BIGINT NOT NULL REFERENCES organisation (id),
    status              TEXT NOT NULL CHECK (status IN ('requested', 'active', 'error', 'off')),
    topic               TEXT NOT NULL,
    filter_criteria     TEXT NULL,                                  -- as sent, e.g. Task?status=accepted
    endpoint            TEXT NOT NULL,
    server_base         TEXT NOT NULL,                              -- this server's /fhir as the partner reached it: notifications name resources there
    channel_header      TEXT NULL,                                  -- sent with every notification (e.g. the receiver's own bearer token)
    payload_type        TEXT NOT NULL,                              -- channel.payload, a MIME type
    content             TEXT NOT NULL CHECK (content IN ('empty', 'id-only', 'full-resource')),
    heartbeat_seconds   INTEGER NULL,
    timeout_seconds     INTEGER NOT NULL,
    reason              TEXT NULL,
    version             INTEGER NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    -- Numbering: changes up to this sequence number have been looked at; events numbered so far.
    changes_through     BIGINT NOT NULL,
    events_numbered     BIGINT NOT NULL DEFAULT 0,
    -- Delivery: the last event the endpoint took (2xx), the handshake, failures in a row and when to try again.
    delivered_through   BIGINT NOT NULL DEFAULT 0,
    handshake_at        TIMESTAMPTZ NULL,
    last_sent_at        TIMESTAMPTZ NULL,
    failures            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     TIMESTAMPTZ NULL,
    last_error          TEXT NULL,
    -- The node delivering it, until when: another node takes over only once the lease has run out.
    lease_owner         TEXT NULL,
    lease_until         TIMESTAMPTZ NULL
);
CREATE INDEX ix_fhir_subscription_client ON fhir_subscription (client_id);

CREATE TABLE fhir_subscription_event (
    subscription_id     BIGINT NOT NULL REFERENCES fhir_subscription (id) ON DELETE CASCADE,
    event_number        BIGINT NOT NULL,
    change_seq          BIGINT NOT NULL,
    task_id             BIGINT NOT NULL,
    at                  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (subscription_id, event_number)
);
