-- pgTAP: conditions, routing and what-if (DESIGN §3, §4; doc "Conditions",
-- "Routing and what-if"): every jsonpath operator family as a "match" seen
-- through approval.route(), $requester and $workflow, missing and mistyped
-- fields, priority and name order, disabled workflows, AP005 for bad
-- conditions in each key, AP008, stages skipped by "when", auto_approve,
-- reapprove_on_change, preview() and simulate().
--
-- Everything happens in one transaction that is rolled back, including
-- CREATE EXTENSION and the roles the test makes.  Every workflow here has a
-- "match" on $.kind, so none of them catches every payload.
\set ON_ERROR_STOP 1
BEGIN;

SELECT plan(106);

SELECT current_setting('search_path') AS search_path_before \gset
CREATE EXTENSION approval;
-- pgTAP lives in public; the install script's SET search_path outlives
-- CREATE EXTENSION (see 001_identity), so put the session's path back.
SELECT set_config('search_path', :'search_path_before', true) AS search_path_restored \gset

CREATE ROLE ap5_alice;
CREATE ROLE ap5_bob;
CREATE ROLE ap5_carol;
CREATE ROLE ap5_dave;
CREATE ROLE ap5_erin;
GRANT approval_user TO ap5_alice, ap5_bob, ap5_carol, ap5_dave, ap5_erin;

-- alice's attributes try to pass for someone else: id, email, manager and
-- display_name must come from the principal, not from the attributes.
INSERT INTO approval.principal (id, display_name, email, manager_id, attributes, pg_role) VALUES
    ('carol', 'Carol', 'carol@example.com', NULL,    '{"department": "finance", "level": 5}', 'ap5_carol'),
    ('bob',   'Bob',   'bob@example.com',   'carol', '{"department": "it", "level": 4}',      'ap5_bob'),
    ('alice', 'Alice', 'alice@example.com', 'bob',
     '{"department": "it", "level": 2, "id": "mallory", "email": "evil@example.net",
       "manager": "mallory", "display_name": "Mallory"}', 'ap5_alice'),
    ('dave',  'Dave',  'dave@example.com',  'carol', '{}', 'ap5_dave'),
    ('erin',  'Erin',  'erin@example.com',  'carol', '{}', 'ap5_erin');
INSERT INTO approval.approver_group (name) VALUES ('finance');
INSERT INTO approval.group_member (group_name, principal_id) VALUES
    ('finance', 'carol'), ('finance', 'dave'), ('finance', 'erin');

-- on_approved callback: records the request it was called for
CREATE SCHEMA ap5;
CREATE TABLE ap5.called (request_id bigint NOT NULL);
CREATE FUNCTION ap5.on_approved(request bigint) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO ap5.called VALUES (request) $$;

-- ---------------------------------------------------------------------------
-- One workflow per operator family, each routed by its own $.kind
-- ---------------------------------------------------------------------------
SELECT count(approval.define_workflow(d::jsonb)) AS defined FROM (VALUES
  ($j${"name": "c-cmp", "priority": 1, "match": "$.kind == \"cmp\" && $.a == 1 && $.b != 2 && $.c < 3 && $.d <= 4 && $.e > 5 && $.f >= 6"}$j$),
  ($j${"name": "c-or",  "priority": 1, "match": "$.kind == \"or\" && ($.a == 1 || $.b == 1)"}$j$),
  ($j${"name": "c-not", "priority": 1, "match": "$.kind == \"not\" && !($.a == 1)"}$j$),
  ($j${"name": "c-re",  "priority": 1, "match": "$.kind == \"re\" && $.email like_regex \"^[a-z]+@example\\\\.com$\" flag \"i\""}$j$),
  ($j${"name": "c-recs","priority": 1, "match": "$.kind == \"recs\" && $.email like_regex \"^[a-z]+@example\\\\.com$\""}$j$),
  ($j${"name": "c-sw",  "priority": 1, "match": "$.kind == \"sw\" && $.sku starts with \"HW-\""}$j$),
  ($j${"name": "c-ex",  "priority": 1, "match": "$.kind == \"ex\" && exists($.tags[*] ? (@ == \"urgent\"))"}$j$),
  ($j${"name": "c-ar",  "priority": 1, "match": "$.kind == \"ar\" && ($.a + $.b) * $.c - $.d > 100 && $.e / 4 == 2.5 && $.f % 3 == 1"}$j$),
  ($j${"name": "c-dz",  "priority": 1, "match": "$.kind == \"dz\" && 10 / $.z > 1"}$j$),
  ($j${"name": "c-arr", "priority": 1, "match": "$.kind == \"arr\" && $.lines[*].cost > 500"}$j$),
  ($j${"name": "c-req", "priority": 1, "match": "$.kind == \"who\" && $requester.id == \"alice\" && $requester.email == \"alice@example.com\" && $requester.display_name == \"Alice\" && $requester.manager == \"bob\" && $requester.department == \"it\" && $requester.level >= 2"}$j$),
  ($j${"name": "c-spoof","priority": 1, "match": "$.kind == \"spoof\" && ($requester.id == \"mallory\" || $requester.email == \"evil@example.net\" || $requester.manager == \"mallory\" || $requester.display_name == \"Mallory\")"}$j$),
  ($j${"name": "c-attr", "priority": 1, "match": "$.kind == \"attr\" && $requester.level > 3"}$j$),
  ($j${"name": "c-unk", "priority": 1, "match": "$.kind == \"unk\" && $requester.id == \"stranger\""}$j$),
  ($j${"name": "c-wf0", "priority": 0, "match": "$.kind == \"self\" && $workflow == \"c-wf\""}$j$),
  ($j${"name": "c-wf",  "priority": 1, "match": "$.kind == \"self\" && $workflow == \"c-wf\""}$j$)
) AS t(d) \gset

