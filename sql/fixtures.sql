--
-- fixtures: the people, groups and roles the later regression tests share.
-- Runs after "identity"; the extension stays installed for the rest of the
-- schedule.
--
CREATE EXTENSION approval;

-- an error's SQLSTATE, then its message, detail and hint with numbers of two
-- digits or more (request ids, which depend on the order of the schedule)
-- as N
CREATE FUNCTION public.error_of(call text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    m text; d text; h text;
BEGIN
    EXECUTE call;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ': ' || regexp_replace(format('%s / %s / %s', m, d, h), '\d{2,}', 'N', 'g');
END $$;

-- PostgreSQL roles (NOLOGIN: the tests use SET ROLE)
CREATE ROLE regress_alice;
CREATE ROLE regress_bob;
CREATE ROLE regress_carol;
CREATE ROLE regress_dave;
CREATE ROLE regress_erin;
CREATE ROLE regress_ciso;
CREATE ROLE regress_outsider;           -- may call the API, answers for nothing
CREATE ROLE regress_security;           -- a role that stands for a group
CREATE ROLE regress_app;                -- a web application acting for people
CREATE ROLE regress_admin;
GRANT approval_user TO regress_alice, regress_bob, regress_carol, regress_dave,
    regress_erin, regress_ciso, regress_outsider;
GRANT approval_gateway TO regress_app;
GRANT approval_admin TO regress_admin;
GRANT regress_security TO regress_ciso;

-- people: alice reports to bob, bob to carol; frank has no role of his own
INSERT INTO approval.principal (id, display_name, email, manager_id, attributes, pg_role) VALUES
    ('carol', 'Carol', 'carol@example.com', NULL,    '{"department": "finance", "level": 5}', 'regress_carol'),
    ('bob',   'Bob',   'bob@example.com',   'carol', '{"department": "it", "level": 4}',      'regress_bob'),
    ('alice', 'Alice', 'alice@example.com', 'bob',   '{"department": "it", "level": 2}',      'regress_alice'),
    ('dave',  'Dave',  'dave@example.com',  'carol', '{"department": "finance", "level": 3}', 'regress_dave'),
    ('erin',  'Erin',  'erin@example.com',  'carol', '{"department": "finance", "level": 3}', 'regress_erin'),
    ('ciso',  'Chief', 'ciso@example.com',  NULL,    '{"department": "security", "level": 6}', 'regress_ciso'),
    ('frank', 'Frank', 'frank@example.com', 'bob',   '{"department": "it", "level": 1}',      NULL);

INSERT INTO approval.approver_group (name, description, pg_role) VALUES
    ('finance',     'Finance approvers', NULL),
    ('security',    'Members of the regress_security role', 'regress_security'),
    ('it-managers', 'IT managers', NULL),
    ('empty',       'Nobody', NULL);

INSERT INTO approval.group_member (group_name, principal_id) VALUES
    ('finance', 'carol'), ('finance', 'dave'), ('finance', 'erin'),
    ('it-managers', 'bob');

-- a business calendar the workflows of later tests may name
INSERT INTO approval.calendar (name, timezone, hours, holidays) VALUES
    ('eu-office', 'Europe/Berlin',
     '{"mon": ["09:00", "12:00", "13:00", "17:00"], "tue": ["09:00", "12:00", "13:00", "17:00"],
       "wed": ["09:00", "12:00", "13:00", "17:00"], "thu": ["09:00", "12:00", "13:00", "17:00"],
       "fri": ["09:00", "12:00", "13:00", "17:00"], "sat": null, "sun": null}',
     '{2026-01-01,2026-04-03,2026-04-06,2026-05-01,2026-12-25,2026-12-26}');

-- what each of them answers for
SET ROLE regress_dave;
SELECT approval.current_actor(), approval.my_targets();
RESET ROLE;
SET ROLE regress_ciso;
SELECT approval.current_actor(), approval.my_targets();
RESET ROLE;
BEGIN;
SET LOCAL ROLE regress_app;
SET LOCAL approval.actor = 'frank';
SELECT approval.current_actor(), approval.my_targets();
ROLLBACK;
