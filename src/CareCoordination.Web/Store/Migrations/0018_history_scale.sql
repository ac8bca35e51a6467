-- Scale of history (issue 14): the organisation doing a triage task's work (FHIR Task.owner), kept on the task by
-- every command that changes it (TriageTasks.KeepOwnerAsync) instead of worked out per row at every read:
-- a search by owner reaches its tasks through an index, not by working out the owner of every task ever made.
-- The holder's organisation once someone has taken the task; before that the bed bureau for its queue, or the
-- coordination centre of the person's locality (the lowest id of either kind, as the read worked it out).
ALTER TABLE triage_task ADD COLUMN owner_organisation_id BIGINT NULL REFERENCES organisation (id);

UPDATE triage_task SET owner_organisation_id = COALESCE(
    (SELECT u.organisation_id FROM staff_user u WHERE u.id = triage_task.owner_user_id),
    (SELECT MIN(q.id) FROM organisation q
     WHERE (triage_task.queue = 'bed-bureau' AND q.kind = 'bed-bureau')
        OR (triage_task.queue = 'coordination' AND q.kind = 'coordination-centre' AND q.locality =
            (SELECT p.locality FROM referral r JOIN person p ON p.id = r.person_id WHERE r.id = triage_task.referral_id))));

-- A search by owner or by status reaches its tasks in id order, the order of its pages: PostgreSQL otherwise walks every
-- task by id to find the first page of the few waiting ones (SQLite's index on status already holds the id).
CREATE INDEX ix_triage_task_owner ON triage_task (owner_organisation_id, id);
DROP INDEX ix_triage_task_status;
CREATE INDEX ix_triage_task_status ON triage_task (status, id);

-- The fortnight's triage times (FlowHistory): triage ends with the coordination centre's first decision on the referral
-- (the earliest coordination task it completed or rejected), kept on the referral by the decision (TriageTasks.CloseAsync),
-- so the fortnight reads the referrals decided in it from one index instead of each one's tasks.
ALTER TABLE referral ADD COLUMN triaged_at TIMESTAMPTZ NULL;
-- One pass over the decisions (UPDATE ... FROM): a subquery per referral planned on a freshly migrated PostgreSQL store
-- ran for minutes.
UPDATE referral SET triaged_at = decided.first_at
FROM (SELECT referral_id, MIN(completed_at) AS first_at FROM triage_task
      WHERE queue = 'coordination' AND status IN ('completed', 'rejected') GROUP BY referral_id) decided
WHERE decided.referral_id = referral.id;
CREATE INDEX ix_referral_triaged ON referral (triaged_at, submitted_at);

-- The fortnight's placements started, and the stays that reach into it: a placement started or ended in it, or still open.
CREATE INDEX ix_placement_started ON placement (started_at);
CREATE INDEX ix_placement_ended ON placement (ended_at);