-- comparison: one payload that holds, then each comparison false at its edge
SELECT is(approval.route('{"kind": "cmp", "a": 1, "b": 0, "c": 2, "d": 4, "e": 6, "f": 6}', 'alice'), 'c-cmp',
          'match: == != < <= > >= all hold -> routed');
SELECT is(approval.route('{"kind": "cmp", "a": 2, "b": 0, "c": 2, "d": 4, "e": 6, "f": 6}', 'alice'), NULL,
          'match: == false (1 vs 2) -> not routed');
SELECT is(approval.route('{"kind": "cmp", "a": 1, "b": 2, "c": 2, "d": 4, "e": 6, "f": 6}', 'alice'), NULL,
          'match: != false (2 vs 2) -> not routed');
SELECT is(approval.route('{"kind": "cmp", "a": 1, "b": 0, "c": 3, "d": 4, "e": 6, "f": 6}', 'alice'), NULL,
          'match: < false (3 < 3) -> not routed');
SELECT is(approval.route('{"kind": "cmp", "a": 1, "b": 0, "c": 2, "d": 5, "e": 6, "f": 6}', 'alice'), NULL,
          'match: <= false (5 <= 4) -> not routed');
SELECT is(approval.route('{"kind": "cmp", "a": 1, "b": 0, "c": 2, "d": 4, "e": 5, "f": 6}', 'alice'), NULL,
          'match: > false (5 > 5) -> not routed');
SELECT is(approval.route('{"kind": "cmp", "a": 1, "b": 0, "c": 2, "d": 4, "e": 6, "f": 5}', 'alice'), NULL,
          'match: >= false (5 >= 6) -> not routed');

-- || and !
SELECT is(approval.route('{"kind": "or", "a": 1, "b": 0}', 'alice'), 'c-or', 'match: || with the left side true');
SELECT is(approval.route('{"kind": "or", "a": 0, "b": 1}', 'alice'), 'c-or', 'match: || with the right side true');
SELECT is(approval.route('{"kind": "or", "a": 0, "b": 0}', 'alice'), NULL, 'match: || with both false');
SELECT is(approval.route('{"kind": "not", "a": 2}', 'alice'), 'c-not', 'match: !(false) holds');
SELECT is(approval.route('{"kind": "not", "a": 1}', 'alice'), NULL, 'match: !(true) does not');

-- like_regex, starts with, exists
SELECT is(approval.route('{"kind": "re", "email": "Ann@EXAMPLE.com"}', 'alice'), 'c-re',
          'match: like_regex with flag "i" ignores case');
SELECT is(approval.route('{"kind": "re", "email": "ann@example.org"}', 'alice'), NULL,
          'match: like_regex that does not match');
SELECT is(approval.route('{"kind": "recs", "email": "Ann@EXAMPLE.com"}', 'alice'), NULL,
          'match: like_regex without flag "i" is case-sensitive');
SELECT is(approval.route('{"kind": "sw", "sku": "HW-100"}', 'alice'), 'c-sw', 'match: starts with holds');
SELECT is(approval.route('{"kind": "sw", "sku": "SW-100"}', 'alice'), NULL, 'match: starts with does not');
SELECT is(approval.route('{"kind": "ex", "tags": ["low", "urgent"]}', 'alice'), 'c-ex',
          'match: exists(... ? (...)) with a matching element');
SELECT is(approval.route('{"kind": "ex", "tags": ["low"]}', 'alice'), NULL,
          'match: exists(... ? (...)) without one');

-- arithmetic: (a + b) * c - d > 100, e / 4 == 2.5, f % 3 == 1
SELECT is(approval.route('{"kind": "ar", "a": 5, "b": 5, "c": 11, "d": 5, "e": 10, "f": 7}', 'alice'), 'c-ar',
          'match: + - * / % all evaluate as expected');
SELECT is(approval.route('{"kind": "ar", "a": 5, "b": 4, "c": 11, "d": 5, "e": 10, "f": 7}', 'alice'), NULL,
          'match: + (9 * 11 - 5 = 94) -> not routed');
