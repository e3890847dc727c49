-- pgTAP: privileges, pinned search_path and row-level security (DESIGN §8).
--
--   * PUBLIC may execute no function of the extension and use no relation;
--   * approval_user / approval_gateway may call the request API but not
--     define workflows; approval_admin may;
--   * state tables are written by no one but the extension's owner, reference
--     tables by approval_admin with plain SQL;
--   * a caller whose search_path shadows now(), jsonb_build_object() and
--     "=" for text gets the same results from submit/approve as anyone;
--   * a user sees the requests they submitted, are or were eligible at, or
--     voted on; approval_admin sees all; a hidden request is AP001.
--
-- Everything happens in one transaction that is rolled back, including
-- CREATE EXTENSION and the roles the test makes.
\set ON_ERROR_STOP 1
BEGIN;

SELECT plan(329);

SELECT current_setting('search_path') AS search_path_before \gset
CREATE EXTENSION approval;
-- pgTAP lives in public; the install script's SET search_path outlives
-- CREATE EXTENSION (see 001_identity), so put the session's path back.
SELECT set_config('search_path', :'search_path_before', true) AS search_path_restored \gset

-- ---------------------------------------------------------------------------
-- People.  Roles are NOLOGIN: the test switches with SET LOCAL ROLE.
-- ---------------------------------------------------------------------------
CREATE ROLE ap_t_alice;
CREATE ROLE ap_t_bob;
CREATE ROLE ap_t_carol;
CREATE ROLE ap_t_dave;
CREATE ROLE ap_t_erin;
CREATE ROLE ap_t_nobody;        -- may call the API, is no principal, answers for nothing
CREATE ROLE ap_t_mallory;       -- owns a schema that shadows pg_catalog names
CREATE ROLE ap_t_admin;
CREATE ROLE ap_t_app;           -- a web application acting for people
GRANT approval_user TO ap_t_alice, ap_t_bob, ap_t_carol, ap_t_dave, ap_t_erin, ap_t_nobody, ap_t_mallory;
GRANT approval_admin TO ap_t_admin;
GRANT approval_gateway TO ap_t_app;

INSERT INTO approval.principal (id, display_name, manager_id, pg_role) VALUES
    ('bob',   'Bob',   NULL,  'ap_t_bob'),
    ('alice', 'Alice', 'bob', 'ap_t_alice'),
    ('carol', 'Carol', NULL,  'ap_t_carol'),
    ('dave',  'Dave',  NULL,  'ap_t_dave'),
    ('erin',  'Erin',  NULL,  'ap_t_erin');

-- try(sql): run one statement, return its single value or 'ERROR <sqlstate>'.
-- No SET search_path: the statement runs under the caller's path.  Nothing
-- in it compares text, so a shadowed "=" cannot change what it reports.
CREATE SCHEMA ap_test;
GRANT USAGE ON SCHEMA ap_test TO PUBLIC;
CREATE FUNCTION ap_test.try(sql text) RETURNS text
    LANGUAGE plpgsql AS $$
DECLARE
    result text;
BEGIN
    EXECUTE sql INTO result;
    RETURN result;
EXCEPTION WHEN OTHERS THEN
    RETURN 'ERROR ' || SQLSTATE;
END
$$;

-- ---------------------------------------------------------------------------
-- PUBLIC gets nothing
-- ---------------------------------------------------------------------------
SELECT cmp_ok((SELECT count(*)::int FROM pg_proc WHERE pronamespace = 'approval'::regnamespace),
              '>=', 19, 'schema approval has the extension''s functions');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p
     WHERE p.pronamespace = 'approval'::regnamespace
       AND pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE')
$$, 'PUBLIC may execute no function in schema approval');
SELECT is_empty($$
    SELECT c.oid::regclass::text, a.privilege_type
      FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
     WHERE c.relnamespace = 'approval'::regnamespace AND a.grantee = 0
$$, 'PUBLIC holds no privilege on any table, view or sequence in schema approval');

-- ---------------------------------------------------------------------------
-- Who may call what
-- ---------------------------------------------------------------------------
SELECT ok(has_function_privilege(r, f, 'EXECUTE'), format('%s may execute %s', r, f))
  FROM unnest(ARRAY['approval_user', 'approval_gateway', 'approval_admin']) WITH ORDINALITY AS rr(r, rn),
       unnest(ARRAY['approval.submit(text,jsonb,text,text,text)', 'approval.approve(bigint,text)',
                    'approval.reject(bigint,text,text)', 'approval.request_changes(bigint,text)',
                    'approval.resubmit(bigint,jsonb,text)', 'approval.cancel(bigint,text)',
                    'approval.comment(bigint,text)',
                    'approval.delegate(text,timestamptz,timestamptz,text)',
                    'approval.revoke_delegation(bigint)', 'approval.current_actor()',
                    'approval.my_targets()', 'approval.events_after(bigint,integer)',
                    'approval.route(jsonb,text)', 'approval.preview(text,jsonb,text)',
                    'approval.business_add(timestamptz,interval,text)',
                    'approval.business_elapsed(timestamptz,timestamptz,text)',
                    'approval.sla_report(timestamptz,timestamptz,text)'])
                    WITH ORDINALITY AS ff(f, fn)
 ORDER BY rn, fn;

