-- pgTAP: the admin tools for requests that are stuck (DESIGN §10):
-- reassign, override, delegate_for and transfer.
--
--   * each is for approval_admin only: through the grant, and through the
--     actor (a gateway acting for someone who is no admin is refused);
--   * each needs a reason and is an event with the admin as actor;
--   * reassign keeps the stage's targets, the audience, pending_vote and an
--     "all" quorum right: the new target votes, the old one no longer;
--   * override closes the request as a last vote would (callbacks, stages
--     cancelled), marked on the decision, the event and request_status;
--   * transfer makes the new requester the requester, self-approval rules
--     included; the previous one still sees the request;
--   * delegate_for makes a delegation the delegate can act on, and an event
--     without a request that only admins (and a gateway acting for no one)
--     see, chained with the others like it.
--
-- Everything happens in one transaction that is rolled back, including
-- CREATE EXTENSION and the roles the test makes.  NOTIFY delivery, and
-- events_after() (which holds back the events of a transaction still
-- writing), cannot be observed inside one transaction: event_json() gives
-- the object both send; test/t/019_admin_events.pl covers them.
\set ON_ERROR_STOP 1
BEGIN;

SELECT plan(123);

SELECT current_setting('search_path') AS search_path_before \gset
CREATE EXTENSION approval;
-- pgTAP lives in public; the install script's SET search_path outlives
-- CREATE EXTENSION (see 001_identity), so put the session's path back.
SELECT set_config('search_path', :'search_path_before', true) AS search_path_restored \gset

-- ---------------------------------------------------------------------------
-- People.  root is the admin; alice's manager was "old", is now "new".
-- ---------------------------------------------------------------------------
CREATE ROLE ap_a_root;
CREATE ROLE ap_a_alice;
CREATE ROLE ap_a_old;
CREATE ROLE ap_a_new;
CREATE ROLE ap_a_bob;
CREATE ROLE ap_a_carol;
CREATE ROLE ap_a_app;       -- a gateway that has approval_admin's grants too
CREATE ROLE ap_a_listener;  -- a plain gateway
GRANT approval_admin TO ap_a_root;
GRANT approval_user TO ap_a_alice, ap_a_old, ap_a_new, ap_a_bob, ap_a_carol;
GRANT approval_gateway, approval_admin TO ap_a_app;
GRANT approval_gateway TO ap_a_listener;

INSERT INTO approval.principal (id, display_name, manager_id, pg_role) VALUES
    ('root',  'Root',  NULL,  'ap_a_root'),
    ('old',   'Old',   NULL,  'ap_a_old'),
    ('new',   'New',   NULL,  'ap_a_new'),
    ('alice', 'Alice', 'old', 'ap_a_alice'),
    ('bob',   'Bob',   NULL,  'ap_a_bob'),
    ('carol', 'Carol', NULL,  'ap_a_carol'),
    ('dave',  'Dave',  NULL,  NULL),
    ('erin',  'Erin',  NULL,  NULL),
    ('gone',  'Gone',  NULL,  NULL);
UPDATE approval.principal SET active = false WHERE id = 'gone';
INSERT INTO approval.approver_group (name) VALUES ('reviewers'), ('trio');
INSERT INTO approval.group_member VALUES
    ('reviewers', 'bob'), ('reviewers', 'carol'),
    ('trio', 'carol'), ('trio', 'dave'), ('trio', 'erin');

-- callbacks record what they were called for
CREATE TABLE public.ap_a_calls (request bigint, what text);
CREATE FUNCTION public.ap_a_on_approved(request bigint) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO public.ap_a_calls VALUES (request, 'approved') $$;
CREATE FUNCTION public.ap_a_on_rejected(request bigint) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO public.ap_a_calls VALUES (request, 'rejected') $$;

SELECT approval.define_workflow('{"name": "adm-mgr",
    "on_approved": "public.ap_a_on_approved", "on_rejected": "public.ap_a_on_rejected",
    "stages": [{"name": "manager", "approvers": ["manager"]},
               {"name": "finance", "order": 2, "approvers": ["user:carol"]}]}') > 0 AS defined \gset
SELECT approval.define_workflow('{"name": "adm-all", "stages": [
    {"name": "team", "approvers": ["user:bob", "user:old"], "min_approvals": "all"}]}') > 0 AS defined \gset