SELECT is(approval.route('{"kind": "ar", "a": 5, "b": 5, "c": 11, "d": 10, "e": 10, "f": 7}', 'alice'), NULL,
          'match: - (110 - 10 = 100, not > 100) -> not routed');
SELECT is(approval.route('{"kind": "ar", "a": 5, "b": 5, "c": 10, "d": 5, "e": 10, "f": 7}', 'alice'), NULL,
          'match: * (10 * 10 - 5 = 95) -> not routed');
SELECT is(approval.route('{"kind": "ar", "a": 5, "b": 5, "c": 11, "d": 5, "e": 12, "f": 7}', 'alice'), NULL,
          'match: / (12 / 4 = 3) -> not routed');
SELECT is(approval.route('{"kind": "ar", "a": 5, "b": 5, "c": 11, "d": 5, "e": 10, "f": 6}', 'alice'), NULL,
          'match: % (6 % 3 = 0) -> not routed');

-- arrays with [*]: any element
SELECT is(approval.route('{"kind": "arr", "lines": [{"cost": 10}, {"cost": 600}]}', 'alice'), 'c-arr',
          'match: $.lines[*].cost > 500 holds when one element does');
SELECT is(approval.route('{"kind": "arr", "lines": [{"cost": 10}, {"cost": 60}]}', 'alice'), NULL,
          'match: $.lines[*].cost > 500 fails when none does');

-- missing and mistyped fields are false, never an error
SELECT lives_ok($$SELECT approval.route('{"kind": "cmp"}', 'alice')$$,
                'missing fields: route() does not raise');
SELECT is(approval.route('{"kind": "cmp"}', 'alice'), NULL, 'missing fields: not routed');
SELECT lives_ok($$SELECT approval.route('{"kind": "cmp", "a": "1", "b": 0, "c": 2, "d": 4, "e": 6, "f": 6}', 'alice')$$,
                'a string compared with a number: route() does not raise');
SELECT is(approval.route('{"kind": "cmp", "a": "1", "b": 0, "c": 2, "d": 4, "e": 6, "f": 6}', 'alice'), NULL,
          'a string compared with a number: not routed');
SELECT lives_ok($$SELECT approval.route('{"kind": "ar", "a": "many", "b": 5, "c": 11, "d": 5, "e": 10, "f": 7}', 'alice')$$,
                'arithmetic on a string: route() does not raise');
SELECT is(approval.route('{"kind": "ar", "a": "many", "b": 5, "c": 11, "d": 5, "e": 10, "f": 7}', 'alice'), NULL,
          'arithmetic on a string: not routed');
SELECT is(approval.route('{"kind": "sw", "sku": 100}', 'alice'), NULL, 'starts with on a number: not routed');
SELECT is(approval.route('{"kind": "dz", "z": 0}', 'alice'), NULL, 'division by zero: false, no error');
SELECT is(approval.route('{"kind": "dz", "z": 5}', 'alice'), 'c-dz', 'the same division by 5 holds');

-- $requester and $workflow
SELECT is(approval.route('{"kind": "who"}', 'alice'), 'c-req',
          '$requester: id, email, display_name, manager and attributes at top level');
SELECT is(approval.route('{"kind": "who"}', 'bob'), NULL, '$requester is the requester given, not anyone');
SELECT is(approval.route('{"kind": "spoof"}', 'alice'), NULL,
          '$requester: attributes cannot override id, email, manager or display_name');
SELECT is(approval.route('{"kind": "attr"}', 'bob'), 'c-attr', '$requester.level (an attribute) of bob is 4');
SELECT is(approval.route('{"kind": "attr"}', 'alice'), NULL, '$requester.level of alice is 2');
SELECT is(approval.route('{"kind": "unk"}', 'stranger'), 'c-unk', '$requester.id of an unknown requester');
SET LOCAL ROLE ap5_alice;
SELECT is(approval.route('{"kind": "who"}'), 'c-req', 'route() without a requester uses the current actor');
RESET ROLE;
SELECT is(approval.route('{"kind": "self"}', 'alice'), 'c-wf',
          '$workflow is the name of the workflow being tried (c-wf0 at priority 0 does not match)');

-- ---------------------------------------------------------------------------
-- Priority, then name; disabled workflows do not route
-- ---------------------------------------------------------------------------
SELECT count(approval.define_workflow(d::jsonb)) AS defined FROM (VALUES
  ($j${"name": "tie-b",   "priority": 5, "match": "$.kind == \"tie\""}$j$),
  ($j${"name": "tie-a",   "priority": 5, "match": "$.kind == \"tie\""}$j$),
  ($j${"name": "aaa-tie", "priority": 9, "match": "$.kind == \"tie\""}$j$)
) AS t(d) \gset
SELECT is(approval.route('{"kind": "tie"}', 'alice'), 'tie-a', 'priority first (aaa-tie loses), then name (tie-a)');
SELECT approval.disable_workflow('tie-a') AS ignored \gset
SELECT is(approval.route('{"kind": "tie"}', 'alice'), 'tie-b', 'tie-a disabled: tie-b routes');
SELECT approval.disable_workflow('tie-b') AS ignored \gset
SELECT is(approval.route('{"kind": "tie"}', 'alice'), 'aaa-tie', 'tie-b disabled too: aaa-tie routes');
SELECT approval.enable_workflow('tie-a') AS ignored \gset
SELECT is(approval.route('{"kind": "tie"}', 'alice'), 'tie-a', 'enable_workflow(tie-a) brings it back');
SET LOCAL ROLE ap5_alice;
SELECT throws_ok($$SELECT approval.submit('tie-b', '{"kind": "tie"}')$$, 'AP008', NULL,
                 'submit to a disabled workflow by name is AP008');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- AP005: bad syntax, not a predicate, unknown variable; in each key