SELECT ok(NOT has_function_privilege(r, f, 'EXECUTE'), format('%s may not execute %s', r, f))
  FROM unnest(ARRAY['approval_user', 'approval_gateway']) WITH ORDINALITY AS rr(r, rn),
       unnest(ARRAY['approval.define_workflow(jsonb, text)', 'approval.disable_workflow(text)',
                    'approval.enable_workflow(text)', 'approval.tick(timestamptz, integer)',
                    'approval.next_due()', 'approval.schedule_with_pg_cron(text)',
                    'approval.unschedule_pg_cron()',
                    -- the admin tools (DESIGN §10)
                    'approval.reassign(bigint, text, text, text, text)',
                    'approval.override(bigint, text, text)',
                    'approval.delegate_for(text, text, timestamptz, timestamptz, text, text)',
                    'approval.transfer(bigint, text, text)'])
                    WITH ORDINALITY AS ff(f, fn)
 ORDER BY rn, fn;
-- verify_audit runs as the caller and checks the chains they can see
SELECT ok(has_function_privilege(r, 'approval.verify_audit(bigint,bytea)', 'EXECUTE'),
          format('%s may execute approval.verify_audit(bigint, bytea)', r))
  FROM unnest(ARRAY['approval_user', 'approval_gateway']) AS r ORDER BY r;

SELECT ok(has_function_privilege('approval_admin', f, 'EXECUTE'), format('approval_admin may execute %s', f))
  FROM unnest(ARRAY['approval.define_workflow(jsonb, text)', 'approval.disable_workflow(text)',
                    'approval.enable_workflow(text)', 'approval.verify_audit(bigint,bytea)',
                    'approval.tick(timestamptz, integer)', 'approval.next_due()',
                    'approval.schedule_with_pg_cron(text)', 'approval.unschedule_pg_cron()',
                    'approval.reassign(bigint, text, text, text, text)',
                    'approval.override(bigint, text, text)',
                    'approval.delegate_for(text, text, timestamptz, timestamptz, text, text)',
                    'approval.transfer(bigint, text, text)'])
                    WITH ORDINALITY AS ff(f, fn)
 ORDER BY fn;

-- the same, by calling
SET LOCAL ROLE ap_t_bob;
SELECT throws_ok($$SELECT approval.define_workflow('{"name": "tap-sneaky", "stages": []}')$$,
                 '42501', NULL, 'an approval_user cannot define a workflow');
SELECT throws_ok($$SELECT approval.disable_workflow('tap-sneaky')$$,
                 '42501', NULL, 'an approval_user cannot disable a workflow');
SELECT throws_ok($$SELECT approval.override(1, 'approve', 'mine')$$,
                 '42501', NULL, 'an approval_user cannot override a request');
RESET ROLE;

SET LOCAL ROLE ap_t_app;
SELECT throws_ok($$SELECT approval.define_workflow('{"name": "tap-sneaky", "stages": []}')$$,
                 '42501', NULL, 'an approval_gateway member cannot define a workflow');
RESET ROLE;

-- the lock that serializes the events without a request (delegate_for) is
-- no one's to read, take or block
SELECT ok(NOT has_table_privilege(r, 'approval.event_chain_lock', 'SELECT'),
          format('%s may not read approval.event_chain_lock', r))
  FROM unnest(ARRAY['approval_admin', 'approval_user', 'approval_gateway']) AS r ORDER BY r;

-- Workflows of this test, defined by an approval_admin member.
--   tap-two:  review (bob or dave, one of them), then finance (carol)
--   tap-one:  review (carol)
--   tap-dave: review (dave)
SET LOCAL ROLE ap_t_admin;
SELECT lives_ok($$SELECT approval.define_workflow('{"name": "tap-two", "stages": [
                    {"name": "review",  "approvers": ["user:bob", "user:dave"]},
                    {"name": "finance", "approvers": ["user:carol"]}]}')$$,
                'an approval_admin can define a workflow');
