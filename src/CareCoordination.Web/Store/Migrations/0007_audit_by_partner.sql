-- A partner reads its own audit trail (FHIR AuditEvent) by client, newest first: without this index that
-- search would scan the fastest-growing table in the store.
CREATE INDEX ix_audit_actor ON audit_event (actor_kind, actor_id, id);
