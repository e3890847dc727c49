-- pgTAP: security items of the 0.2.0 hardening (DESIGN §7, §8).
--
--   1. CREATE EXTENSION refuses a schema approval made beforehand that is
--      owned by a role that is no superuser, holds any object, or lets a
--      role that is no superuser create in it (42P06, nothing created); it
--      installs into an empty schema owned by a superuser (what a pg_dump
--      restore makes before CREATE EXTENSION).
--   2. The views for people (my_pending, my_requests, request_status) are
--      security barriers: neither a cheap function of the caller that
--      records its arguments nor an error raised for one value sees a
--      request hidden from the caller; the same holds for the tables under
--      row-level security (request, request_stage, decision, event).
--   3. approval.delegation is seen by the delegator, the delegate and admins
--      only; delegate(), revoke_delegation(), my_targets() and my_pending
--      still work for users.
--   4. The append-only guard of approval.event and the identity-cache
--      triggers fire under session_replication_role = replica.
--   5. approval.notify and approval.notify_channel are superuser-set.
--
-- Everything happens in one transaction that is rolled back, including
-- CREATE EXTENSION and the roles the test makes.
\set ON_ERROR_STOP 1
BEGIN;

SELECT plan(99);

SELECT current_setting('search_path') AS search_path_before \gset

-- ---------------------------------------------------------------------------
-- 1. A schema approval made beforehand
-- ---------------------------------------------------------------------------
-- ap_s_squatter may create schemas in this database, as any role with
-- CREATE on it may; ap_s_other is another role that is no superuser.
CREATE ROLE ap_s_squatter;
CREATE ROLE ap_s_other;
SELECT format('GRANT CREATE ON DATABASE %I TO ap_s_squatter', current_database()) AS grant_create \gset
:grant_create;

SELECT is((SELECT count(*)::int FROM pg_namespace WHERE nspname = 'approval'), 0,
          'no schema approval before the test');
SELECT COALESCE(array_agg(rolname::text ORDER BY rolname), '{}') AS roles_before
  FROM pg_roles WHERE rolname IN ('approval_admin', 'approval_user', 'approval_gateway') \gset

-- Every object in schema approval, described; and whether the extension is there.
CREATE SCHEMA ap_sec;
GRANT USAGE ON SCHEMA ap_sec TO PUBLIC;
CREATE FUNCTION ap_sec.objects_in_approval() RETURNS text[]
    LANGUAGE sql AS $$
    SELECT COALESCE(array_agg(pg_describe_object(o.classid, o.objid, 0)
                              ORDER BY pg_describe_object(o.classid, o.objid, 0)), '{}')
      FROM pg_namespace n,
           LATERAL (SELECT 'pg_class'::regclass, oid FROM pg_class WHERE relnamespace = n.oid
                    UNION ALL SELECT 'pg_proc'::regclass, oid FROM pg_proc WHERE pronamespace = n.oid
                    UNION ALL SELECT 'pg_type'::regclass, oid FROM pg_type WHERE typnamespace = n.oid
                    UNION ALL SELECT 'pg_operator'::regclass, oid FROM pg_operator WHERE oprnamespace = n.oid
                   ) o(classid, objid)
     WHERE n.nspname = 'approval'
$$;
CREATE FUNCTION ap_sec.installed() RETURNS boolean
    LANGUAGE sql AS $$ SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'approval') $$;

-- a. The squatter makes the schema and plants a function in it.
SET LOCAL ROLE ap_s_squatter;
CREATE SCHEMA approval;
CREATE FUNCTION approval.planted() RETURNS text LANGUAGE sql AS $$ SELECT 'planted'::text $$;
RESET ROLE;
SELECT throws_ok('CREATE EXTENSION approval', '42P06',
                 'schema "approval" already exists and is owned by role "ap_s_squatter", which is not a superuser',
                 'CREATE EXTENSION refuses a schema approval owned by a role that is no superuser');
SELECT ok(NOT ap_sec.installed(), 'refused: the extension is not installed');
SELECT is(ap_sec.objects_in_approval(), ARRAY['function approval.planted()'],
          'refused: schema approval holds the squatter''s function and nothing of the extension');
