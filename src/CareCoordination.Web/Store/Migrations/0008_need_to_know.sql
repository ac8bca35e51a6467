-- A bed's closure: the reason is a code, which the capacity board and partners see; the detail is free text,
-- which may name a patient, and stays with the bed for the bed bureau. Closures made before this kept both
-- in closed_reason as "code: detail": they are split here, and a reason that is not a code becomes "other".
ALTER TABLE bed ADD COLUMN closed_detail TEXT NULL;
UPDATE bed SET closed_detail = substr(closed_reason, length('infection: ') + 1), closed_reason = 'infection' WHERE closed_reason LIKE 'infection: %';
UPDATE bed SET closed_detail = substr(closed_reason, length('staffing: ') + 1), closed_reason = 'staffing' WHERE closed_reason LIKE 'staffing: %';
UPDATE bed SET closed_detail = substr(closed_reason, length('maintenance: ') + 1), closed_reason = 'maintenance' WHERE closed_reason LIKE 'maintenance: %';
UPDATE bed SET closed_detail = substr(closed_reason, length('other: ') + 1), closed_reason = 'other' WHERE closed_reason LIKE 'other: %';
UPDATE bed SET closed_detail = closed_reason, closed_reason = 'other' WHERE closed_reason NOT IN ('infection', 'staffing', 'maintenance', 'other');
