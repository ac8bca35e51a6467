-- Issue 14: store growth. The current FHIR version of a referral, triage task, person or bed is served from its live
-- row and is no longer stored: a version is kept only once superseded (Features/Fhir/FhirVersions.cs). The copies of
-- current versions that earlier releases stored beside their live rows are never served (a read of the current version
-- maps the live row), so they go. Through the unique index on (resource_type, resource_id, version): no scan per row.
DELETE FROM fhir_version WHERE id IN (
    SELECT v.id FROM referral r
    JOIN fhir_version v ON v.resource_type = 'ServiceRequest' AND v.resource_id = CAST(r.id AS TEXT) AND v.version = r.version
    UNION ALL
    SELECT v.id FROM triage_task t
    JOIN fhir_version v ON v.resource_type = 'Task' AND v.resource_id = CAST(t.id AS TEXT) AND v.version = t.version
    UNION ALL
    SELECT v.id FROM person p
    JOIN fhir_version v ON v.resource_type = 'Patient' AND v.resource_id = CAST(p.id AS TEXT) AND v.version = p.version
    UNION ALL
    SELECT v.id FROM bed b
    JOIN fhir_version v ON v.resource_type = 'Location' AND v.resource_id = 'bed-' || CAST(b.id AS TEXT) AND v.version = b.version
);

-- The partner's message as received is packed with Zstandard and a dictionary of FHIR JSON (Store/Packing.cs): its
-- encoding 'zstd' joins 'identity' and 'br' (rows packed before keep theirs). A CHECK cannot be changed in place on
-- SQLite: add the column anew, copy, drop the old one and rename, as 0016 did.
ALTER TABLE fhir_received ADD COLUMN body_packing TEXT NOT NULL DEFAULT 'identity' CHECK (body_packing IN ('identity', 'br', 'zstd'));
UPDATE fhir_received SET body_packing = body_encoding;
ALTER TABLE fhir_received DROP COLUMN body_encoding;
ALTER TABLE fhir_received RENAME COLUMN body_packing TO body_encoding;
