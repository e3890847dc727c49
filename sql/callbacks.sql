--
-- callbacks: how workflow callbacks are checked and run (DESIGN §4).
--
-- They run as the role that defined the workflow, with the search_path that
-- was in effect when it was defined, never the caller's: a function written
-- the ordinary way, with unqualified names, works.  define_workflow() checks
-- each callback strictly (AP005 naming the key).  on_submitted and
-- on_cancelled are called too; a dropped definer or a revoked EXECUTE is a
-- clear error.
--

-- an application schema, written the ordinary way: unqualified names, made
-- with the schema on the path
CREATE SCHEMA cb_app;
SET search_path = cb_app, public;
CREATE TABLE cb_app.granted (request bigint, event text, ran_as name, path text);
GRANT USAGE ON SCHEMA cb_app TO regress_admin;
GRANT INSERT ON cb_app.granted TO regress_admin;
CREATE FUNCTION cb_app.record_it(request bigint, what text) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO granted VALUES (request, what, current_user, current_setting('search_path')) $$;
CREATE FUNCTION cb_app.on_submit(request bigint) RETURNS void LANGUAGE sql
    AS $$ SELECT record_it(request, 'submitted') $$;
CREATE FUNCTION cb_app.on_ok(request bigint) RETURNS void LANGUAGE sql
    AS $$ SELECT record_it(request, 'approved') $$;
CREATE FUNCTION cb_app.on_cancel(request bigint) RETURNS void LANGUAGE sql
    AS $$ SELECT record_it(request, 'cancelled') $$;
-- things that are not callbacks
CREATE FUNCTION cb_app.two_args(request bigint, extra int) RETURNS void LANGUAGE sql AS 'SELECT';
CREATE FUNCTION cb_app.text_arg(request text) RETURNS void LANGUAGE sql AS 'SELECT';
CREATE FUNCTION cb_app.many(request bigint) RETURNS SETOF int LANGUAGE sql AS 'SELECT 1';
CREATE PROCEDURE cb_app.proc(request bigint) LANGUAGE sql AS 'SELECT';
CREATE FUNCTION cb_app.secret(request bigint) RETURNS void LANGUAGE sql AS 'SELECT';
REVOKE EXECUTE ON FUNCTION cb_app.secret(bigint) FROM PUBLIC;
RESET search_path;

-- the definer's search_path names cb_app: unqualified callbacks resolve there
SET ROLE regress_admin;
SET search_path = cb_app, public;
SELECT approval.define_workflow('{"name": "cb-flow", "on_submitted": "on_submit",
    "on_approved": "on_ok(bigint)", "on_cancelled": "cb_app.on_cancel",
    "stages": [{"name": "it", "approvers": ["group:it-managers"]}]}') > 0 AS defined;
RESET search_path;
SELECT on_submitted, on_approved, on_cancelled, search_path
  FROM approval.workflow WHERE name = 'cb-flow';

-- AP005 for each kind of thing that is no callback, nothing written
SELECT count(*) AS workflows_before FROM approval.workflow \gset
\set VERBOSITY sqlstate
SELECT approval.define_workflow('{"name": "cb-bad", "on_approved": "pg_catalog.sum(bigint)"}');
\set VERBOSITY default
SELECT approval.define_workflow('{"name": "cb-bad", "on_approved": "pg_catalog.sum(bigint)"}');
SELECT approval.define_workflow('{"name": "cb-bad", "on_approved": "cb_app.two_args"}');
SELECT approval.define_workflow('{"name": "cb-bad", "on_approved": "cb_app.two_args(bigint, integer)"}');
SELECT approval.define_workflow('{"name": "cb-bad", "on_approved": "cb_app.text_arg(text)"}');
SELECT approval.define_workflow('{"name": "cb-bad", "on_approved": "cb_app.many"}');
SELECT approval.define_workflow('{"name": "cb-bad", "on_approved": "cb_app.proc"}');
SELECT approval.define_workflow('{"name": "cb-bad", "on_approved": "cb_app.secret"}');
SELECT approval.define_workflow('{"name": "cb-bad", "on_rejected": "a.b.c"}');
SELECT approval.define_workflow('{"name": "cb-bad", "on_rejected": "a.b.c.d"}');
SELECT approval.define_workflow('{"name": "cb-bad", "on_rejected": "contrib_regression.cb_app.on_ok"}');
SELECT approval.define_workflow('{"name": "cb-bad", "on_rejected": "cb_app.on_ok(nosuchtype)"}');
SELECT approval.define_workflow('{"name": "cb-bad", "on_expired": "cb_app.\"unterminated"}');
SELECT approval.define_workflow('{"name": "cb-bad", "on_cancelled": "on_ok"}');
SELECT approval.define_workflow('{"name": "cb-bad", "on_cancelled": "on_ok(bigint)"}');
-- and a number too big for the interval arithmetic is AP005, not 22003
SELECT approval.define_workflow('{"name": "cb-bad", "sla": "1 day", "sla_warning": 1e400}');
SELECT count(*) = :workflows_before AS nothing_written FROM approval.workflow;
-- the path can also be given
SELECT approval.define_workflow('{"name": "cb-path", "on_cancelled": "on_ok"}',
                                search_path => 'cb_app') > 0 AS a_path_can_be_given;
RESET ROLE;

