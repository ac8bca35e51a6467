-- The key of the form page that saved each draft last (the page's own, born with it). A save whose answer was lost (the
-- store did not answer in time, though the save landed) is that page's: its next save, send or discard goes over it, where a
-- colleague's later save is refused; and a new draft saved again from its page is that draft, not a second one. Unique
-- within an organisation, so two saves of one new draft arriving at once make one. Drafts saved before this have none.
ALTER TABLE referral_draft ADD COLUMN page_key TEXT;
CREATE UNIQUE INDEX ux_referral_draft_page_key ON referral_draft (organisation_id, page_key);
-- Its first column serves what the organisation's index served (the organisation's drafts).
DROP INDEX ix_referral_draft_organisation;
