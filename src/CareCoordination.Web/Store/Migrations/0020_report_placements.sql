-- The data quality scorecard (issue 13, report 7) asks of each referral of a period whether a placement of it started:
-- reached by the referral, not by reading every placement ever made.
CREATE INDEX ix_placement_referral_started ON placement (referral_id, started_at);
