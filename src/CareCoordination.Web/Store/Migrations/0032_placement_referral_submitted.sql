-- The capacity board's fortnight gives each placement started in it the time from its referral's submission: at 1M
-- referrals that joined about 11,400 placements to their referrals, one lookup each in the largest table (25-31 ms of the
-- fortnight's p95, over issue 14's 50 ms). A referral's submission time never changes once the referral is sent, and a
-- placement is only made for a sent referral, so each placement keeps it: the commands that make a placement (ReserveBed,
-- AcceptIntoService) and the demo seed write it, this fills it in for the placements before it, and the fortnight reads
-- its placements from one index.
ALTER TABLE placement ADD COLUMN referral_submitted_at TIMESTAMPTZ NULL;

UPDATE placement SET referral_submitted_at = r.submitted_at
FROM referral r
WHERE r.id = placement.referral_id;

CREATE INDEX ix_placement_started_submitted ON placement (started_at, referral_submitted_at, referral_id);
