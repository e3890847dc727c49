-- pgTAP: retention and the audit (issue 12 parts 2 and 3): verify_audit()
-- replays each request's events and reports where the request, stage and
-- decision rows disagree with them; purge() removes closed requests and
-- leaves tombstones; the tombstones and checkpoints are append-only; every
-- refusal.  Checkpoints need committed events (the horizon of
-- events_after() leaves out a transaction's own), so test/t/019_audit.pl
-- covers them.
\set ON_ERROR_STOP 1
BEGIN;

SELECT plan(76);

SELECT current_setting('search_path') AS search_path_before \gset
CREATE EXTENSION approval;
SELECT set_config('search_path', :'search_path_before', true) AS search_path_restored \gset

CREATE ROLE ap_t_alice;
CREATE ROLE ap_t_bob;
CREATE ROLE ap_t_carol;
CREATE ROLE ap_t_admin;
CREATE ROLE ap_t_app;
CREATE ROLE ap_t_adminapp;       -- an admin role that is also a gateway
GRANT approval_user TO ap_t_alice, ap_t_bob, ap_t_carol;
GRANT approval_admin TO ap_t_admin, ap_t_adminapp;
GRANT approval_gateway TO ap_t_app, ap_t_adminapp;

INSERT INTO approval.principal (id, display_name, pg_role) VALUES
    ('alice', 'Alice', 'ap_t_alice'),
    ('bob',   'Bob',   'ap_t_bob'),
    ('carol', 'Carol', 'ap_t_carol'),
    ('root',  'Root',  'ap_t_admin');

SELECT approval.define_workflow('{"name": "tap-two", "stages": [
          {"name": "review",  "approvers": ["user:bob"]},
          {"name": "finance", "approvers": ["user:carol"]}]}') AS wf_two \gset
SELECT approval.define_workflow('{"name": "tap-one", "stages": [
          {"name": "review", "approvers": ["user:carol", "user:bob"], "min_approvals": 2}]}') AS wf_one \gset
SELECT approval.define_workflow('{"name": "tap-auto", "auto_approve": "$.cost == 0",
          "stages": [{"name": "review", "approvers": ["user:carol"]}]}') AS wf_auto \gset

-- a: approved in two stages; b: rejected; c: changes requested, resubmitted,
-- approved; d: commented, cancelled; e: pending with one of two votes;
-- f: approved at submit
SET LOCAL ROLE ap_t_alice;
SELECT approval.submit('tap-two', '{"cost": 1}', 'a') AS a \gset
SELECT approval.submit('tap-one', '{"cost": 2}', 'b') AS b \gset
SELECT approval.submit('tap-one', '{"cost": 3}', 'c') AS c \gset
SELECT approval.submit('tap-one', '{"cost": 4}', 'd') AS d \gset
SELECT approval.submit('tap-one', '{"cost": 5}', 'e') AS e \gset
SELECT approval.submit('tap-auto', '{"cost": 0}', 'f') AS f \gset
SELECT approval.comment(:d, 'never mind') AS ignored \gset
SELECT approval.cancel(:d, 'not needed') AS ignored \gset
RESET ROLE;
SET LOCAL ROLE ap_t_bob;
SELECT approval.approve(:a) AS ignored \gset
SELECT approval.approve(:c) AS ignored \gset
SELECT approval.approve(:e) AS ignored \gset
RESET ROLE;
SET LOCAL ROLE ap_t_carol;
SELECT approval.approve(:a) AS ignored \gset
SELECT approval.reject(:b, 'over_budget') AS ignored \gset
SELECT approval.request_changes(:c, 'say why') AS ignored \gset
RESET ROLE;
SET LOCAL ROLE ap_t_alice;
SELECT approval.resubmit(:c, '{"cost": 3, "why": "needed"}') AS ignored \gset
RESET ROLE;
SET LOCAL ROLE ap_t_carol;
SELECT approval.approve(:c) AS ignored \gset
RESET ROLE;
SET LOCAL ROLE ap_t_bob;
SELECT approval.approve(:c) AS c_state \gset
RESET ROLE;
SELECT is(:'c_state'::text, 'approved', 'c is approved after its resubmission, by both');

