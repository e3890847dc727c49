--
-- submit: targets resolved at submit, idempotency on (workflow, subject),
-- acknowledgments, workflows with no stages, callbacks, the gateway.
--
SET ROLE regress_admin;
SELECT approval.define_workflow('{"name": "submit-two-stage", "stages": [
    {"name": "manager", "approvers": ["manager"]},
    {"name": "finance", "approvers": ["group:finance", "user:ciso", "role:regress_security"]}]}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "submit-ack", "require_ack": "I accept the licence terms",
    "stages": [{"name": "it", "approvers": ["group:it-managers"]}]}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "submit-nothing-to-do"}') > 0 AS defined;
RESET ROLE;

-- alice submits: the manager target becomes user:bob, the first order is active
SET ROLE regress_alice;
SELECT approval.submit('submit-two-stage', '{"item": "laptop", "cost": 1200}', 'New laptop', 'asset:42') AS rid \gset
SELECT workflow, title, subject, payload, requester, state, decided_at IS NULL AS open, escalations
  FROM approval.request WHERE id = :rid;
SELECT stage, stage_order, state, targets, required, approvals, activated_at IS NOT NULL AS activated
  FROM approval.request_stage WHERE request_id = :rid ORDER BY stage_order;
SELECT workflow, title, subject, state FROM approval.my_requests WHERE request_id = :rid;

-- the same subject and payload while open (a retry): the same request,
-- nothing written; another payload is AP013
SELECT count(*) AS events_before FROM approval.event WHERE request_id = :rid \gset
SELECT approval.submit('submit-two-stage', '{"item": "laptop", "cost": 1200}', 'Retry', 'asset:42') = :rid AS same_request;
\set VERBOSITY sqlstate
SELECT approval.submit('submit-two-stage', '{"item": "other"}', 'Retry', 'asset:42');
\set VERBOSITY default
SELECT count(*) = :events_before AS nothing_written FROM approval.event WHERE request_id = :rid;
SELECT count(*) AS open_requests FROM approval.request WHERE subject = 'asset:42';
-- another subject, or none, is a new request
SELECT approval.submit('submit-two-stage', '{}', 'Other', 'asset:43') <> :rid AS new_request;
SELECT approval.submit('submit-two-stage') <> :rid AS new_request;
RESET ROLE;

-- once the request is closed, the subject can be asked again
SET ROLE regress_alice;
SELECT approval.cancel(:rid, 'wrong model');
SELECT approval.submit('submit-two-stage', '{}', 'Again', 'asset:42') <> :rid AS new_request;
RESET ROLE;

-- the requester's manager is resolved per requester: bob's is carol
SET ROLE regress_bob;
SELECT approval.submit('submit-two-stage', '{}', 'Bob asks') AS bob_rid \gset
SELECT targets FROM approval.request_stage WHERE request_id = :bob_rid AND stage = 'manager';
RESET ROLE;

-- require_ack: the exact text or AP006
SET ROLE regress_alice;
\set VERBOSITY sqlstate
SELECT approval.submit('submit-ack', '{}');
SELECT approval.submit('submit-ack', '{}', ack => 'I accept');
\set VERBOSITY default
-- a missing text and a wrong one are told apart
SELECT approval.submit('submit-ack', '{}');
SELECT approval.submit('submit-ack', '{}', ack => 'I accept');
SELECT approval.submit('submit-ack', '{}', ack => 'I accept the licence terms') AS ack_rid \gset
SELECT state FROM approval.request WHERE id = :ack_rid;
-- the accepted text is on record, and shown where a form can read it
SELECT data->>'ack' AS accepted FROM approval.event WHERE request_id = :ack_rid AND kind = 'submitted';
SELECT require_ack FROM approval.workflows WHERE name = 'submit-ack';
SELECT DISTINCT require_ack FROM approval.preview('submit-ack', '{}');

