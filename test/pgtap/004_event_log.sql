-- pgTAP: the event log (DESIGN §7): append-only even for the owner, one
-- hash chain per request checked by verify_audit(), tampering detected,
-- approval.notify = off, events_after() and ack().
--
-- Everything happens in one transaction that is rolled back, including
-- CREATE EXTENSION and the roles the test makes.  NOTIFY delivery cannot be
-- observed inside one transaction; a TAP test covers it.
\set ON_ERROR_STOP 1
BEGIN;

SELECT plan(55);

SELECT current_setting('search_path') AS search_path_before \gset
CREATE EXTENSION approval;
-- pgTAP lives in public; the install script's SET search_path outlives
-- CREATE EXTENSION (see 001_identity), so put the session's path back.
SELECT set_config('search_path', :'search_path_before', true) AS search_path_restored \gset

CREATE ROLE ap_t_alice;
CREATE ROLE ap_t_bob;
CREATE ROLE ap_t_carol;
CREATE ROLE ap_t_erin;
CREATE ROLE ap_t_nobody;
CREATE ROLE ap_t_admin;
CREATE ROLE ap_t_app;
GRANT approval_user TO ap_t_alice, ap_t_bob, ap_t_carol, ap_t_erin, ap_t_nobody;
GRANT approval_admin TO ap_t_admin;
GRANT approval_gateway TO ap_t_app;

INSERT INTO approval.principal (id, display_name, pg_role) VALUES
    ('alice', 'Alice', 'ap_t_alice'),
    ('bob',   'Bob',   'ap_t_bob'),
    ('carol', 'Carol', 'ap_t_carol'),
    ('erin',  'Erin',  'ap_t_erin');

SELECT approval.define_workflow('{"name": "tap-two", "stages": [
          {"name": "review",  "approvers": ["user:bob"]},
          {"name": "finance", "approvers": ["user:carol"]}]}') AS wf_two \gset
SELECT approval.define_workflow('{"name": "tap-one", "stages": [
          {"name": "review", "approvers": ["user:carol"]}]}') AS wf_one \gset

-- ---------------------------------------------------------------------------
-- GUC defaults
-- ---------------------------------------------------------------------------
SELECT is(current_setting('approval.notify'), 'commit', 'approval.notify is commit by default');
SELECT is(current_setting('approval.notify_channel'), 'approval', 'approval.notify_channel is "approval" by default');

-- ---------------------------------------------------------------------------
-- Workflows that run to every end
-- ---------------------------------------------------------------------------
-- a: approved in two stages.  b: rejected.  c: changes requested, resubmitted,
-- approved.  d: erin's, commented and cancelled.
SET LOCAL ROLE ap_t_alice;
SELECT approval.submit('tap-two', '{"cost": 1}', 'a') AS a \gset
SELECT approval.submit('tap-one', '{"cost": 2}', 'b') AS b \gset
SELECT approval.submit('tap-one', '{"cost": 3}', 'c') AS c \gset
RESET ROLE;
SET LOCAL ROLE ap_t_erin;
SELECT approval.submit('tap-one', '{"cost": 4}', 'd') AS d \gset
SELECT approval.comment(:d, 'never mind') AS ignored \gset
SELECT approval.cancel(:d, 'not needed') AS d_state \gset
RESET ROLE;
SET LOCAL ROLE ap_t_bob;
SELECT approval.approve(:a) AS ignored \gset
RESET ROLE;
SET LOCAL ROLE ap_t_carol;
SELECT approval.approve(:a) AS a_state \gset
SELECT approval.reject(:b, 'over_budget') AS b_state \gset
SELECT approval.request_changes(:c, 'say why') AS ignored \gset
RESET ROLE;
SET LOCAL ROLE ap_t_alice;
SELECT approval.resubmit(:c, '{"cost": 3, "why": "needed"}') AS ignored \gset
RESET ROLE;
SET LOCAL ROLE ap_t_carol;
SELECT approval.approve(:c) AS c_state \gset
RESET ROLE;

SELECT is(ARRAY[:'a_state', :'b_state', :'c_state', :'d_state']::text[],
          ARRAY['approved', 'rejected', 'approved', 'cancelled'],
          'the four requests reached approved, rejected, approved, cancelled');

-- ---------------------------------------------------------------------------
-- Append-only, even for the superuser that owns the extension
-- ---------------------------------------------------------------------------
SELECT ok((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), 'this part runs as a superuser');
SELECT is((SELECT extowner::regrole::text FROM pg_extension WHERE extname = 'approval'), current_user::text,
          'the current user owns the extension');