-- ---------------------------------------------------------------------------
-- An untouched log replays to the rows there are
-- ---------------------------------------------------------------------------
SELECT is((SELECT count(*)::int FROM approval.verify_audit()), 6, 'verify_audit() has a row per request');
SELECT is_empty($$SELECT request_id, problem FROM approval.verify_audit() WHERE NOT ok OR problem IS NOT NULL$$,
                'every request replays to its rows: no problem');
SELECT is((SELECT checkpoint FROM approval.verify_audit(:a)), NULL::bigint, 'a request''s row names no checkpoint');

-- ---------------------------------------------------------------------------
-- Tampering with the rows, which the hash chain does not cover
-- ---------------------------------------------------------------------------
SAVEPOINT tampering;
UPDATE approval.request SET state = 'approved' WHERE id = :b;
SELECT is((SELECT ok FROM approval.verify_audit(:b)), false, 'a rejected request set to approved is reported');
SELECT matches((SELECT problem FROM approval.verify_audit(:b)), 'its state is approved, its events say rejected',
               '... saying what its events say');
SELECT is((SELECT first_bad_seq FROM approval.verify_audit(:b)), NULL::bigint, '... and its chain is intact');

UPDATE approval.request_stage SET approvals = 2 WHERE request_id = :e;
SELECT matches((SELECT problem FROM approval.verify_audit(:e)),
               'stage review counts 2 approvals and 0 rejections, its events 1 and 0',
               'an approval count changed is reported');

INSERT INTO approval.decision (request_id, stage, actor, decision, round)
VALUES (:a, 'finance', 'mallory', 'approve', 1);
SELECT matches((SELECT problem FROM approval.verify_audit(:a)),
               'a decision row no event records: approve by mallory at finance \(round 1\)',
               'a decision row added is reported');

DELETE FROM approval.decision WHERE request_id = :c AND actor = 'carol' AND decision = 'request_changes';
SELECT matches((SELECT problem FROM approval.verify_audit(:c)),
               'no decision row for its event: request_changes by carol at review',
               'a decision row removed is reported');

UPDATE approval.request SET decided_at = decided_at - interval '1 day', requester = 'bob' WHERE id = :d;
SELECT matches((SELECT problem FROM approval.verify_audit(:d)), 'its requester is bob, its events say alice',
               'a requester changed is reported');
SELECT matches((SELECT problem FROM approval.verify_audit(:d)), 'it was decided at .*, its events say',
               'a decided_at changed is reported');

UPDATE approval.request_stage SET state = 'skipped' WHERE request_id = :f;
UPDATE approval.request SET escalations = 3 WHERE id = :f;
SELECT matches((SELECT problem FROM approval.verify_audit(:f)), 'it counts 3 escalations, its events 0',
               'an escalation count changed is reported');
SELECT doesnt_match((SELECT problem FROM approval.verify_audit(:f)), 'stage review',
                    'the stages of a request approved at submit are skipped, as its events say');

SELECT is((SELECT array_agg(request_id ORDER BY request_id) FROM approval.verify_audit() WHERE NOT ok),
          ARRAY[:a, :b, :c, :d, :e, :f]::bigint[], 'verify_audit() names exactly the requests whose rows were changed');
ROLLBACK TO tampering;

-- what the event log keeps beside the hash: its state column
SAVEPOINT tampering;
ALTER TABLE approval.event DISABLE TRIGGER event_no_update_delete;
UPDATE approval.event SET state = 'approved' WHERE request_id = :b AND kind = 'rejected';
ALTER TABLE approval.event ENABLE ALWAYS TRIGGER event_no_update_delete;
SELECT matches((SELECT problem FROM approval.verify_audit(:b)),
               'event [0-9]+ \(rejected\) says the request became approved, its events say rejected',
               'an event''s unhashed state changed is reported');
