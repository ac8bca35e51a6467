-- A referral's first counted decision and first start, kept on the referral (issue 13): the year reports (waiting lists,
-- equity, the scorecard, the decision pack) read them from the referral by an index range instead of each referral's
-- triage tasks and placements (a year at 1M referrals: over 2 s). Kept by every write that closes a task or starts a
-- placement (Referrals/ReferralFirsts.KeepAsync). Filled in here for the rows before it by the same rule, which must
-- stay ReferralFirsts.CountedDecision's: accepted (completed with an "accepted..." decision) or declined (rejected), in either
-- queue; the earliest, of equal times the task made first. The first start is the earliest started_at of any placement.
ALTER TABLE referral ADD COLUMN first_decided_at TIMESTAMPTZ NULL;
ALTER TABLE referral ADD COLUMN first_decision TEXT NULL;
ALTER TABLE referral ADD COLUMN first_decision_queue TEXT NULL;
ALTER TABLE referral ADD COLUMN first_started_at TIMESTAMPTZ NULL;

-- One pass over the tasks and one over the placements (UPDATE ... FROM), not a subquery per referral (see 0018).
UPDATE referral SET first_decided_at = d.completed_at, first_decision = d.decision, first_decision_queue = d.queue
FROM (SELECT t.referral_id, t.completed_at, t.decision, t.queue,
             ROW_NUMBER() OVER (PARTITION BY t.referral_id ORDER BY t.completed_at, t.id) AS n
      FROM triage_task t
      WHERE t.completed_at IS NOT NULL AND ((t.status = 'completed' AND t.decision LIKE 'accepted%') OR t.status = 'rejected')) d
WHERE d.n = 1 AND d.referral_id = referral.id;

UPDATE referral SET first_started_at = s.first_at
FROM (SELECT p.referral_id, MIN(p.started_at) AS first_at FROM placement p WHERE p.started_at IS NOT NULL GROUP BY p.referral_id) s
WHERE s.referral_id = referral.id;

-- The waiting lists reach the referrals decided or started since their period began by these, with the id the parts split on.
CREATE INDEX ix_referral_first_decided ON referral (first_decided_at, id);
CREATE INDEX ix_referral_first_started ON referral (first_started_at, id);