SELECT count(*) AS events_before FROM approval.event \gset
SELECT throws_ok(format('UPDATE approval.event SET kind = ''approved'' WHERE request_id = %s', :b), '42501', NULL,
                 'UPDATE on approval.event raises 42501 for the owner');
SELECT throws_ok(format('UPDATE approval.event SET data = ''{}'' WHERE seq = (SELECT max(seq) FROM approval.event)'),
                 '42501', NULL, 'UPDATE of the newest event raises 42501');
SELECT throws_ok(format('DELETE FROM approval.event WHERE request_id = %s', :a), '42501', NULL,
                 'DELETE on approval.event raises 42501 for the owner');
SELECT throws_ok('DELETE FROM approval.event', '42501', NULL,
                 'DELETE of the whole log raises 42501');
SELECT throws_ok('TRUNCATE approval.event', '42501', NULL,
                 'TRUNCATE on approval.event raises 42501 for the owner');
SELECT is((SELECT count(*) FROM approval.event), :events_before::bigint, 'the log is unchanged');

-- ---------------------------------------------------------------------------
-- The chain
-- ---------------------------------------------------------------------------
SELECT is((SELECT count(*)::int FROM approval.verify_audit()), (SELECT count(*)::int FROM approval.request),
          'verify_audit() reports one row per request');
SELECT is_empty($$SELECT request_id FROM approval.verify_audit() WHERE ok IS NOT TRUE$$,
                'verify_audit() reports ok for every request');
SELECT is_empty($$SELECT v.request_id FROM approval.verify_audit() v
                   WHERE v.events <> (SELECT count(*) FROM approval.event e WHERE e.request_id = v.request_id)$$,
                'verify_audit() counts every event of each request');
SELECT is((SELECT ok FROM approval.verify_audit(:a)), true, 'verify_audit(a) alone reports ok');
SELECT is((SELECT count(*)::int FROM approval.verify_audit(:a)), 1, 'verify_audit(a) reports one row');
SELECT is_empty($$SELECT seq FROM approval.event WHERE octet_length(hash) <> 32 OR hash IS NULL$$,
                'every event hash is 32 bytes (sha256)');
SELECT is((SELECT count(DISTINCT hash) FROM approval.event), (SELECT count(*) FROM approval.event),
          'no two events share a hash');
SELECT is_empty($$SELECT request_id FROM (
                    SELECT DISTINCT ON (request_id) request_id, kind FROM approval.event ORDER BY request_id, seq) f
                  WHERE kind <> 'submitted'$$,
                'each request''s chain starts with "submitted"');
SELECT is_empty($$SELECT r.id FROM approval.request r
                   WHERE r.state IN ('approved', 'rejected', 'cancelled')
                     AND (SELECT e.kind FROM approval.event e WHERE e.request_id = r.id
                           ORDER BY e.seq DESC LIMIT 1) <> r.state::text$$,
                'each closed request''s chain ends with its final state');
SELECT is((SELECT array_agg(kind ORDER BY seq) FROM approval.event
            WHERE request_id = :a AND kind IN ('submitted', 'stage_activated', 'voted', 'stage_approved', 'approved')),
          ARRAY['submitted', 'stage_activated', 'voted', 'stage_approved',
                'stage_activated', 'voted', 'stage_approved', 'approved'],
          'request a: submitted, two stages each activated, voted, approved, then approved');
SELECT is((SELECT array_agg(actor ORDER BY seq) FROM approval.event WHERE request_id = :a AND kind = 'voted'),
          ARRAY['bob', 'carol'], 'request a: the votes carry their actors');
SELECT ok((SELECT array_agg(kind ORDER BY seq) FROM approval.event WHERE request_id = :b)
            @> ARRAY['voted', 'stage_rejected', 'rejected'],
          'request b: voted, stage_rejected, rejected');
SELECT is((SELECT array_agg(kind ORDER BY seq) FROM approval.event
            WHERE request_id = :c AND kind IN ('changes_requested', 'resubmitted', 'stage_activated', 'approved')),
          ARRAY['stage_activated', 'changes_requested', 'resubmitted', 'stage_activated', 'approved'],
          'request c: changes_requested, resubmitted, the stage again, approved');
SELECT is((SELECT array_agg(kind ORDER BY seq) FROM approval.event
            WHERE request_id = :d AND kind IN ('commented', 'cancelled')),
          ARRAY['commented', 'cancelled'], 'request d: commented, cancelled');

