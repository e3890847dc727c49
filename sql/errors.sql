--
-- errors: every AP code the core raises (DESIGN §9), each triggered with its
-- SQLSTATE shown, and that a failed call leaves nothing half-written
--
-- AP009 (invalid or used token) belongs to actionable tokens (DESIGN §10),
-- which are not built yet.
--

-- A fingerprint of everything the engine writes.  pg_temp.mark() takes it;
-- pg_temp.unchanged() says whether it is still the same (every row of
-- requests, stages, decisions, events, delegations and workflows, with
-- updated_at, so an UPDATE shows as well as an INSERT).
CREATE TEMP TABLE fp (v text);
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql AS $$
    SELECT md5(concat_ws('/',
        (SELECT string_agg(r::text, '|' ORDER BY r.id) FROM approval.request r),
        (SELECT string_agg(s::text, '|' ORDER BY s.request_id, s.stage) FROM approval.request_stage s),
        (SELECT string_agg(d::text, '|' ORDER BY d.id) FROM approval.decision d),
        (SELECT string_agg(e.seq::text, '|' ORDER BY e.seq) FROM approval.event e),
        (SELECT string_agg(g::text, '|' ORDER BY g.id) FROM approval.delegation g),
        (SELECT string_agg(w.id || ':' || w.enabled, '|' ORDER BY w.id) FROM approval.workflow w),
        (SELECT count(*)::text FROM approval.workflow_stage)))
$$;
CREATE FUNCTION pg_temp.mark() RETURNS void LANGUAGE sql AS $$
    DELETE FROM fp; INSERT INTO fp SELECT pg_temp.state();
$$;
CREATE FUNCTION pg_temp.unchanged() RETURNS boolean LANGUAGE sql AS $$
    SELECT v = pg_temp.state() FROM fp
$$;
CREATE FUNCTION pg_temp.stages(rid bigint)
RETURNS TABLE (stage text, state approval.stage_state, approvals int, rejections int)
LANGUAGE sql AS $$
    SELECT stage, state, approvals, rejections
      FROM approval.request_stage WHERE request_id = rid ORDER BY stage_order, stage_idx
$$;

SELECT approval.define_workflow('{
  "name": "errors-basic",
  "stages": [
    {"name": "manager", "approvers": ["manager"]},
    {"name": "finance", "approvers": ["group:finance"], "min_approvals": 2,
     "reject_policy": "quorum", "reject_quorum": 2}
  ]}') > 0 AS defined;
SET ROLE regress_alice;
SELECT approval.submit('errors-basic', '{"cost": 100}') AS rid \gset
RESET ROLE;

\set VERBOSITY sqlstate

--
-- AP001: no such request, or one the caller may not see
--
SELECT pg_temp.mark() \gset
SET ROLE regress_bob;
SELECT approval.approve(0);
SELECT approval.reject(0);
SELECT approval.request_changes(0, 'why?');
SELECT approval.resubmit(0);
SELECT approval.cancel(0);
SELECT approval.comment(0, 'hello');
RESET ROLE;
SELECT pg_temp.unchanged();
-- regress_outsider is not involved in alice's request: RLS hides it, and
-- every function says "not found" rather than what it would refuse
SET ROLE regress_outsider;
SELECT count(*) AS visible FROM approval.request WHERE id = :rid;
SELECT approval.approve(:rid);
SELECT approval.reject(:rid);
SELECT approval.request_changes(:rid, 'why?');
SELECT approval.resubmit(:rid);
SELECT approval.cancel(:rid);
SELECT approval.comment(:rid, 'hello');
RESET ROLE;
SELECT pg_temp.unchanged();

--
-- AP003: visible, but not an approver at an active stage
--
SET ROLE regress_alice;         -- the requester
SELECT approval.approve(:rid);
SELECT approval.reject(:rid);
RESET ROLE;
SET ROLE regress_dave;          -- an approver of the next stage, not yet active
SELECT count(*) AS visible FROM approval.request WHERE id = :rid;
SELECT approval.approve(:rid);
SELECT approval.request_changes(:rid, 'why?');
RESET ROLE;
SELECT pg_temp.unchanged();

