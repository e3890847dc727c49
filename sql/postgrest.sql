--
-- postgrest: the actor behind PostgREST and Supabase (DESIGN §2,
-- approval.actor_claim).  Each request of PostgREST is simulated with the
-- statements it sends: its connection's session user is the authenticator;
-- per HTTP request it sets the role and the verified JWT's claims,
-- transaction-local, and then runs the call.  doc/postgrest.md is the set-up
-- this follows.
--

-- the roles of doc/postgrest.md
CREATE ROLE regress_authenticator NOINHERIT;
CREATE ROLE regress_web_user;
CREATE ROLE regress_web_anon;
GRANT regress_web_user, regress_web_anon TO regress_authenticator;
GRANT approval_gateway TO regress_authenticator;
GRANT approval_user TO regress_web_user;

SELECT approval.define_workflow('{"name": "regress-postgrest",
    "stages": [{"name": "manager", "approvers": ["manager"]}]}') > 0 AS defined;

-- ALTER ROLE regress_authenticator SET approval.actor_claim = 'sub' in a
-- real set-up; SET SESSION AUTHORIZATION does not apply role settings
SET approval.actor_claim = 'sub';
SET SESSION AUTHORIZATION regress_authenticator;

-- frank (a principal without a PostgreSQL role of his own) submits
BEGIN;
SELECT set_config('role', 'regress_web_user', true),
       set_config('request.jwt.claims', '{"sub": "frank", "role": "regress_web_user", "exp": 1999999999}', true);
SELECT approval.current_actor();
SELECT approval.submit('regress-postgrest', '{"item": "laptop"}', 'A laptop') AS id \gset
COMMIT;

-- his manager bob sees it in my_pending, and approves it
BEGIN;
SELECT set_config('role', 'regress_web_user', true),
       set_config('request.jwt.claims', '{"sub": "bob", "role": "regress_web_user"}', true);
SELECT workflow, title, requester, stage FROM approval.my_pending WHERE request_id = :id;
SELECT approval.approve(:id, 'ok');
COMMIT;

-- the log names bob as the actor, frank as the requester
RESET SESSION AUTHORIZATION;
SELECT kind, actor FROM approval.event WHERE request_id = :id ORDER BY seq;
SET SESSION AUTHORIZATION regress_authenticator;

-- another user of the API sees nothing of it
BEGIN;
SELECT set_config('role', 'regress_web_user', true),
       set_config('request.jwt.claims', '{"sub": "dave"}', true);
SELECT count(*) AS seen_by_dave FROM approval.request_status WHERE request_id = :id;
COMMIT;

-- a transaction without claims acts as its current role, as always
BEGIN;
SELECT set_config('role', 'regress_web_user', true);
SELECT approval.current_actor();
ROLLBACK;

-- claims that name nobody are AP010; a claim that is no principal AP012
SET ROLE regress_web_user;
\set VERBOSITY sqlstate
BEGIN;
SELECT set_config('request.jwt.claims', '{"role": "regress_web_anon"}', true);
SELECT approval.current_actor();
ROLLBACK;
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": "bob"', true);
SELECT approval.current_actor();
ROLLBACK;
BEGIN;
SELECT set_config('request.jwt.claims', '["bob"]', true);
SELECT approval.current_actor();
ROLLBACK;
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": {"id": "bob"}}', true);
SELECT approval.current_actor();
ROLLBACK;
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": ""}', true);
SELECT approval.current_actor();
ROLLBACK;
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": "mallory"}', true);
SELECT approval.current_actor();
ROLLBACK;
\set VERBOSITY default
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": "bob"', true);
SELECT approval.current_actor();
ROLLBACK;
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": "mallory"}', true);
SELECT approval.current_actor();
ROLLBACK;

-- a number is taken as its text (here: no principal "42")
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": 42}', true);
SELECT public.error_of('SELECT approval.current_actor()');
ROLLBACK;

-- behind PostgREST the current role is the web role, which is no gateway:
-- approval.actor is refused (AP010)
BEGIN;
SET LOCAL approval.actor = 'carol';
SELECT set_config('request.jwt.claims', '{"sub": "bob"}', true);
SELECT public.error_of('SELECT approval.current_actor()');
ROLLBACK;

-- only a superuser sets approval.actor_claim
SET approval.actor_claim = 'email';
RESET ROLE;
RESET SESSION AUTHORIZATION;

-- a gateway's approval.actor, when set, comes before the claims
SET SESSION AUTHORIZATION regress_app;
BEGIN;
SET LOCAL approval.actor = 'carol';
SELECT set_config('request.jwt.claims', '{"sub": "bob"}', true);
SELECT approval.current_actor();
ROLLBACK;
RESET SESSION AUTHORIZATION;

-- anyone can set request.jwt.claims: in a session whose session user is no
-- gateway, they are ignored, whatever the current role
SET SESSION AUTHORIZATION regress_alice;
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": "bob"}', true);
SELECT approval.current_actor();
ROLLBACK;
RESET SESSION AUTHORIZATION;

-- with approval.actor_claim empty, claims are ignored even for a gateway
RESET approval.actor_claim;
SET SESSION AUTHORIZATION regress_authenticator;
BEGIN;
SELECT set_config('role', 'regress_web_user', true),
       set_config('request.jwt.claims', '{"sub": "bob"}', true);
SELECT approval.current_actor();
ROLLBACK;
RESET SESSION AUTHORIZATION;

-- another claim: email
SET approval.actor_claim = 'email';
INSERT INTO approval.principal (id, display_name) VALUES ('grace@example.com', 'Grace');
SET SESSION AUTHORIZATION regress_authenticator;
BEGIN;
SELECT set_config('role', 'regress_web_user', true),
       set_config('request.jwt.claims', '{"sub": "8d3c", "email": "grace@example.com"}', true);
SELECT approval.current_actor(), approval.my_targets();
ROLLBACK;
RESET SESSION AUTHORIZATION;
RESET approval.actor_claim;
DELETE FROM approval.principal WHERE id = 'grace@example.com';

DROP OWNED BY regress_authenticator, regress_web_user, regress_web_anon;
DROP ROLE regress_authenticator, regress_web_user, regress_web_anon;