-- as an approval_admin (verify_audit runs as the caller)
SET LOCAL ROLE ap_t_admin;
SELECT is((SELECT count(*)::int FROM approval.verify_audit() WHERE ok),
          4, 'an approval_admin verifies every request');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- approval.notify = off: everything works and is logged
-- ---------------------------------------------------------------------------
SET LOCAL approval.notify = off;
SET LOCAL ROLE ap_t_alice;
SELECT approval.submit('tap-one', '{}', 'quiet') AS n \gset
RESET ROLE;
SET LOCAL ROLE ap_t_carol;
SELECT is(approval.approve(:n), 'approved', 'with approval.notify = off a request is decided');
RESET ROLE;
SELECT is((SELECT array_agg(kind ORDER BY seq) FROM approval.event
            WHERE request_id = :n AND kind IN ('submitted', 'voted', 'approved')),
          ARRAY['submitted', 'voted', 'approved'], 'with approval.notify = off the events are logged');
SELECT is((SELECT ok FROM approval.verify_audit(:n)), true, 'with approval.notify = off the chain verifies');
SET LOCAL approval.notify = commit;

-- ---------------------------------------------------------------------------
-- events_after(seq, max) in a transaction that wrote events: the cursor is
-- gapless, so it holds back this transaction's own uncommitted events and
-- everything after them (the regress test "events" and the isolation spec
-- events_out_of_order follow committed ones); event_json(e)
-- ---------------------------------------------------------------------------
SELECT min(seq) AS first_seq, count(*) AS total FROM approval.event \gset

SELECT is((SELECT count(*) FROM approval.events_after(0, 100000)), 0::bigint,
          'events_after() holds back the events this transaction has not committed');
SET LOCAL ROLE ap_t_admin;
SELECT is((SELECT count(*) FROM approval.events_after(0)), 0::bigint,
          'events_after() holds them back for an approval_admin too');
RESET ROLE;
SELECT is((SELECT count(*) FROM approval.events_after(NULL)), 0::bigint,
          'events_after(NULL) returns nothing');
SELECT throws_ok('SELECT * FROM approval.events_after(0, -1)', '22023', 'max must not be negative',
                 'events_after() refuses a negative max');

SELECT is((SELECT array_agg(k ORDER BY k) FROM approval.event e, json_object_keys(approval.event_json(e)) k
            WHERE e.seq = :first_seq),
          ARRAY['actor', 'at', 'data', 'kind', 'request', 'seq', 'stage', 'state', 'targets', 'workflow'],
          'event_json() has the keys of a notification, and data');
SELECT is((SELECT approval.event_json(e)::jsonb - 'at'
             FROM approval.event e WHERE e.request_id = :d AND e.kind = 'stage_activated' ORDER BY e.seq LIMIT 1),
          (SELECT jsonb_build_object('seq', e.seq, 'kind', e.kind, 'request', e.request_id,
                                     'workflow', r.workflow, 'state', 'pending', 'stage', e.stage,
                                     'actor', e.actor, 'targets', to_jsonb(e.targets), 'data', e.data)
             FROM approval.event e JOIN approval.request r ON r.id = e.request_id
            WHERE e.request_id = :d AND e.kind = 'stage_activated' ORDER BY e.seq LIMIT 1),
          'event_json() of stage_activated: the request state once it happened, the stage and its targets');
SELECT is((SELECT (approval.event_json(e)->>'at')::timestamptz = e.at FROM approval.event e WHERE e.seq = :first_seq),
          true, 'event_json() "at" is the event''s time');
SELECT ok((SELECT count(*) = count(*) FILTER (WHERE e.targets IS NOT NULL) FROM approval.event e
            WHERE e.kind = 'stage_activated'),
          'every stage_activated event stores its targets');

-- ---------------------------------------------------------------------------
-- ack(name, seq): named cursors only move forward
-- ---------------------------------------------------------------------------
SET LOCAL ROLE ap_t_app;
SELECT lives_ok($$SELECT approval.ack('tap-listener', 5)$$, 'a gateway acks seq 5');
RESET ROLE;
SELECT is((SELECT last_seq FROM approval.subscriber WHERE name = 'tap-listener'), 5::bigint,
          'ack stores the cursor');
SET LOCAL ROLE ap_t_app;
SELECT lives_ok($$SELECT approval.ack('tap-listener', 9)$$, 'a gateway acks seq 9');
RESET ROLE;
SELECT is((SELECT last_seq FROM approval.subscriber WHERE name = 'tap-listener'), 9::bigint,
          'ack moves the cursor forward');