-- ---------------------------------------------------------------------------
SELECT throws_ok($$SELECT approval.define_workflow('{"name": "bad", "match": "$.a =="}')$$,
                 'AP005', NULL, 'match: bad syntax is AP005');
SELECT throws_matching($$SELECT approval.define_workflow('{"name": "bad", "match": "$.a =="}')$$,
                 '^invalid workflow definition: match: syntax error', 'match: bad syntax: the message names "match"');
SELECT throws_ok($$SELECT approval.define_workflow('{"name": "bad", "match": "$.a"}')$$,
                 'AP005', NULL, 'match: a path, not a predicate, is AP005');
SELECT throws_matching($$SELECT approval.define_workflow('{"name": "bad", "match": "$.a"}')$$,
                 '^invalid workflow definition: match must be a predicate', 'match: not a predicate: the message names "match"');
SELECT throws_ok($$SELECT approval.define_workflow('{"name": "bad", "match": "$.a > $nobody"}')$$,
                 'AP005', NULL, 'match: an unknown variable is AP005');
SELECT throws_matching($$SELECT approval.define_workflow('{"name": "bad", "match": "$.a > $nobody"}')$$,
                 '^invalid workflow definition: match: .*"nobody"', 'match: unknown variable: the message names "match" and the variable');

SELECT throws_ok($$SELECT approval.define_workflow('{"name": "bad", "auto_approve": "$.a == "}')$$,
                 'AP005', NULL, 'auto_approve: bad syntax is AP005');
SELECT throws_matching($$SELECT approval.define_workflow('{"name": "bad", "auto_approve": "$.a == "}')$$,
                 '^invalid workflow definition: auto_approve: syntax error', 'auto_approve: bad syntax: the message names "auto_approve"');
SELECT throws_ok($$SELECT approval.define_workflow('{"name": "bad", "auto_approve": "$.tags[*]"}')$$,
                 'AP005', NULL, 'auto_approve: a path, not a predicate, is AP005');
SELECT throws_matching($$SELECT approval.define_workflow('{"name": "bad", "auto_approve": "$.tags[*]"}')$$,
                 '^invalid workflow definition: auto_approve must be a predicate', 'auto_approve: not a predicate: the message names "auto_approve"');
SELECT throws_ok($$SELECT approval.define_workflow('{"name": "bad", "auto_approve": "$user.x == 1"}')$$,
                 'AP005', NULL, 'auto_approve: an unknown variable is AP005');
SELECT throws_matching($$SELECT approval.define_workflow('{"name": "bad", "auto_approve": "$user.x == 1"}')$$,
                 '^invalid workflow definition: auto_approve: .*"user"', 'auto_approve: unknown variable: the message names "auto_approve"');

SELECT throws_ok($$SELECT approval.define_workflow('{"name": "bad", "stages": [{"name": "s0", "approvers": ["manager"]},
                   {"name": "s1", "approvers": ["manager"], "when": "$.a ==="}]}')$$,
                 'AP005', NULL, 'stages[1].when: bad syntax is AP005');
SELECT throws_matching($$SELECT approval.define_workflow('{"name": "bad", "stages": [{"name": "s0", "approvers": ["manager"]},
                   {"name": "s1", "approvers": ["manager"], "when": "$.a ==="}]}')$$,
                 '^invalid workflow definition: stages\[1\]\.when: syntax error', 'stages[1].when: bad syntax: the message names the key');
SELECT throws_ok($$SELECT approval.define_workflow('{"name": "bad", "stages": [{"name": "s0", "approvers": ["manager"]},
                   {"name": "s1", "approvers": ["manager"], "when": "$.cost"}]}')$$,
                 'AP005', NULL, 'stages[1].when: a path, not a predicate, is AP005');
SELECT throws_matching($$SELECT approval.define_workflow('{"name": "bad", "stages": [{"name": "s0", "approvers": ["manager"]},
                   {"name": "s1", "approvers": ["manager"], "when": "$.cost"}]}')$$,
                 '^invalid workflow definition: stages\[1\]\.when must be a predicate', 'stages[1].when: not a predicate: the message names the key');
