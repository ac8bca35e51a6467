-- Issue 13 on PostgreSQL: a bulk read's people (audit_person, 0029) were checked against audit_event one by one. The
-- foreign key's trigger fires for each row, so a client-level events download naming 100,000 people spent 0.64 s writing
-- them against 0.17 s unchecked, once for each run of days it sends (the year's download 5.9 s at 1M referrals, issue 13's
-- limit 2 s). The check guards nothing the product can do: AuditWriter writes a read's people in the same statement as
-- the read's own row, from that row's RETURNING id, and no audit row is ever deleted. SQLite keeps the reference: it is
-- part of the table's definition there, and dropping it would mean copying every row into a new table.
{{postgres}}
ALTER TABLE audit_person DROP CONSTRAINT IF EXISTS audit_person_by_read_audit_id_fkey;
{{end}}