SELECT approval.define_workflow('{"name": "adm-self", "stages": [
    {"name": "review", "approvers": ["group:reviewers"]}]}') > 0 AS defined \gset
SELECT approval.define_workflow('{"name": "adm-old", "stages": [
    {"name": "sign", "approvers": ["user:old"]}]}') > 0 AS defined \gset

-- try(sql): run one statement, return its single value or 'ERROR <sqlstate>'
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

-- the requests
SET LOCAL ROLE ap_a_alice;
SELECT approval.submit('adm-mgr', '{"n": 1}', 'stuck on old') AS r1 \gset
SELECT approval.submit('adm-all', '{"n": 2}', 'all of them') AS r2 \gset
SELECT approval.submit('adm-mgr', '{"n": 3}', 'override me') AS r3 \gset
SELECT approval.submit('adm-mgr', '{"n": 4}', 'reject me') AS r4 \gset
SELECT approval.submit('adm-mgr', '{"n": 5}', 'changes then override') AS r5 \gset
SELECT approval.submit('adm-self', '{"n": 6}', 'hand me over') AS r6 \gset
SELECT approval.submit('adm-old', '{"n": 7}', 'old is away') AS r7 \gset
SELECT approval.submit('adm-all', '{"n": 8}', 'all, to a group') AS r8 \gset
SELECT approval.cancel(approval.submit('adm-self', '{"n": 9}', 'closed')) AS ignored \gset
SELECT max(request_id) AS closed FROM approval.my_requests \gset
RESET ROLE;

-- ---------------------------------------------------------------------------
-- Who may call them: approval_admin (grant), and an admin actor (C)
-- ---------------------------------------------------------------------------
SET LOCAL ROLE ap_a_bob;
SELECT is(ap_test.try(format($$SELECT approval.reassign(%s, 'manager', 'user:old', 'user:new', 'x')$$, :r1)),
          'ERROR 42501', 'a user may not reassign (42501, no EXECUTE)');
SELECT is(ap_test.try(format($$SELECT approval.override(%s, 'approve', 'x')$$, :r1)),
          'ERROR 42501', 'a user may not override (42501)');
SELECT is(ap_test.try($$SELECT approval.delegate_for('old', 'bob', reason => 'x')$$),
          'ERROR 42501', 'a user may not delegate_for (42501)');
SELECT is(ap_test.try(format($$SELECT approval.transfer(%s, 'bob', 'x')$$, :r1)),
          'ERROR 42501', 'a user may not transfer (42501)');
RESET ROLE;
SET LOCAL ROLE ap_a_listener;
SELECT is(ap_test.try(format($$SELECT approval.override(%s, 'approve', 'x')$$, :r1)),
          'ERROR 42501', 'a plain gateway may not override (42501, no EXECUTE)');
RESET ROLE;
-- a gateway with the grant, acting for alice (no admin): the C refuses
SET LOCAL ROLE ap_a_app;
SET LOCAL approval.actor = 'alice';
SELECT is(ap_test.try(format($$SELECT approval.reassign(%s, 'manager', 'user:old', 'user:new', 'x')$$, :r1)),
          'ERROR 42501', 'a gateway acting for a non-admin may not reassign (42501 from the C)');
SELECT is(ap_test.try(format($$SELECT approval.override(%s, 'approve', 'x')$$, :r1)),
          'ERROR 42501', '... nor override');
SELECT is(ap_test.try($$SELECT approval.delegate_for('old', 'bob', reason => 'x')$$),
          'ERROR 42501', '... nor delegate_for');
SELECT is(ap_test.try(format($$SELECT approval.transfer(%s, 'bob', 'x')$$, :r1)),
          'ERROR 42501', '... nor transfer');
-- acting for root, an admin: allowed (a waiting stage: nothing else changes)
SET LOCAL approval.actor = 'root';
SELECT is(approval.reassign(:r1, 'finance', 'user:carol', 'user:bob', 'carol is away')::text,
          'pending', 'a gateway acting for an admin may reassign (a waiting stage)');
RESET approval.actor;
RESET ROLE;
SELECT is((SELECT targets FROM approval.request_stage WHERE request_id = :r1 AND stage = 'finance'),
          '{user:bob}', 'the waiting stage''s target was replaced');