SELECT throws_ok($$SELECT approval.define_workflow('{"name": "bad", "stages": [{"name": "s0", "approvers": ["manager"],
                   "when": "$.cost > $limit"}]}')$$,
                 'AP005', NULL, 'stages[0].when: an unknown variable is AP005');
SELECT throws_matching($$SELECT approval.define_workflow('{"name": "bad", "stages": [{"name": "s0", "approvers": ["manager"],
                   "when": "$.cost > $limit"}]}')$$,
                 '^invalid workflow definition: stages\[0\]\.when: .*"limit"', 'stages[0].when: unknown variable: the message names the key');

-- ---------------------------------------------------------------------------
-- Stages skipped by "when": first, middle, last, a whole parallel order
-- ---------------------------------------------------------------------------
SELECT approval.define_workflow($j${"name": "skips", "match": "$.kind == \"skips\"", "stages": [
    {"name": "first",  "approvers": ["user:bob"],   "when": "$.first == true"},
    {"name": "middle", "approvers": ["user:carol"], "when": "$.middle == true"},
    {"name": "par-a",  "approvers": ["user:dave"],  "when": "$.par == true", "order": 5},
    {"name": "par-b",  "approvers": ["user:erin"],  "when": "$.par == true", "order": 5},
    {"name": "last",   "approvers": ["user:carol"], "when": "$.last == true", "order": 9}]}$j$) > 0 AS defined \gset

CREATE FUNCTION pg_temp.states(r bigint) RETURNS text[] LANGUAGE sql AS $$
    SELECT array_agg(state::text ORDER BY stage_order, stage_idx) FROM approval.request_stage WHERE request_id = r $$;
CREATE FUNCTION pg_temp.events(r bigint, kinds text[] DEFAULT NULL) RETURNS text[] LANGUAGE sql AS $$
    SELECT array_agg(kind || COALESCE(':' || (data->>'stage'), '') ORDER BY seq)
      FROM approval.event WHERE request_id = r AND (kinds IS NULL OR kind = ANY (kinds)) $$;

SET LOCAL ROLE ap5_alice;
SELECT approval.submit('skips', '{"kind": "skips", "middle": true, "par": true, "last": true}') AS r1 \gset
SELECT approval.submit('skips', '{"kind": "skips", "first": true, "last": true}') AS r2 \gset
SELECT approval.submit('skips', '{"kind": "skips", "par": true}') AS r3 \gset
SELECT approval.submit('skips', '{"kind": "skips"}') AS r4 \gset
RESET ROLE;

SELECT is(pg_temp.states(:r1), ARRAY['skipped', 'active', 'waiting', 'waiting', 'waiting'],
          'first stage skipped: the request starts at "middle"');
SELECT is(pg_temp.events(:r1), ARRAY['submitted', 'stage_skipped:first', 'stage_activated:middle'],
          'first stage skipped: a stage_skipped event for it, then middle activated');

SET LOCAL ROLE ap5_bob;
SELECT approval.approve(:r2) AS ignored \gset
RESET ROLE;
SELECT is(pg_temp.states(:r2), ARRAY['approved', 'skipped', 'skipped', 'skipped', 'active'],
          'middle stage and the whole parallel order skipped: from first straight to last');
SELECT is(pg_temp.events(:r2, '{stage_skipped,stage_activated}'),
          ARRAY['stage_activated:first', 'stage_skipped:middle', 'stage_skipped:par-a', 'stage_skipped:par-b',
                'stage_activated:last'],
          'stage_skipped events for middle, par-a and par-b, in order, then last activated');

SET LOCAL ROLE ap5_dave;
SELECT approval.approve(:r3) AS ignored \gset
RESET ROLE;
SET LOCAL ROLE ap5_erin;
SELECT approval.approve(:r3) AS r3_state \gset
RESET ROLE;
SELECT is(:'r3_state'::text, 'approved', 'last stage skipped: approving the parallel order approves the request');
SELECT is(pg_temp.states(:r3), ARRAY['skipped', 'skipped', 'approved', 'approved', 'skipped'],
          'last stage skipped: its state is skipped');
SELECT is(pg_temp.events(:r3, '{stage_skipped,stage_activated,approved}'),
          ARRAY['stage_skipped:first', 'stage_skipped:middle', 'stage_activated:par-a', 'stage_activated:par-b',
                'stage_skipped:last', 'approved'],
          'last stage skipped: stage_skipped:last comes before approved');

SELECT is((SELECT state::text FROM approval.request WHERE id = :r4), 'approved',
          'every stage skipped: approved at submit');
SELECT is(pg_temp.events(:r4),
          ARRAY['submitted', 'stage_skipped:first', 'stage_skipped:middle', 'stage_skipped:par-a',
                'stage_skipped:par-b', 'stage_skipped:last', 'approved'],
          'every stage skipped: five stage_skipped events, then approved');

