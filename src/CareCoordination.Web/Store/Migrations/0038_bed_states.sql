-- Each bed's state over time, so that the Capacity Tracker view can say how the beds stood at the end of a past day
-- (issue 13: every report filters by period). One row each time a bed is added, moves state or changes type; a
-- confirmation that changes nothing writes none (the bureau confirms every board several times a day). Keyed by the bed
-- and the time, so "the state in force at T" is one seek per bed.
CREATE TABLE bed_state (
    bed_id   BIGINT NOT NULL REFERENCES bed (id),
    from_at  TIMESTAMPTZ NOT NULL,
    version  INTEGER NOT NULL,  -- the bed's version the state came with: of two moves in one instant, the later
    status   TEXT NOT NULL CHECK (status IN ('available', 'reserved', 'occupied', 'cleaning', 'closed')),
    bed_type TEXT NOT NULL CHECK (bed_type IN ('rehabilitation', 'step-down-nursing', 'residential', 'nursing', 'dementia')),
    PRIMARY KEY (bed_id, from_at, version)
){{without_rowid}};

-- The beds already here: each has held its state at least since it was last confirmed (every move confirms a bed), and
-- nothing earlier is known, so their record starts there.
INSERT INTO bed_state (bed_id, from_at, version, status, bed_type)
SELECT id, confirmed_at, version, status, bed_type FROM bed;