SELECT lives_ok($$SELECT approval.define_workflow('{"name": "tap-one", "stages": [
                    {"name": "review", "approvers": ["user:carol"]}]}')$$,
                'an approval_admin can define a second workflow');
SELECT lives_ok($$SELECT approval.define_workflow('{"name": "tap-dave", "stages": [
                    {"name": "review", "approvers": ["user:dave"]}]}')$$,
                'an approval_admin can define a third workflow');
SELECT lives_ok($$SELECT approval.disable_workflow('tap-dave')$$, 'an approval_admin can disable a workflow');
SELECT lives_ok($$SELECT approval.enable_workflow('tap-dave')$$, 'an approval_admin can enable a workflow');
RESET ROLE;
SELECT is((SELECT array_agg(name ORDER BY name) FROM approval.workflows WHERE enabled),
          ARRAY['tap-dave', 'tap-one', 'tap-two'], 'the admin''s workflows are there and enabled');

-- ---------------------------------------------------------------------------
-- State tables: no one writes them but through the functions
-- ---------------------------------------------------------------------------
CREATE TEMP TABLE ap_state_tables (tn int, tbl name, col name);
INSERT INTO ap_state_tables VALUES
    (1, 'request', 'title'), (2, 'request_stage', 'stage'), (3, 'decision', 'comment'),
    (4, 'event', 'data'), (5, 'workflow', 'enabled'), (6, 'workflow_stage', 'name'),
    (7, 'delegation', 'ends'), (8, 'event_chain_lock', 'id');
CREATE TEMP TABLE ap_write_ops (opn int, op text, stmt text);
INSERT INTO ap_write_ops VALUES
    (1, 'INSERT', 'INSERT INTO approval.%1$I DEFAULT VALUES'),
    (2, 'UPDATE', 'UPDATE approval.%1$I SET %2$I = %2$I'),
    (3, 'DELETE', 'DELETE FROM approval.%1$I'),
    (4, 'TRUNCATE', 'TRUNCATE approval.%1$I');
GRANT SELECT ON ap_state_tables, ap_write_ops TO PUBLIC;

SET LOCAL ROLE ap_t_bob;
SELECT throws_ok(format(o.stmt, t.tbl, t.col), '42501', NULL,
                 format('approval_user: %s on approval.%s is refused', o.op, t.tbl))
  FROM ap_state_tables t, ap_write_ops o ORDER BY t.tn, o.opn;
RESET ROLE;

SET LOCAL ROLE ap_t_admin;
SELECT throws_ok(format(o.stmt, t.tbl, t.col), '42501', NULL,
                 format('approval_admin: %s on approval.%s is refused', o.op, t.tbl))
  FROM ap_state_tables t, ap_write_ops o ORDER BY t.tn, o.opn;
RESET ROLE;

SET LOCAL ROLE ap_t_app;
SET LOCAL approval.actor = 'bob';
SELECT throws_ok(format(o.stmt, t.tbl, t.col), '42501', NULL,
                 format('approval_gateway: %s on approval.%s is refused', o.op, t.tbl))
  FROM ap_state_tables t, ap_write_ops o ORDER BY t.tn, o.opn;
RESET approval.actor;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- Reference tables: approval_admin writes them, approval_user reads them
-- ---------------------------------------------------------------------------
SET LOCAL ROLE ap_t_admin;
SELECT lives_ok($$INSERT INTO approval.principal (id, display_name) VALUES ('zed', 'Zed')$$,
                'approval_admin can INSERT into approval.principal');
SELECT lives_ok($$UPDATE approval.principal SET display_name = 'Zed Z' WHERE id = 'zed'$$,
                'approval_admin can UPDATE approval.principal');
SELECT lives_ok($$INSERT INTO approval.approver_group (name, description) VALUES ('tap-g', 'G')$$,
                'approval_admin can INSERT into approval.approver_group');
SELECT lives_ok($$UPDATE approval.approver_group SET description = 'G2' WHERE name = 'tap-g'$$,
                'approval_admin can UPDATE approval.approver_group');
SELECT lives_ok($$INSERT INTO approval.group_member (group_name, principal_id) VALUES ('tap-g', 'zed')$$,
                'approval_admin can INSERT into approval.group_member');
SELECT lives_ok($$UPDATE approval.group_member SET principal_id = 'erin' WHERE group_name = 'tap-g'$$,
                'approval_admin can UPDATE approval.group_member');
SELECT lives_ok($$DELETE FROM approval.group_member WHERE group_name = 'tap-g'$$,
                'approval_admin can DELETE from approval.group_member');
SELECT lives_ok($$DELETE FROM approval.approver_group WHERE name = 'tap-g'$$,
                'approval_admin can DELETE from approval.approver_group');