ROLLBACK TO tampering;

-- the first kind verify_audit() missed: all of a request's events deleted
-- and last_hash cleared
SAVEPOINT tampering;
ALTER TABLE approval.event DISABLE TRIGGER event_no_update_delete;
DELETE FROM approval.event WHERE request_id = :b;
ALTER TABLE approval.event ENABLE ALWAYS TRIGGER event_no_update_delete;
UPDATE approval.request SET last_hash = NULL WHERE id = :b;
SELECT is((SELECT ok FROM approval.verify_audit(:b)), false, 'a request whose events are all gone is reported');
SELECT matches((SELECT problem FROM approval.verify_audit(:b)), 'it has no events: its log was removed',
               '... as having no events');
ROLLBACK TO tampering;

-- events left of a request deleted
SAVEPOINT tampering;
DELETE FROM approval.request_stage WHERE request_id = :d;
DELETE FROM approval.decision WHERE request_id = :d;
DELETE FROM approval.request WHERE id = :d;
SELECT is((SELECT problem FROM approval.verify_audit() WHERE request_id = :d),
          'there are events of a request that is not in approval.request (removed without approval.purge()?)',
          'events of a request deleted without purge are reported');
ROLLBACK TO tampering;

-- the newest events removed: the chain ends before the stored head
SAVEPOINT tampering;
ALTER TABLE approval.event DISABLE TRIGGER event_no_update_delete;
DELETE FROM approval.event WHERE seq = (SELECT max(seq) FROM approval.event WHERE request_id = :e);
ALTER TABLE approval.event ENABLE ALWAYS TRIGGER event_no_update_delete;
SELECT matches((SELECT problem FROM approval.verify_audit(:e)), 'its hash chain does not end at the head stored',
               'the newest event removed is reported');
ROLLBACK TO tampering;

-- what the submitted event says of the request: its title, subject, time
-- and workflow version
SAVEPOINT tampering;
UPDATE approval.request SET title = 'forged', subject = 'forged', created_at = created_at - interval '1 day'
 WHERE id = :a;
SELECT matches((SELECT problem FROM approval.verify_audit(:a)), 'its title is forged, its events say a',
               'a title changed is reported');
SELECT matches((SELECT problem FROM approval.verify_audit(:a)), 'its subject is forged, its events say none',
               'a subject changed is reported');
SELECT matches((SELECT problem FROM approval.verify_audit(:a)), 'it was submitted at .*, its events say',
               'a created_at changed is reported');
ROLLBACK TO tampering;
SAVEPOINT tampering;
UPDATE approval.request SET workflow_id = :wf_one WHERE id = :a;
SELECT matches((SELECT problem FROM approval.verify_audit(:a)),
               'it is of workflow tap-one version 1, its events say tap-two version 1',
               'a request moved to another workflow version is reported');
ROLLBACK TO tampering;

-- a stage no event names yet, removed: the request would skip it (its
-- approval would say nothing else was wrong); one added; one reordered
SAVEPOINT tampering;
SET LOCAL ROLE ap_t_alice;
SELECT approval.submit('tap-two', '{"cost": 6}', 'g') AS g \gset
RESET ROLE;
DELETE FROM approval.request_stage WHERE request_id = :g AND stage = 'finance';
SELECT matches((SELECT problem FROM approval.verify_audit(:g)),
               'stage finance of workflow tap-two version 1 has no row',
               'a waiting stage removed is reported');
SET LOCAL ROLE ap_t_bob;
SELECT is(approval.approve(:g)::text, 'approved', '(without it, one approval approves the request)');
RESET ROLE;
SELECT matches((SELECT problem FROM approval.verify_audit(:g)),
               'stage finance of workflow tap-two version 1 has no row',
               '... and still reported once the request was approved so');
INSERT INTO approval.request_stage (request_id, stage, stage_idx, stage_order, targets, required)
VALUES (:e, 'extra', 5, 5, '{user:bob}', 1);
SELECT matches((SELECT problem FROM approval.verify_audit(:e)),
               'stage extra is not a stage of workflow tap-one version 1',
               'a stage row added is reported');