SELECT is((SELECT COALESCE(array_agg(rolname::text ORDER BY rolname), '{}') FROM pg_roles
            WHERE rolname IN ('approval_admin', 'approval_user', 'approval_gateway')),
          :'roles_before'::text[], 'refused: no role was created');

-- b. A superuser takes the schema over; the planted function stays.
ALTER SCHEMA approval OWNER TO CURRENT_USER;
SELECT throws_ok('CREATE EXTENSION approval', '42P06',
                 'schema "approval" already exists and is not empty: it holds function approval.planted()',
                 'CREATE EXTENSION refuses a superuser''s schema approval that holds an object');
SELECT ok(NOT ap_sec.installed(), 'refused (not empty): the extension is not installed');
DROP FUNCTION approval.planted();

-- c. Empty, but owned by the squatter.
ALTER SCHEMA approval OWNER TO ap_s_squatter;
SELECT throws_ok('CREATE EXTENSION approval', '42P06', NULL,
                 'CREATE EXTENSION refuses an empty schema approval owned by a role that is no superuser');
ALTER SCHEMA approval OWNER TO CURRENT_USER;

-- d. Empty and a superuser's, but others may create in it.
GRANT CREATE ON SCHEMA approval TO ap_s_other;
SELECT throws_ok('CREATE EXTENSION approval', '42P06',
                 'schema "approval" already exists and role "ap_s_other" may create objects in it',
                 'CREATE EXTENSION refuses a schema approval where a role that is no superuser may create');
REVOKE CREATE ON SCHEMA approval FROM ap_s_other;
GRANT CREATE ON SCHEMA approval TO PUBLIC;
SELECT throws_ok('CREATE EXTENSION approval', '42P06',
                 'schema "approval" already exists and PUBLIC may create objects in it',
                 'CREATE EXTENSION refuses a schema approval where PUBLIC may create');
REVOKE CREATE ON SCHEMA approval FROM PUBLIC;

-- e. Other objects than functions count too.
CREATE TYPE approval.planted AS ENUM ('x');
SELECT throws_ok('CREATE EXTENSION approval', '42P06', NULL,
                 'CREATE EXTENSION refuses a schema approval that holds a type');
DROP TYPE approval.planted;
CREATE TABLE approval.planted (x int);
SELECT throws_ok('CREATE EXTENSION approval', '42P06', NULL,
                 'CREATE EXTENSION refuses a schema approval that holds a table');
DROP TABLE approval.planted;
CREATE OPERATOR approval.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = int4eq);
SELECT throws_ok('CREATE EXTENSION approval', '42P06', NULL,
                 'CREATE EXTENSION refuses a schema approval that holds an operator');
DROP OPERATOR approval.=== (int, int);
SELECT ok(NOT ap_sec.installed(), 'after every refusal the extension is not installed');

-- f. Empty, owned by a superuser, USAGE granted (as a pg_dump restore, or
--    a DROP EXTENSION, leaves it): CREATE EXTENSION installs into it.
GRANT USAGE ON SCHEMA approval TO PUBLIC;
SELECT lives_ok('CREATE EXTENSION approval',
                'CREATE EXTENSION installs into an empty schema approval owned by a superuser');
-- pgTAP lives in public; the install script's SET search_path outlives
-- CREATE EXTENSION (see 001_identity), so put the session's path back.
SELECT set_config('search_path', :'search_path_before', true) AS search_path_restored \gset
SELECT ok(ap_sec.installed(), 'the extension is installed');
SELECT cmp_ok(cardinality(ap_sec.objects_in_approval()), '>', 20, 'schema approval holds the extension''s objects');

