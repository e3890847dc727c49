--
-- changes: request_changes and resubmit (DESIGN §4)
--
-- request_changes pauses a request (changes_requested); only the requester
-- may resubmit, optionally with a new payload; the active stage's votes are
-- cleared (kept in approval.decision with their round) and the stage starts
-- again.  reapprove_on_change "all" starts over from the first order.
--

-- what the tests look at, as the superuser (who sees every row)
CREATE FUNCTION pg_temp.stages(rid bigint)
RETURNS TABLE (stage text, state approval.stage_state, approvals int, required int, round int)
LANGUAGE sql AS $$
    SELECT stage, state, approvals, required, round
      FROM approval.request_stage WHERE request_id = rid
     ORDER BY stage_order, stage_idx
$$;
CREATE FUNCTION pg_temp.decisions(rid bigint)
RETURNS TABLE (stage text, actor text, on_behalf_of text, decision text, comment text, round int)
LANGUAGE sql AS $$
    SELECT stage, actor, on_behalf_of, decision, comment, round
      FROM approval.decision WHERE request_id = rid ORDER BY id
$$;
CREATE FUNCTION pg_temp.request(rid bigint)
RETURNS TABLE (state approval.request_state, payload jsonb, decided boolean)
LANGUAGE sql AS $$
    SELECT state, payload, decided_at IS NOT NULL FROM approval.request WHERE id = rid
$$;

-- the requester's manager, then two of finance, then carol when it is big
SELECT approval.define_workflow('{
  "name": "changes-basic",
  "stages": [
    {"name": "manager", "approvers": ["manager"]},
    {"name": "finance", "approvers": ["group:finance"], "min_approvals": 2},
    {"name": "big",     "approvers": ["user:carol"], "when": "$.cost > 1000"}
  ]}') > 0 AS defined;

SET ROLE regress_alice;
SELECT approval.submit('changes-basic', '{"cost": 800}', 'Laptop', 'changes:laptop') AS rid \gset
RESET ROLE;
SET ROLE regress_bob;
SELECT approval.approve(:rid);
RESET ROLE;
SET ROLE regress_dave;
SELECT approval.approve(:rid, 'fine by me');
RESET ROLE;
SELECT * FROM pg_temp.stages(:rid);

-- only an approver at the active stage may ask for changes, with a comment
\set VERBOSITY sqlstate
SET ROLE regress_alice;         -- the requester, not an approver
SELECT approval.request_changes(:rid, 'I changed my mind');
RESET ROLE;
SET ROLE regress_bob;           -- approved the manager stage, not at finance
SELECT approval.request_changes(:rid, 'more detail');
RESET ROLE;
SET ROLE regress_outsider;      -- cannot even see the request
SELECT approval.request_changes(:rid, 'more detail');
RESET ROLE;
SET ROLE regress_erin;
SELECT approval.request_changes(:rid, NULL);
SELECT approval.request_changes(:rid, '');
RESET ROLE;
\set VERBOSITY default

SET ROLE regress_erin;
SELECT approval.request_changes(:rid, 'attach the quote');
RESET ROLE;
SELECT * FROM pg_temp.request(:rid);
SELECT * FROM pg_temp.stages(:rid);

-- paused: nothing can be decided, nobody has it pending
SET ROLE regress_carol;
SELECT count(*) AS carol_pending FROM approval.my_pending WHERE request_id = :rid;
\set VERBOSITY sqlstate
SELECT approval.approve(:rid);
SELECT approval.reject(:rid, 'no_quote');
SELECT approval.request_changes(:rid, 'and the colour');
RESET ROLE;
\set VERBOSITY default
-- request_status: no active stage can act; the one to act is the requester
-- (the changes_requested event targets user:alice too)
SET ROLE regress_alice;
SELECT state, active_stages, votes, waiting_on
  FROM approval.request_status WHERE request_id = :rid;
SELECT state FROM approval.my_requests WHERE request_id = :rid;
-- the request is still open: a retry for the same subject returns it
SELECT approval.submit('changes-basic', '{"cost": 800}', 'Laptop', 'changes:laptop') = :rid AS same_request;
RESET ROLE;

