-- Downtime (issue 16, point 8): a paper referral entered after an outage keeps the time it was really made in
-- created_at and submitted_at, so the queue's clock, its order and every report count it from then. Who typed it
-- and when are kept beside it. entered_at is NULL for a referral sent through the system, which was entered when
-- it was sent.
ALTER TABLE referral ADD COLUMN entered_from_paper BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE referral ADD COLUMN entered_at TIMESTAMPTZ NULL;
ALTER TABLE referral ADD COLUMN entered_by_user_id BIGINT NULL REFERENCES staff_user (id);