-- ---------------------------------------------------------------------------
-- auto_approve, with stages and without; on_approved is called
-- ---------------------------------------------------------------------------
SELECT approval.define_workflow($j${"name": "auto", "match": "$.kind == \"auto\"", "auto_approve": "$.cost == 0",
    "on_approved": "ap5.on_approved", "stages": [{"name": "it", "approvers": ["user:bob"]}]}$j$) > 0 AS defined \gset
SELECT approval.define_workflow($j${"name": "auto-empty", "match": "$.kind == \"auto-empty\"", "auto_approve": "$.cost == 0",
    "on_approved": "ap5.on_approved"}$j$) > 0 AS defined \gset

SET LOCAL ROLE ap5_alice;
SELECT approval.submit('auto', '{"kind": "auto", "cost": 0}') AS auto0 \gset
SELECT approval.submit('auto', '{"kind": "auto", "cost": 5}') AS auto5 \gset
SELECT approval.submit('auto-empty', '{"kind": "auto-empty", "cost": 0}') AS empty0 \gset
SELECT approval.submit('auto-empty', '{"kind": "auto-empty", "cost": 5}') AS empty5 \gset
RESET ROLE;

SELECT is((SELECT state::text FROM approval.request WHERE id = :auto0), 'approved',
          'auto_approve holds: approved at submit');
SELECT is(pg_temp.states(:auto0), ARRAY['skipped'], 'auto_approve holds: the stage never activates');
SELECT is(pg_temp.events(:auto0), ARRAY['submitted', 'auto_approved', 'approved'],
          'auto_approve holds: events submitted, auto_approved, approved');
SELECT is(pg_temp.states(:auto5) || (SELECT state::text FROM approval.request WHERE id = :auto5),
          ARRAY['active', 'pending'], 'auto_approve false: the stage is active, the request pending');
SELECT is(pg_temp.events(:empty0), ARRAY['submitted', 'auto_approved', 'approved'],
          'auto_approve without stages: events submitted, auto_approved, approved');
SELECT is(pg_temp.events(:empty5), ARRAY['submitted', 'approved'],
          'no stages, auto_approve false: approved at once, without auto_approved');
SELECT is((SELECT array_agg(request_id ORDER BY request_id) FROM ap5.called),
          ARRAY[:auto0, :empty0, :empty5]::bigint[],
          'on_approved was called once for each request approved at once, not for the pending one');

-- ---------------------------------------------------------------------------
-- reapprove_on_change: "stage" (default) and "all"
-- ---------------------------------------------------------------------------
SELECT count(approval.define_workflow(d::jsonb)) AS defined FROM (VALUES
  ($j${"name": "re-stage", "match": "$.kind == \"re-stage\"", "stages": [
     {"name": "s1", "approvers": ["user:bob"]},
     {"name": "s2", "approvers": ["user:carol"], "when": "$.cost > 1000"},
     {"name": "s3", "approvers": ["user:dave"]}]}$j$),
  ($j${"name": "re-all", "match": "$.kind == \"re-all\"", "reapprove_on_change": "all", "stages": [
     {"name": "s1", "approvers": ["user:bob"]},
     {"name": "s2", "approvers": ["user:carol"], "when": "$.cost > 1000"},
     {"name": "s3", "approvers": ["user:dave"]}]}$j$)
) AS t(d) \gset

CREATE FUNCTION pg_temp.rounds(r bigint) RETURNS text[] LANGUAGE sql AS $$
    SELECT array_agg(state::text || '/' || round ORDER BY stage_order, stage_idx)
      FROM approval.request_stage WHERE request_id = r $$;

-- "stage": changes asked at s3; s1's approval still counts, s2 stays skipped
SET LOCAL ROLE ap5_alice;
SELECT approval.submit('re-stage', '{"kind": "re-stage", "cost": 500}') AS rs \gset
RESET ROLE;
SET LOCAL ROLE ap5_bob;
SELECT approval.approve(:rs) AS ignored \gset
RESET ROLE;
SET LOCAL ROLE ap5_dave;
SELECT approval.request_changes(:rs, 'add a quote') AS ignored \gset
RESET ROLE;
SET LOCAL ROLE ap5_alice;
SELECT approval.resubmit(:rs, '{"kind": "re-stage", "cost": 5000}') AS ignored \gset
RESET ROLE;
SELECT is(pg_temp.rounds(:rs), ARRAY['approved/1', 'skipped/1', 'active/2'],
          'reapprove "stage": only the active stage restarts (round 2); s1 stays approved');
SET LOCAL ROLE ap5_dave;
SELECT is(approval.approve(:rs)::text, 'approved', 'reapprove "stage": the earlier approval of s1 counts');
RESET ROLE;

