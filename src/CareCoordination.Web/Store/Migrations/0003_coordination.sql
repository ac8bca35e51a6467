-- The coordination centre's working state on a triage task.

-- A coordinator may raise or lower a task's priority above the urgency the referrer gave; NULL keeps the
-- referral's own urgency. Every change of it is a change row with who and why.
ALTER TABLE triage_task ADD COLUMN priority TEXT NULL CHECK (priority IN ('routine', 'urgent', 'immediate'));

-- The triage clock pauses while the referrer is asked for information: when it stopped, and how long it
-- has stood still in earlier pauses. taken_at keeps the first take, for the "taken within" target.
ALTER TABLE triage_task ADD COLUMN on_hold_since TIMESTAMPTZ NULL;
ALTER TABLE triage_task ADD COLUMN paused_seconds INTEGER NOT NULL DEFAULT 0 CHECK (paused_seconds >= 0);

-- Accepting into a service that has no capacity left today needs a recorded reason.
ALTER TABLE placement ADD COLUMN capacity_override TEXT NULL;
ALTER TABLE placement ADD COLUMN hours_per_day INTEGER NULL CHECK (hours_per_day BETWEEN 1 AND 24);

-- Waiting well: a referral waiting past its target gets a task to contact the person or referrer, so
-- nobody waits unseen. One open re-contact per triage task at a time.
CREATE TABLE recontact (
    id              {{id}},
    triage_task_id  BIGINT NOT NULL REFERENCES triage_task (id),
    referral_id     BIGINT NOT NULL REFERENCES referral (id),
    reason          TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    done_at         TIMESTAMPTZ NULL,
    done_by_user_id BIGINT NULL REFERENCES staff_user (id),
    outcome         TEXT NULL,
    CHECK ((done_at IS NULL) = (outcome IS NULL))
);
CREATE UNIQUE INDEX ux_recontact_open ON recontact (triage_task_id) WHERE done_at IS NULL;
CREATE INDEX ix_recontact_referral ON recontact (referral_id);