--
-- AP004: a vote cannot be changed
--
SET ROLE regress_bob;
SELECT approval.approve(:rid);
RESET ROLE;
SET ROLE regress_dave;
SELECT approval.approve(:rid);
RESET ROLE;
SELECT pg_temp.mark() \gset
SET ROLE regress_dave;
SELECT approval.reject(:rid, 'changed_mind');
-- asking for changes after one's own approval contradicts it too
SELECT approval.request_changes(:rid, 'on second thought');
RESET ROLE;
SELECT pg_temp.unchanged();
SET ROLE regress_erin;
SELECT approval.reject(:rid, 'over_budget');
RESET ROLE;
SELECT pg_temp.mark() \gset
SET ROLE regress_erin;
SELECT approval.approve(:rid);
RESET ROLE;
SELECT pg_temp.unchanged();
SELECT * FROM pg_temp.stages(:rid);

--
-- AP002: the request is not pending
--
SET ROLE regress_carol;
SELECT approval.reject(:rid, 'over_budget');
RESET ROLE;
SELECT state FROM approval.request WHERE id = :rid;
SELECT pg_temp.mark() \gset
SET ROLE regress_carol;
SELECT approval.approve(:rid);
SELECT approval.reject(:rid);
SELECT approval.request_changes(:rid, 'why?');
-- nor a comment: the request is closed
SELECT approval.comment(:rid, 'too late');
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.comment(:rid, 'too late');
SELECT approval.cancel(:rid);
SELECT approval.resubmit(:rid);
RESET ROLE;
SELECT pg_temp.unchanged();
-- and while changes are requested
SET ROLE regress_alice;
SELECT approval.submit('errors-basic', '{"cost": 200}') AS rid2 \gset
RESET ROLE;
SET ROLE regress_bob;
SELECT approval.request_changes(:rid2, 'which one?');
RESET ROLE;
SELECT pg_temp.mark() \gset
SET ROLE regress_bob;
SELECT approval.approve(:rid2);
SELECT approval.reject(:rid2);
RESET ROLE;
SELECT pg_temp.unchanged();

--
-- AP005: invalid definitions, each naming the offending key; nothing is stored
--
SELECT pg_temp.mark() \gset
SELECT approval.define_workflow('[]');
SELECT approval.define_workflow('{"stages": []}');
SELECT approval.define_workflow('{"name": "errors-bad", "stagez": []}');
SELECT approval.define_workflow('{"name": "errors-bad", "stages": [
    {"name": "a", "approvers": ["manager"]},
    {"name": "b", "approvers": ["group:finance"], "min_approvals": 0}]}');
SELECT approval.define_workflow('{"name": "errors-bad", "stages": [{"name": "a", "approvers": ["boss"]}]}');
SELECT approval.define_workflow('{"name": "errors-bad", "stages": [{"name": "a", "approvers": []}]}');
SELECT approval.define_workflow('{"name": "errors-bad", "stages": [
    {"name": "a", "approvers": ["manager"]}, {"name": "a", "approvers": ["manager"]}]}');
SELECT approval.define_workflow('{"name": "errors-bad", "match": "$.cost >"}');
SELECT approval.define_workflow('{"name": "errors-bad", "reapprove_on_change": "some"}');
SELECT approval.define_workflow('{"name": "errors-bad", "sla": "soon"}');
SELECT pg_temp.unchanged();
SELECT count(*) AS stored FROM approval.workflow WHERE name = 'errors-bad';
-- the messages
\set VERBOSITY terse
SELECT approval.define_workflow('{"name": "errors-bad", "stages": [
    {"name": "a", "approvers": ["manager"]},
    {"name": "b", "approvers": ["group:finance"], "min_approvals": 0}]}');
