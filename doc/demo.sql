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
\echo ' 4. A workflow: the manager, then 2 of 3 finance approvers'
\echo '=================================================================='
\echo 'finance gets a third member, erin.  define_workflow() checks the whole'
\echo 'document before it stores anything; the same name again makes version 2.'
\echo

INSERT INTO approval.principal (id, display_name, email, manager_id, attributes)
VALUES ('erin', 'Erin Evans', 'erin@example.com', 'carol', '{"department": "finance", "level": 2}');
INSERT INTO approval.group_member (group_name, principal_id) VALUES ('finance', 'erin');

SELECT approval.define_workflow($$
{
  "name": "laptop-request",
  "description": "A new laptop: the requester's manager, then two of finance",
  "stages": [
    {"name": "manager", "approvers": ["manager"]},
    {"name": "finance", "approvers": ["group:finance"], "min_approvals": 2,
     "denial_message": "Over the hardware budget"}
  ]
}
$$) AS workflow_id;

\echo
\echo 'The workflow as a Mermaid picture (approval.graph(name, ''dot'') for Graphviz):'
\echo
SELECT approval.graph('laptop-request');

\echo
\echo 'A bad definition is refused with AP005 naming the key, and writes nothing'
\echo '(the error below is expected):'
\echo
\set ON_ERROR_STOP 0
SELECT approval.define_workflow('{"name": "broken", "stages": [{"name": "x", "approvers": ["manager"], "min_approvals": 0}]}');
\set ON_ERROR_STOP 1

\echo
\echo '=================================================================='
\echo ' 5. alice asks; this session LISTENs like a notification service'
\echo '=================================================================='
\echo 'Every event is also sent with pg_notify on channel "approval" when the'
\echo 'transaction commits: compact JSON with the next approvers as "targets",'
\echo 'never the payload.  psql prints each one after the statement that sent it.'
\echo

LISTEN approval;

SET ROLE alice;
SELECT approval.submit('laptop-request', '{"model": "X1 Carbon", "cost": 1800}',
                       'New laptop for alice', 'asset:laptop-alice') AS request_id \gset
SELECT request_id, workflow, state, active_stages, votes, waiting_on
  FROM approval.request_status WHERE request_id = :request_id;
\echo 'Submitting the same subject again while it is open is a no-op that returns the same id:'
SELECT approval.submit('laptop-request', '{"model": "X1 Carbon", "cost": 1800}',
                       'New laptop for alice', 'asset:laptop-alice') = :request_id AS same_request;
RESET ROLE;

\echo
\echo 'bob, alice''s manager, sees it in approval.my_pending and approves:'
\echo
SET ROLE bob;
SELECT request_id, workflow, title, requester, stage FROM approval.my_pending;
SELECT approval.approve(:request_id, 'Her old one is five years old');
RESET ROLE;

\echo
\echo '=================================================================='
\echo ' 6. Finance: two of carol, dave and erin, through the web application'
\echo '=================================================================='
\echo 'carol and dave have no database role: the web application acts for them.'
\echo

BEGIN;
SET LOCAL ROLE webapp;
SET LOCAL approval.actor = 'carol';
SELECT approval.approve(:request_id, 'Within budget');
COMMIT;

SELECT request_id, state, active_stages, votes, waiting_on
  FROM approval.request_status WHERE request_id = :request_id;

BEGIN;
SET LOCAL ROLE webapp;
SET LOCAL approval.actor = 'dave';
SELECT approval.approve(:request_id);
COMMIT;

\echo
\echo 'Quorum reached: the request is approved and erin''s vote is no longer'
\echo 'needed.  Voting on a closed request is AP002 (expected error):'
\echo
\set ON_ERROR_STOP 0
BEGIN;
SET LOCAL ROLE webapp;
SET LOCAL approval.actor = 'erin';
SELECT approval.approve(:request_id);
ROLLBACK;
\set ON_ERROR_STOP 1

UNLISTEN approval;

\echo
\echo '=================================================================='
\echo ' 7. The event log: append-only, hash-chained per request'
\echo '=================================================================='
\echo

SELECT seq, kind, actor, data->>'stage' AS stage, encode(substr(hash, 1, 6), 'hex') AS hash_prefix
  FROM approval.event WHERE request_id = :request_id ORDER BY seq;