SELECT is((SELECT count(*)::int FROM approval.pending_vote WHERE request_id = :r1 AND stage = 'finance'),
          0, 'a waiting stage has no pending_vote rows');
SELECT is((SELECT actor FROM approval.event WHERE request_id = :r1 AND kind = 'reassigned'),
          'root', 'the gateway''s reassign is recorded with the admin as actor');

-- ---------------------------------------------------------------------------
-- reassign
-- ---------------------------------------------------------------------------
UPDATE approval.principal SET manager_id = 'new' WHERE id = 'alice';
SET LOCAL ROLE ap_a_root;
SELECT is(ap_test.try(format($$SELECT approval.reassign(%s, 'manager', 'user:old', 'manager', NULL)$$, :r1)),
          'ERROR 22023', 'reassign: no reason is 22023');
SELECT is(ap_test.try(format($$SELECT approval.reassign(%s, 'manager', 'user:old', 'manager', '  ')$$, :r1)),
          'ERROR 22023', 'reassign: a blank reason is 22023');
SELECT is(ap_test.try($$SELECT approval.reassign(999999, 'manager', 'user:old', 'manager', 'x')$$),
          'ERROR AP001', 'reassign: an unknown request is AP001');
SELECT is(ap_test.try(format($$SELECT approval.reassign(%s, 'review', 'group:reviewers', 'user:bob', 'x')$$, :closed)),
          'ERROR AP002', 'reassign: a closed request is AP002');
SELECT is(ap_test.try(format($$SELECT approval.reassign(%s, 'nope', 'user:old', 'manager', 'x')$$, :r1)),
          'ERROR 22023', 'reassign: an unknown stage is 22023');
SELECT is(ap_test.try(format($$SELECT approval.reassign(%s, 'manager', 'user:carol', 'manager', 'x')$$, :r1)),
          'ERROR 22023', 'reassign: a from_target that is not the stage''s is 22023');
SELECT is(ap_test.try(format($$SELECT approval.reassign(%s, 'manager', 'user:old', 'user:ghost', 'x')$$, :r1)),
          'ERROR AP011', 'reassign: an unknown user is AP011');
SELECT is(ap_test.try(format($$SELECT approval.reassign(%s, 'manager', 'user:old', 'user:gone', 'x')$$, :r1)),
          'ERROR AP011', 'reassign: an inactive user is AP011');
SELECT is(ap_test.try(format($$SELECT approval.reassign(%s, 'manager', 'user:old', 'group:ghosts', 'x')$$, :r1)),
          'ERROR AP011', 'reassign: an unknown group is AP011');
SELECT is(ap_test.try(format($$SELECT approval.reassign(%s, 'manager', 'user:old', 'bogus', 'x')$$, :r1)),
          'ERROR 22023', 'reassign: a malformed target is 22023');
SELECT is(ap_test.try(format($$SELECT approval.reassign(%s, 'manager', 'user:old', 'user:old', 'x')$$, :r1)),
          'ERROR 22023', 'reassign: the same target is 22023');
-- the detail names the stage's targets
SELECT throws_ok(format($$SELECT approval.reassign(%s, 'manager', 'user:carol', 'manager', 'x')$$, :r1),
                 '22023', '"user:carol" is not a target of stage "manager" of request ' || :r1,
                 'reassign: the message names the target and stage');
RESET ROLE;

-- the old manager has the request to vote on, the new one not yet
SET LOCAL ROLE ap_a_old;
SELECT is((SELECT count(*)::int FROM approval.my_pending WHERE request_id = :r1), 1,
          'before: the old manager has the request in my_pending');
RESET ROLE;
SET LOCAL ROLE ap_a_new;
SELECT is(approval.can_see(:r1), false, 'before: the new manager does not see it');
RESET ROLE;

SET LOCAL ROLE ap_a_root;
SELECT is(approval.reassign(:r1, 'manager', 'user:old', 'manager', 'alice has a new manager')::text,
          'pending', 'reassign to "manager" (the requester''s, now new) returns pending');
RESET ROLE;
SELECT is((SELECT targets FROM approval.request_stage WHERE request_id = :r1 AND stage = 'manager'),
          '{user:new}', 'the stage''s target is the requester''s manager now');
