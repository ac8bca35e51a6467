-- The Data Protection key ring that seals sign-in cookies and form tokens, one XML element per row, so that
-- every node on one PostgreSQL store reads every other node's cookies (Deployment/SharedKeyRing.cs).
-- Unused on SQLite, which is one node; created there too so that both stores have one schema.
CREATE TABLE data_protection_key (
    id {{id}},
    friendly_name TEXT NOT NULL,
    xml TEXT NOT NULL
);