SELECT approval.define_workflow('{"name": "errors-bad", "stagez": []}');
SELECT approval.define_workflow('{"name": "errors-bad", "stages": [{"name": "a", "approvers": ["boss"]}]}');
\set VERBOSITY sqlstate

--
-- AP006: acknowledgment missing or wrong
--
SELECT approval.define_workflow('{"name": "errors-ack", "require_ack": "I read the policy",
  "stages": [{"name": "manager", "approvers": ["manager"]}]}') > 0 AS defined;
SELECT pg_temp.mark() \gset
SET ROLE regress_alice;
SELECT approval.submit('errors-ack', '{}');
SELECT approval.submit('errors-ack', '{}', ack => 'I did not read the policy');
SELECT approval.submit('errors-ack', '{}', ack => 'i read the policy');
RESET ROLE;
SELECT pg_temp.unchanged();
SET ROLE regress_alice;
SELECT approval.submit('errors-ack', '{}', ack => 'I read the policy') > 0 AS submitted;
RESET ROLE;

--
-- AP007: self-approval, and distinct_approvers
--
SELECT approval.define_workflow('{"name": "errors-self",
  "stages": [{"name": "review", "approvers": ["group:finance"]}]}') > 0 AS defined;
SET ROLE regress_dave;
SELECT approval.submit('errors-self', '{}') AS self \gset
RESET ROLE;
SELECT pg_temp.mark() \gset
SET ROLE regress_dave;
SELECT approval.approve(:self);
SELECT approval.reject(:self);
SELECT approval.request_changes(:self, 'let me look again');
RESET ROLE;
SELECT pg_temp.unchanged();
-- nor in an approver's name, as that approver's delegate
SET ROLE regress_erin;
SELECT approval.delegate('dave') AS erin_to_dave \gset
RESET ROLE;
SELECT pg_temp.mark() \gset
SET ROLE regress_dave;
SELECT approval.reject(:self);
SELECT approval.request_changes(:self, 'as erin');
RESET ROLE;
SELECT pg_temp.unchanged();
SET ROLE regress_erin;
SELECT approval.revoke_delegation(:erin_to_dave);
SELECT approval.approve(:self);
RESET ROLE;

SELECT approval.define_workflow('{"name": "errors-distinct", "distinct_approvers": true,
  "stages": [{"name": "first",  "approvers": ["group:finance"]},
             {"name": "second", "approvers": ["group:finance"]}]}') > 0 AS defined;
SET ROLE regress_alice;
SELECT approval.submit('errors-distinct', '{}') AS dist \gset
RESET ROLE;
SET ROLE regress_dave;
SELECT approval.approve(:dist);
RESET ROLE;
-- dave answers for "second" too, but his approval of "first" stands: a
-- second call repeats it (as a retry would), answers with the state and
-- writes nothing; AP007 for distinct_approvers is in the parallel test
SELECT pg_temp.mark() \gset
SET ROLE regress_dave;
SELECT approval.approve(:dist);
RESET ROLE;
SELECT pg_temp.unchanged();
SET ROLE regress_erin;
SELECT approval.approve(:dist);
RESET ROLE;

--
-- AP012: a gateway's actor that is no principal, an inactive principal, and
-- a role named after a principal that is not its own
--
SELECT pg_temp.mark() \gset
BEGIN;
SET LOCAL ROLE regress_app;
SET LOCAL approval.actor = 'fránk';         -- a typo
SELECT approval.submit('errors-basic', '{}');
ROLLBACK;
UPDATE approval.principal SET active = false WHERE id = 'frank';
BEGIN;
SET LOCAL ROLE regress_app;
SET LOCAL approval.actor = 'frank';
SELECT approval.submit('errors-basic', '{}');
ROLLBACK;
BEGIN;
SET LOCAL ROLE regress_app;
SET LOCAL approval.actor = 'frank';
SELECT approval.current_actor();
ROLLBACK;
UPDATE approval.principal SET active = true WHERE id = 'frank';
-- erin's role is regress_erin; a role called "erin" is not erin
CREATE ROLE erin;
GRANT approval_user TO erin;
SET ROLE erin;
SELECT approval.submit('errors-basic', '{}');
\set VERBOSITY default
SELECT approval.current_actor();
RESET ROLE;
DROP ROLE erin;
SELECT pg_temp.unchanged();

