-- Referrals as partners really send them (issue 12). A message that lacks an answer the form asks for is
-- accepted and marked "information needed": the answer is stored as absent, never as a made-up value. So
-- the pathway asked for and the referral's source may now be empty. SQLite cannot drop NOT NULL in place;
-- both engines can add a column, copy, drop the old one and rename, which keeps each column's own CHECK.
ALTER TABLE referral ADD COLUMN pathway_asked TEXT NULL CHECK (pathway_asked IN ('0', '1', '2', '3', 'step-up'));
UPDATE referral SET pathway_asked = pathway;
ALTER TABLE referral DROP COLUMN pathway;
ALTER TABLE referral RENAME COLUMN pathway_asked TO pathway;

ALTER TABLE referral ADD COLUMN source_stated TEXT NULL CHECK (source_stated IN ('acute-hospital', 'community-hospital', 'gp', 'community-step-up'));
UPDATE referral SET source_stated = source;
ALTER TABLE referral DROP COLUMN source;
ALTER TABLE referral RENAME COLUMN source_stated TO source;

-- What the form needs and the sender did not say, as a JSON array of the form's item names (InformationNeeded):
-- the coordination centre's queue shows it until the referrer answers.
ALTER TABLE referral ADD COLUMN information_needed TEXT NULL;

-- A partner's standing lawful basis for sharing, from its data-sharing agreement, set by an administrator: used
-- for a referral that carries no consent of its own, with the agreement it comes from (the admin page asks for both).
ALTER TABLE partner_client ADD COLUMN default_lawful_basis TEXT NULL;
ALTER TABLE partner_client ADD COLUMN data_sharing_agreement TEXT NULL;
