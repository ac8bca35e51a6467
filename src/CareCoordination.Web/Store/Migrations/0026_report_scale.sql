-- The managers' reports over a large store (issue 13: each within 2 s over 1,000,000 referrals), each index from a query
-- plan on the bench's 1M-referral store (docs/performance.md, "Reports at 1M referrals").

-- Waiting lists: the referrals touched since the period began are reached by when they last changed, not by reading every
-- referral ever sent.
CREATE INDEX ix_referral_updated ON referral (updated_at);

-- Client-level events: the placements running in the period, the active ones by their start and the ended ones by their end,
-- rather than every placement started before the period ended.
CREATE INDEX ix_placement_active ON placement (started_at) WHERE status = 'active';
CREATE INDEX ix_placement_ended_by_end ON placement (ended_at) WHERE status = 'ended';

-- The decision pack's placements made in the quarter use ix_placement_created (0025, made for the pressure forecast).

-- The discharge sitrep: the delay reasons that ended after the period's last day (the open ones have their own index).
CREATE INDEX ix_discharge_delay_to ON discharge_delay (to_at);
