--
-- conditions: SQL/JSON path predicates route requests, skip stages and
-- approve at once; route(), preview() and simulate() write nothing.
--
SET ROLE regress_admin;

-- one predicate per operator family; each workflow routes when its own holds
SELECT approval.define_workflow(d::jsonb) > 0 AS defined FROM (VALUES
  ('{"name": "conditions-compare",  "priority": 1, "match": "$.kind == \"compare\" && $.cost >= 100 && $.cost < 200"}'),
  ('{"name": "conditions-or-not",   "priority": 1, "match": "$.kind == \"or\" && ($.a == 1 || !($.b == 2))"}'),
  ('{"name": "conditions-regex",    "priority": 1, "match": "$.kind == \"regex\" && $.email like_regex \"@example\\\\.com$\" flag \"i\""}'),
  ('{"name": "conditions-starts",   "priority": 1, "match": "$.kind == \"starts\" && $.sku starts with \"HW-\""}'),
  ('{"name": "conditions-exists",   "priority": 1, "match": "$.kind == \"exists\" && exists($.tags[*] ? (@ == \"urgent\"))"}'),
  ('{"name": "conditions-arith",    "priority": 1, "match": "$.kind == \"arith\" && $.qty * $.price > 1000"}'),
  ('{"name": "conditions-array",    "priority": 1, "match": "$.kind == \"array\" && $.lines[*].cost > 500"}'),
  ('{"name": "conditions-requester","priority": 1, "match": "$.kind == \"who\" && $requester.department == \"it\" && $requester.level >= 2 && $requester.manager == \"bob\""}'),
  ('{"name": "conditions-workflow", "priority": 1, "match": "$.kind == \"self\" && $workflow == \"conditions-workflow\""}')
) AS t(d);

SET ROLE regress_alice;
SELECT p::text AS payload, approval.route(p) AS routed FROM (VALUES
  ('{"kind": "compare", "cost": 150}'::jsonb),
  ('{"kind": "compare", "cost": 250}'),
  ('{"kind": "compare", "cost": "150"}'),        -- mistyped: not a match, no error
  ('{"kind": "compare"}'),                       -- missing: not a match, no error
  ('{"kind": "or", "a": 1, "b": 2}'),
  ('{"kind": "or", "a": 0, "b": 3}'),
  ('{"kind": "or", "a": 0, "b": 2}'),
  ('{"kind": "regex", "email": "Ann@EXAMPLE.com"}'),
  ('{"kind": "regex", "email": "ann@example.org"}'),
  ('{"kind": "starts", "sku": "HW-100"}'),
  ('{"kind": "starts", "sku": "SW-100"}'),
  ('{"kind": "exists", "tags": ["low", "urgent"]}'),
  ('{"kind": "exists", "tags": ["low"]}'),
  ('{"kind": "arith", "qty": 11, "price": 100}'),
  ('{"kind": "arith", "qty": 9, "price": 100}'),
  ('{"kind": "arith", "qty": "many", "price": 100}'),
  ('{"kind": "array", "lines": [{"cost": 10}, {"cost": 600}]}'),
  ('{"kind": "array", "lines": [{"cost": 10}, {"cost": 60}]}'),
  ('{"kind": "who"}'),
  ('{"kind": "self"}')
) AS t(p);
RESET ROLE;

-- $requester is the requester's principal: bob is in IT but his manager is carol
SELECT approval.route('{"kind": "who"}', 'alice') AS alice, approval.route('{"kind": "who"}', 'bob') AS bob,
       approval.route('{"kind": "who"}', 'nobody-known') AS unknown;

-- priority decides, then the name; disabled workflows do not route
SET ROLE regress_admin;
SELECT approval.define_workflow('{"name": "conditions-tie-b", "priority": 2, "match": "$.kind == \"tie\""}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "conditions-tie-a", "priority": 2, "match": "$.kind == \"tie\""}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "conditions-tie-first", "priority": 3, "match": "$.kind == \"tie\""}') > 0 AS defined;
SELECT approval.route('{"kind": "tie"}') AS routed;
SELECT approval.disable_workflow('conditions-tie-a');
SELECT approval.route('{"kind": "tie"}') AS routed;
SELECT approval.disable_workflow('conditions-tie-b');
SELECT approval.route('{"kind": "tie"}') AS routed;
-- a new version of a workflow is routed at once
SELECT approval.define_workflow('{"name": "conditions-tie-first", "priority": 3, "match": "$.kind == \"tied\""}') > 0 AS defined;
SELECT approval.route('{"kind": "tie"}') AS old_version_gone_so,
       approval.route('{"kind": "tied"}') AS routed;