-- ---------------------------------------------------------------------------
-- People, workflows and requests
-- ---------------------------------------------------------------------------
-- R9-secret: frank asks carol; carol comments.  eve may see nothing of it.
-- E1-for-eve: alice asks eve.  E2-by-eve: eve asks carol and comments.
CREATE ROLE ap_s_alice;
CREATE ROLE ap_s_carol;
CREATE ROLE ap_s_dave;
CREATE ROLE ap_s_frank;
CREATE ROLE ap_s_eve;           -- the attacker: a plain approval_user
CREATE ROLE ap_s_admin;
CREATE ROLE ap_s_app;           -- a web application acting for people
GRANT approval_user TO ap_s_alice, ap_s_carol, ap_s_dave, ap_s_eve, ap_s_frank;
GRANT approval_admin TO ap_s_admin;
GRANT approval_gateway TO ap_s_app;
INSERT INTO approval.principal (id, pg_role) VALUES
    ('alice', 'ap_s_alice'), ('carol', 'ap_s_carol'), ('dave', 'ap_s_dave'),
    ('eve', 'ap_s_eve'), ('frank', 'ap_s_frank'), ('adm', 'ap_s_admin');

SELECT approval.define_workflow('{"name": "sec-carol", "stages": [
          {"name": "review", "approvers": ["user:carol"]}]}') AS wf_carol \gset
SELECT approval.define_workflow('{"name": "sec-eve", "stages": [
          {"name": "review", "approvers": ["user:eve"]}]}') AS wf_eve \gset

SET LOCAL ROLE ap_s_frank;
SELECT approval.submit('sec-carol', '{}', 'R9-secret') AS hidden \gset
RESET ROLE;
SET LOCAL ROLE ap_s_alice;
SELECT approval.submit('sec-eve', '{}', 'E1-for-eve') AS e1 \gset
RESET ROLE;
SET LOCAL ROLE ap_s_carol;
SELECT approval.comment(:hidden, 'R9-comment') AS ignored \gset
RESET ROLE;
SET LOCAL ROLE ap_s_eve;
SELECT approval.submit('sec-carol', '{}', 'E2-by-eve') AS e2 \gset
SELECT approval.comment(:e2, 'E2-comment') AS ignored \gset
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 2. Leaks through a caller's function or error
-- ---------------------------------------------------------------------------
-- leaked(sql): run sql and return, sorted and without duplicates, every
-- value pg_temp.leak() was called with meanwhile.
CREATE FUNCTION ap_sec.leaked(sql text) RETURNS text[]
    LANGUAGE plpgsql AS $$
DECLARE
    ignored bigint;
BEGIN
    PERFORM set_config('ap_leak.seen', '', true);
    EXECUTE sql INTO ignored;
    RETURN (SELECT COALESCE(array_agg(DISTINCT v ORDER BY v), '{}')
              FROM unnest(string_to_array(current_setting('ap_leak.seen'), E'\n')) AS v
             WHERE v <> '');
END
$$;

-- eve's functions, in her temporary schema.  leak() writes down what it is
-- shown (a NOTICE would do the same); it is cheap, so the planner runs it
-- before any costlier condition it can.  boom() raises division_by_zero
-- for one value, just as cheaply.
SET LOCAL ROLE ap_s_eve;
CREATE FUNCTION pg_temp.leak(v text) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE COST 0.0000001 AS $$
BEGIN
    PERFORM pg_catalog.set_config('ap_leak.seen',
        pg_catalog.concat(pg_catalog.current_setting('ap_leak.seen', true), v, E'\n'), true);
    RETURN true;
END
$$;
CREATE FUNCTION pg_temp.boom(v text, secret text) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE COST 0.0000001 AS $$
BEGIN
    IF v = secret THEN
        RAISE division_by_zero;
    END IF;
    RETURN true;
END
$$;

-- Planner settings are the caller's: eve turns index scans off, so that her
-- condition is not left to run on index matches only.
SET LOCAL enable_indexscan = off;
SET LOCAL enable_bitmapscan = off;

-- what eve sees, to begin with
SELECT is((SELECT array_agg(request_id ORDER BY request_id) FROM approval.request_status),
          ARRAY[:e1, :e2]::bigint[], 'eve sees E1 and E2 in request_status');
SELECT is((SELECT array_agg(request_id ORDER BY request_id) FROM approval.my_pending),
          ARRAY[:e1]::bigint[], 'eve sees E1 in my_pending');