SELECT is((SELECT array_agg(target ORDER BY target) FROM approval.pending_vote
            WHERE request_id = :r1 AND stage = 'manager'),
          '{user:new}', 'pending_vote has the new target only');
SELECT ok((SELECT audience @> '{user:new,user:old}' FROM approval.request WHERE id = :r1),
          'the audience has the new target and keeps the old one');
SELECT is((SELECT data FROM approval.event WHERE request_id = :r1 AND kind = 'reassigned'
            ORDER BY seq DESC LIMIT 1),
          '{"stage": "manager", "from": "user:old", "to": "user:new", "reason": "alice has a new manager", "required": 1}'::jsonb,
          'the reassigned event''s data');
SELECT is((SELECT actor || ' ' || stage || ' ' || array_to_string(targets, ',') FROM approval.event
            WHERE request_id = :r1 AND kind = 'reassigned' ORDER BY seq DESC LIMIT 1),
          'root manager user:new', 'its actor is the admin; its stage and targets tell a listener');

SET LOCAL ROLE ap_a_old;
SELECT is((SELECT count(*)::int FROM approval.my_pending WHERE request_id = :r1), 0,
          'after: the old manager has nothing to vote on');
SELECT is(ap_test.try(format('SELECT approval.approve(%s)', :r1)), 'ERROR AP003',
          'after: the old manager''s vote is AP003');
SELECT is(approval.can_see(:r1), true, 'the old manager still sees the request');
RESET ROLE;
SET LOCAL ROLE ap_a_new;
SELECT is((SELECT count(*)::int FROM approval.my_pending WHERE request_id = :r1), 1,
          'after: the new manager has it in my_pending');
SELECT is(approval.approve(:r1)::text, 'pending', 'the new manager''s vote counts');
RESET ROLE;
SELECT is((SELECT state::text FROM approval.request_stage WHERE request_id = :r1 AND stage = 'manager'),
          'approved', 'the manager stage is approved');
SELECT is((SELECT array_agg(target) FROM approval.pending_vote WHERE request_id = :r1),
          '{user:bob}', 'the finance stage, reassigned while waiting, is bob''s now');
SET LOCAL ROLE ap_a_root;
SELECT is(ap_test.try(format($$SELECT approval.reassign(%s, 'manager', 'user:new', 'user:old', 'x')$$, :r1)),
          'ERROR 55000', 'reassign: a decided stage is 55000');
RESET ROLE;
SET LOCAL ROLE ap_a_carol;
SELECT is(ap_test.try(format('SELECT approval.approve(%s)', :r1)), 'ERROR AP003',
          'carol, the replaced finance target, may not vote');
RESET ROLE;
SET LOCAL ROLE ap_a_bob;
SELECT is(approval.approve(:r1)::text, 'approved', 'bob, the new finance target, approves the request');
RESET ROLE;

-- "all": the required count follows the targets
SELECT is((SELECT required FROM approval.request_stage WHERE request_id = :r8), 2, '"all" of bob and old is 2');
SET LOCAL ROLE ap_a_root;
SELECT is(approval.reassign(:r8, 'team', 'user:old', 'group:trio', 'old left')::text, 'pending',
          'reassign old to a group of three');
RESET ROLE;
SELECT is((SELECT required FROM approval.request_stage WHERE request_id = :r8), 4,
          '"all" of bob and the trio is 4');
SELECT is((SELECT count(*)::int FROM approval.pending_vote WHERE request_id = :r8), 2,
          'pending_vote: one row per target (user:bob, group:trio)');
-- a vote already cast stays, and a smaller "all" it meets approves the stage
SET LOCAL ROLE ap_a_bob;
SELECT is(approval.approve(:r2)::text, 'pending', 'bob approves r2 (1 of 2)');
RESET ROLE;
SET LOCAL ROLE ap_a_root;
SELECT is(approval.reassign(:r2, 'team', 'user:old', 'user:bob', 'only bob is left')::text, 'approved',
          'reassign old to bob, who voted: "all" is 1, met, the request is approved');
RESET ROLE;
SELECT is((SELECT required || ' ' || approvals FROM approval.request_stage WHERE request_id = :r2), '1 1',
          'the stage requires 1 and has bob''s vote');
