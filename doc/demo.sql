-- The approval walkthrough that "make demo" runs (psql -e: every statement is
-- echoed before its result; the \echo lines are the narration).
--
-- It runs in a fresh database approval_demo of the demo cluster (.demo/), as
-- that cluster's superuser.  Roles are cluster-wide and outlive the database,
-- so they are created only when missing: running the demo twice works.

\set QUIET on
\pset footer off
\pset null '(null)'
\set QUIET off

\echo
\echo '=================================================================='
\echo ' 1. Install the extension'
\echo '=================================================================='
\echo 'CREATE EXTENSION creates the schema approval and, when missing, the'
\echo 'roles approval_admin, approval_user and approval_gateway.'
\echo

CREATE EXTENSION approval;

SELECT rolname FROM pg_roles WHERE rolname LIKE 'approval\_%' ORDER BY 1;

\echo
\echo '=================================================================='
\echo ' 2. People, their PostgreSQL roles, and approver groups'
\echo '=================================================================='
\echo 'alice and bob log in with roles of their own; webapp is an application'
\echo 'that connects as one role and acts for many people, so it is a member'
\echo 'of approval_gateway.  it_managers is a plain PostgreSQL role.'
\echo

DO $$
DECLARE
    r text;
BEGIN
    -- no "already a member" notices when the demo runs a second time
    PERFORM set_config('client_min_messages', 'warning', true);
    FOREACH r IN ARRAY ARRAY['alice', 'bob', 'webapp', 'it_managers'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I', r);
        END IF;
    END LOOP;
    GRANT approval_user TO alice, bob, webapp;
    GRANT approval_gateway TO webapp;
    GRANT it_managers TO bob;
END
$$;

\echo
\echo 'Principals are people.  manager_id builds the reporting line'
\echo '(alice -> bob -> carol); pg_role says which PostgreSQL role is whom.'
\echo

INSERT INTO approval.principal (id, display_name, email, manager_id, pg_role, attributes) VALUES
    ('carol', 'Carol Chen',  'carol@example.com', NULL,    NULL,    '{"department": "finance", "level": 3}'),
    ('bob',   'Bob Brown',   'bob@example.com',   'carol', 'bob',   '{"department": "it", "level": 2}'),
    ('alice', 'Alice Adams', 'alice@example.com', 'bob',   'alice', '{"department": "it", "level": 1}'),
    ('dave',  'Dave Diaz',   'dave@example.com',  'carol', NULL,    '{"department": "finance", "level": 2}');

SELECT id, display_name, manager_id, pg_role, attributes FROM approval.principal ORDER BY id;

\echo
\echo 'Approver groups: finance lists its members; it-managers lists none but'
\echo 'takes the members of the PostgreSQL role it_managers (bob).'
\echo

INSERT INTO approval.approver_group (name, description, pg_role) VALUES
    ('finance',     'Finance approvers', NULL),
    ('it-managers', 'IT management',     'it_managers');
INSERT INTO approval.group_member (group_name, principal_id) VALUES
    ('finance', 'carol'),
    ('finance', 'dave');

SELECT g.name, g.pg_role,
       coalesce(array_agg(m.principal_id ORDER BY m.principal_id)
                FILTER (WHERE m.principal_id IS NOT NULL), '{}') AS listed_members
  FROM approval.approver_group g
  LEFT JOIN approval.group_member m ON m.group_name = g.name
 GROUP BY g.name, g.pg_role
 ORDER BY g.name;

\echo
\echo '=================================================================='
\echo ' 3. Who is acting: approval.current_actor() and approval.my_targets()'
\echo '=================================================================='
\echo 'A role that is nobody in approval.principal acts as itself:'
\echo

SELECT current_user, approval.current_actor(), approval.my_targets();

\echo
\echo 'A role mapped to a principal acts as that person, and answers for'
\echo 'user:<id>, its groups, and the roles it belongs to.  bob is in'
\echo 'it-managers through the PostgreSQL role it_managers:'
\echo

SET ROLE alice;
SELECT current_user, approval.current_actor(), approval.my_targets();
RESET ROLE;

SET ROLE bob;
SELECT current_user, approval.current_actor(), approval.my_targets();
RESET ROLE;

\echo
\echo 'A gateway (webapp) acts for whoever it names in approval.actor.'
\echo 'SET LOCAL keeps the setting to one transaction, so one request of the'
\echo 'web application cannot leak its user into the next:'
\echo

BEGIN;
SET LOCAL ROLE webapp;
SET LOCAL approval.actor = 'carol';
SELECT current_user, approval.current_actor(), approval.my_targets();
COMMIT;

SET ROLE webapp;
SELECT current_user, approval.current_actor() AS "after COMMIT";
RESET ROLE;

\echo
\echo 'Anyone else who sets approval.actor is refused with SQLSTATE AP010'
\echo '(the error below is expected):'
\echo

\set ON_ERROR_STOP 0
BEGIN;
SET LOCAL ROLE alice;
SET LOCAL approval.actor = 'carol';
SELECT approval.current_actor();
ROLLBACK;
\set ON_ERROR_STOP 1
SELECT :'LAST_ERROR_SQLSTATE' AS "SQLSTATE of that error";

\echo
\echo '=================================================================='
\echo ' Workflows, requests and votes arrive with the engine; see'
\echo ' doc/approval.md for what is built today.'
\echo '=================================================================='