SELECT is((SELECT array_agg(request_id ORDER BY request_id) FROM approval.my_requests),
          ARRAY[:e2]::bigint[], 'eve sees E2 in my_requests');

-- the views: a function in WHERE is shown the rows of the view only
SELECT is(ap_sec.leaked('SELECT count(*) FROM approval.my_pending WHERE pg_temp.leak(title)'),
          ARRAY['E1-for-eve'], 'my_pending: a cheap function in WHERE is shown only eve''s rows');
SELECT is(ap_sec.leaked('SELECT count(*) FROM approval.my_pending WHERE pg_temp.leak(requester)'),
          ARRAY['alice'], 'my_pending: ... and only their requesters');
SELECT is(ap_sec.leaked('SELECT count(*) FROM approval.my_requests WHERE pg_temp.leak(title)'),
          ARRAY['E2-by-eve'], 'my_requests: a cheap function in WHERE is shown only eve''s rows');
SELECT is(ap_sec.leaked('SELECT count(*) FROM approval.request_status WHERE pg_temp.leak(title)'),
          ARRAY['E1-for-eve', 'E2-by-eve'], 'request_status: a cheap function in WHERE is shown only eve''s rows');
SELECT is(ap_sec.leaked('SELECT count(*) FROM approval.request_status WHERE pg_temp.leak(requester)'),
          ARRAY['alice', 'eve'], 'request_status: ... and only their requesters');

-- the views: an error raised for one value is raised for eve's rows only.
-- (The divisor is computed from the row: a constant 1/0 would be folded, and
-- raise, when the query is planned, whatever the rows.)
SELECT throws_ok($$SELECT count(*) FROM approval.my_pending
                    WHERE 1/(CASE WHEN title = 'E1-for-eve' THEN 0 ELSE 1 END) = 1$$, '22012', NULL,
                 'my_pending: an error for the title of a row eve sees is raised (the probe works)');
SELECT lives_ok($$SELECT count(*) FROM approval.my_pending
                   WHERE 1/(CASE WHEN title = 'R9-secret' THEN 0 ELSE 1 END) = 1$$,
                'my_pending: an error for the title of a hidden request is not raised');
SELECT lives_ok($$SELECT count(*) FROM approval.my_pending WHERE pg_temp.boom(title, 'R9-secret')$$,
                'my_pending: a cheap function raising for a hidden title does not raise');
SELECT throws_ok($$SELECT count(*) FROM approval.my_requests
                    WHERE 1/(CASE WHEN title = 'E2-by-eve' THEN 0 ELSE 1 END) = 1$$, '22012', NULL,
                 'my_requests: an error for the title of a row eve sees is raised (the probe works)');
SELECT lives_ok($$SELECT count(*) FROM approval.my_requests
                   WHERE 1/(CASE WHEN title = 'R9-secret' THEN 0 ELSE 1 END) = 1$$,
                'my_requests: an error for the title of a hidden request is not raised');
SELECT lives_ok($$SELECT count(*) FROM approval.my_requests WHERE pg_temp.boom(title, 'R9-secret')$$,
                'my_requests: a cheap function raising for a hidden title does not raise');
SELECT throws_ok($$SELECT count(*) FROM approval.request_status
                    WHERE 1/(CASE WHEN title = 'E1-for-eve' THEN 0 ELSE 1 END) = 1$$, '22012', NULL,
                 'request_status: an error for the title of a row eve sees is raised (the probe works)');
SELECT lives_ok($$SELECT count(*) FROM approval.request_status
                   WHERE 1/(CASE WHEN title = 'R9-secret' THEN 0 ELSE 1 END) = 1$$,
                'request_status: an error for the title of a hidden request is not raised');
SELECT lives_ok($$SELECT count(*) FROM approval.request_status WHERE pg_temp.boom(title, 'R9-secret')$$,
                'request_status: a cheap function raising for a hidden title does not raise');

-- the tables under row-level security: the same two attacks
SELECT is(ap_sec.leaked('SELECT count(*) FROM approval.request WHERE pg_temp.leak(title)'),
          ARRAY['E1-for-eve', 'E2-by-eve'], 'approval.request: a cheap function in WHERE is shown only eve''s rows');