-- the caller's search_path does not matter: a hostile one changes nothing
CREATE SCHEMA cb_evil;
CREATE TABLE cb_evil.granted (request bigint, event text, ran_as name, path text);
GRANT USAGE ON SCHEMA cb_evil TO PUBLIC;
GRANT INSERT ON cb_evil.granted TO PUBLIC;
SET ROLE regress_alice;
SET search_path = cb_evil, public;
SELECT approval.submit('cb-flow', '{}', 'one') AS cb1 \gset
SELECT approval.submit('cb-flow', '{}', 'two') AS cb2 \gset
SELECT approval.cancel(:cb2);
RESET search_path;
RESET ROLE;
SET ROLE regress_bob;
SELECT approval.approve(:cb1);
RESET ROLE;
SELECT request - :cb1 AS request, event, ran_as, path FROM cb_app.granted ORDER BY request, event;
SELECT count(*) AS planted FROM cb_evil.granted;

-- a definer who lost EXECUTE: a clear error, the decision fails
REVOKE EXECUTE ON FUNCTION cb_app.on_ok(bigint) FROM PUBLIC;
SET ROLE regress_alice;
SELECT approval.submit('cb-flow', '{}', 'three') AS cb3 \gset
RESET ROLE;
SET ROLE regress_bob;
SELECT approval.approve(:cb3);
RESET ROLE;
GRANT EXECUTE ON FUNCTION cb_app.on_ok(bigint) TO PUBLIC;

-- a definer that was dropped: a clear error naming the workflow and the way out
CREATE ROLE regress_cb_definer;
GRANT approval_admin TO regress_cb_definer;
GRANT USAGE ON SCHEMA cb_app TO regress_cb_definer;
SET ROLE regress_cb_definer;
SET search_path = cb_app, public;
SELECT approval.define_workflow('{"name": "cb-orphan", "on_approved": "cb_app.two_args(bigint, integer)"}');
SELECT approval.define_workflow('{"name": "cb-orphan", "on_approved": "cb_app.on_ok",
    "stages": [{"name": "it", "approvers": ["group:it-managers"]}]}') AS orphan_wf \gset
RESET search_path;
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.submit('cb-orphan', '{}', 'orphan') AS cb4 \gset
RESET ROLE;
REVOKE USAGE ON SCHEMA cb_app FROM regress_cb_definer;
REVOKE approval_admin FROM regress_cb_definer;
DROP ROLE regress_cb_definer;
SET ROLE regress_bob;
\set VERBOSITY terse
SELECT approval.approve(:cb4) AS orphan_state;
\set VERBOSITY default
RESET ROLE;
SELECT state FROM approval.request WHERE id = :cb4;
-- the way out the hint gives (UPDATE approval.workflow SET created_by = ...)
UPDATE approval.workflow SET created_by = 'regress_admin'::regrole WHERE id = :orphan_wf;
SET ROLE regress_bob;
SELECT approval.approve(:cb4);
RESET ROLE;
SELECT event, ran_as, path FROM cb_app.granted WHERE request = :cb4;

-- a caller's temporary table does not take the place of the definer's:
-- pg_temp is searched last for a callback
SET ROLE regress_alice;
CREATE TEMP TABLE granted (request bigint, event text, ran_as name, path text);
SELECT approval.submit('cb-flow', '{}', 'temp') AS cb5 \gset
SELECT count(*) AS into_the_temp_table FROM pg_temp.granted;
RESET ROLE;
SELECT event, ran_as, path FROM cb_app.granted WHERE request = :cb5;

-- "$user" in the definer's path is the definer, not the extension's owner
SELECT current_user AS su \gset
CREATE SCHEMA :"su";
CREATE FUNCTION :"su".mine(request bigint) RETURNS void LANGUAGE sql AS 'SELECT';
CREATE SCHEMA regress_admin AUTHORIZATION regress_admin;
CREATE FUNCTION regress_admin.mine(request bigint) RETURNS void LANGUAGE sql AS 'SELECT';
ALTER FUNCTION regress_admin.mine(bigint) OWNER TO regress_admin;
SET ROLE regress_admin;
SET search_path = "$user", public;
SELECT approval.define_workflow('{"name": "cb-user", "on_submitted": "mine"}') AS cb_user \gset
RESET search_path;
RESET ROLE;
SELECT on_submitted FROM approval.workflow WHERE id = :cb_user;
DROP SCHEMA :"su" CASCADE;

-- what a callback sets, even with a plain SET, stays in the callback
CREATE FUNCTION cb_app.meddle(request bigint) RETURNS void LANGUAGE plpgsql
    AS $$ BEGIN PERFORM set_config('search_path', 'meddled', false);
                PERFORM set_config('work_mem', '77MB', false); END $$;
SET ROLE regress_admin;
SELECT approval.define_workflow('{"name": "cb-meddle", "on_submitted": "cb_app.meddle"}') > 0 AS defined;
RESET ROLE;
SET ROLE regress_alice;
SELECT current_setting('search_path') AS path_before, current_setting('work_mem') AS work_mem_before \gset
SELECT approval.submit('cb-meddle', '{}') > 0 AS submitted;
SELECT current_setting('search_path') = :'path_before' AS path_kept,
       current_setting('work_mem') = :'work_mem_before' AS work_mem_kept;
RESET ROLE;