UPDATE approval.request_stage SET stage_order = 7 WHERE request_id = :a AND stage = 'finance';
SELECT matches((SELECT problem FROM approval.verify_audit(:a)),
               'stage finance is at index 1 and order 7, its workflow says 1 and 1',
               'a stage moved to another order is reported');
ROLLBACK TO tampering;

-- what the events say of a decision: a vote's reason, a comment's text
SAVEPOINT tampering;
UPDATE approval.decision SET reason = 'forged' WHERE request_id = :b AND decision = 'reject';
SELECT matches((SELECT problem FROM approval.verify_audit(:b)),
               'a decision row no event records: reject by [a-z]+ at review \(round 1\) reason "forged"',
               'a vote''s reason changed is reported');
UPDATE approval.decision SET comment = 'forged' WHERE request_id = :d AND decision = 'comment';
SELECT matches((SELECT problem FROM approval.verify_audit(:d)),
               'a decision row no event records: comment by alice comment "forged"',
               'a comment''s text changed is reported');
UPDATE approval.decision SET comment = 'forged' WHERE request_id = :c AND decision = 'request_changes';
SELECT matches((SELECT problem FROM approval.verify_audit(:c)),
               'a decision row no event records: request_changes by carol at review \(round 1\) comment "forged"',
               'the comment of a request for changes changed is reported');
ROLLBACK TO tampering;

-- a tombstone whose arrays disagree (a seq without its hash), under a
-- checkpoint that covers it: reported, and the server does not crash
SAVEPOINT tampering;
INSERT INTO approval.checkpoints VALUES (1, 1000000, 2, '\x00', now());
INSERT INTO approval.purged (request_id, workflow, state, first_seq, last_seq, event_seqs, event_hashes,
                             purged_at, purged_by)
VALUES (999999, 'x', 'approved', 1, 2, '{1,2}', '{"\\x00"}', now(), 'root');
SELECT matches((SELECT problem FROM approval.verify_audit() WHERE checkpoint = 1 AND NOT ok LIMIT 1),
               'checkpoint 1 \(seqs 1 to 1000000\): the log no longer gives its digest',
               'a damaged tombstone is reported by the checkpoint that covers it');
ROLLBACK TO tampering;

SELECT is_empty($$SELECT request_id FROM approval.verify_audit() WHERE NOT ok$$,
                'after the rollbacks every request verifies again');

-- ---------------------------------------------------------------------------
-- Purge
-- ---------------------------------------------------------------------------

SET LOCAL ROLE ap_t_alice;
SELECT throws_ok($$SELECT approval.purge(now())$$, '42501', NULL, 'an approval_user cannot purge');
RESET ROLE;
SET LOCAL ROLE ap_t_app;
SELECT throws_ok($$SELECT approval.purge(now())$$, '42501', NULL, 'a gateway cannot purge');
RESET ROLE;
SET LOCAL ROLE ap_t_adminapp;
SET LOCAL approval.actor = 'alice';
SELECT throws_ok($$SELECT approval.purge(now() + interval '1 hour')$$, '42501',
                 'only an approval_admin may purge requests',
                 'an admin role acting for a principal who is no admin cannot purge');
RESET approval.actor;
RESET ROLE;

-- g: a token was issued for it; h: a held change of a governed table; both closed
CREATE TABLE public.ap_t_licenses (id int PRIMARY KEY, seats int);
SELECT approval.govern('public.ap_t_licenses', 'tap-one', '{INSERT}') AS ignored \gset
SET LOCAL ROLE ap_t_alice;
SELECT approval.submit('tap-one', '{"cost": 6}', 'g') AS g \gset
RESET ROLE;
SET LOCAL ROLE ap_t_app;
SELECT approval.issue_token(:g, 'carol') AS g_token \gset
RESET ROLE;
SET LOCAL ROLE ap_t_alice;
SELECT approval.cancel(:g) AS ignored \gset
RESET ROLE;
INSERT INTO public.ap_t_licenses VALUES (1, 5);
SELECT request_id AS h FROM approval.held_change \gset
SET LOCAL ROLE ap_t_carol;
SELECT approval.reject(:h, 'no') AS ignored \gset
RESET ROLE;