SELECT lives_ok($$DELETE FROM approval.principal WHERE id = 'zed'$$,
                'approval_admin can DELETE from approval.principal');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM approval.principal WHERE id = 'zed')
        + (SELECT count(*)::int FROM approval.approver_group WHERE name = 'tap-g'), 0,
          'the admin''s changes took effect');
INSERT INTO approval.approver_group (name, description) VALUES ('tap-ref', 'for the write tests');
INSERT INTO approval.group_member (group_name, principal_id) VALUES ('tap-ref', 'erin');

SET LOCAL ROLE ap_t_bob;
SELECT is((SELECT count(*)::int FROM approval.principal), 5, 'approval_user can read approval.principal');
SELECT is((SELECT count(*)::int FROM approval.approver_group), 1, 'approval_user can read approval.approver_group');
SELECT is((SELECT count(*)::int FROM approval.group_member), 1, 'approval_user can read approval.group_member');
SELECT throws_ok($$INSERT INTO approval.principal (id) VALUES ('bob2')$$, '42501', NULL,
                 'approval_user: INSERT on approval.principal is refused');
SELECT throws_ok($$UPDATE approval.principal SET manager_id = NULL WHERE id = 'alice'$$, '42501', NULL,
                 'approval_user: UPDATE on approval.principal is refused');
SELECT throws_ok($$DELETE FROM approval.principal WHERE id = 'erin'$$, '42501', NULL,
                 'approval_user: DELETE on approval.principal is refused');
SELECT throws_ok($$INSERT INTO approval.approver_group (name) VALUES ('mine')$$, '42501', NULL,
                 'approval_user: INSERT on approval.approver_group is refused');
SELECT throws_ok($$UPDATE approval.approver_group SET pg_role = 'ap_t_bob'$$, '42501', NULL,
                 'approval_user: UPDATE on approval.approver_group is refused');
SELECT throws_ok($$DELETE FROM approval.approver_group$$, '42501', NULL,
                 'approval_user: DELETE on approval.approver_group is refused');
SELECT throws_ok($$INSERT INTO approval.group_member VALUES ('tap-ref', 'bob')$$, '42501', NULL,
                 'approval_user: INSERT on approval.group_member is refused');
SELECT throws_ok($$UPDATE approval.group_member SET principal_id = 'bob'$$, '42501', NULL,
                 'approval_user: UPDATE on approval.group_member is refused');
SELECT throws_ok($$DELETE FROM approval.group_member$$, '42501', NULL,
                 'approval_user: DELETE on approval.group_member is refused');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- A hostile search_path changes nothing
-- ---------------------------------------------------------------------------
-- Mallory's schema shadows now(), jsonb_build_object() and "=" on text.
CREATE SCHEMA ap_evil AUTHORIZATION ap_t_mallory;
SET LOCAL ROLE ap_t_mallory;
GRANT USAGE ON SCHEMA ap_evil TO PUBLIC;
CREATE FUNCTION ap_evil.now() RETURNS timestamptz
    LANGUAGE sql STABLE AS $$ SELECT '2000-01-01 00:00:00+00'::timestamptz $$;
CREATE FUNCTION ap_evil.jsonb_build_object(VARIADIC text[]) RETURNS jsonb
    LANGUAGE sql IMMUTABLE AS $$ SELECT '{"evil": true}'::jsonb $$;
CREATE FUNCTION ap_evil.jsonb_build_object() RETURNS jsonb
    LANGUAGE sql IMMUTABLE AS $$ SELECT '{"evil": true}'::jsonb $$;
CREATE FUNCTION ap_evil.text_always_equal(text, text) RETURNS boolean
    LANGUAGE sql IMMUTABLE AS $$ SELECT true $$;
CREATE OPERATOR ap_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = ap_evil.text_always_equal);
RESET ROLE;
\set evil_path 'ap_evil, pg_catalog, public'

-- The control run, under the ordinary path: alice asks, bob approves the
-- first stage, dave (eligible at the first stage, now decided) may not
-- vote, nobody cannot see the request, carol approves the last stage.
SET LOCAL ROLE ap_t_alice;
SELECT approval.submit('tap-two', '{"cost": 7}', 'control') AS c_id \gset
RESET ROLE;
\set q 'SELECT approval.approve(' :c_id ')'
SET LOCAL ROLE ap_t_bob;
SELECT ap_test.try(:'q') AS c_bob \gset
RESET ROLE;
SET LOCAL ROLE ap_t_dave;
SELECT ap_test.try(:'q') AS c_dave \gset
RESET ROLE;
SET LOCAL ROLE ap_t_nobody;
SELECT ap_test.try(:'q') AS c_nobody \gset
RESET ROLE;
SET LOCAL ROLE ap_t_carol;
SELECT ap_test.try(:'q') AS c_carol \gset
RESET ROLE;

