-- pgTAP: actionable tokens (DESIGN §10, §9 AP009): issue_token,
-- redeem_token, revoke_tokens.
--
--   * a gateway (or an admin) issues a token for an approver who may vote at
--     an active stage now, and redeems it with "approve" or "reject": the
--     decision is the approver's, its voted event names the token;
--   * everyone else is refused (42501), and so are a bad ttl (22023), an
--     unknown principal (AP012), a request the caller cannot see (AP001), a
--     closed one (AP002) and an approver not eligible now (AP003);
--   * every refusal of a token is AP009 and says which it was: invalid
--     (malformed, flipped, wrong MAC, unknown key), unknown, already used,
--     revoked, expired, request closed, approver no longer eligible;
--   * a retry of the same vote through a second token is approve()'s no-op;
--   * a token whose approver is made inactive, renamed or removed is revoked
--     then: it stays void when the principal is active again, or when its id
--     is given to someone else;
--   * a token issued before a resubmission does not decide the resubmitted
--     request (AP009 "request resubmitted"): its approver never saw it so;
--   * the database keeps a sha256 of each token, never the token, nor its
--     random id: its row and its key together do not give the token back;
--   * a new key (rotation) signs new tokens, the old ones still redeem until
--     their key is deleted.
--
-- Everything happens in one transaction that is rolled back, including
-- CREATE EXTENSION and the roles the test makes.
\set ON_ERROR_STOP 1
BEGIN;

SELECT plan(87);

SELECT current_setting('search_path') AS search_path_before \gset
CREATE EXTENSION approval;
-- pgTAP lives in public; the install script's SET search_path outlives
-- CREATE EXTENSION (see 001_identity), so put the session's path back.
SELECT set_config('search_path', :'search_path_before', true) AS search_path_restored \gset

-- ---------------------------------------------------------------------------
-- People and workflows
-- ---------------------------------------------------------------------------
CREATE ROLE tk_alice;
CREATE ROLE tk_bob;
CREATE ROLE tk_carol;
CREATE ROLE tk_dave;
CREATE ROLE tk_erin;
CREATE ROLE tk_app;         -- the application that sends the links
CREATE ROLE tk_admin;
CREATE ROLE tk_sneaky;      -- an approval_user that was given EXECUTE directly
GRANT approval_user TO tk_alice, tk_bob, tk_carol, tk_dave, tk_erin, tk_sneaky;
GRANT approval_gateway TO tk_app;
GRANT approval_admin TO tk_admin;
GRANT EXECUTE ON FUNCTION approval.issue_token(bigint, text, interval),
    approval.redeem_token(text, text, text), approval.revoke_tokens(bigint) TO tk_sneaky;

INSERT INTO approval.principal (id, manager_id, pg_role) VALUES
    ('bob',   NULL,  'tk_bob'),
    ('alice', 'bob', 'tk_alice'),
    ('carol', NULL,  'tk_carol'),
    ('dave',  NULL,  'tk_dave'),
    ('erin',  NULL,  'tk_erin'),
    ('frank', NULL,  NULL);
INSERT INTO approval.approver_group (name) VALUES ('tk-finance');
INSERT INTO approval.group_member (group_name, principal_id) VALUES ('tk-finance', 'carol'), ('tk-finance', 'dave');

--   tk-one:    review by bob
--   tk-either: review by bob or dave (one of them)
--   tk-two:    manager (bob or erin), then finance (the group)
--   tk-pair:   review by two of the finance group
SELECT approval.define_workflow('{"name": "tk-one", "stages": [
    {"name": "review", "approvers": ["user:bob"]}]}') IS NOT NULL AS defined \gset
SELECT approval.define_workflow('{"name": "tk-either", "stages": [
    {"name": "review", "approvers": ["user:bob", "user:dave"]}]}') IS NOT NULL AS defined \gset
SELECT approval.define_workflow('{"name": "tk-two", "stages": [
    {"name": "manager", "approvers": ["user:bob", "user:erin"]},
    {"name": "finance", "approvers": ["group:tk-finance"]}]}') IS NOT NULL AS defined \gset
