-- The referring organisation kept on each triage task (issue 14): a partner sees only its own referrals' tasks, so every
-- Task search it makes is narrowed by the referral's organisation, and its total (Bundle.total) read each matching
-- referral's row to learn it: 10,000 waiting tasks took 20-25 ms to count, and a partner asking for a coordination
-- centre's tasks read 90,000 referrals scattered over the 1M store (248 ms). With the organisation on the task, both
-- counts and both first pages are ranges of one index. A referral's organisation never changes; TriageTasks.KeepOwner sets
-- it on every task a command opens, and this fills it in for the tasks before it.
ALTER TABLE triage_task ADD COLUMN referring_organisation_id BIGINT NULL REFERENCES organisation (id);

UPDATE triage_task SET referring_organisation_id = r.organisation_id
FROM referral r
WHERE r.id = triage_task.referral_id;

CREATE INDEX ix_triage_task_referring ON triage_task (referring_organisation_id, status, id);
CREATE INDEX ix_triage_task_owner_referring ON triage_task (owner_organisation_id, referring_organisation_id, id);