SELECT is((SELECT string_agg(kind, ',' ORDER BY seq) FROM approval.event
            WHERE request_id = :r2 AND seq > (SELECT max(seq) FROM approval.event WHERE request_id = :r2 AND kind = 'voted')),
          'reassigned,quorum_satisfied,stage_approved,approved', 'the events after bob''s vote');

-- ---------------------------------------------------------------------------
-- override
-- ---------------------------------------------------------------------------
SET LOCAL ROLE ap_a_root;
SELECT is(ap_test.try(format($$SELECT approval.override(%s, 'maybe', 'x')$$, :r3)),
          'ERROR 22023', 'override: a decision that is not approve or reject is 22023');
SELECT is(ap_test.try(format($$SELECT approval.override(%s, NULL, 'x')$$, :r3)),
          'ERROR 22023', 'override: a NULL decision is 22023');
SELECT is(ap_test.try(format($$SELECT approval.override(%s, 'approve', NULL)$$, :r3)),
          'ERROR 22023', 'override: no reason is 22023');
SELECT is(ap_test.try(format($$SELECT approval.override(%s, 'approve', '')$$, :r3)),
          'ERROR 22023', 'override: an empty reason is 22023');
SELECT is(ap_test.try($$SELECT approval.override(999999, 'approve', 'x')$$),
          'ERROR AP001', 'override: an unknown request is AP001');
SELECT is(ap_test.try(format($$SELECT approval.override(%s, 'approve', 'x')$$, :closed)),
          'ERROR AP002', 'override: a closed request is AP002');
SELECT is(approval.override(:r3, 'approve', 'production is down')::text, 'approved',
          'override approve: approved at once');
SELECT is(ap_test.try(format($$SELECT approval.override(%s, 'reject', 'x')$$, :r3)),
          'ERROR AP002', 'override: the overridden request is closed (AP002)');
SELECT is(approval.override(:r4, 'reject', 'duplicate')::text, 'rejected', 'override reject: rejected at once');
RESET ROLE;
SELECT is((SELECT array_agg(state::text ORDER BY stage_order) FROM approval.request_stage WHERE request_id = :r3),
          '{cancelled,cancelled}', 'the active and the waiting stage are cancelled');
SELECT is((SELECT data FROM approval.event WHERE request_id = :r3 AND kind = 'approved'),
          '{"override": true, "reason": "production is down", "cancelled_stages": ["manager", "finance"]}'::jsonb,
          'the approved event says override, with the reason');
SELECT is((SELECT actor FROM approval.event WHERE request_id = :r3 AND kind = 'approved'), 'root',
          'the approved event''s actor is the admin');
SELECT is((SELECT data FROM approval.event WHERE request_id = :r4 AND kind = 'rejected'),
          '{"override": true, "reason": "duplicate", "cancelled_stages": ["manager", "finance"]}'::jsonb,
          'the rejected event says override, with the reason');
SELECT is((SELECT array_agg(request || ' ' || what ORDER BY request) FROM public.ap_a_calls
            WHERE request IN (:r3, :r4)),
          ARRAY[:r3 || ' approved', :r4 || ' rejected'], 'on_approved and on_rejected were called');
SELECT is((SELECT actor || ' ' || decision || ' ' || override || ' ' || coalesce(stage, '-') || ' ' || reason
             FROM approval.decision WHERE request_id = :r3),
          'root approve true - production is down', 'the decision row is the admin''s, marked override');
SELECT is((SELECT overridden_by FROM approval.request_status WHERE request_id = :r3), 'root',
          'request_status.overridden_by names the admin');
SELECT is((SELECT overridden_by FROM approval.request_status WHERE request_id = :r1), NULL,
          'request_status.overridden_by is NULL for a request decided by votes');
SELECT is((SELECT count(*)::int FROM approval.pending_vote WHERE request_id IN (:r3, :r4)), 0,
          'no pending_vote rows are left');
-- a request waiting for changes can be overridden too
SET LOCAL ROLE ap_a_old;
SELECT is(approval.request_changes(:r5, 'say why')::text, 'changes_requested', 'r5 waits for changes');
RESET ROLE;
SET LOCAL ROLE ap_a_root;
SELECT is(approval.override(:r5, 'approve', 'the why is known')::text, 'approved',
          'override approves a request waiting for changes');
RESET ROLE;