-- "stage": changes asked at s1; s2's "when" sees the new payload
SET LOCAL ROLE ap5_alice;
SELECT approval.submit('re-stage', '{"kind": "re-stage", "cost": 500}') AS rs2 \gset
RESET ROLE;
SET LOCAL ROLE ap5_bob;
SELECT approval.request_changes(:rs2, 'too cheap to be true') AS ignored \gset
RESET ROLE;
SET LOCAL ROLE ap5_alice;
SELECT approval.resubmit(:rs2, '{"kind": "re-stage", "cost": 5000}') AS ignored \gset
RESET ROLE;
SET LOCAL ROLE ap5_bob;
SELECT approval.approve(:rs2) AS ignored \gset
RESET ROLE;
SELECT is(pg_temp.states(:rs2), ARRAY['approved', 'active', 'waiting'],
          'reapprove "stage": "when" of the next stage sees the resubmitted payload');

-- "all": the whole workflow restarts; s2 (skipped before) now runs
SET LOCAL ROLE ap5_alice;
SELECT approval.submit('re-all', '{"kind": "re-all", "cost": 500}') AS ra \gset
RESET ROLE;
SET LOCAL ROLE ap5_bob;
SELECT approval.approve(:ra) AS ignored \gset
RESET ROLE;
SELECT is(pg_temp.states(:ra), ARRAY['approved', 'skipped', 'active'], 'reapprove "all": round 1 skipped s2');
SET LOCAL ROLE ap5_dave;
SELECT approval.request_changes(:ra, 'add a quote') AS ignored \gset
RESET ROLE;
SET LOCAL ROLE ap5_alice;
SELECT approval.resubmit(:ra, '{"kind": "re-all", "cost": 5000}') AS ignored \gset
RESET ROLE;
SELECT is(pg_temp.rounds(:ra), ARRAY['active/2', 'waiting/2', 'waiting/2'],
          'reapprove "all": every stage restarts in round 2, s1 active again');
SELECT is((SELECT approvals FROM approval.request_stage WHERE request_id = :ra AND stage = 's1'), 0,
          'reapprove "all": the earlier approval of s1 no longer counts');
SET LOCAL ROLE ap5_bob;
SELECT approval.approve(:ra) AS ignored \gset
RESET ROLE;
SELECT is(pg_temp.states(:ra), ARRAY['approved', 'active', 'waiting'],
          'reapprove "all": s2''s "when" sees the new payload and s2 runs');
SELECT is((SELECT count(*)::int FROM approval.decision WHERE request_id = :ra AND round = 1), 2,
          'reapprove "all": the round-1 decisions stay in history');
SET LOCAL ROLE ap5_carol;
SELECT approval.approve(:ra) AS ignored \gset
RESET ROLE;
SET LOCAL ROLE ap5_dave;
SELECT is(approval.approve(:ra)::text, 'approved', 'reapprove "all": approved after all three stages in round 2');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- preview(): order, resolved targets, required, runs; writes nothing
-- ---------------------------------------------------------------------------
SELECT approval.define_workflow($j${"name": "pv", "match": "$.kind == \"pv\"", "auto_approve": "$.cost == 0", "stages": [
    {"name": "fin",   "approvers": ["group:finance"], "order": 1, "min_approvals": "all", "when": "$.cost > 1000"},
    {"name": "mgr",   "approvers": ["manager"], "order": 0},
    {"name": "sec-b", "approvers": ["group:finance", "user:bob"], "order": 2, "when": "$.cost > 5000"},
    {"name": "sec-a", "approvers": ["user:dave", "user:erin"], "order": 2, "min_approvals": 2}]}$j$) > 0 AS defined \gset

SELECT (SELECT count(*) FROM approval.request) AS n_request,
       (SELECT count(*) FROM approval.request_stage) AS n_stage,
       (SELECT count(*) FROM approval.decision) AS n_decision,
       (SELECT count(*) FROM approval.event) AS n_event,
       (SELECT count(*) FROM approval.workflow) AS n_workflow \gset

SELECT results_eq(
    $$SELECT stage_order, stage, targets, required, runs
        FROM approval.preview('pv', '{"kind": "pv", "cost": 1500}', 'alice')$$,
    $$VALUES (0, 'mgr', ARRAY['user:bob'], 1, true),
             (1, 'fin', ARRAY['group:finance'], 3, true),
             (2, 'sec-b', ARRAY['group:finance', 'user:bob'], 1, false),
             (2, 'sec-a', ARRAY['user:dave', 'user:erin'], 2, true)$$,
    'preview: stages by order then index, manager -> user:bob, "all" = 3 finance members, runs per "when"');
SELECT results_eq(
    $$SELECT stage, targets, runs FROM approval.preview('pv', '{"kind": "pv", "cost": 9000}', 'bob')$$,
    $$VALUES ('mgr', ARRAY['user:carol'], true), ('fin', ARRAY['group:finance'], true),
             ('sec-b', ARRAY['group:finance', 'user:bob'], true), ('sec-a', ARRAY['user:dave', 'user:erin'], true)$$,
    'preview: manager resolved for the requester given (bob -> user:carol)');
SELECT is((SELECT array_agg(runs) FROM approval.preview('pv', '{"kind": "pv", "cost": 0}', 'alice')),
          ARRAY[false, false, false, false], 'preview: auto_approve holds, so no stage runs');
