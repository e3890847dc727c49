-- pgTAP: identity objects and approval.current_actor() (DESIGN §2, §8).
-- Everything happens in one transaction that is rolled back, including
-- CREATE EXTENSION and the roles the test makes.
\set ON_ERROR_STOP 1
BEGIN;

SELECT plan(25);

SELECT current_setting('search_path') AS search_path_before \gset
CREATE EXTENSION approval;
SELECT current_setting('search_path') AS search_path_after \gset
-- pgTAP lives in public: put the session's path back before calling it.
SELECT set_config('search_path', :'search_path_before', true) AS search_path_restored \gset

-- Test roles: a plain user, a user mapped to a principal, and an application
-- role in approval_gateway.  No LOGIN: the test switches with SET ROLE.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['approval_test_plain', 'approval_test_mapped', 'approval_test_gateway'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$$;
GRANT approval_user TO approval_test_plain, approval_test_mapped, approval_test_gateway;
GRANT approval_gateway TO approval_test_gateway;

INSERT INTO approval.principal (id, display_name, manager_id, pg_role)
VALUES ('carol', 'Carol', NULL, NULL),
       ('alice', 'Alice', 'carol', 'approval_test_mapped'),
       ('bob', 'Bob', 'carol', NULL);
INSERT INTO approval.approver_group (name, description) VALUES ('finance', 'Finance');
INSERT INTO approval.group_member (group_name, principal_id) VALUES ('finance', 'alice');

-- A SECURITY DEFINER function owned by a gateway member: it must not lend the
-- owner's right to set approval.actor to whoever calls it.
CREATE SCHEMA approval_test;
GRANT USAGE ON SCHEMA approval_test TO PUBLIC;
CREATE FUNCTION approval_test.actor_as_definer() RETURNS text
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
    AS $$ SELECT approval.current_actor() $$;
ALTER FUNCTION approval_test.actor_as_definer() OWNER TO approval_test_gateway;

-- ---------------------------------------------------------------------------
-- Objects
-- ---------------------------------------------------------------------------
-- A plain SET in an extension script would outlive CREATE EXTENSION; the
-- install script must leave the caller's search_path alone.
SELECT is(:'search_path_after'::text, :'search_path_before'::text,
          'CREATE EXTENSION approval leaves the session''s search_path as it was');

SELECT has_role('approval_admin', 'CREATE EXTENSION makes role approval_admin');
SELECT has_role('approval_user', 'CREATE EXTENSION makes role approval_user');
SELECT has_role('approval_gateway', 'CREATE EXTENSION makes role approval_gateway');

SELECT has_table('approval', 'principal', 'table approval.principal exists');
SELECT has_table('approval', 'approver_group', 'table approval.approver_group exists');
SELECT has_table('approval', 'group_member', 'table approval.group_member exists');

SELECT col_is_pk('approval', 'principal', 'id', 'principal is keyed by id');
SELECT col_is_pk('approval', 'approver_group', 'name', 'approver_group is keyed by name');
SELECT col_is_pk('approval', 'group_member', ARRAY['group_name', 'principal_id']::name[],
                 'group_member is keyed by (group_name, principal_id)');

SELECT fk_ok('approval', 'principal', 'manager_id', 'approval', 'principal', 'id');
SELECT fk_ok('approval', 'group_member', 'group_name', 'approval', 'approver_group', 'name');
SELECT fk_ok('approval', 'group_member', 'principal_id', 'approval', 'principal', 'id');

SELECT has_function('approval', 'current_actor', ARRAY[]::name[], 'approval.current_actor() exists');
SELECT function_returns('approval', 'current_actor', ARRAY[]::name[], 'text',
                        'approval.current_actor() returns text');
SELECT has_function('approval', 'my_targets', ARRAY[]::name[], 'approval.my_targets() exists');
SELECT function_returns('approval', 'my_targets', ARRAY[]::name[], 'text[]',
                        'approval.my_targets() returns text[]');

-- ---------------------------------------------------------------------------
-- Who is acting
-- ---------------------------------------------------------------------------
SET ROLE approval_test_mapped;
SELECT is(approval.current_actor(), 'alice', 'a role mapped to a principal acts as that principal');
SELECT ok(approval.my_targets() @> ARRAY['user:alice', 'group:finance'],
          'a mapped role answers for its principal and that principal''s groups');
RESET ROLE;

SET ROLE approval_test_plain;
SELECT is(approval.current_actor(), 'approval_test_plain', 'an unmapped role acts as itself');
RESET ROLE;

SET ROLE approval_test_gateway;
SET LOCAL approval.actor = 'bob';
SELECT is(approval.current_actor(), 'bob', 'a gateway member acts for the principal named in approval.actor');
RESET approval.actor;
RESET ROLE;

SET ROLE approval_test_plain;
SET LOCAL approval.actor = 'bob';
SELECT throws_ok('SELECT approval.current_actor()', 'AP010', NULL,
                 'a role outside approval_gateway may not set approval.actor');
SELECT throws_ok('SELECT approval_test.actor_as_definer()', 'AP010', NULL,
                 'a SECURITY DEFINER function owned by a gateway member does not lend its right');
RESET approval.actor;
SELECT is(approval_test.actor_as_definer(), 'approval_test_plain',
          'inside a SECURITY DEFINER function the actor is the caller, not the owner');
RESET ROLE;

SET ROLE approval_test_gateway;
SELECT is(approval.current_actor(), 'approval_test_gateway',
          'a gateway member without approval.actor acts as itself');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