-- The same under Mallory's path, for every caller.  pgTAP is not called
-- while that path is in force (its own queries would use the shadowed "=").
SET LOCAL ROLE ap_t_alice;
SELECT set_config('search_path', :'evil_path', true) AS p \gset
SELECT ('a'::text = 'b'::text)::text AS evil_eq_live, now() AS evil_now_live \gset
SELECT ap_test.try($$SELECT approval.submit('tap-two', '{"cost": 7}', 'control')$$) AS e_id \gset
SELECT set_config('search_path', :'search_path_before', true) AS p \gset
RESET ROLE;
\set q 'SELECT approval.approve(' :e_id ')'
SET LOCAL ROLE ap_t_bob;
SELECT set_config('search_path', :'evil_path', true) AS p \gset
SELECT ap_test.try(:'q') AS e_bob \gset
SELECT set_config('search_path', :'search_path_before', true) AS p \gset
RESET ROLE;
SET LOCAL ROLE ap_t_dave;
SELECT set_config('search_path', :'evil_path', true) AS p \gset
SELECT ap_test.try(:'q') AS e_dave \gset
SELECT set_config('search_path', :'search_path_before', true) AS p \gset
RESET ROLE;
SET LOCAL ROLE ap_t_nobody;
SELECT set_config('search_path', :'evil_path', true) AS p \gset
SELECT ap_test.try(:'q') AS e_nobody \gset
SELECT set_config('search_path', :'search_path_before', true) AS p \gset
RESET ROLE;
SET LOCAL ROLE ap_t_mallory;
SELECT set_config('search_path', :'evil_path', true) AS p \gset
SELECT ap_test.try(:'q') AS e_mallory \gset
SELECT set_config('search_path', :'search_path_before', true) AS p \gset
RESET ROLE;
SET LOCAL ROLE ap_t_carol;
SELECT set_config('search_path', :'evil_path', true) AS p \gset
SELECT ap_test.try(:'q') AS e_carol \gset
SELECT set_config('search_path', :'search_path_before', true) AS p \gset
RESET ROLE;

SELECT is(:'evil_eq_live'::text, 'true', 'the trap is live: under the hostile path ''a'' = ''b'' is true');
SELECT is(:'evil_now_live'::timestamptz, '2000-01-01 00:00:00+00'::timestamptz, 'the trap is live: under the hostile path now() is 2000-01-01');
SELECT is(:'c_bob'::text, 'pending', 'control: the first approval leaves the request pending');
SELECT is(:'c_dave'::text, 'ERROR AP003', 'control: a decided stage''s approver gets AP003');
SELECT is(:'c_nobody'::text, 'ERROR AP001', 'control: someone who cannot see the request gets AP001');
SELECT is(:'c_carol'::text, 'approved', 'control: the last approval approves the request');
SELECT isnt(:'e_id'::text, :'c_id'::text, 'hostile path: submit makes a new request');
SELECT ok(:'e_id' ~ '^[0-9]+$', 'hostile path: submit returns a request id');
SELECT is(:'e_bob'::text, :'c_bob'::text, 'hostile path: the first approval gives the same state');
SELECT is(:'e_dave'::text, 'ERROR AP003', 'hostile path: the wrong person still gets AP003');
SELECT is(:'e_nobody'::text, 'ERROR AP001', 'hostile path: someone who cannot see the request still gets AP001');
SELECT is(:'e_mallory'::text, 'ERROR AP001', 'hostile path: the schema''s owner still gets AP001');
SELECT is(:'e_carol'::text, :'c_carol'::text, 'hostile path: the last approval gives the same state');
SELECT row_eq(format('SELECT requester, state, created_at, decided_at, workflow, title FROM approval.request WHERE id = %s', :e_id),
              ROW('alice'::text, 'approved'::approval.request_state, now(), now(), 'tap-two'::text, 'control'::text),
              'hostile path: the request row is the one an ordinary path makes');
SELECT is((SELECT array_agg(s.stage || '=' || s.state || ':' || s.approvals ORDER BY s.stage_order)
             FROM approval.request_stage s WHERE s.request_id = :e_id),
          (SELECT array_agg(s.stage || '=' || s.state || ':' || s.approvals ORDER BY s.stage_order)
             FROM approval.request_stage s WHERE s.request_id = :c_id),
          'hostile path: the same stages with the same votes');