SELECT is((SELECT array_agg(stage) FROM approval.preview(NULL, '{"kind": "pv", "cost": 1500}', 'alice')),
          ARRAY['mgr', 'fin', 'sec-b', 'sec-a'], 'preview(NULL, ...) routes by "match"');
SELECT throws_ok($$SELECT * FROM approval.preview('pv', '{"kind": "pv", "cost": 1500}', 'carol')$$, 'AP011', NULL,
                 'preview for a requester without a manager is AP011, as submit would be');

-- ---------------------------------------------------------------------------
-- simulate(): a draft against past requests
-- ---------------------------------------------------------------------------
SELECT results_eq(
    format($$SELECT request_id, would_match, would_auto_approve, would_run, did_run, differs, change
               FROM approval.simulate('{"name": "skips", "match": "$.kind == \"skips\"", "auto_approve": "$.middle == true",
                   "stages": [{"name": "first", "approvers": ["user:bob"], "when": "$.first == true"},
                              {"name": "last", "approvers": ["user:carol"]}]}')
              WHERE request_id IN (%s, %s, %s, %s) ORDER BY request_id$$, :r1, :r2, :r3, :r4),
    format($$VALUES (%s::bigint, true, true,  '{}'::text[],       '{middle}'::text[],      true,  'would be approved at once (was pending)'),
                    (%s,         true, false, '{first,last}',     '{first,last}',          false, NULL),
                    (%s,         true, false, '{last}',           '{par-a,par-b}',         true,  'stages: +last, -par-a, -par-b'),
                    (%s,         true, false, '{last}',           '{}',                    true,  'stages: +last')$$,
           :r1, :r2, :r3, :r4),
    'simulate: would_match, would_auto_approve, would_run, did_run, differs and change per past request');
SELECT results_eq(
    format($$SELECT request_id, would_match, would_auto_approve, differs, change
               FROM approval.simulate('{"name": "auto", "match": "$.kind == \"auto\"",
                   "stages": [{"name": "it", "approvers": ["user:bob"]}]}')
              WHERE workflow = 'auto' ORDER BY request_id$$),
    format($$VALUES (%s::bigint, true, false, true, 'would need approval (was approved at once)'),
                    (%s, true, false, false, NULL::text)$$, :auto0, :auto5),
    'simulate: a draft without auto_approve against requests approved at once and not');
SELECT results_eq(
    format($$SELECT request_id, would_match, differs, change
               FROM approval.simulate('{"name": "sim-new", "match": "$.kind == \"auto\""}')
              WHERE would_match OR request_id = %s ORDER BY request_id$$, :r1),
    format($$VALUES (%s::bigint, false, false, NULL::text),
                    (%s, true, true, 'would also match (went to auto)'),
                    (%s, true, true, 'would also match (went to auto)')$$, :r1, :auto0, :auto5),
    'simulate: a new workflow reports the requests it would also match, and not the others');
SELECT throws_ok($$SELECT * FROM approval.simulate('{"name": "draft", "match": "$.kind =="}')$$, 'AP005', NULL,
                 'simulate: a bad draft is AP005');
SET LOCAL ROLE ap5_alice;
SELECT throws_ok($$SELECT * FROM approval.simulate('{"name": "draft"}')$$, '42501', NULL,
                 'simulate: only approval_admin (42501 for an approval_user)');
RESET ROLE;

SELECT is(ARRAY[(SELECT count(*) FROM approval.request), (SELECT count(*) FROM approval.request_stage),
                (SELECT count(*) FROM approval.decision), (SELECT count(*) FROM approval.event),
                (SELECT count(*) FROM approval.workflow)],
          ARRAY[:n_request, :n_stage, :n_decision, :n_event, :n_workflow]::bigint[],
          'preview() and simulate() wrote nothing (request, request_stage, decision, event, workflow)');

-- ---------------------------------------------------------------------------
-- AP008: nothing matches once every workflow is disabled
-- ---------------------------------------------------------------------------
SELECT count(approval.disable_workflow(name)) AS disabled FROM approval.workflows \gset
SELECT is(approval.route('{"kind": "cmp", "a": 1, "b": 0, "c": 2, "d": 4, "e": 6, "f": 6}', 'alice'), NULL,
          'every workflow disabled: a payload that matched before routes nowhere');
SET LOCAL ROLE ap5_alice;
SELECT throws_ok($$SELECT approval.submit(NULL, '{"kind": "cmp", "a": 1, "b": 0, "c": 2, "d": 4, "e": 6, "f": 6}')$$,
                 'AP008', NULL, 'submit(NULL, ...) with no matching workflow is AP008');
RESET ROLE;

-- whatever happened above, every request's rows still replay from its events
RESET ROLE;
SELECT is_empty($$SELECT request_id, problem FROM approval.verify_audit() WHERE NOT ok$$,
                'verify_audit(): every request''s rows agree with its events');

SELECT * FROM finish();
ROLLBACK;