-- an override approval takes the engine's path to approved: a governed
-- table's held change is made (or, when its row changed meanwhile, the
-- request is rejected as a conflict)
CREATE ROLE ap_a_owner;
GRANT approval_user TO ap_a_owner;
CREATE SCHEMA ap_a AUTHORIZATION ap_a_owner;
GRANT USAGE ON SCHEMA ap_a TO PUBLIC;
SELECT approval.define_workflow('{"name": "adm-gov", "stages": [
    {"name": "sign", "approvers": ["user:old"]}]}') > 0 AS defined \gset
SET LOCAL ROLE ap_a_owner;
CREATE TABLE ap_a.price (id int PRIMARY KEY, cents int NOT NULL);
INSERT INTO ap_a.price VALUES (1, 100), (2, 200);
GRANT SELECT, UPDATE ON ap_a.price TO ap_a_alice;
SELECT approval.govern('ap_a.price', 'adm-gov') IS NULL AS governed \gset
RESET ROLE;
SET LOCAL ROLE ap_a_alice;
UPDATE ap_a.price SET cents = 150 WHERE id = 1;
UPDATE ap_a.price SET cents = 250 WHERE id = 2;
RESET ROLE;
SELECT max(id) FILTER (WHERE title LIKE '%id=1%') AS g1, max(id) FILTER (WHERE title LIKE '%id=2%') AS g2
  FROM approval.request WHERE workflow = 'adm-gov' \gset
SELECT is((SELECT array_agg(cents ORDER BY id) FROM ap_a.price), '{100,200}', 'the changes are held');
SET LOCAL ROLE ap_a_root;
SELECT is(approval.override(:g1, 'approve', 'the price list is due')::text, 'approved',
          'override approves a request holding a governed change');
RESET ROLE;
SELECT is((SELECT cents FROM ap_a.price WHERE id = 1), 150, 'its held change is made');
-- the row of the second changes directly meanwhile (past the trigger)
SET LOCAL session_replication_role = replica;
UPDATE ap_a.price SET cents = 222 WHERE id = 2;
SET LOCAL session_replication_role = origin;
SET LOCAL ROLE ap_a_root;
SELECT is(approval.override(:g2, 'approve', 'the price list is due')::text, 'rejected',
          'an override approval of a change whose row changed meanwhile: rejected (conflict)');
RESET ROLE;
SELECT is((SELECT cents FROM ap_a.price WHERE id = 2), 222, 'the row keeps the direct change');
SELECT is((SELECT data FROM approval.event WHERE request_id = :g2 AND kind = 'rejected'),
          '{"override": true, "reason": "the price list is due", "conflict": true, "cancelled_stages": ["sign"]}'::jsonb,
          'the rejected event says override, with the reason, and conflict');
SELECT is((SELECT overridden_by FROM approval.request_status WHERE request_id = :g2), 'root',
          'request_status names the admin who overrode it');

-- ---------------------------------------------------------------------------
-- transfer
-- ---------------------------------------------------------------------------
SET LOCAL ROLE ap_a_root;
SELECT is(ap_test.try(format($$SELECT approval.transfer(%s, 'bob', NULL)$$, :r6)),
          'ERROR 22023', 'transfer: no reason is 22023');
SELECT is(ap_test.try(format($$SELECT approval.transfer(%s, 'alice', 'x')$$, :r6)),
          'ERROR 22023', 'transfer: the same requester is 22023');
SELECT is(ap_test.try(format($$SELECT approval.transfer(%s, 'ghost', 'x')$$, :r6)),
          'ERROR AP012', 'transfer: no such principal is AP012');
SELECT is(ap_test.try(format($$SELECT approval.transfer(%s, 'gone', 'x')$$, :r6)),
          'ERROR AP012', 'transfer: an inactive principal is AP012');
SELECT is(ap_test.try($$SELECT approval.transfer(999999, 'bob', 'x')$$),
          'ERROR AP001', 'transfer: an unknown request is AP001');
SELECT is(ap_test.try(format($$SELECT approval.transfer(%s, 'bob', 'x')$$, :r3)),
          'ERROR AP002', 'transfer: a closed request is AP002');
RESET ROLE;
SET LOCAL ROLE ap_a_bob;
SELECT is((SELECT count(*)::int FROM approval.my_pending WHERE request_id = :r6), 1,
          'before: bob, a reviewer, may vote on alice''s request');