SELECT count(*) AS events_before FROM approval.event \gset
SELECT array_agg(seq ORDER BY seq) AS b_seqs, (SELECT last_hash FROM approval.request WHERE id = :b) AS b_head
  FROM approval.event WHERE request_id = :b \gset
SET LOCAL ROLE ap_t_admin;
SELECT throws_ok($$SELECT approval.purge(NULL)$$, '22023', NULL, 'purge(NULL) is refused');
SELECT is(approval.purge(now() - interval '1 hour'), 0::bigint, 'nothing was decided an hour ago: nothing purged');
SELECT is(approval.purge(now() + interval '1 hour', 'tap-two'), 1::bigint, 'purge of one workflow: a');
SELECT is(approval.purge(now() + interval '1 hour'), 6::bigint, 'purge of the rest: b, c, d, f, g and h; e is open');
SELECT is(approval.purge(now() + interval '1 hour'), 0::bigint, 'purged twice: nothing more');
RESET ROLE;

SELECT is((SELECT array_agg(id ORDER BY id) FROM approval.request), ARRAY[:e]::bigint[],
          'only the open request is left');
SELECT is_empty(format($$SELECT 1 FROM approval.event WHERE request_id <> %s
                         UNION ALL SELECT 1 FROM approval.request_stage WHERE request_id <> %s
                         UNION ALL SELECT 1 FROM approval.decision WHERE request_id <> %s$$, :e, :e, :e),
                'the purged requests'' events, stages and decisions are gone');
SELECT is((SELECT array_agg(request_id ORDER BY request_id) FROM approval.purged),
          ARRAY[:a, :b, :c, :d, :f, :g, :h]::bigint[], 'one tombstone per purged request');
SELECT is_empty($$SELECT 1 FROM approval.token UNION ALL SELECT 1 FROM approval.held_change$$,
                'the purged requests'' tokens and held changes are gone');
SELECT results_eq(format($$SELECT workflow, state::text, purged_by, event_seqs, last_hash, first_seq, last_seq
                             FROM approval.purged WHERE request_id = %s$$, :b),
                  format($$VALUES ('tap-one', 'rejected', 'root', %L::bigint[], %L::bytea, (%L::bigint[])[1],
                                   (%L::bigint[])[array_length(%L::bigint[], 1)])$$,
                         :'b_seqs', :'b_head', :'b_seqs', :'b_seqs', :'b_seqs'),
                  'the tombstone keeps the workflow, final state, purger, seqs and last hash');
SELECT is((SELECT sum(cardinality(event_seqs))::int FROM approval.purged) +
          (SELECT count(*)::int FROM approval.event), :events_before::int,
          'every event is in the log or in a tombstone');
SELECT ok((SELECT bool_and(cardinality(event_seqs) = cardinality(event_hashes) AND decided_at IS NOT NULL
                           AND purged_at = now()) FROM approval.purged),
          'each tombstone has a hash per seq, a decided_at and the purge''s time');
SELECT is_empty($$SELECT request_id FROM approval.verify_audit() WHERE NOT ok$$,
                'after the purge the log verifies');
SELECT is((SELECT count(*)::int FROM approval.verify_audit()), 1, 'verify_audit() reports the one request left');

-- the guards still refuse every other change
SELECT throws_ok(format('DELETE FROM approval.event WHERE request_id = %s', :e), '42501', NULL,
                 'DELETE on approval.event is still refused after a purge');
SELECT throws_ok(format('UPDATE approval.purged SET state = ''approved'' WHERE request_id = %s', :b), '42501',
                 'approval.purged is append-only: UPDATE is not allowed', 'a tombstone cannot be changed');
SELECT throws_ok('DELETE FROM approval.purged', '42501',
                 'approval.purged is append-only: DELETE is not allowed', 'a tombstone cannot be removed');
