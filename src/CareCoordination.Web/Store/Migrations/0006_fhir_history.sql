-- FHIR versions (vread and _history): the FHIR JSON of each version of a referral (ServiceRequest), triage
-- task (Task), person (Patient) and bed (Location/bed-{id}) as it was served, written in the transaction of
-- the command that made that version (Features/Fhir/FhirVersions.cs). Rows written before this table existed
-- (the demo seed, plain SQL) have no versions here: their current version is served from the live row.
CREATE TABLE fhir_version (
    id              {{id}},
    resource_type   TEXT NOT NULL,
    resource_id     TEXT NOT NULL,
    version         INTEGER NOT NULL,
    last_updated    TIMESTAMPTZ NOT NULL,
    resource        TEXT NOT NULL,
    UNIQUE (resource_type, resource_id, version)
);