SELECT is(ap_sec.leaked('SELECT count(*) FROM approval.request_stage WHERE pg_temp.leak(request_id::text)'),
          (SELECT array_agg(x ORDER BY x) FROM unnest(ARRAY[:e1, :e2]::text[]) x),
          'approval.request_stage: a cheap function in WHERE is shown only eve''s rows');
SELECT is(ap_sec.leaked('SELECT count(*) FROM approval.decision WHERE pg_temp.leak(comment)'),
          ARRAY['E2-comment'], 'approval.decision: a cheap function in WHERE is shown only eve''s rows');
SELECT is(ap_sec.leaked('SELECT count(*) FROM approval.event WHERE pg_temp.leak(request_id::text)'),
          (SELECT array_agg(x ORDER BY x) FROM unnest(ARRAY[:e1, :e2]::text[]) x),
          'approval.event: a cheap function in WHERE is shown only eve''s rows');
SELECT lives_ok($$SELECT count(*) FROM approval.request
                   WHERE 1/(CASE WHEN title = 'R9-secret' THEN 0 ELSE 1 END) = 1$$,
                'approval.request: an error for the title of a hidden request is not raised');
SELECT lives_ok($$SELECT count(*) FROM approval.request WHERE pg_temp.boom(title, 'R9-secret')$$,
                'approval.request: a cheap function raising for a hidden title does not raise');
SELECT lives_ok(format($$SELECT count(*) FROM approval.%I
                          WHERE 1/(CASE WHEN request_id = %s THEN 0 ELSE 1 END) = 1$$, t, :hidden),
                format('approval.%s: an error for the rows of a hidden request is not raised', t))
  FROM unnest(ARRAY['request_stage', 'decision', 'event']) AS t;
SELECT lives_ok(format($$SELECT count(*) FROM approval.%I WHERE pg_temp.boom(request_id::text, '%s')$$, t, :hidden),
                format('approval.%s: a cheap function raising for a hidden request does not raise', t))
  FROM unnest(ARRAY['request_stage', 'decision', 'event']) AS t;
SELECT throws_ok(format($$SELECT count(*) FROM approval.event WHERE pg_temp.boom(request_id::text, '%s')$$, :e1),
                 '22012', NULL, 'approval.event: the same function raises for a request eve sees (the probe works)');
RESET enable_indexscan;
RESET enable_bitmapscan;
RESET ROLE;

SELECT is((SELECT reloptions FROM pg_class WHERE oid = ('approval.' || v)::regclass),
          ARRAY['security_barrier=true'], format('approval.%s is a security_barrier view', v))
  FROM unnest(ARRAY['my_pending', 'my_requests', 'request_status']) AS v;

-- ---------------------------------------------------------------------------
-- 3. Delegations
-- ---------------------------------------------------------------------------
-- dl1: carol to dave.  dl2: alice to carol.
SET LOCAL ROLE ap_s_carol;
SELECT approval.delegate('dave') AS dl1 \gset
RESET ROLE;
SET LOCAL ROLE ap_s_alice;
SELECT approval.delegate('carol', workflow => 'sec-eve') AS dl2 \gset
RESET ROLE;

SET LOCAL ROLE ap_s_eve;
SELECT is((SELECT count(*)::int FROM approval.delegation), 0, 'a third user sees no delegation');
SELECT is(ap_sec.leaked('SELECT count(*) FROM approval.delegation WHERE pg_temp.leak(delegator)'), '{}'::text[],
          'a third user''s cheap function is shown no delegation');
RESET ROLE;
SET LOCAL ROLE ap_s_carol;
SELECT is((SELECT array_agg(id ORDER BY id) FROM approval.delegation), ARRAY[:dl1, :dl2]::bigint[],
          'carol sees the delegation she made and the one made to her');
RESET ROLE;
SET LOCAL ROLE ap_s_dave;
SELECT is((SELECT array_agg(id ORDER BY id) FROM approval.delegation), ARRAY[:dl1]::bigint[],
          'the delegate sees the delegation made to him');