SELECT throws_ok('TRUNCATE approval.purged', '42501', NULL, 'the tombstones cannot be truncated');
SET LOCAL ROLE ap_t_admin;
SELECT throws_ok($$INSERT INTO approval.checkpoints VALUES (1, 1, 1, '\x00', now())$$, '42501', NULL,
                 'an approval_admin cannot write approval.checkpoints');
SELECT throws_ok($$INSERT INTO approval.purged (request_id, workflow, state, event_seqs, event_hashes, purged_at, purged_by)
                   VALUES (99, 'x', 'approved', '{}', '{}', now(), 'root')$$, '42501', NULL,
                 'an approval_admin cannot make a tombstone');
SELECT throws_ok($$DELETE FROM approval.request WHERE id = 1$$, '42501', NULL,
                 'an approval_admin cannot delete a request but through purge()');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- Checkpoints: who may make them, read them and verify against them
-- ---------------------------------------------------------------------------
SET LOCAL ROLE ap_t_alice;
SELECT throws_ok($$SELECT approval.checkpoint()$$, '42501', NULL, 'an approval_user cannot make a checkpoint');
SELECT throws_ok($$SELECT * FROM approval.checkpoints$$, '42501', NULL, 'an approval_user cannot read the checkpoints');
SELECT throws_ok($$SELECT * FROM approval.purged$$, '42501', NULL, 'an approval_user cannot read the tombstones');
SELECT throws_ok($$SELECT * FROM approval.verify_audit(since_checkpoint => '\x00')$$, '42501', NULL,
                 'an approval_user cannot check the log against a checkpoint');
RESET ROLE;
SET LOCAL ROLE ap_t_adminapp;
SET LOCAL approval.actor = 'alice';
SELECT throws_ok($$SELECT approval.checkpoint()$$, '42501', 'only an approval_admin may make a checkpoint',
                 'an admin role acting for a principal who is no admin cannot make a checkpoint');
RESET approval.actor;
RESET ROLE;
SET LOCAL ROLE ap_t_app;
SELECT lives_ok($$SELECT * FROM approval.checkpoints$$, 'a gateway (a witness) reads the checkpoints');
SELECT throws_ok($$SELECT approval.checkpoint()$$, '42501', NULL, 'a gateway cannot make a checkpoint');
RESET ROLE;
SET LOCAL ROLE ap_t_admin;
SELECT throws_ok(format($$SELECT * FROM approval.verify_audit(%s, '\x00')$$, :e), '22023', NULL,
                 'a checkpoint is checked with the whole log, not one request');
SELECT is(approval.checkpoint(), NULL::approval.checkpoints, 'a transaction''s own events are not below the horizon: no checkpoint yet');
SELECT results_eq($$SELECT ok, problem FROM approval.verify_audit(since_checkpoint => '\x00') WHERE request_id IS NULL$$,
                  $$VALUES (false, 'there is no checkpoint: the log cannot have the digest kept')$$,
                  'a digest checked against a log without checkpoints is not found');
RESET ROLE;

SELECT has_function('approval', 'purge', ARRAY['timestamp with time zone', 'text'], 'approval.purge(timestamptz, text) exists');
SELECT has_function('approval', 'checkpoint', ARRAY[]::text[], 'approval.checkpoint() exists');
SELECT ok(NOT has_function_privilege(r, f, 'EXECUTE'), format('%s may not execute %s', r, f))
  FROM unnest(ARRAY['approval_user', 'approval_gateway']) AS r,
       unnest(ARRAY['approval.purge(timestamptz, text)', 'approval.checkpoint()']) AS f ORDER BY r, f;
SELECT ok(has_function_privilege('approval_admin', f, 'EXECUTE'), format('approval_admin may execute %s', f))
  FROM unnest(ARRAY['approval.purge(timestamptz, text)', 'approval.checkpoint()']) AS f ORDER BY f;

SELECT * FROM finish();
ROLLBACK;
