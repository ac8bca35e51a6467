-- The CLD download's first run (its events that started before the period: requests sent before it and decided in it,
-- services started before it and still running into it) is found by the period's decisions and ends, then filtered by
-- when each was sent or started. With that time in the index, a row the filter drops is never read: a year's first run read
-- every decision and every end of the year (530,000 rows on the 1M store) to keep about 45,000 (issue 13).
DROP INDEX ix_referral_first_decided;
-- Only decided referrals: a referral is sent undecided, so its entry was written with it for nothing (issue 14, growth).
CREATE INDEX ix_referral_first_decided ON referral (first_decided_at, submitted_at, id) WHERE first_decided_at IS NOT NULL;

DROP INDEX ix_placement_ended_by_end;
CREATE INDEX ix_placement_ended_by_end ON placement (ended_at, started_at) WHERE status = 'ended';

-- The same for the other times a referral is sent without: when it was first triaged and its support first started. Every
-- query that uses these indexes asks for a range of those times, never for the ones not yet set (issue 14, growth: about
-- 55 B a referral sent on SQLite, 60 on PostgreSQL).
DROP INDEX ix_referral_triaged;
CREATE INDEX ix_referral_triaged ON referral (triaged_at, submitted_at) WHERE triaged_at IS NOT NULL;
DROP INDEX ix_referral_first_started;
CREATE INDEX ix_referral_first_started ON referral (first_started_at, id) WHERE first_started_at IS NOT NULL;