RESET ROLE;
SET LOCAL ROLE ap_a_root;
SELECT is(approval.transfer(:r6, 'bob', 'alice moved to another team')::text, 'pending',
          'transfer alice''s request to bob');
RESET ROLE;
SELECT is((SELECT requester FROM approval.request WHERE id = :r6), 'bob', 'bob is the requester');
SELECT is((SELECT array_agg(DISTINCT requester) FROM approval.pending_vote WHERE request_id = :r6),
          '{bob}', 'pending_vote carries the new requester');
SELECT is((SELECT data FROM approval.event WHERE request_id = :r6 AND kind = 'transferred'),
          '{"from": "alice", "to": "bob", "reason": "alice moved to another team"}'::jsonb,
          'the transferred event''s data');
SELECT is((SELECT actor FROM approval.event WHERE request_id = :r6 AND kind = 'transferred'), 'root',
          'the transferred event''s actor is the admin');
SET LOCAL ROLE ap_a_bob;
SELECT is((SELECT count(*)::int FROM approval.my_pending WHERE request_id = :r6), 0,
          'after: bob no longer has it to vote on (self-approval)');
SELECT is(ap_test.try(format('SELECT approval.approve(%s)', :r6)), 'ERROR AP007',
          'after: bob approving his own request is AP007');
SELECT is((SELECT count(*)::int FROM approval.my_requests WHERE request_id = :r6), 1,
          'bob has it in my_requests');
RESET ROLE;
SET LOCAL ROLE ap_a_alice;
SELECT is(approval.can_see(:r6), true, 'alice, who made it, still sees it');
SELECT is((SELECT count(*)::int FROM approval.my_requests WHERE request_id = :r6), 0,
          'it is no longer in alice''s my_requests');
SELECT is(ap_test.try(format('SELECT approval.cancel(%s)', :r6)), 'ERROR 42501',
          'alice may no longer cancel it');
RESET ROLE;
SET LOCAL ROLE ap_a_carol;
SELECT is(approval.approve(:r6)::text, 'approved', 'carol, the other reviewer, approves it');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- delegate_for, and events without a request
-- ---------------------------------------------------------------------------
SET LOCAL ROLE ap_a_root;
SELECT is(ap_test.try($$SELECT approval.delegate_for('old', 'bob')$$),
          'ERROR 22023', 'delegate_for: no reason is 22023');
SELECT is(ap_test.try($$SELECT approval.delegate_for('old', 'old', reason => 'x')$$),
          'ERROR 22023', 'delegate_for: to the principal itself is 22023');
SELECT is(ap_test.try($$SELECT approval.delegate_for('old', 'ghost', reason => 'x')$$),
          'ERROR AP011', 'delegate_for: to no principal is AP011');
SELECT is(ap_test.try($$SELECT approval.delegate_for('old', 'gone', reason => 'x')$$),
          'ERROR AP011', 'delegate_for: to an inactive principal is AP011');
SELECT is(ap_test.try($$SELECT approval.delegate_for('ghost', 'bob', reason => 'x')$$),
          'ERROR AP012', 'delegate_for: for no principal is AP012');
SELECT is(ap_test.try($$SELECT approval.delegate_for('old', 'bob', workflow => 'nope', reason => 'x')$$),
          'ERROR AP008', 'delegate_for: an unknown workflow is AP008');
SELECT is(ap_test.try($$SELECT approval.delegate_for('old', 'bob', now(), now() - interval '1 day', reason => 'x')$$),
          'ERROR 22023', 'delegate_for: ending before it starts is 22023');
SELECT approval.delegate_for('old', 'bob', workflow => 'adm-old', reason => 'old is on leave') AS d1 \gset
SELECT approval.delegate_for('old', 'carol', now(), now() + interval '1 week', reason => 'and carol too') AS d2 \gset
RESET ROLE;
SELECT is((SELECT delegator || ' ' || delegate || ' ' || workflow || ' ' || created_by || ' ' || reason
             FROM approval.delegation WHERE id = :d1),
          'old bob adm-old root old is on leave', 'the delegation: from old to bob, made by root, with the reason');
SELECT is((SELECT count(*)::int FROM approval.event WHERE request_id IS NULL AND kind = 'delegated'), 2,
          'each delegate_for is a delegated event without a request');