SELECT approval.define_workflow('{"name": "tk-frank", "stages": [
    {"name": "review", "approvers": ["user:frank"]}]}') IS NOT NULL AS defined \gset
SELECT approval.define_workflow('{"name": "tk-pair", "stages": [
    {"name": "review", "approvers": ["group:tk-finance"], "min_approvals": 2}]}') IS NOT NULL AS defined \gset

SET LOCAL ROLE tk_alice;
SELECT approval.submit('tk-one', '{}', 'approve me') AS r_app \gset
SELECT approval.submit('tk-one', '{}', 'reject me') AS r_rej \gset
SELECT approval.submit('tk-one', '{}', 'to cancel') AS r_cancel \gset
SELECT approval.submit('tk-either', '{}', 'decided by another') AS r_other \gset
SELECT approval.submit('tk-either', '{}', 'revoked') AS r_revoke \gset
SELECT approval.submit('tk-two', '{}', 'stage moves on') AS r_moves \gset
SELECT approval.submit('tk-two', '{}', 'group left') AS r_left \gset
SELECT approval.submit('tk-pair', '{}', 'two tokens') AS r_pair \gset
SELECT approval.submit('tk-one', '{}', 'expires') AS r_exp \gset
SELECT approval.submit('tk-one', '{}', 'misc') AS r_misc \gset
SELECT approval.submit('tk-one', '{"amount": 10}', 'resubmitted') AS r_resub \gset
SELECT approval.submit('tk-frank', '{}', 'id given to another') AS r_frank \gset
RESET ROLE;
SELECT approval.submit('tk-one', '{}', 'hidden', NULL, NULL) AS r_hidden \gset

