-- The view 0039 made (referral_received) is read by nothing now: the as-sent view reads a referral's messages with its
-- own SQL (AsSent.MessagesOf). A view on referral and fhir_received_referral stood in the way of every later rebuild of
-- either table (SQLite rebuilds a table to change a constraint) and of restoring an earlier backup over this store
-- (pg_restore --clean cannot drop a table a view depends on).
DROP VIEW referral_received;