--
-- AP013: a subject under review, with another payload or by someone else
-- (public.error_of shows the messages with request ids as N: they depend on
-- the order of the schedule)
--
SET ROLE regress_alice;
SELECT approval.submit('errors-basic', '{"cost": 1}', subject => 'errors:thirteen') AS subj \gset
SELECT approval.submit('errors-basic', '{"cost": 1}', subject => 'errors:thirteen') = :subj AS same_request;
RESET ROLE;
SELECT pg_temp.mark() \gset
SET ROLE regress_alice;
SELECT public.error_of($$SELECT approval.submit('errors-basic', '{"cost": 2}', subject => 'errors:thirteen')$$);
RESET ROLE;
-- the outsider cannot see alice's request: it is not told which one it is
SET ROLE regress_outsider;
SELECT public.error_of($$SELECT approval.submit('errors-basic', '{"cost": 1}', subject => 'errors:thirteen')$$);
RESET ROLE;
-- bob (her manager, an approver of it) is told which request holds it
SET ROLE regress_bob;
SELECT public.error_of($$SELECT approval.submit('errors-basic', '{"cost": 1}', subject => 'errors:thirteen')$$);
RESET ROLE;
\set VERBOSITY sqlstate
SELECT pg_temp.unchanged();

--
-- AP008: no such workflow, or a disabled one
--
SELECT approval.define_workflow('{"name": "errors-disabled",
  "stages": [{"name": "manager", "approvers": ["manager"]}]}') > 0 AS defined;
SELECT approval.disable_workflow('errors-disabled');
SELECT pg_temp.mark() \gset
SET ROLE regress_alice;
SELECT approval.submit('errors-nosuch', '{}');
SELECT approval.submit('errors-disabled', '{}');
RESET ROLE;
SELECT approval.disable_workflow('errors-nosuch');
SELECT approval.graph('errors-nosuch');
SELECT pg_temp.unchanged();

--
-- AP010: approval.actor set by a role that is not a gateway
--
SELECT pg_temp.mark() \gset
BEGIN;
SET LOCAL ROLE regress_alice;
SET LOCAL approval.actor = 'bob';
SELECT approval.submit('errors-basic', '{}');
ROLLBACK;
BEGIN;
SET LOCAL ROLE regress_bob;
SET LOCAL approval.actor = 'carol';
SELECT approval.approve(:rid2);
ROLLBACK;
BEGIN;
SET LOCAL ROLE regress_dave;
SET LOCAL approval.actor = 'bob';
SELECT approval.delegate('erin');
ROLLBACK;
SELECT pg_temp.unchanged();

--
-- AP011: an approver target that cannot be resolved fails the submit, even
-- when the stages before it resolve
--
SELECT approval.define_workflow('{"name": "errors-ok-targets", "stages": [
    {"name": "manager", "approvers": ["manager"]},
    {"name": "group",   "approvers": ["group:finance"]},
    {"name": "user",    "approvers": ["user:carol"]},
    {"name": "role",    "approvers": ["role:regress_security"]}]}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "errors-group", "stages": [
    {"name": "manager", "approvers": ["manager"]},
    {"name": "group",   "approvers": ["group:errors-nosuch"]}]}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "errors-user", "stages": [
    {"name": "manager", "approvers": ["manager"]},
    {"name": "user",    "approvers": ["user:errors-nosuch"]}]}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "errors-role", "stages": [
    {"name": "manager", "approvers": ["manager"]},
    {"name": "role",    "approvers": ["role:regress_errors_nosuch"]}]}') > 0 AS defined;