RESET ROLE;

-- submit(NULL, ...) routes; nothing matching is AP008
SET ROLE regress_alice;
SELECT approval.submit(NULL, '{"kind": "starts", "sku": "HW-9"}', 'routed') AS rid \gset
SELECT workflow, state FROM approval.request WHERE id = :rid;
RESET ROLE;
BEGIN;
SELECT count(approval.disable_workflow(name)) > 0 AS others_disabled
  FROM approval.workflows WHERE match IS NULL;
SET LOCAL ROLE regress_alice;
SELECT approval.route('{"kind": "nothing"}') IS NULL AS no_route;
SELECT approval.submit(NULL, '{"kind": "nothing"}');
ROLLBACK;

-- bad predicates in each key are AP005 naming the key
SET ROLE regress_admin;
\set VERBOSITY sqlstate
SELECT approval.define_workflow('{"name": "conditions-bad", "match": "$.a =="}');
SELECT approval.define_workflow('{"name": "conditions-bad", "auto_approve": "$.a == "}');
SELECT approval.define_workflow('{"name": "conditions-bad", "stages": [{"name": "s", "approvers": ["manager"], "when": "$.a ==="}]}');
\set VERBOSITY default
SELECT approval.define_workflow('{"name": "conditions-bad", "stages": [{"name": "s", "approvers": ["manager"], "when": "@.a > 1"}]}');
SELECT approval.define_workflow('{"name": "conditions-bad", "match": "$.a ? (@ > 1)"}');
SELECT approval.define_workflow('{"name": "conditions-bad", "auto_approve": "$.a > $nobody"}');

-- stages skipped by "when" in every position, and a whole order skipped
SELECT approval.define_workflow('{"name": "conditions-skips", "stages": [
    {"name": "first",  "approvers": ["user:bob"],   "when": "$.first == true"},
    {"name": "middle", "approvers": ["user:carol"], "when": "$.middle == true"},
    {"name": "par-a",  "approvers": ["user:dave"],  "when": "$.par == true", "order": 5},
    {"name": "par-b",  "approvers": ["user:erin"],  "when": "$.par == true", "order": 5},
    {"name": "last",   "approvers": ["user:ciso"],  "when": "$.last == true", "order": 9}]}') > 0 AS defined;
RESET ROLE;
SET ROLE regress_alice;
-- first skipped: the request starts at "middle"
SELECT approval.submit('conditions-skips', '{"middle": true, "par": true, "last": true}') AS rid \gset
SELECT stage, state FROM approval.request_stage WHERE request_id = :rid ORDER BY stage_order, stage_idx;
RESET ROLE;
SET ROLE regress_carol;
SELECT approval.approve(:rid);
RESET ROLE;
-- the whole parallel order runs
SELECT stage, state FROM approval.request_stage WHERE request_id = :rid ORDER BY stage_order, stage_idx;
SET ROLE regress_alice;
-- middle and the parallel order skipped: from first straight to last
SELECT approval.submit('conditions-skips', '{"first": true, "last": true}') AS rid \gset
RESET ROLE;
SET ROLE regress_bob;
SELECT approval.approve(:rid);
RESET ROLE;
SELECT stage, state FROM approval.request_stage WHERE request_id = :rid ORDER BY stage_order, stage_idx;
SELECT kind, data->>'stage' AS stage FROM approval.event WHERE request_id = :rid ORDER BY seq;
SET ROLE regress_alice;
-- last skipped: approving the parallel order approves the request
SELECT approval.submit('conditions-skips', '{"par": true}') AS rid \gset
RESET ROLE;
SET ROLE regress_dave;
SELECT approval.approve(:rid);
RESET ROLE;
SET ROLE regress_erin;
SELECT approval.approve(:rid);
RESET ROLE;
-- every stage skipped: approved at submit
SET ROLE regress_alice;
SELECT approval.submit('conditions-skips', '{}') AS rid \gset
SELECT state FROM approval.request WHERE id = :rid;
SELECT kind FROM approval.event WHERE request_id = :rid ORDER BY seq;
RESET ROLE;

