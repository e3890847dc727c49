--
-- parallel: stages with the same order run together; the request moves on
-- when all of them are approved.
--
SET ROLE regress_admin;
SELECT approval.define_workflow('{"name": "parallel-review", "stages": [
    {"name": "manager",  "approvers": ["manager"]},
    {"name": "finance",  "approvers": ["group:finance"], "order": 10},
    {"name": "security", "approvers": ["group:security"], "order": 10},
    {"name": "cio",      "approvers": ["user:carol"], "order": 20}]}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "parallel-overlap", "stages": [
    {"name": "finance", "approvers": ["group:finance"]},
    {"name": "budget",  "approvers": ["user:carol", "user:dave"], "order": 0}]}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "parallel-overlap-distinct", "distinct_approvers": true, "stages": [
    {"name": "finance", "approvers": ["group:finance"]},
    {"name": "budget",  "approvers": ["user:carol", "user:dave"], "order": 0}]}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "parallel-distinct-sequence", "distinct_approvers": true, "stages": [
    {"name": "first",  "approvers": ["group:finance"]},
    {"name": "second", "approvers": ["group:finance"]}]}') > 0 AS defined;
RESET ROLE;

SET ROLE regress_alice;
SELECT approval.submit('parallel-review', '{}', 'parallel') AS rid \gset
RESET ROLE;
SET ROLE regress_bob;
SELECT approval.approve(:rid);
RESET ROLE;
-- finance and security are active together
SELECT stage, stage_order, state FROM approval.request_stage WHERE request_id = :rid ORDER BY stage_order, stage_idx;
SELECT active_stages, votes, waiting_on FROM approval.request_status WHERE request_id = :rid;
SET ROLE regress_ciso;
SELECT workflow, title, requester, stage FROM approval.my_pending WHERE request_id = :rid;
SELECT approval.approve(:rid);
RESET ROLE;
-- one of two: still waiting for finance, cio not yet active
SELECT stage, state FROM approval.request_stage WHERE request_id = :rid ORDER BY stage_order, stage_idx;
SET ROLE regress_dave;
SELECT approval.approve(:rid);
RESET ROLE;
SELECT stage, state FROM approval.request_stage WHERE request_id = :rid ORDER BY stage_order, stage_idx;
SET ROLE regress_carol;
SELECT approval.approve(:rid);
RESET ROLE;
SELECT kind, data->>'stage' AS stage FROM approval.event WHERE request_id = :rid ORDER BY seq;

-- a rejection in one parallel stage rejects the request
SET ROLE regress_alice;
SELECT approval.submit('parallel-review', '{}', 'parallel, rejected') AS rid \gset
RESET ROLE;
SET ROLE regress_bob;
SELECT approval.approve(:rid);
RESET ROLE;
SET ROLE regress_ciso;
SELECT approval.approve(:rid);
RESET ROLE;
SET ROLE regress_erin;
SELECT approval.reject(:rid, 'no_budget');
RESET ROLE;
SELECT r.state AS request_state, s.stage, s.state
  FROM approval.request r JOIN approval.request_stage s ON s.request_id = r.id
 WHERE r.id = :rid ORDER BY s.stage_order, s.stage_idx;

-- someone eligible at two parallel stages approves both with one call
SET ROLE regress_alice;
SELECT approval.submit('parallel-overlap', '{}', 'overlap') AS rid \gset
RESET ROLE;
SET ROLE regress_carol;
SELECT approval.approve(:rid);
RESET ROLE;
SELECT stage, state, approvals FROM approval.request_stage WHERE request_id = :rid ORDER BY stage_idx;

-- with distinct_approvers, one call approves one stage only
SET ROLE regress_alice;
SELECT approval.submit('parallel-overlap-distinct', '{}', 'overlap, distinct') AS rid \gset
RESET ROLE;
SET ROLE regress_carol;
SELECT approval.approve(:rid);
-- and a second call does not approve the other stage: it repeats carol's
-- recorded approval (a retry), so it answers with the state; the other stage
-- is not in her my_pending
SELECT approval.approve(:rid);
SELECT stage FROM approval.my_pending WHERE request_id = :rid;
RESET ROLE;
SELECT stage, state, approvals FROM approval.request_stage WHERE request_id = :rid ORDER BY stage_idx;
SET ROLE regress_dave;
SELECT approval.approve(:rid);
RESET ROLE;

-- distinct_approvers across orders: who approved "first" cannot approve "second"
SET ROLE regress_alice;
SELECT approval.submit('parallel-distinct-sequence', '{}', 'sequence, distinct') AS rid \gset
RESET ROLE;
SET ROLE regress_erin;
SELECT approval.approve(:rid);
-- "second" is active, erin answers for it but approved "first": her call is
-- the repetition of that vote, and "second" is not in her my_pending
SELECT stage FROM approval.my_pending WHERE request_id = :rid;
SELECT approval.approve(:rid);
RESET ROLE;
SELECT stage, state, approvals FROM approval.request_stage WHERE request_id = :rid ORDER BY stage_idx;
-- AP007 when her last vote on it was not that approval: she asks for
-- changes at "second", the requester resubmits, and she approves again
SET ROLE regress_erin;
SELECT approval.request_changes(:rid, 'which budget line?');
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.resubmit(:rid);
RESET ROLE;
SET ROLE regress_erin;
\set VERBOSITY sqlstate
SELECT approval.approve(:rid);
\set VERBOSITY default
SELECT public.error_of(format('SELECT approval.approve(%s)', :rid));
RESET ROLE;
SET ROLE regress_dave;
SELECT approval.approve(:rid);
RESET ROLE;

-- distinct_approvers counts people, not capacities: carol approves "a" in her
-- own name and answers for "b" as dave's delegate; she may not approve "b"
-- too, in one call (parallel) or in two
SET ROLE regress_admin;
SELECT approval.define_workflow('{"name": "parallel-distinct-delegated", "distinct_approvers": true,
    "stages": [{"name": "a", "approvers": ["user:carol"], "order": 0},
               {"name": "b", "approvers": ["user:dave"], "order": 0}]}') > 0 AS defined;
RESET ROLE;
SET ROLE regress_dave;
SELECT approval.delegate('carol') AS dave_to_carol \gset
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.submit('parallel-distinct-delegated', '{}', 'two hats') AS rid \gset
RESET ROLE;
SET ROLE regress_carol;
SELECT stage FROM approval.my_pending WHERE request_id = :rid ORDER BY stage;
SELECT approval.approve(:rid);
SELECT stage FROM approval.my_pending WHERE request_id = :rid;
SELECT approval.approve(:rid);
RESET ROLE;
SELECT stage, state, approvals FROM approval.request_stage WHERE request_id = :rid ORDER BY stage_idx;
-- dave himself took part in no approval: he may approve "b"
SET ROLE regress_dave;
SELECT approval.revoke_delegation(:dave_to_carol);
SELECT approval.approve(:rid);
RESET ROLE;
