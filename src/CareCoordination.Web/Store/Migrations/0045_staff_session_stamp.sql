-- Every session of a member of staff carries the stamp their account had when they signed in (the cookie's session
-- claim). Signing out moves it on, and so ends each of their sessions at its next check (Revocation): the other tabs of a
-- shared ward PC, another device, a copied cookie. Sessions begun before this carry none, which reads as 0.
ALTER TABLE staff_user ADD COLUMN session_stamp BIGINT NOT NULL DEFAULT 0;
