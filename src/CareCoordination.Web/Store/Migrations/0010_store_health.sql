-- /health proves the write path by writing here: one row, updated in a committed write transaction on every probe,
-- so a store that still answers reads but no longer takes writes (locked, read-only, full, corrupt) is reported.
CREATE TABLE store_health (
    id          INTEGER PRIMARY KEY,
    checked_at  TIMESTAMPTZ NULL,
    checked_by  TEXT NULL
);
INSERT INTO store_health (id) VALUES (1);