SELECT is((SELECT array_agg(d.actor || ':' || d.decision || ':' || d.stage ORDER BY d.id)
             FROM approval.decision d WHERE d.request_id = :e_id),
          (SELECT array_agg(d.actor || ':' || d.decision || ':' || d.stage ORDER BY d.id)
             FROM approval.decision d WHERE d.request_id = :c_id),
          'hostile path: the same decisions');
SELECT is((SELECT array_agg(e.kind || ' ' || COALESCE(e.actor, '-') || ' ' || e.data::text ORDER BY e.seq)
             FROM approval.event e WHERE e.request_id = :e_id),
          (SELECT array_agg(e.kind || ' ' || COALESCE(e.actor, '-') || ' ' || e.data::text ORDER BY e.seq)
             FROM approval.event e WHERE e.request_id = :c_id),
          'hostile path: the same events with the same data');
SELECT is((SELECT count(*)::int FROM approval.event e WHERE e.request_id = :e_id AND e.at <> now()), 0,
          'hostile path: events carry the real time');
SELECT ok((SELECT bool_and(ok) FROM approval.verify_audit(:e_id)), 'hostile path: the event chain verifies');

-- ---------------------------------------------------------------------------
-- Row-level security
-- ---------------------------------------------------------------------------
-- r2: erin asks carol.  r4: bob asks carol.
-- r3: alice asks dave; dave delegates to erin, erin approves for dave, dave
--     revokes: erin now sees r3 only because she voted on it.
SET LOCAL ROLE ap_t_erin;
SELECT approval.submit('tap-one', '{}', 'r2') AS r2 \gset
RESET ROLE;
SET LOCAL ROLE ap_t_bob;
SELECT approval.submit('tap-one', '{}', 'r4') AS r4 \gset
RESET ROLE;
SET LOCAL ROLE ap_t_alice;
SELECT approval.submit('tap-dave', '{}', 'r3') AS r3 \gset
RESET ROLE;
SET LOCAL ROLE ap_t_dave;
SELECT approval.delegate('erin') AS dlg \gset
RESET ROLE;
SET LOCAL ROLE ap_t_erin;
SELECT is(approval.approve(:r3), 'approved', 'a delegate approves in the delegator''s place');
RESET ROLE;
SET LOCAL ROLE ap_t_dave;
SELECT lives_ok(format('SELECT approval.revoke_delegation(%s)', :dlg), 'the delegator revokes the delegation');
RESET ROLE;

-- what each person should see
CREATE TEMP TABLE ap_expect (who text, rel text, ids bigint[]);
INSERT INTO ap_expect VALUES
    ('alice', 'request', ARRAY[:c_id, :e_id, :r3]::bigint[]),
    ('alice', 'decision', ARRAY[:c_id, :e_id, :r3]::bigint[]),
    ('bob', 'request', ARRAY[:c_id, :e_id, :r4]::bigint[]),
    ('bob', 'decision', ARRAY[:c_id, :e_id]::bigint[]),
    ('carol', 'request', ARRAY[:c_id, :e_id, :r2, :r4]::bigint[]),
    ('carol', 'decision', ARRAY[:c_id, :e_id]::bigint[]),
    ('dave', 'request', ARRAY[:c_id, :e_id, :r3]::bigint[]),
    ('dave', 'decision', ARRAY[:c_id, :e_id, :r3]::bigint[]),
    ('erin', 'request', ARRAY[:r2, :r3]::bigint[]),
    ('erin', 'decision', ARRAY[:r3]::bigint[]),
    ('nobody', 'request', ARRAY[]::bigint[]),
    ('nobody', 'decision', ARRAY[]::bigint[]),
    ('admin', 'request', ARRAY[:c_id, :e_id, :r2, :r3, :r4]::bigint[]),
    ('admin', 'decision', ARRAY[:c_id, :e_id, :r3]::bigint[]);
GRANT SELECT ON ap_expect TO PUBLIC;

-- seen(): the request ids of each state table the current role can read
CREATE FUNCTION ap_test.seen(rel text) RETURNS bigint[]
    LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
BEGIN
    EXECUTE format('SELECT COALESCE(array_agg(DISTINCT %s ORDER BY %1$s), ''{}'') FROM approval.%I',
                   CASE WHEN rel = 'request' THEN 'id' ELSE 'request_id' END, rel)
       INTO ids;
    RETURN ids;
END
$$;
CREATE FUNCTION ap_test.sorted(a bigint[]) RETURNS bigint[]
    LANGUAGE sql AS $$ SELECT COALESCE(array_agg(x ORDER BY x), '{}') FROM unnest(a) x $$;