SELECT ok('user:carol' = ANY (approval.my_targets()), 'the delegate answers for the delegator (my_targets)');
SELECT is((SELECT array_agg(request_id ORDER BY request_id) FROM approval.my_pending), ARRAY[:hidden, :e2]::bigint[],
          'the delegate has the delegator''s pending requests in my_pending');
RESET ROLE;
SET LOCAL ROLE ap_s_alice;
SELECT is((SELECT array_agg(id ORDER BY id) FROM approval.delegation), ARRAY[:dl2]::bigint[],
          'the delegator sees the delegation she made');
RESET ROLE;
SET LOCAL ROLE ap_s_admin;
SELECT is((SELECT array_agg(id ORDER BY id) FROM approval.delegation), ARRAY[:dl1, :dl2]::bigint[],
          'an approval_admin sees every delegation');
RESET ROLE;
SET LOCAL ROLE ap_s_app;
SET LOCAL approval.actor = 'dave';
SELECT is((SELECT array_agg(id ORDER BY id) FROM approval.delegation), ARRAY[:dl1]::bigint[],
          'a gateway acting for the delegate sees what he sees');
SET LOCAL approval.actor = 'adm';
SELECT is((SELECT array_agg(id ORDER BY id) FROM approval.delegation), ARRAY[:dl1, :dl2]::bigint[],
          'a gateway acting for an admin sees every delegation');
SET LOCAL approval.actor = 'eve';
SELECT is((SELECT count(*)::int FROM approval.delegation), 0, 'a gateway acting for a third user sees none');
RESET approval.actor;
SELECT is((SELECT count(*)::int FROM approval.delegation), 0,
          'a gateway acting for no one sees none (it is no delegator, delegate or admin)');
RESET ROLE;

SET LOCAL ROLE ap_s_eve;
SELECT throws_ok(format('SELECT approval.revoke_delegation(%s)', :dl1), '42704',
                 format('delegation %s does not exist', :dl1),
                 'a third user cannot revoke someone else''s delegation, nor learn who made it');
RESET ROLE;
SET LOCAL ROLE ap_s_carol;
SELECT lives_ok(format('SELECT approval.revoke_delegation(%s)', :dl1), 'the delegator revokes her delegation');
RESET ROLE;
SET LOCAL ROLE ap_s_dave;
SELECT ok(NOT 'user:carol' = ANY (approval.my_targets()), 'revoked: the delegate no longer answers for carol');
SELECT is((SELECT count(*)::int FROM approval.my_pending), 0, 'revoked: my_pending is empty for the delegate');
SELECT is((SELECT revoked_at IS NOT NULL FROM approval.delegation WHERE id = :dl1), true,
          'revoked: the delegate still sees the delegation, revoked');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 4. Triggers that fire always
-- ---------------------------------------------------------------------------
SELECT is((SELECT tgenabled::text FROM pg_trigger WHERE tgrelid = ('approval.' || t)::regclass AND tgname = g),
          'A', format('trigger %s on approval.%s fires always', g, t))
  FROM (VALUES ('event', 'event_no_update_delete'), ('event', 'event_no_truncate'),
               ('principal', 'principal_changed'), ('approver_group', 'approver_group_changed'),
               ('group_member', 'group_member_changed'), ('delegation', 'delegation_changed')) AS x(t, g);

SELECT count(*) AS events_before FROM approval.event \gset
SET LOCAL session_replication_role = replica;
SELECT throws_ok('UPDATE approval.event SET kind = kind', '42501',
                 'approval.event is append-only: UPDATE is not allowed',
                 'session_replication_role = replica: a superuser''s UPDATE of approval.event is refused');
SELECT throws_ok('DELETE FROM approval.event', '42501',
                 'approval.event is append-only: DELETE is not allowed',
                 'session_replication_role = replica: a superuser''s DELETE from approval.event is refused');
SELECT throws_ok('TRUNCATE approval.event', '42501',
                 'approval.event is append-only: TRUNCATE is not allowed',
                 'session_replication_role = replica: a superuser''s TRUNCATE of approval.event is refused');
