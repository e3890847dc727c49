--
-- quorum: N of M approvals, "all", reject policies, one vote per principal.
--
SET ROLE regress_admin;
SELECT approval.define_workflow('{"name": "quorum-two-of-three",
    "stages": [{"name": "finance", "approvers": ["group:finance"], "min_approvals": 2}]}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "quorum-all",
    "stages": [{"name": "finance", "approvers": ["group:finance", "user:bob"], "min_approvals": "all"}]}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "quorum-all-by-role",
    "stages": [{"name": "security", "approvers": ["group:security"], "min_approvals": "all"}]}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "quorum-reject-quorum",
    "stages": [{"name": "finance", "approvers": ["group:finance"], "min_approvals": 3,
                "reject_policy": "quorum", "reject_quorum": 2, "denial_message": "Finance said no"}]}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "quorum-reject-any",
    "stages": [{"name": "finance", "approvers": ["group:finance"], "min_approvals": 2,
                "denial_message": "Over budget"}]}') > 0 AS defined;
RESET ROLE;

-- 2 of 3: the first approval leaves the stage active, the second approves it
SET ROLE regress_alice;
SELECT approval.submit('quorum-two-of-three', '{}', '2 of 3') AS rid \gset
RESET ROLE;
SET ROLE regress_carol;
SELECT approval.approve(:rid, 'fine by me');
-- the same vote again changes nothing; a different one is AP004
SELECT approval.approve(:rid);
\set VERBOSITY sqlstate
SELECT approval.reject(:rid);
\set VERBOSITY default
RESET ROLE;
SELECT state, required, approvals, rejections FROM approval.request_stage WHERE request_id = :rid;
SET ROLE regress_dave;
SELECT approval.approve(:rid);
RESET ROLE;
-- erin's vote is no longer needed: the request is closed
SET ROLE regress_erin;
\set VERBOSITY sqlstate
SELECT approval.approve(:rid);
\set VERBOSITY default
RESET ROLE;
SELECT state, required, approvals FROM approval.request_stage WHERE request_id = :rid;
SELECT kind, actor, data->>'approvals' AS approvals FROM approval.event WHERE request_id = :rid ORDER BY seq;
SELECT actor, decision, comment FROM approval.decision WHERE request_id = :rid ORDER BY id;

-- "all": every distinct principal of the targets at activation (finance's
-- three and bob)
SET ROLE regress_alice;
SELECT approval.submit('quorum-all', '{}', 'everyone') AS rid \gset
RESET ROLE;
SELECT required FROM approval.request_stage WHERE request_id = :rid;
SET ROLE regress_carol;
SELECT approval.approve(:rid);
RESET ROLE;
SET ROLE regress_dave;
SELECT approval.approve(:rid);
RESET ROLE;
SET ROLE regress_erin;
SELECT approval.approve(:rid);
RESET ROLE;
SET ROLE regress_bob;
SELECT approval.approve(:rid);
RESET ROLE;

-- "all" through a group's PostgreSQL role counts the role's members (ciso)
SET ROLE regress_alice;
SELECT approval.submit('quorum-all-by-role', '{}', 'security') AS rid \gset
RESET ROLE;
SELECT required, targets FROM approval.request_stage WHERE request_id = :rid;
SET ROLE regress_ciso;
SELECT approval.approve(:rid);
RESET ROLE;

-- reject policy "quorum": one rejection is not enough, two are
SET ROLE regress_alice;
SELECT approval.submit('quorum-reject-quorum', '{}', 'contested') AS rid \gset
RESET ROLE;
SET ROLE regress_carol;
SELECT approval.reject(:rid, 'too_expensive', 'cheaper options exist');
RESET ROLE;
SET ROLE regress_dave;
SELECT approval.approve(:rid);
RESET ROLE;
SET ROLE regress_erin;
SELECT approval.reject(:rid, 'too_expensive');
RESET ROLE;
SELECT state, approvals, rejections, reject_required FROM approval.request_stage WHERE request_id = :rid;
SELECT actor, decision, reason, comment, denial_message FROM approval.decision WHERE request_id = :rid ORDER BY id;
SELECT kind, data->>'reason' AS reason, data->>'denial_message' AS denial
  FROM approval.event WHERE request_id = :rid AND kind IN ('stage_rejected', 'rejected') ORDER BY seq;

-- reject policy "any" (the default): one rejection rejects, even after an approval
SET ROLE regress_alice;
SELECT approval.submit('quorum-reject-any', '{}', 'one no') AS rid \gset
RESET ROLE;
SET ROLE regress_carol;
SELECT approval.approve(:rid);
RESET ROLE;
SET ROLE regress_dave;
SELECT approval.reject(:rid, 'over_budget');
RESET ROLE;
SELECT r.state, s.state AS stage_state, r.decided_at IS NOT NULL AS decided
  FROM approval.request r JOIN approval.request_stage s ON s.request_id = r.id WHERE r.id = :rid;

-- an inactive principal is no approver: not counted by "all", not waited on
SELECT approval.define_workflow('{"name": "quorum-erin",
    "stages": [{"name": "erin", "approvers": ["user:erin", "user:dave"]}]}') > 0 AS defined;
SET ROLE regress_alice;
SELECT approval.submit('quorum-erin', '{}', 'erin or dave') AS rid2 \gset
RESET ROLE;
UPDATE approval.principal SET active = false WHERE id = 'erin';
SET ROLE regress_alice;
SELECT approval.submit('quorum-all', '{}', 'erin is away') AS rid \gset
RESET ROLE;
SELECT required FROM approval.request_stage WHERE request_id = :rid;
SET ROLE regress_alice;
SELECT waiting_on FROM approval.request_status WHERE request_id = :rid;
SELECT waiting_on FROM approval.request_status WHERE request_id = :rid2;
RESET ROLE;
-- and cannot act (AP012)
SET ROLE regress_erin;
\set VERBOSITY sqlstate
SELECT approval.approve(:rid2);
\set VERBOSITY default
RESET ROLE;
UPDATE approval.principal SET active = true WHERE id = 'erin';
SET ROLE regress_alice;
SELECT waiting_on FROM approval.request_status WHERE request_id = :rid2;
RESET ROLE;