-- helpers: base64url to bytes and back; try() reports a statement's
-- SQLSTATE and message
CREATE SCHEMA tk_test;
GRANT USAGE ON SCHEMA tk_test TO PUBLIC;
CREATE FUNCTION tk_test.unb64(t text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT decode(translate(t, '-_', '+/') || repeat('=', (4 - length(t) % 4) % 4), 'base64') $$;
CREATE FUNCTION tk_test.b64(b bytea) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT rtrim(translate(replace(encode(b, 'base64'), E'\n', ''), '+/', '-_'), '=') $$;
-- every token the test was given, to look for in the tables
CREATE TABLE tk_test.issued (token text);
GRANT INSERT ON tk_test.issued TO PUBLIC;

-- ---------------------------------------------------------------------------
-- The functions
-- ---------------------------------------------------------------------------
SELECT function_returns('approval', 'issue_token', ARRAY['bigint', 'text', 'interval'], 'text',
                        'approval.issue_token(bigint, text, interval) returns text');
SELECT function_returns('approval', 'redeem_token', ARRAY['text', 'text', 'text'], 'approval.request_state',
                        'approval.redeem_token(text, text, text) returns approval.request_state');
SELECT function_returns('approval', 'revoke_tokens', ARRAY['bigint'], 'integer',
                        'approval.revoke_tokens(bigint) returns integer');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
     WHERE p.oid IN ('approval.issue_token(bigint,text,interval)'::regprocedure,
                     'approval.redeem_token(text,text,text)'::regprocedure,
                     'approval.revoke_tokens(bigint)'::regprocedure,
                     'approval.new_token_key()'::regprocedure)
       AND NOT (p.prosecdef AND p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'])
$$, 'the token functions are SECURITY DEFINER with search_path = pg_catalog, pg_temp');
SELECT is((SELECT count(*)::int FROM approval.token_key), 1, 'CREATE EXTENSION made one signing key');
SELECT is((SELECT tgenabled::text FROM pg_trigger
            WHERE tgrelid = 'approval.principal'::regclass AND tgname = 'principal_tokens'),
          'A', 'the trigger that revokes a principal''s tokens fires always (session_replication_role = replica too)');

-- ---------------------------------------------------------------------------
-- Issue and redeem
-- ---------------------------------------------------------------------------
SET LOCAL ROLE tk_app;
SELECT approval.issue_token(:r_app, 'bob') AS t_app \gset
SELECT approval.issue_token(:r_rej, 'bob', '1 hour') AS t_rej \gset
INSERT INTO tk_test.issued VALUES (:'t_app'), (:'t_rej');
SELECT ok(:'t_app' ~ '^[A-Za-z0-9_-]+$' AND length(:'t_app') < 200,
          format('a token is base64url without padding, short enough for a URL (%s characters)', length(:'t_app')));
SELECT isnt(:'t_app'::text, :'t_rej'::text, 'two tokens differ');
SELECT is(approval.redeem_token(:'t_app', 'approve', 'from the email'), 'approved',
          'redeeming a token with approve records the approval: approved');
SELECT is(approval.redeem_token(:'t_rej', 'reject', 'no'), 'rejected',
          'redeeming a token with reject records the rejection: rejected');
RESET ROLE;

SELECT is((SELECT actor || ' ' || decision || ' ' || comment FROM approval.decision WHERE request_id = :r_app),
          'bob approve from the email', 'the approval is the token''s approver''s, with the comment');
SELECT is((SELECT actor || ' ' || decision FROM approval.decision WHERE request_id = :r_rej),
          'bob reject', 'the rejection is the token''s approver''s');
SELECT is((SELECT e.data->>'token' FROM approval.event e WHERE e.request_id = :r_app AND e.kind = 'voted'),
          (SELECT t.id FROM approval.token t WHERE t.request_id = :r_app),
          'the voted event carries the token''s id');
SELECT is((SELECT e.actor FROM approval.event e WHERE e.request_id = :r_app AND e.kind = 'voted'),
          'bob', 'the voted event''s actor is the approver');
SELECT is((SELECT decision || ' ' || used_by || ' ' || (used_at IS NOT NULL)
             FROM approval.token WHERE request_id = :r_rej),
          'reject tk_app true', 'the token''s row says it was used, by whom, for what');
SELECT is((SELECT count(*)::int FROM approval.verify_audit() WHERE NOT ok), 0,
          'the hash chains are intact');

-- an admin (no gateway) may issue and redeem too
SET LOCAL ROLE tk_admin;
SELECT approval.issue_token(:r_misc, 'bob') AS t_misc \gset
INSERT INTO tk_test.issued VALUES (:'t_misc');
SELECT ok(:'t_misc' IS NOT NULL, 'an approval_admin may issue a token');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- Who may issue, redeem and revoke
-- ---------------------------------------------------------------------------
SET LOCAL ROLE tk_bob;
SELECT throws_ok(format('SELECT approval.issue_token(%s, ''bob'')', :r_misc), '42501', NULL,
                 'an approval_user may not issue a token (no EXECUTE)');
SELECT throws_ok(format('SELECT approval.redeem_token(%L, ''approve'')', :'t_misc'), '42501', NULL,
                 'an approval_user may not redeem a token (no EXECUTE)');
RESET ROLE;
SET LOCAL ROLE tk_sneaky;
SELECT throws_ok(format('SELECT approval.issue_token(%s, ''bob'')', :r_misc), '42501',
                 'role "tk_sneaky" may not issue tokens',
                 'a role with EXECUTE that is no gateway and no admin may not issue a token');
SELECT throws_ok(format('SELECT approval.redeem_token(%L, ''approve'')', :'t_misc'), '42501',
                 'role "tk_sneaky" may not redeem tokens',
                 'a role with EXECUTE that is no gateway and no admin may not redeem a token');
SELECT throws_ok(format('SELECT approval.revoke_tokens(%s)', :r_misc), '42501', NULL,
                 'a role with EXECUTE that is no admin may not revoke tokens');
RESET ROLE;
SET LOCAL ROLE tk_app;
SELECT throws_ok(format('SELECT approval.revoke_tokens(%s)', :r_misc), '42501', NULL,
                 'a gateway may not revoke tokens (no EXECUTE)');
RESET ROLE;
SELECT is((SELECT state::text FROM approval.request WHERE id = :r_misc), 'pending',
          'the refused calls changed nothing');

-- ---------------------------------------------------------------------------
-- What issue_token refuses
-- ---------------------------------------------------------------------------
SET LOCAL ROLE tk_app;
SELECT throws_ok(format('SELECT approval.issue_token(%s, ''carol'')', :r_misc), 'AP003',
                 format('carol is not an approver at an active stage of request %s', :r_misc),
                 'a token for someone who may not vote at an active stage is AP003');
SELECT throws_ok(format('SELECT approval.issue_token(%s, ''nobody'')', :r_misc), 'AP012', NULL,
                 'a token for a name that is no principal is AP012');
SELECT throws_ok(format('SELECT approval.issue_token(%s, ''bob'', ''0'')', :r_misc), '22023', NULL,
                 'a ttl of zero is 22023');
SELECT throws_ok(format('SELECT approval.issue_token(%s, ''bob'', ''-1 hour'')', :r_misc), '22023', NULL,
                 'a negative ttl is 22023');
SELECT throws_ok('SELECT approval.issue_token(999999999, ''bob'')', 'AP001', NULL,
                 'a token for a request that does not exist is AP001');
SELECT throws_ok(format('SELECT approval.issue_token(%s, ''bob'')', :r_app), 'AP002', NULL,
                 'a token for a closed request is AP002');
SET LOCAL approval.actor = 'erin';
SELECT throws_ok(format('SELECT approval.issue_token(%s, ''bob'')', :r_hidden), 'AP001', NULL,
                 'a gateway acting for erin gets AP001 for a request erin cannot see');
RESET approval.actor;
RESET ROLE;
UPDATE approval.principal SET active = false WHERE id = 'erin';
SET LOCAL ROLE tk_app;
SELECT throws_ok(format('SELECT approval.issue_token(%s, ''erin'')', :r_moves), 'AP012', NULL,
                 'a token for an inactive principal is AP012');
RESET ROLE;
UPDATE approval.principal SET active = true WHERE id = 'erin';

-- ---------------------------------------------------------------------------
-- What redeem_token refuses: all AP009, each saying which
-- ---------------------------------------------------------------------------
SET LOCAL ROLE tk_app;
SELECT throws_ok(format('SELECT approval.redeem_token(%L, ''approve'')', :'t_app'), 'AP009',
                 'token already used', 'a second redemption of a token is AP009 "already used"');
SELECT throws_ok(format('SELECT approval.redeem_token(%L, ''reject'')', :'t_app'), 'AP009',
                 'token already used', '... with another decision too');
SELECT throws_ok(format('SELECT approval.redeem_token(%L, ''maybe'')', :'t_misc'), '22023', NULL,
                 'a decision that is neither approve nor reject is 22023');

-- tampered with
SELECT throws_ok(format('SELECT approval.redeem_token(%L, ''approve'')',
                        overlay(:'t_misc' placing CASE WHEN substr(:'t_misc', 20, 1) = 'A' THEN 'B' ELSE 'A' END
                                from 20 for 1)),
                 'AP009', 'invalid token', 'a token with one character changed is AP009 "invalid"');
SELECT throws_ok(format('SELECT approval.redeem_token(%L, ''approve'')',
                        tk_test.b64(substr(tk_test.unb64(:'t_misc'), 1, length(tk_test.unb64(:'t_misc')) - 32)
                                    || decode(repeat('ab', 32), 'hex'))),
                 'AP009', 'invalid token', 'a well-formed token with a wrong MAC is AP009 "invalid"');
-- the same MAC over another request: the fields are signed
SELECT throws_ok(format('SELECT approval.redeem_token(%L, ''approve'')',
                        tk_test.b64(overlay(tk_test.unb64(:'t_misc') placing int8send(:r_hidden::bigint) from 22))),
                 'AP009', 'invalid token', 'a token whose request was changed is AP009 "invalid"');
SELECT throws_ok($$SELECT approval.redeem_token('not a token!', 'approve')$$, 'AP009', 'invalid token',
                 'text that is no token is AP009 "invalid"');
SELECT throws_ok($$SELECT approval.redeem_token('', 'approve')$$, 'AP009', 'invalid token',
                 'an empty token is AP009 "invalid"');
SELECT throws_ok($$SELECT approval.redeem_token(NULL, 'approve')$$, 'AP009', 'invalid token',
                 'a NULL token is AP009 "invalid"');
SELECT throws_ok(format('SELECT approval.redeem_token(%L, ''approve'')', :'t_misc' || 'A'), 'AP009',
                 'invalid token', 'a token with a character added is AP009 "invalid"');
RESET ROLE;
SELECT is((SELECT state::text || ' ' || (SELECT count(*) FROM approval.decision WHERE request_id = :r_misc)
             FROM approval.request WHERE id = :r_misc),
          'pending 0', 'the tampered tokens recorded nothing');

-- unknown: signed here, but no such token was issued (its row is gone)
SET LOCAL ROLE tk_app;
SELECT approval.issue_token(:r_misc, 'bob') AS t_gone \gset
INSERT INTO tk_test.issued VALUES (:'t_gone');
RESET ROLE;
DELETE FROM approval.token WHERE hash = sha256(tk_test.unb64(:'t_gone'));
SET LOCAL ROLE tk_app;
SELECT throws_ok(format('SELECT approval.redeem_token(%L, ''approve'')', :'t_gone'), 'AP009', 'unknown token',
                 'a well-signed token that was never issued here is AP009 "unknown"');
RESET ROLE;

-- expired: a later statement, past its ttl
SET LOCAL ROLE tk_app;
SELECT approval.issue_token(:r_exp, 'bob', '1 second') AS t_exp \gset
INSERT INTO tk_test.issued VALUES (:'t_exp');
RESET ROLE;
SELECT pg_sleep(1.5);
SET LOCAL ROLE tk_app;
SELECT throws_ok(format('SELECT approval.redeem_token(%L, ''approve'')', :'t_exp'), 'AP009', 'token expired',
                 'a token past its ttl is AP009 "expired"');
RESET ROLE;
SELECT is((SELECT state::text FROM approval.request WHERE id = :r_exp), 'pending',
          'the expired token recorded nothing');

-- the request closed: cancelled, or decided by another vote
SET LOCAL ROLE tk_app;
SELECT approval.issue_token(:r_cancel, 'bob') AS t_cancel \gset
SELECT approval.issue_token(:r_other, 'dave') AS t_other \gset
INSERT INTO tk_test.issued VALUES (:'t_cancel'), (:'t_other');
RESET ROLE;
SET LOCAL ROLE tk_alice;
SELECT is(approval.cancel(:r_cancel), 'cancelled', 'alice cancels a request bob has a token for');
RESET ROLE;
SET LOCAL ROLE tk_bob;
SELECT is(approval.approve(:r_other), 'approved', 'bob approves a request dave has a token for');
RESET ROLE;
SET LOCAL ROLE tk_app;
SELECT throws_ok(format('SELECT approval.redeem_token(%L, ''approve'')', :'t_cancel'), 'AP009',
                 'the token''s request is closed', 'a token of a cancelled request is AP009 "request closed"');
SELECT throws_ok(format('SELECT approval.redeem_token(%L, ''reject'')', :'t_other'), 'AP009',
                 'the token''s request is closed', 'a token of a request approved by another vote is AP009 "request closed"');
RESET ROLE;

-- revoked
SET LOCAL ROLE tk_app;
SELECT approval.issue_token(:r_revoke, 'bob') AS t_rv1 \gset
SELECT approval.issue_token(:r_revoke, 'dave') AS t_rv2 \gset
SELECT approval.issue_token(:r_revoke, 'dave') AS t_rv3 \gset
INSERT INTO tk_test.issued VALUES (:'t_rv1'), (:'t_rv2'), (:'t_rv3');
RESET ROLE;
SET LOCAL ROLE tk_admin;
SELECT is(approval.revoke_tokens(:r_revoke), 3, 'revoke_tokens voids the request''s three unused tokens');
SELECT is(approval.revoke_tokens(:r_revoke), 0, 'revoking again voids none');
SELECT is(approval.revoke_tokens(:r_app), 0, 'a used token is not revoked');
SELECT throws_ok('SELECT approval.revoke_tokens(999999999)', 'AP001', NULL,
                 'revoke_tokens of a request that does not exist is AP001');
RESET ROLE;
SET LOCAL ROLE tk_app;
SELECT throws_ok(format('SELECT approval.redeem_token(%L, ''approve'')', :'t_rv1'), 'AP009', 'token revoked',
                 'a revoked token is AP009 "revoked"');
SELECT approval.issue_token(:r_revoke, 'bob') AS t_rv4 \gset
INSERT INTO tk_test.issued VALUES (:'t_rv4');
SELECT is(approval.redeem_token(:'t_rv4', 'approve'), 'approved', 'a token issued after the revocation works');
RESET ROLE;

-- the approver's eligibility ended: the stage moved on, a group was left,
-- the principal made inactive (which revokes its tokens)
SET LOCAL ROLE tk_app;
SELECT approval.issue_token(:r_moves, 'bob') AS t_moves \gset
SELECT approval.issue_token(:r_left, 'bob') AS t_left_bob \gset
INSERT INTO tk_test.issued VALUES (:'t_moves'), (:'t_left_bob');
RESET ROLE;
SET LOCAL ROLE tk_erin;
SELECT is(approval.approve(:r_moves), 'pending', 'erin approves the manager stage: on to finance');
RESET ROLE;
SET LOCAL ROLE tk_app;
SELECT throws_ok(format('SELECT approval.redeem_token(%L, ''approve'')', :'t_moves'), 'AP009',
                 'the token''s approver is no longer eligible',
                 'bob''s token for a stage that moved on is AP009 "no longer eligible"');
SELECT is(approval.redeem_token(:'t_left_bob', 'approve'), 'pending', 'bob approves the manager stage of another');
SELECT approval.issue_token(:r_left, 'carol') AS t_left \gset
SELECT approval.issue_token(:r_left, 'dave') AS t_inactive \gset
INSERT INTO tk_test.issued VALUES (:'t_left'), (:'t_inactive');
RESET ROLE;
DELETE FROM approval.group_member WHERE group_name = 'tk-finance' AND principal_id = 'carol';
UPDATE approval.principal SET active = false WHERE id = 'dave';
SET LOCAL ROLE tk_app;
SELECT throws_ok(format('SELECT approval.redeem_token(%L, ''approve'')', :'t_left'), 'AP009',
                 'the token''s approver is no longer eligible',
                 'carol''s token after she left the group is AP009 "no longer eligible"');
SELECT throws_ok(format('SELECT approval.redeem_token(%L, ''approve'')', :'t_inactive'), 'AP009',
                 'token revoked',
                 'dave''s token after he was made inactive is AP009 "revoked" (his tokens were revoked then)');
RESET ROLE;
UPDATE approval.principal SET active = true WHERE id = 'dave';
INSERT INTO approval.group_member (group_name, principal_id) VALUES ('tk-finance', 'carol');
SELECT is((SELECT count(*)::int FROM approval.decision WHERE request_id IN (:r_moves, :r_left)
             AND actor IN ('carol', 'dave')), 0, 'the refused tokens recorded no vote');
SELECT is((SELECT count(*)::int FROM approval.token
            WHERE request_id IN (:r_moves, :r_left) AND approver IN ('carol', 'dave') AND used_at IS NULL), 2,
          'and are still unused');
-- made inactive, the principal's tokens were revoked: they stay void once
-- it is active again (the operator's way to void a person's links)
SET LOCAL ROLE tk_app;
SELECT throws_ok(format('SELECT approval.redeem_token(%L, ''approve'')', :'t_inactive'), 'AP009', 'token revoked',
                 'dave''s token, after he was made inactive and active again, is AP009 "revoked"');
SELECT approval.issue_token(:r_frank, 'frank') AS t_frank \gset
INSERT INTO tk_test.issued VALUES (:'t_frank');
RESET ROLE;
-- frank leaves; his id is given to a newcomer, who is the request's approver
DELETE FROM approval.principal WHERE id = 'frank';
INSERT INTO approval.principal (id) VALUES ('frank');
SET LOCAL ROLE tk_app;
SELECT throws_ok(format('SELECT approval.redeem_token(%L, ''approve'')', :'t_frank'), 'AP009', 'token revoked',
                 'the old frank''s token does not vote as the new frank: AP009 "revoked"');
RESET ROLE;

-- a retry of the same vote through a second token is approve()'s no-op
SET LOCAL ROLE tk_app;
SELECT approval.issue_token(:r_pair, 'carol') AS t_pair1 \gset
SELECT approval.issue_token(:r_pair, 'carol') AS t_pair2 \gset
INSERT INTO tk_test.issued VALUES (:'t_pair1'), (:'t_pair2');
SELECT is(approval.redeem_token(:'t_pair1', 'approve'), 'pending', 'carol''s first token: one of two approvals');
SELECT is(approval.redeem_token(:'t_pair2', 'approve'), 'pending',
          'carol''s second token with the same vote: a no-op that returns the state');
SELECT throws_ok(format('SELECT approval.redeem_token(%L, ''reject'')',
                        approval.issue_token(:r_pair, 'carol')), 'AP004', NULL,
                 'a third token with the contrary vote is AP004, as approve() would say');
RESET ROLE;
SELECT is((SELECT count(*)::int || ' ' || max(approvals) FROM approval.decision d
             JOIN approval.request_stage s USING (request_id, stage)
            WHERE d.request_id = :r_pair AND d.actor = 'carol'), '1 1',
          'carol''s vote was counted once');

-- resubmitted: a token is for the request as its approver was asked about
-- it; after request_changes() and a resubmission with another payload, the
-- old token decides nothing (a new one does)
SET LOCAL ROLE tk_app;
SELECT approval.issue_token(:r_resub, 'bob') AS t_resub \gset
INSERT INTO tk_test.issued VALUES (:'t_resub');
RESET ROLE;
SET LOCAL ROLE tk_bob;
SELECT is(approval.request_changes(:r_resub, 'how much?'), 'changes_requested', 'bob asks for changes');
RESET ROLE;
SET LOCAL ROLE tk_alice;
SELECT is(approval.resubmit(:r_resub, '{"amount": 1000000}'), 'pending', 'alice resubmits with another amount');
RESET ROLE;
SET LOCAL ROLE tk_app;
SELECT throws_ok(format('SELECT approval.redeem_token(%L, ''approve'')', :'t_resub'), 'AP009',
                 'the token''s request was resubmitted',
                 'a token issued before a resubmission is AP009 "request resubmitted"');
RESET ROLE;
SELECT is((SELECT state::text || ' ' || (SELECT count(*) FROM approval.decision
                                           WHERE request_id = :r_resub AND decision = 'approve')
             FROM approval.request WHERE id = :r_resub),
          'pending 0', 'the old token approved nothing');
SET LOCAL ROLE tk_app;
SELECT approval.issue_token(:r_resub, 'bob') AS t_resub2 \gset
INSERT INTO tk_test.issued VALUES (:'t_resub2');
SELECT is(approval.redeem_token(:'t_resub2', 'approve'), 'approved', 'a token issued after the resubmission decides');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- What the database keeps: a hash, never the token
-- ---------------------------------------------------------------------------
SELECT cmp_ok((SELECT count(*)::int FROM tk_test.issued), '>=', 15, 'the test collected the tokens it was given');
SELECT is_empty($$
    SELECT i.token FROM tk_test.issued i, approval.token t
     WHERE strpos(t::text, i.token) > 0
        OR strpos(t::text, encode(tk_test.unb64(i.token), 'hex')) > 0
        OR strpos(t::text, encode(tk_test.unb64(i.token), 'base64')) > 0
$$, 'no row of approval.token holds a token, in any encoding');
SELECT is((SELECT count(*)::int FROM tk_test.issued i
             JOIN approval.token t ON t.hash = sha256(tk_test.unb64(i.token))),
          (SELECT count(*)::int FROM tk_test.issued) - 1,
          'each token issued has its sha256 in approval.token (but the one whose row was deleted)');
SELECT is_empty($$
    SELECT e.seq FROM tk_test.issued i, approval.event e WHERE strpos(e.data::text, i.token) > 0
$$, 'no event holds a token');

-- Whoever has a key (a dump has them all) and reads approval.token must not
-- be able to rebuild the tokens: the row must not hold the token's random
-- id.  tk_test.rebuild() makes a token from its fields and a key, as
-- token.c does (HMAC-SHA256 from sha256()).
CREATE FUNCTION tk_test.hmac(k bytea, m bytea) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256((SELECT string_agg(set_byte('\x00'::bytea, 0, get_byte(kp, i) # 92), ''::bytea ORDER BY i)
                     FROM generate_series(0, 63) i)
                  || sha256((SELECT string_agg(set_byte('\x00'::bytea, 0, get_byte(kp, i) # 54), ''::bytea ORDER BY i)
                               FROM generate_series(0, 63) i) || m))
      FROM (SELECT k || decode(repeat('00', 64 - length(k)), 'hex') AS kp) p $$;
CREATE FUNCTION tk_test.rebuild(rid bytea, t approval.token) RETURNS text LANGUAGE sql AS $$
    SELECT tk_test.b64(b || tk_test.hmac(k.secret, b))
      FROM approval.token_key k,
           LATERAL (SELECT '\x01'::bytea || int4send(t.key_id) || rid || int8send(t.request_id)
                           || int8send(((extract(epoch FROM t.expires_at) - 946684800) * 1000000)::bigint)
                           || convert_to(t.approver, 'UTF8') AS b) m
     WHERE k.id = t.key_id $$;
SELECT is((SELECT tk_test.rebuild(substr(tk_test.unb64(:'t_misc'), 6, 16), t)
             FROM approval.token t WHERE t.hash = sha256(tk_test.unb64(:'t_misc'))),
          :'t_misc', 'tk_test.rebuild() makes a token from its random id, its fields and its key');
SELECT is_empty($$
    SELECT i.token FROM tk_test.issued i, approval.token t
     WHERE strpos(t::text, encode(substr(tk_test.unb64(i.token), 6, 16), 'hex')) > 0
$$, 'no row of approval.token holds a token''s random id');
SELECT is_empty($$
    SELECT i.token FROM tk_test.issued i JOIN approval.token t ON t.hash = sha256(tk_test.unb64(i.token))
     WHERE tk_test.rebuild(decode(t.id, 'hex'), t) = i.token
$$, 'a token''s row and its key do not give the token back');

-- ---------------------------------------------------------------------------
-- Who reads the keys: the owner (and superusers) only.  pg_read_all_data,
-- which a careless operator grants to a backup role, bypasses grants but
-- not row-level security.
-- ---------------------------------------------------------------------------
CREATE ROLE tk_backup;
GRANT pg_read_all_data TO tk_backup;
SET LOCAL ROLE tk_backup;
SELECT is((SELECT count(*)::int FROM approval.token_key), 0,
          'a member of pg_read_all_data reads no key of approval.token_key');
SELECT ok((SELECT count(*) FROM approval.token) > 0, '... but it reads approval.token (which holds no token)');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- Keys: a new one signs, the old ones verify until deleted
-- ---------------------------------------------------------------------------
SELECT id AS old_key FROM approval.token_key \gset
SET LOCAL ROLE tk_app;
SELECT approval.issue_token(:r_misc, 'bob') AS t_old \gset
RESET ROLE;
SELECT approval.new_token_key() AS new_key \gset
SET LOCAL ROLE tk_app;
SELECT approval.issue_token(:r_misc, 'bob') AS t_new \gset
RESET ROLE;
SELECT is((SELECT key_id FROM approval.token WHERE hash = sha256(tk_test.unb64(:'t_new'))), :new_key,
          'after new_token_key() the new key signs');
DELETE FROM approval.token_key WHERE id = :old_key;
SET LOCAL ROLE tk_app;
SELECT throws_ok(format('SELECT approval.redeem_token(%L, ''approve'')', :'t_old'), 'AP009', 'invalid token',
                 'a token whose key was deleted is AP009 "invalid"');
SELECT is(approval.redeem_token(:'t_new', 'reject'), 'rejected', 'a token of the new key redeems');
RESET ROLE;

-- whatever happened above, every request's rows still replay from its events
RESET ROLE;
SELECT is_empty($$SELECT request_id, problem FROM approval.verify_audit() WHERE NOT ok$$,
                'verify_audit(): every request''s rows agree with its events');

SELECT * FROM finish();
ROLLBACK;
