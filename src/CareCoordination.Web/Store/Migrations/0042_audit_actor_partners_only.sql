-- ix_audit_actor is read only by a partner's search of its own audit trail (FhirAudit.Select: actor_kind = 'partner' AND
-- actor_id = the client), yet every staff and system row, most of the trail, took an entry. Partners' rows only, keyed
-- by the client and the row: the entry no longer repeats the kind (issue 14, store growth). Both stores use a partial
-- index for a query that says actor_kind = 'partner' in those words.
DROP INDEX ix_audit_actor;
CREATE INDEX ix_audit_actor ON audit_event (actor_id, id) WHERE actor_kind = 'partner';
