-- The day the person was admitted to hospital, as the referrer or the partner's message gives it (issue 13). The discharge
-- sitrep counts length of stay from it (7, 14, 21 days or more), as the national return does; where it is not recorded the
-- sitrep counts from the discharge ready date, the least the stay can have been.
ALTER TABLE referral ADD COLUMN admitted_on DATE NULL;