SELECT actor, stage, decision, comment FROM approval.decision WHERE request_id = :request_id ORDER BY id;
SELECT * FROM approval.verify_audit(:request_id);

\echo
\echo 'Nobody, not even a superuser, can change the log (expected error):'
\echo
\set ON_ERROR_STOP 0
UPDATE approval.event SET actor = 'mallory' WHERE request_id = :request_id;
\set ON_ERROR_STOP 1

\echo
\echo 'and the state tables are not writable but through the functions:'
\echo
\set ON_ERROR_STOP 0
SET ROLE alice;
UPDATE approval.request SET state = 'approved';
RESET ROLE;
\set ON_ERROR_STOP 1

\echo
\echo '=================================================================='
\echo ' 8. Routing by data, and what-if'
\echo '=================================================================='
\echo 'A workflow with a "match" condition (a SQL/JSON path predicate) takes'
\echo 'the requests it matches; submit(NULL, ...) routes.  preview() shows what'
\echo 'would run; nothing is written.'
\echo

SELECT approval.define_workflow($$
{
  "name": "cheap-hardware", "priority": 10,
  "match": "$.cost < 100", "auto_approve": "$.cost < 20",
  "stages": [{"name": "manager", "approvers": ["manager"]}]
}
$$) AS workflow_id;

SET ROLE alice;
SELECT approval.route('{"item": "mouse", "cost": 35}') AS routed_to;
SELECT * FROM approval.preview(NULL, '{"item": "mouse", "cost": 35}');
SELECT approval.submit(NULL, '{"item": "cable", "cost": 9}', 'USB cable') AS cable \gset
SELECT workflow, state FROM approval.request WHERE id = :cable;
RESET ROLE;

\echo
\echo '=================================================================='
\echo ' 9. Time: a business calendar, an SLA, escalation'
\echo '=================================================================='
\echo 'A calendar says when work happens: Berlin office hours with a lunch'
\echo 'break, and holidays.  On it, "2 days" is two business days and "16 hours"'
\echo 'sixteen business hours; DST is the time zone database'"'"'s business.'
\echo

INSERT INTO approval.calendar (name, timezone, hours, holidays) VALUES
    ('berlin-office', 'Europe/Berlin',
     '{"mon": ["09:00", "12:00", "13:00", "17:00"], "tue": ["09:00", "12:00", "13:00", "17:00"],
       "wed": ["09:00", "12:00", "13:00", "17:00"], "thu": ["09:00", "12:00", "13:00", "17:00"],
       "fri": ["09:00", "12:00", "13:00", "17:00"]}',
     '{2026-12-24, 2026-12-25, 2026-12-31, 2027-01-01}');

SET TIME ZONE 'Europe/Berlin';
SELECT approval.business_add('2026-12-23 16:00', '2 days', 'berlin-office') AS two_business_days_after_dec_23_16h,
       approval.business_add('2026-12-23 16:00', '16 hours', 'berlin-office') AS sixteen_business_hours,
       approval.business_elapsed('2026-12-21 09:00', '2026-12-28 09:00', 'berlin-office') AS business_time_that_week;

\echo
\echo 'A workflow with an SLA of 16 business hours, a warning at 75 %, and'
\echo 'escalation to finance after 8 business hours.  Each open request carries'
\echo 'its deadlines; approval.tick() fires the due ones, each exactly once (the'
\echo 'background worker calls it every approval.tick_interval; here we pass'
\echo '"at" to move the clock).'
\echo

SELECT approval.define_workflow($$
{
  "name": "laptop-sla", "match": "$.item == \"laptop\"", "priority": 5,
  "calendar": "berlin-office", "sla": "16 hours", "sla_warning": 0.75,
  "escalate_after": "8 hours", "escalate_to": "group:finance",
  "stages": [{"name": "manager", "approvers": ["manager"]}]
}
$$) AS workflow_id;

SET ROLE alice;
SELECT approval.submit('laptop-sla', '{"item": "laptop"}', 'Laptop on business time') AS sla_request \gset
RESET ROLE;
SELECT created_at, escalate_at, warn_at, due_at, sla_state FROM approval.request WHERE id = :sla_request;