-- one is() per state table: request_stage and event rows follow the request
CREATE TEMP TABLE ap_rels (rn int, rel text, expect_from text);
INSERT INTO ap_rels VALUES (1, 'request', 'request'), (2, 'request_stage', 'request'),
                           (3, 'decision', 'decision'), (4, 'event', 'request');
GRANT SELECT ON ap_rels TO PUBLIC;

SET LOCAL ROLE ap_t_alice;
SELECT is(ap_test.seen(r.rel), ap_test.sorted(x.ids), format('alice sees in approval.%s exactly her requests', r.rel))
  FROM ap_rels r JOIN ap_expect x ON x.who = 'alice' AND x.rel = r.expect_from ORDER BY r.rn;
RESET ROLE;
SET LOCAL ROLE ap_t_bob;
SELECT is(ap_test.seen(r.rel), ap_test.sorted(x.ids), format('bob sees in approval.%s his own and those he is eligible for', r.rel))
  FROM ap_rels r JOIN ap_expect x ON x.who = 'bob' AND x.rel = r.expect_from ORDER BY r.rn;
RESET ROLE;
SET LOCAL ROLE ap_t_carol;
SELECT is(ap_test.seen(r.rel), ap_test.sorted(x.ids), format('carol sees in approval.%s the requests she approves', r.rel))
  FROM ap_rels r JOIN ap_expect x ON x.who = 'carol' AND x.rel = r.expect_from ORDER BY r.rn;
RESET ROLE;
SET LOCAL ROLE ap_t_dave;
SELECT is(ap_test.seen(r.rel), ap_test.sorted(x.ids), format('dave sees in approval.%s those he is or was eligible for', r.rel))
  FROM ap_rels r JOIN ap_expect x ON x.who = 'dave' AND x.rel = r.expect_from ORDER BY r.rn;
RESET ROLE;
SET LOCAL ROLE ap_t_erin;
SELECT is(ap_test.seen(r.rel), ap_test.sorted(x.ids), format('erin sees in approval.%s her own and the one she voted on', r.rel))
  FROM ap_rels r JOIN ap_expect x ON x.who = 'erin' AND x.rel = r.expect_from ORDER BY r.rn;
RESET ROLE;
SET LOCAL ROLE ap_t_nobody;
SELECT is(ap_test.seen(r.rel), ap_test.sorted(x.ids), format('a user with no part sees nothing in approval.%s', r.rel))
  FROM ap_rels r JOIN ap_expect x ON x.who = 'nobody' AND x.rel = r.expect_from ORDER BY r.rn;
RESET ROLE;
SET LOCAL ROLE ap_t_admin;
SELECT is(ap_test.seen(r.rel), ap_test.sorted(x.ids), format('approval_admin sees everything in approval.%s', r.rel))
  FROM ap_rels r JOIN ap_expect x ON x.who = 'admin' AND x.rel = r.expect_from ORDER BY r.rn;
RESET ROLE;
SET LOCAL ROLE ap_t_app;
SET LOCAL approval.actor = 'erin';
SELECT is(ap_test.seen(r.rel), ap_test.sorted(x.ids), format('a gateway acting for erin sees what erin sees in approval.%s', r.rel))
  FROM ap_rels r JOIN ap_expect x ON x.who = 'erin' AND x.rel = r.expect_from ORDER BY r.rn;
SELECT is((SELECT array_agg(request_id ORDER BY request_id) FROM approval.request_status),
          ap_test.sorted(ARRAY[:r2, :r3]::bigint[]), 'approval.request_status shows erin her requests only');
RESET approval.actor;
RESET ROLE;
SET LOCAL ROLE ap_t_erin;
SELECT is((SELECT array_agg(request_id ORDER BY request_id) FROM approval.my_requests),
          ARRAY[:r2]::bigint[], 'approval.my_requests shows erin what she submitted');
SELECT is((SELECT array_agg(request_id ORDER BY request_id) FROM approval.verify_audit() WHERE ok),
          (SELECT ap_test.sorted(ids) FROM ap_expect WHERE who = 'erin' AND rel = 'request'),
          'erin''s verify_audit() checks exactly the chains she can see, and they hold');
RESET ROLE;
SET LOCAL ROLE ap_t_carol;
SELECT is((SELECT array_agg(request_id ORDER BY request_id) FROM approval.my_pending),
          ap_test.sorted(ARRAY[:r2, :r4]::bigint[]), 'approval.my_pending shows carol what waits on her');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- A request you cannot see does not exist for you (AP001)
-- ---------------------------------------------------------------------------
SET LOCAL ROLE ap_t_erin;
SELECT throws_ok(format('SELECT approval.approve(%s)', :r4), 'AP001', NULL,
                 'approving a request you cannot see is AP001');
