-- The capacity board's fortnight asks which beds were occupied at the end of each day: every bed placement started and
-- not ended before the fortnight began. Through ix_placement_ended that read every placement still running, services
-- included (43,500 rows at 1M referrals, of which 4,000 are beds: 85 ms, and the fortnight's p95 over 50 ms, issue 14).
-- Only bed placements are in this index, and it holds all the read needs, so the read is two short ranges of it.
CREATE INDEX ix_placement_bed_stays ON placement (ended_at, bed_id, started_at) WHERE bed_id IS NOT NULL AND started_at IS NOT NULL;