SELECT approval.tick(escalate_at) AS fired_at_escalation FROM approval.request WHERE id = :sla_request;
SELECT approval.tick(warn_at) AS fired_at_warning FROM approval.request WHERE id = :sla_request;
SELECT approval.tick(due_at) AS fired_at_due FROM approval.request WHERE id = :sla_request;
SELECT approval.tick(due_at) AS fired_again FROM approval.request WHERE id = :sla_request;

SELECT seq, kind, actor, data FROM approval.event
 WHERE request_id = :sla_request AND kind IN ('escalated', 'sla_warning', 'sla_breached') ORDER BY seq;
SELECT request_id, sla_state, waiting_on FROM approval.request_status WHERE request_id = :sla_request;
SELECT request_id, sla_state, due_at FROM approval.at_risk;
RESET TIME ZONE;

\echo
\echo '=================================================================='
\echo ' 10. Governed tables: a change to real data waits for approval'
\echo '=================================================================='
\echo 'approval.govern() puts a table under review: each row change becomes a'
\echo 'request whose payload is the change, and the row is not changed until'
\echo 'it is approved.  Here seat counts above 10 need the manager; smaller'
\echo 'ones are approved at once (the stage is skipped, so auto_approve holds).'
\echo

CREATE TABLE public.licenses (id int PRIMARY KEY, product text NOT NULL, seats int NOT NULL);
INSERT INTO public.licenses VALUES (1, 'diagram tool', 5);
GRANT SELECT, UPDATE ON public.licenses TO alice;

SELECT approval.define_workflow($$
{
  "name": "seat-changes",
  "auto_approve": "$.new.seats <= 10",
  "stages": [{"name": "manager", "approvers": ["manager"]}]
}
$$) AS workflow_id;
SELECT approval.govern('public.licenses', 'seat-changes', '{UPDATE}');
SELECT tbl, workflow, operations, key_columns FROM approval.governed;

SET ROLE alice;
UPDATE public.licenses SET seats = 8 WHERE id = 1;
SELECT * FROM public.licenses;
UPDATE public.licenses SET seats = 25 WHERE id = 1;
SELECT * FROM public.licenses;
SELECT request_id, title, state FROM approval.my_requests WHERE workflow = 'seat-changes' ORDER BY request_id;
RESET ROLE;
SELECT request_id AS seat_request FROM approval.held_change WHERE outcome IS NULL \gset
SELECT payload FROM approval.request WHERE id = :seat_request;

\echo
\echo 'bob (the manager) approves: the change is made, as the table''s owner,'
\echo 'in his transaction.  Had the row changed meanwhile, the request would'
\echo 'be rejected with reason "conflict" and the row left alone.'
\echo

SET ROLE bob;
SELECT approval.approve(:seat_request);
RESET ROLE;
SELECT * FROM public.licenses;
SELECT request_id, operation, outcome FROM approval.held_change ORDER BY request_id;

\echo
\echo '=================================================================='
\echo ' 11. Approve from an email: actionable tokens'
\echo '=================================================================='
\echo 'The web application (a gateway) issues a single-use token for bob and'
\echo 'puts it in the links of an email; whoever follows a link makes the'
\echo 'gateway redeem it.  The vote is bob''s, with the token''s id in the log.'
\echo 'A token is signed (HMAC-SHA256, a key made at CREATE EXTENSION), expires,'
\echo 'and is void once used or once its request closes.'
\echo

-- what a statement's error says, as SQLSTATE: message (for the second click)
CREATE FUNCTION public.demo_sqlstate(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

SET ROLE alice;
SELECT approval.submit('seat-changes', '{"new": {"seats": 40}}', 'More seats, by email') AS mail_request \gset
RESET ROLE;
SET ROLE webapp;
SELECT approval.issue_token(:mail_request, 'bob', '2 days') AS token \gset
SELECT length(:'token') AS token_length;
SELECT approval.redeem_token(:'token', 'approve', 'from my phone');
SELECT public.demo_sqlstate(format('SELECT approval.redeem_token(%L, %L)', :'token', 'approve')) AS a_second_click;
RESET ROLE;
SELECT kind, actor, data->>'token' IS NOT NULL AS by_token FROM approval.event
 WHERE request_id = :mail_request AND kind = 'voted';