SET LOCAL session_replication_role = origin;
SELECT is((SELECT count(*) FROM approval.event), :events_before::bigint, 'the log is whole');
SELECT ok((SELECT bool_and(ok) FROM approval.verify_audit()), 'every chain still verifies');

-- the identity cache is told of changes made in replica mode (as a logical
-- replication subscriber applies them)
SET LOCAL ROLE ap_s_eve;
SELECT ok(NOT 'group:sec-g' = ANY (approval.my_targets()), 'eve is in no group sec-g yet (and her targets are cached)');
RESET ROLE;
SET LOCAL session_replication_role = replica;
INSERT INTO approval.approver_group (name) VALUES ('sec-g');
INSERT INTO approval.group_member (group_name, principal_id) VALUES ('sec-g', 'eve');
SET LOCAL session_replication_role = origin;
SET LOCAL ROLE ap_s_eve;
SELECT ok('group:sec-g' = ANY (approval.my_targets()),
          'a group membership added under session_replication_role = replica counts at once');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 5. Superuser-set notification settings
-- ---------------------------------------------------------------------------
SELECT is((SELECT context FROM pg_settings WHERE name = s), 'superuser', format('%s is superuser-set', s))
  FROM unnest(ARRAY['approval.notify', 'approval.notify_channel', 'approval.notify_payload',
                    'approval.actor_claim']) AS s;

SET LOCAL ROLE ap_s_eve;
SELECT throws_ok('SET approval.notify = off', '42501', NULL, 'an approval_user cannot SET approval.notify');
SELECT throws_ok('SET LOCAL approval.notify = off', '42501', NULL, 'an approval_user cannot SET LOCAL approval.notify');
SELECT throws_ok($$SELECT set_config('approval.notify', 'off', true)$$, '42501', NULL,
                 'an approval_user cannot set_config approval.notify');
SELECT throws_ok($$SET approval.notify_channel = 'x'$$, '42501', NULL,
                 'an approval_user cannot SET approval.notify_channel');
SELECT throws_ok($$SELECT set_config('approval.notify_channel', 'x', false)$$, '42501', NULL,
                 'an approval_user cannot set_config approval.notify_channel');
SELECT throws_ok($$CREATE FUNCTION pg_temp.quiet() RETURNS int LANGUAGE sql
                   SET approval.notify = off AS 'SELECT 1'$$, '42501', NULL,
                 'an approval_user cannot make a function that sets approval.notify');
SELECT throws_ok($$SET approval.notify = relay$$, '42501', NULL,
                 'an approval_user cannot SET approval.notify = relay');
SELECT throws_ok($$SET approval.notify_payload = full$$, '42501', NULL,
                 'an approval_user cannot SET approval.notify_payload');
SELECT throws_ok($$SELECT set_config('approval.notify_payload', 'minimal', true)$$, '42501', NULL,
                 'an approval_user cannot set_config approval.notify_payload');
SELECT throws_ok($$SELECT set_config('approval.actor_claim', 'sub', true)$$, '42501', NULL,
                 'an approval_user cannot set_config approval.actor_claim');
SELECT is(current_setting('approval.notify') || '/' || current_setting('approval.notify_channel')
          || '/' || current_setting('approval.notify_payload'), 'commit/approval/full',
          'the settings are unchanged');
RESET ROLE;
SET LOCAL ROLE ap_s_admin;
SELECT throws_ok('SET LOCAL approval.notify = off', '42501', NULL, 'an approval_admin cannot SET approval.notify either');
RESET ROLE;

SELECT lives_ok('SET LOCAL approval.notify = off', 'a superuser can SET approval.notify');
SELECT lives_ok($$SET LOCAL approval.notify_channel = 'elsewhere'$$, 'a superuser can SET approval.notify_channel');
SET LOCAL ROLE ap_s_eve;
SELECT is(current_setting('approval.notify') || '/' || current_setting('approval.notify_channel'), 'off/elsewhere',
          'what a superuser set holds for the user''s role too');
RESET ROLE;
SET LOCAL approval.notify = on;
SET LOCAL approval.notify_channel = 'approval';

SELECT * FROM finish();
ROLLBACK;