-- auto_approve with stages and without
SET ROLE regress_admin;
SELECT approval.define_workflow('{"name": "conditions-auto", "auto_approve": "$.cost == 0",
    "stages": [{"name": "it", "approvers": ["group:it-managers"]}]}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "conditions-auto-empty", "auto_approve": "$.cost == 0"}') > 0 AS defined;
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.submit('conditions-auto', '{"cost": 0}') AS rid \gset
SELECT r.state, s.state AS stage_state FROM approval.request r JOIN approval.request_stage s ON s.request_id = r.id WHERE r.id = :rid;
SELECT kind FROM approval.event WHERE request_id = :rid ORDER BY seq;
SELECT approval.submit('conditions-auto', '{"cost": 10}') AS rid \gset
SELECT state FROM approval.request WHERE id = :rid;
SELECT approval.submit('conditions-auto-empty', '{"cost": 0}') AS rid \gset
SELECT kind FROM approval.event WHERE request_id = :rid ORDER BY seq;
RESET ROLE;

-- "when" sees the payload of a resubmit (reapprove_on_change "all")
SET ROLE regress_admin;
SELECT approval.define_workflow('{"name": "conditions-resubmit", "reapprove_on_change": "all", "stages": [
    {"name": "manager", "approvers": ["manager"]},
    {"name": "finance", "approvers": ["user:carol"], "when": "$.cost > 1000"}]}') > 0 AS defined;
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.submit('conditions-resubmit', '{"cost": 500}') AS rid \gset
RESET ROLE;
SET ROLE regress_bob;
SELECT approval.request_changes(:rid, 'add the docking station');
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.resubmit(:rid, '{"cost": 1500}');
RESET ROLE;
SET ROLE regress_bob;
SELECT approval.approve(:rid);
RESET ROLE;
SELECT stage, state, round FROM approval.request_stage WHERE request_id = :rid ORDER BY stage_order;

-- preview: stages in order, resolved targets, required votes, whether they run
SET ROLE regress_alice;
SELECT * FROM approval.preview('conditions-skips', '{"middle": true, "par": true}');
SELECT * FROM approval.preview('definition-full', '{"cost": 1500}');
SELECT * FROM approval.preview('definition-full', '{"cost": 0}');
SELECT * FROM approval.preview(NULL, '{"kind": "starts", "sku": "HW-1"}');
SELECT stage, targets FROM approval.preview('submit-two-stage', '{}', 'bob') WHERE stage = 'manager';
\set VERBOSITY sqlstate
SELECT * FROM approval.preview('submit-two-stage', '{}', 'carol');
SELECT * FROM approval.preview('conditions-nope', '{}');
\set VERBOSITY default
RESET ROLE;

-- simulate a draft against past requests; neither writes anything
SELECT (SELECT count(*) FROM approval.request) AS requests_before,
       (SELECT count(*) FROM approval.event) AS events_before,
       (SELECT count(*) FROM approval.workflow) AS workflows_before \gset
SET ROLE regress_admin;
SELECT workflow, state, would_match, would_auto_approve, would_run, did_run, differs, change
  FROM approval.simulate('{"name": "conditions-skips", "auto_approve": "$.middle == true",
      "stages": [{"name": "first", "approvers": ["user:bob"], "when": "$.first == true"},
                 {"name": "last", "approvers": ["user:ciso"]}]}')
 WHERE workflow IN ('conditions-skips', 'conditions-auto')
 ORDER BY request_id;
SELECT count(*) FILTER (WHERE would_match) AS would_match, count(*) FILTER (WHERE differs) AS differs
  FROM approval.simulate('{"name": "conditions-draft", "match": "$.kind == \"starts\""}');
\set VERBOSITY sqlstate
SELECT * FROM approval.simulate('{"name": "conditions-draft", "match": "$.kind =="}');
\set VERBOSITY default
RESET ROLE;
SET ROLE regress_alice;
\set VERBOSITY sqlstate
SELECT * FROM approval.simulate('{"name": "conditions-draft"}');
\set VERBOSITY default
RESET ROLE;
SELECT (SELECT count(*) FROM approval.request) = :requests_before
   AND (SELECT count(*) FROM approval.event) = :events_before
   AND (SELECT count(*) FROM approval.workflow) = :workflows_before AS nothing_written;