-- only the requester resubmits
\set VERBOSITY sqlstate
SET ROLE regress_erin;          -- the approver who asked for changes
SELECT approval.resubmit(:rid);
RESET ROLE;
SET ROLE regress_outsider;
SELECT approval.resubmit(:rid);
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.resubmit(:rid, '[1, 2]');  -- a payload must be an object
RESET ROLE;
\set VERBOSITY default
SELECT * FROM pg_temp.request(:rid);

-- resubmit with a new payload: finance starts again in round 2, with no votes;
-- the manager's approval stands
SET ROLE regress_alice;
SELECT approval.resubmit(:rid, '{"cost": 5000, "quote": "Q-17"}', 'quote attached');
RESET ROLE;
SELECT * FROM pg_temp.request(:rid);
SELECT * FROM pg_temp.stages(:rid);
-- the round-1 votes are history, not cleared from the log
SELECT * FROM pg_temp.decisions(:rid);

-- resubmitting a pending request is refused
\set VERBOSITY sqlstate
SET ROLE regress_alice;
SELECT approval.resubmit(:rid);
RESET ROLE;
\set VERBOSITY default

-- dave's round-1 approval no longer counts: he has it pending again and votes anew
SET ROLE regress_dave;
SELECT count(*) AS dave_pending FROM approval.my_pending WHERE request_id = :rid;
SELECT approval.approve(:rid);
RESET ROLE;
SELECT * FROM pg_temp.stages(:rid);
SET ROLE regress_erin;
SELECT approval.approve(:rid);
RESET ROLE;
-- the new payload is over 1000, so "big" runs now
SELECT * FROM pg_temp.stages(:rid);
SET ROLE regress_carol;
SELECT approval.approve(:rid);
RESET ROLE;
SELECT * FROM pg_temp.request(:rid);
SELECT * FROM pg_temp.decisions(:rid);
SELECT kind, actor, data->>'stage' AS stage, data->'round' AS round
  FROM approval.event WHERE request_id = :rid ORDER BY seq;

--
-- resubmit without a payload keeps the payload; changes can be asked again,
-- each time in a new round.  frank acts through the gateway.
--
BEGIN;
SET LOCAL ROLE regress_app;
SET LOCAL approval.actor = 'frank';
SELECT approval.submit('changes-basic', '{"cost": 50}', 'Mouse') AS rid2 \gset
COMMIT;
SET ROLE regress_bob;
SELECT approval.request_changes(:rid2, 'which mouse?');
RESET ROLE;
BEGIN;
SET LOCAL ROLE regress_app;
SET LOCAL approval.actor = 'frank';
SELECT approval.resubmit(:rid2, comment => 'the cheap one');
COMMIT;
SELECT * FROM pg_temp.request(:rid2);
SET ROLE regress_bob;
SELECT approval.request_changes(:rid2, 'still unclear');
RESET ROLE;
BEGIN;
SET LOCAL ROLE regress_app;
SET LOCAL approval.actor = 'frank';
SELECT approval.resubmit(:rid2, '{"cost": 45, "model": "M1"}');
COMMIT;
SELECT * FROM pg_temp.request(:rid2);
SELECT * FROM pg_temp.stages(:rid2);
SELECT * FROM pg_temp.decisions(:rid2);

-- cancel from changes_requested: only the requester (or an admin)
SET ROLE regress_bob;
SELECT approval.request_changes(:rid2, 'no longer sure we need it');
\set VERBOSITY sqlstate
SELECT approval.cancel(:rid2);
RESET ROLE;
\set VERBOSITY default
BEGIN;
SET LOCAL ROLE regress_app;
SET LOCAL approval.actor = 'frank';
SELECT approval.cancel(:rid2, 'bought one myself');
COMMIT;
SELECT * FROM pg_temp.request(:rid2);
-- a closed request waits on nobody
SELECT state, active_stages, votes, waiting_on
  FROM approval.request_status WHERE request_id = :rid2;