SELECT throws_ok(format('SELECT approval.reject(%s, ''no'')', :r4), 'AP001', NULL,
                 'rejecting a request you cannot see is AP001');
SELECT throws_ok(format('SELECT approval.comment(%s, ''hello'')', :r4), 'AP001', NULL,
                 'commenting on a request you cannot see is AP001');
SELECT throws_ok(format('SELECT approval.cancel(%s)', :r4), 'AP001', NULL,
                 'cancelling a request you cannot see is AP001');
SELECT throws_ok('SELECT approval.approve(999999999)', 'AP001', NULL,
                 'approving a request that does not exist is AP001 too');
RESET ROLE;
SET LOCAL ROLE ap_t_app;
SET LOCAL approval.actor = 'erin';
SELECT throws_ok(format('SELECT approval.approve(%s)', :r4), 'AP001', NULL,
                 'a gateway acting for erin cannot approve what erin cannot see (AP001)');
RESET approval.actor;
RESET ROLE;
SELECT is((SELECT state::text || ':' || (SELECT count(*) FROM approval.decision d WHERE d.request_id = r.id)
             FROM approval.request r WHERE r.id = :r4),
          'pending:0', 'the hidden request was not touched');

-- ---------------------------------------------------------------------------
-- Actionable tokens: the signing keys are the owner's alone; approval_admin
-- reads the tokens' rows, no one writes them but through the functions
-- ---------------------------------------------------------------------------
SELECT ok(NOT has_table_privilege(r, 'approval.token_key', p), format('%s has no %s on approval.token_key', r, p))
  FROM unnest(ARRAY['approval_admin', 'approval_gateway', 'approval_user']) WITH ORDINALITY AS rr(r, rn),
       unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'])
              WITH ORDINALITY AS pp(p, pn)
 ORDER BY rn, pn;
SET LOCAL ROLE ap_t_admin;
SELECT throws_ok('SELECT count(*) FROM approval.token_key', '42501', NULL,
                 'approval_admin cannot read approval.token_key');
RESET ROLE;
SET LOCAL ROLE ap_t_app;
SELECT throws_ok('SELECT count(*) FROM approval.token_key', '42501', NULL,
                 'approval_gateway cannot read approval.token_key');
RESET ROLE;
SET LOCAL ROLE ap_t_bob;
SELECT throws_ok('SELECT count(*) FROM approval.token_key', '42501', NULL,
                 'approval_user cannot read approval.token_key');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM approval.token_key), 1, 'the extension''s owner reads its signing key');

SELECT ok(has_table_privilege('approval_admin', 'approval.token', 'SELECT'), 'approval_admin may read approval.token');
SELECT ok(NOT has_table_privilege(r, 'approval.token', 'SELECT'), format('%s may not read approval.token', r))
  FROM unnest(ARRAY['approval_gateway', 'approval_user']) AS r ORDER BY r;
SET LOCAL ROLE ap_t_admin;
SELECT throws_ok(format(o.stmt, 'token', 'used_at'), '42501', NULL,
                 format('approval_admin: %s on approval.token is refused', o.op))
  FROM ap_write_ops o ORDER BY o.opn;
RESET ROLE;

SELECT ok(has_function_privilege(r, f, 'EXECUTE'), format('%s may execute %s', r, f))
  FROM unnest(ARRAY['approval_admin', 'approval_gateway']) AS r,
       unnest(ARRAY['approval.issue_token(bigint,text,interval)', 'approval.redeem_token(text,text,text)']) AS f
 ORDER BY r, f;
SELECT ok(NOT has_function_privilege('approval_user', f, 'EXECUTE'), format('approval_user may not execute %s', f))
  FROM unnest(ARRAY['approval.issue_token(bigint,text,interval)', 'approval.redeem_token(text,text,text)']) AS f
 ORDER BY f;
SELECT ok(has_function_privilege('approval_admin', 'approval.revoke_tokens(bigint)', 'EXECUTE'),
          'approval_admin may execute approval.revoke_tokens(bigint)');
SELECT ok(NOT has_function_privilege(r, 'approval.revoke_tokens(bigint)', 'EXECUTE'),
          format('%s may not execute approval.revoke_tokens(bigint)', r))
  FROM unnest(ARRAY['approval_gateway', 'approval_user']) AS r ORDER BY r;
SELECT ok(NOT has_function_privilege(r, 'approval.new_token_key()', 'EXECUTE'),
          format('%s may not execute approval.new_token_key()', r))
  FROM unnest(ARRAY['approval_admin', 'approval_gateway', 'approval_user']) AS r ORDER BY r;

SELECT * FROM finish();
ROLLBACK;
