-- Scale of history (issue 14): the organisation doing a triage task's work (FHIR Task.owner), kept on the task by
-- every command that changes it (Features/Coordination/TaskOwner.cs) instead of worked out per row at every read:
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

-- A search by owner, newest page first by id; the person's waiting tasks follow them when they move locality.
CREATE INDEX ix_triage_task_owner ON triage_task (owner_organisation_id, id);
