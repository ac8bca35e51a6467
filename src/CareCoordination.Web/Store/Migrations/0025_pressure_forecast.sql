-- The pressure forecast reads the last weeks' acceptances (placements by when they were made) on every board load:
-- an index keeps that a range read on a store with years of history.
CREATE INDEX ix_placement_created ON placement (created_at);