SET LOCAL ROLE ap_t_app;
SELECT lives_ok($$SELECT approval.ack('tap-listener', 7)$$, 'a gateway acks an older seq 7');
RESET ROLE;
SELECT is((SELECT last_seq FROM approval.subscriber WHERE name = 'tap-listener'), 9::bigint,
          'ack never moves the cursor back');
SELECT lives_ok($$SELECT approval.ack('tap-other', 2)$$, 'another subscriber acks seq 2');
SELECT is((SELECT array_agg(name || '=' || last_seq ORDER BY name) FROM approval.subscriber),
          ARRAY['tap-listener=9', 'tap-other=2'], 'each subscriber has its own cursor');

-- ---------------------------------------------------------------------------
-- Tampering (the append-only trigger disabled by a superuser; it fires even
-- under session_replication_role = replica, see 006_security)
-- ---------------------------------------------------------------------------
-- t1: one event's data changed.  t2: its newest event deleted.  t3: the
-- actor of its first event changed.  t4: a middle event deleted.  t5: all
-- its events deleted.
SET LOCAL ROLE ap_t_alice;
SELECT approval.submit('tap-one', '{}', 't1') AS t1 \gset
SELECT approval.comment(:t1, 'one') AS ignored \gset
SELECT approval.comment(:t1, 'two') AS ignored \gset
SELECT approval.submit('tap-one', '{}', 't2') AS t2 \gset
SELECT approval.comment(:t2, 'one') AS ignored \gset
SELECT approval.submit('tap-one', '{}', 't3') AS t3 \gset
SELECT approval.comment(:t3, 'one') AS ignored \gset
SELECT approval.submit('tap-one', '{}', 't4') AS t4 \gset
SELECT approval.comment(:t4, 'one') AS ignored \gset
SELECT approval.comment(:t4, 'two') AS ignored \gset
SELECT approval.submit('tap-one', '{}', 't5') AS t5 \gset
SELECT approval.comment(:t5, 'one') AS ignored \gset
RESET ROLE;
SELECT is_empty($$SELECT request_id FROM approval.verify_audit() WHERE ok IS NOT TRUE$$,
                'before tampering every chain verifies');

SELECT seq AS t1_mid FROM approval.event WHERE request_id = :t1 ORDER BY seq OFFSET 1 LIMIT 1 \gset
SELECT max(seq) AS t2_last FROM approval.event WHERE request_id = :t2 \gset
SELECT min(seq) AS t3_first FROM approval.event WHERE request_id = :t3 \gset
SELECT seq AS t4_mid FROM approval.event WHERE request_id = :t4 ORDER BY seq OFFSET 1 LIMIT 1 \gset

ALTER TABLE approval.event DISABLE TRIGGER event_no_update_delete;
UPDATE approval.event SET data = data || '{"tampered": true}' WHERE seq = :t1_mid;
DELETE FROM approval.event WHERE seq = :t2_last;
UPDATE approval.event SET actor = 'mallory' WHERE seq = :t3_first;
DELETE FROM approval.event WHERE seq = :t4_mid;
DELETE FROM approval.event WHERE request_id = :t5;
ALTER TABLE approval.event ENABLE ALWAYS TRIGGER event_no_update_delete;

SELECT is((SELECT ok FROM approval.verify_audit(:t1)), false, 'changed data: verify_audit reports not ok');
SELECT is((SELECT first_bad_seq FROM approval.verify_audit(:t1)), :t1_mid::bigint,
          'changed data: first_bad_seq is the changed event');
SELECT is((SELECT ok FROM approval.verify_audit(:t2)), false, 'deleted newest event: verify_audit reports not ok');
SELECT is((SELECT ok FROM approval.verify_audit(:t3)), false, 'changed actor: verify_audit reports not ok');
SELECT is((SELECT first_bad_seq FROM approval.verify_audit(:t3)), :t3_first::bigint,
          'changed actor: first_bad_seq is the changed event');
SELECT is((SELECT ok FROM approval.verify_audit(:t4)), false, 'deleted middle event: verify_audit reports not ok');
SELECT is((SELECT ok FROM approval.verify_audit(:t5)), false, 'all events deleted: verify_audit reports not ok');
SELECT is((SELECT array_agg(request_id ORDER BY request_id) FROM approval.verify_audit() WHERE NOT ok),
          ARRAY[:t1, :t2, :t3, :t4, :t5]::bigint[], 'verify_audit() names exactly the tampered requests');
SELECT is((SELECT count(*)::int FROM approval.verify_audit() WHERE ok), 5,
          'the other requests stay ok');

SELECT * FROM finish();
ROLLBACK;
