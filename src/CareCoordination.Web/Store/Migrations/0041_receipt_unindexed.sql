-- Issue 14: store growth on PostgreSQL. A request's receipt was looked up by its unique index to find the body an earlier
-- entry of the same batch kept; the request now remembers that row's id and checks it with the receipt (ReceivedMessage),
-- so the index, about 60 B a referral of random-looking text on PostgreSQL, is read by nothing. Receipts stay unique by
-- construction (a UUID each). SQLite keeps its index: it is part of the table's definition there, and dropping it would
-- mean copying every kept message into a new table.
{{postgres}}
ALTER TABLE fhir_received DROP CONSTRAINT fhir_received_receipt_key;
{{end}}