-- a workflow with no stages is approved at once
SELECT approval.submit('submit-nothing-to-do', '{}', 'Trivial') AS none_rid \gset
SELECT state, decided_at IS NOT NULL AS decided FROM approval.request WHERE id = :none_rid;
SELECT kind FROM approval.event WHERE request_id = :none_rid ORDER BY seq;

-- the payload must be an object
\set VERBOSITY sqlstate
SELECT approval.submit('submit-two-stage', '[1, 2]');
SELECT approval.submit('submit-two-stage', '"text"');
\set VERBOSITY default
RESET ROLE;

-- a web application acts for frank, who has no role of his own
BEGIN;
SET LOCAL ROLE regress_app;
SET LOCAL approval.actor = 'frank';
SELECT approval.submit('submit-two-stage', '{"item": "monitor"}', 'Frank via the app') AS frank_rid \gset
SELECT requester, state FROM approval.request WHERE id = :frank_rid;
COMMIT;
SELECT targets FROM approval.request_stage WHERE request_id = :frank_rid AND stage = 'manager';

-- callbacks run in the decision's transaction, as the workflow's definer
RESET ROLE;
CREATE SCHEMA submit_app;
CREATE TABLE submit_app.outcome (request bigint, outcome text, ran_as name);
GRANT USAGE ON SCHEMA submit_app TO regress_admin;
GRANT INSERT ON submit_app.outcome TO regress_admin;
CREATE FUNCTION submit_app.granted(request bigint) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO submit_app.outcome VALUES (request, 'granted', current_user) $$;
CREATE FUNCTION submit_app.denied(request bigint) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO submit_app.outcome VALUES (request, 'denied', current_user) $$;
CREATE FUNCTION submit_app.fails(request bigint) RETURNS void LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'licence server is down' USING ERRCODE = 'P0001'; END $$;
SET ROLE regress_admin;
SELECT approval.define_workflow('{"name": "submit-callbacks", "on_approved": "submit_app.granted",
    "on_rejected": "submit_app.denied", "stages": [{"name": "it", "approvers": ["group:it-managers"]}]}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "submit-callback-fails", "on_approved": "submit_app.fails",
    "stages": [{"name": "it", "approvers": ["group:it-managers"]}]}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "submit-auto-callback", "on_approved": "submit_app.granted"}') > 0 AS defined;
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.submit('submit-callbacks', '{}', 'to approve') AS cb1 \gset
SELECT approval.submit('submit-callbacks', '{}', 'to reject') AS cb2 \gset
SELECT approval.submit('submit-callback-fails', '{}', 'callback fails') AS cb3 \gset
SELECT approval.submit('submit-auto-callback', '{}', 'no stages') AS cb4 \gset
RESET ROLE;
SET ROLE regress_bob;
SELECT approval.approve(:cb1);
SELECT approval.reject(:cb2, 'not_needed', 'use the shared licence');
-- a failing callback fails the decision: the request stays pending
\set VERBOSITY sqlstate
SELECT approval.approve(:cb3);
\set VERBOSITY default
SELECT state FROM approval.request WHERE id = :cb3;
RESET ROLE;
SELECT request = :cb1 AS first, request = :cb2 AS second, request = :cb4 AS auto, outcome, ran_as
  FROM submit_app.outcome ORDER BY outcome, request;
SELECT count(*) AS votes_kept FROM approval.decision WHERE request_id = :cb3;

-- a target named twice, or reached twice ("manager" is bob for alice), is kept once
SET ROLE regress_admin;
SELECT approval.define_workflow('{"name": "submit-duplicate-targets", "stages": [
    {"name": "it", "approvers": ["manager", "user:bob", "group:it-managers", "group:it-managers"]}]}') > 0 AS defined;
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.submit('submit-duplicate-targets', '{}') AS dup_rid \gset
SELECT targets FROM approval.request_stage WHERE request_id = :dup_rid;
SELECT stage, targets FROM approval.preview('submit-duplicate-targets', '{}');
RESET ROLE;