-- a cancelled request cannot be resubmitted
\set VERBOSITY sqlstate
BEGIN;
SET LOCAL ROLE regress_app;
SET LOCAL approval.actor = 'frank';
SELECT approval.resubmit(:rid2);
ROLLBACK;
\set VERBOSITY default

--
-- reapprove_on_change "all": a resubmit starts over from the first order, so
-- approvals of earlier stages no longer count
--
SELECT approval.define_workflow('{
  "name": "changes-all",
  "reapprove_on_change": "all",
  "stages": [
    {"name": "manager", "approvers": ["manager"]},
    {"name": "finance", "approvers": ["group:finance"], "min_approvals": 2},
    {"name": "big",     "approvers": ["user:carol"], "when": "$.cost > 1000"}
  ]}') > 0 AS defined;
SET ROLE regress_alice;
SELECT approval.submit('changes-all', '{"cost": 5000}', 'Server') AS rid3 \gset
RESET ROLE;
SET ROLE regress_bob;
SELECT approval.approve(:rid3);
RESET ROLE;
SET ROLE regress_dave;
SELECT approval.approve(:rid3);
RESET ROLE;
SET ROLE regress_erin;
SELECT approval.request_changes(:rid3, 'too expensive');
RESET ROLE;
SELECT * FROM pg_temp.stages(:rid3);
SET ROLE regress_alice;
SELECT approval.resubmit(:rid3, '{"cost": 900}', 'smaller server');
RESET ROLE;
-- back to the manager, everything in round 2
SELECT * FROM pg_temp.stages(:rid3);
-- bob's round-1 approval does not count: he has it pending again
SET ROLE regress_bob;
SELECT count(*) AS bob_pending FROM approval.my_pending WHERE request_id = :rid3;
SELECT approval.approve(:rid3);
RESET ROLE;
-- finance needs two new votes, dave's earlier one included
SET ROLE regress_dave;
SELECT approval.approve(:rid3);
RESET ROLE;
SELECT * FROM pg_temp.stages(:rid3);
SET ROLE regress_erin;
SELECT approval.approve(:rid3);
RESET ROLE;
-- cost 900: "big" is skipped this time
SELECT * FROM pg_temp.stages(:rid3);
SELECT * FROM pg_temp.request(:rid3);
SELECT * FROM pg_temp.decisions(:rid3);
SELECT kind, data->>'stage' AS stage, data->'round' AS round, data->>'reapprove' AS reapprove
  FROM approval.event WHERE request_id = :rid3 AND kind IN ('resubmitted', 'stage_activated', 'stage_skipped')
 ORDER BY seq;

--
-- parallel stages (default reapprove_on_change "stage"): only the stage that
-- is still active restarts; an already approved sibling keeps its approval
--
SELECT approval.define_workflow('{
  "name": "changes-parallel",
  "stages": [
    {"name": "legal", "approvers": ["user:carol"], "order": 0},
    {"name": "it",    "approvers": ["group:it-managers"], "order": 0},
    {"name": "ciso",  "approvers": ["user:ciso"], "order": 1}
  ]}') > 0 AS defined;
SET ROLE regress_alice;
SELECT approval.submit('changes-parallel', '{"tool": "scanner"}') AS rid4 \gset
RESET ROLE;
SET ROLE regress_bob;
SELECT approval.approve(:rid4);
RESET ROLE;
SET ROLE regress_carol;
SELECT approval.request_changes(:rid4, 'which licence?');
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.resubmit(:rid4, '{"tool": "scanner", "licence": "MIT"}');
RESET ROLE;
SELECT * FROM pg_temp.stages(:rid4);
SET ROLE regress_carol;
SELECT approval.approve(:rid4);
RESET ROLE;
SELECT * FROM pg_temp.stages(:rid4);
SET ROLE regress_ciso;
SELECT approval.approve(:rid4);
RESET ROLE;
SELECT * FROM pg_temp.request(:rid4);

-- every chain above is intact
SELECT bool_and(ok) AS audit_ok
  FROM approval.verify_audit() WHERE request_id IN (:rid, :rid2, :rid3, :rid4);