SELECT pg_temp.mark() \gset
SET ROLE regress_carol;         -- has no manager
SELECT approval.submit('errors-ok-targets', '{}');
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.submit('errors-group', '{}');
SELECT approval.submit('errors-user', '{}');
SELECT approval.submit('errors-role', '{}');
RESET ROLE;
SELECT pg_temp.unchanged();
-- the messages
\set VERBOSITY terse
SET ROLE regress_carol;
SELECT approval.submit('errors-ok-targets', '{}');
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.submit('errors-group', '{}');
SELECT approval.submit('errors-user', '{}');
SELECT approval.submit('errors-role', '{}');
RESET ROLE;
\set VERBOSITY sqlstate
SELECT pg_temp.unchanged();
-- with every target resolvable the same submit works
SET ROLE regress_alice;
SELECT approval.submit('errors-ok-targets', '{}') > 0 AS submitted;
RESET ROLE;
-- an inactive principal is no approver: as a user target or as the
-- manager, the stage could never be decided
UPDATE approval.principal SET active = false WHERE id = 'carol';
SELECT pg_temp.mark() \gset
SET ROLE regress_alice;
SELECT approval.submit('errors-ok-targets', '{}');      -- user:carol
RESET ROLE;
SET ROLE regress_bob;                                    -- bob's manager is carol
SELECT approval.submit('errors-ok-targets', '{}');
RESET ROLE;
SELECT pg_temp.unchanged();
\set VERBOSITY terse
SET ROLE regress_alice;
SELECT approval.submit('errors-ok-targets', '{}');
RESET ROLE;
SET ROLE regress_bob;
SELECT approval.submit('errors-ok-targets', '{}');
RESET ROLE;
\set VERBOSITY sqlstate
UPDATE approval.principal SET active = true WHERE id = 'carol';

--
-- a failure after part of the work was done undoes all of it
--
-- 1. a vote that counts at one stage and contradicts at another: dave
-- rejected at "board" and now, as erin's delegate, may approve at "legal";
-- his approve records erin's vote at "legal", then meets his own reject
SELECT approval.define_workflow('{"name": "errors-partial", "stages": [
    {"name": "legal", "approvers": ["user:erin"], "order": 0},
    {"name": "board", "approvers": ["group:finance"], "order": 0, "min_approvals": 2,
     "reject_policy": "quorum", "reject_quorum": 2}]}') > 0 AS defined;
SET ROLE regress_alice;
SELECT approval.submit('errors-partial', '{}') AS part \gset
RESET ROLE;
SET ROLE regress_dave;
SELECT approval.reject(:part, 'risky');
RESET ROLE;
SET ROLE regress_erin;
SELECT approval.delegate('dave', workflow => 'errors-partial') AS erin_dave \gset
RESET ROLE;
SELECT pg_temp.mark() \gset
SET ROLE regress_dave;
SELECT approval.approve(:part);
RESET ROLE;
SELECT pg_temp.unchanged();
SELECT * FROM pg_temp.stages(:part);
SET ROLE regress_erin;
SELECT approval.revoke_delegation(:erin_dave);
RESET ROLE;

-- 2. an on_approved callback that fails makes the final approval fail
CREATE SCHEMA errors_app;
CREATE FUNCTION errors_app.refuse(request bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the license server is down' USING ERRCODE = 'P0001';
END
$$;
SELECT approval.define_workflow('{"name": "errors-callback", "on_approved": "errors_app.refuse",
  "stages": [{"name": "manager", "approvers": ["manager"]}]}') > 0 AS defined;
SET ROLE regress_alice;
SELECT approval.submit('errors-callback', '{}') AS cb \gset
RESET ROLE;
SELECT pg_temp.mark() \gset
SET ROLE regress_bob;
SELECT approval.approve(:cb);
RESET ROLE;
SELECT pg_temp.unchanged();
SELECT state FROM approval.request WHERE id = :cb;
SELECT * FROM pg_temp.stages(:cb);

\set VERBOSITY default
SELECT r.workflow, v.ok FROM approval.request r, approval.verify_audit(r.id) v
 WHERE r.workflow LIKE 'errors-%' ORDER BY r.id;
