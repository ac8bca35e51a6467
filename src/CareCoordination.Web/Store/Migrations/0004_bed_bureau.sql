-- The bed bureau's working state.

-- A single room can take a person who must be isolated (an infection); a bay cannot.
ALTER TABLE bed ADD COLUMN single_room BOOLEAN NOT NULL DEFAULT FALSE;

-- A placement with an amber-cautioned provider needs a manager's approval after a risk discussion:
-- who approved and what was agreed are kept with the placement.
ALTER TABLE placement ADD COLUMN caution_approval TEXT NULL;

-- Unused reservations return their bed: the sweep finds them by expiry.
CREATE INDEX ix_placement_reserved_until ON placement (reserved_until) WHERE status = 'reserved';