SELECT is((SELECT data - 'starts' FROM approval.event WHERE kind = 'delegated' AND (data->>'delegation')::bigint = :d1),
          jsonb_build_object('delegation', :d1, 'principal', 'old', 'delegate', 'bob', 'ends', NULL,
                             'workflow', 'adm-old', 'reason', 'old is on leave'),
          'the delegated event''s data');
SELECT is((SELECT (data->>'starts')::timestamptz FROM approval.event WHERE kind = 'delegated'
            AND (data->>'delegation')::bigint = :d1), now(), 'its starts');
SELECT is((SELECT actor FROM approval.event WHERE kind = 'delegated' AND (data->>'delegation')::bigint = :d2),
          'root', 'the delegated event''s actor is the admin');
SELECT is((SELECT approval.event_json(e)::jsonb - 'at' - 'seq' - 'data' FROM approval.event e
            WHERE kind = 'delegated' AND (data->>'delegation')::bigint = :d1),
          '{"kind": "delegated", "request": null, "workflow": null, "state": null, "stage": null,
            "actor": "root", "targets": ["user:bob"]}'::jsonb,
          'event_json() of an event without a request: request and workflow null');
SELECT is((SELECT ok::text || ' ' || events FROM approval.verify_audit() WHERE request_id IS NULL), 'true 2',
          'verify_audit() checks the chain of events without a request');
SELECT is((SELECT count(*)::int FROM approval.verify_audit() WHERE NOT ok), 0,
          'verify_audit() reports nothing broken');
SELECT ok((SELECT e2.hash <> e1.hash FROM approval.event e1, approval.event e2
            WHERE e1.request_id IS NULL AND e2.request_id IS NULL AND e2.seq > e1.seq),
          'the two events have hashes of their own');
-- the delegate acts for the absent principal
SET LOCAL ROLE ap_a_bob;
SELECT is(approval.approve(:r7)::text, 'approved', 'bob, old''s delegate, approves old''s stage');
RESET ROLE;
SELECT is((SELECT actor || ' for ' || on_behalf_of FROM approval.decision WHERE request_id = :r7),
          'bob for old', 'the vote is bob''s on behalf of old');
-- who sees the events without a request
SET LOCAL ROLE ap_a_root;
SELECT is((SELECT count(*)::int FROM approval.event WHERE request_id IS NULL), 2, 'an admin sees them');
RESET ROLE;
SET LOCAL ROLE ap_a_old;
SELECT is((SELECT count(*)::int FROM approval.event WHERE request_id IS NULL), 0,
          'a user sees none (not even the delegator)');
RESET ROLE;
SET LOCAL ROLE ap_a_bob;
SELECT is((SELECT count(*)::int FROM approval.event WHERE request_id IS NULL), 0, 'nor the delegate');
RESET ROLE;
SET LOCAL ROLE ap_a_listener;
SELECT is((SELECT count(*)::int FROM approval.event WHERE request_id IS NULL), 2,
          'a gateway acting for no one sees them');
SET LOCAL approval.actor = 'bob';
SELECT is((SELECT count(*)::int FROM approval.event WHERE request_id IS NULL), 0,
          'a gateway acting for a user does not');
RESET approval.actor;
RESET ROLE;
-- the lock that serializes them is no one's but the owner's
SELECT is((SELECT count(*)::int FROM pg_catalog.aclexplode((SELECT relacl FROM pg_class
            WHERE oid = 'approval.event_chain_lock'::regclass)) a
            WHERE a.grantee <> (SELECT relowner FROM pg_class WHERE oid = 'approval.event_chain_lock'::regclass)), 0,
          'no role but the owner holds a privilege on approval.event_chain_lock');
SET LOCAL ROLE ap_a_root;
SELECT is(ap_test.try('SELECT 1 FROM approval.event_chain_lock FOR UPDATE'), 'ERROR 42501',
          'an admin may not lock it');
RESET ROLE;

-- whatever happened above, every request's rows still replay from its events
RESET ROLE;
SELECT is_empty($$SELECT request_id, problem FROM approval.verify_audit() WHERE NOT ok$$,
                'verify_audit(): every request''s rows agree with its events, the admins'' acts included');

SELECT * FROM finish();
ROLLBACK;
