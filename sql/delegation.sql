--
-- delegation: approval.delegate and approval.revoke_delegation (DESIGN §5)
--
-- A delegate answers for its delegator's targets too (approval.my_targets),
-- votes on the delegator's behalf (decision.on_behalf_of), and that vote is
-- the delegator's one vote at the stage.
--

CREATE FUNCTION pg_temp.decisions(rid bigint)
RETURNS TABLE (stage text, actor text, on_behalf_of text, decision text)
LANGUAGE sql AS $$
    SELECT stage, actor, on_behalf_of, decision
      FROM approval.decision WHERE request_id = rid ORDER BY id
$$;
-- the delegations made by this test
SELECT COALESCE(max(id), 0) AS d0 FROM approval.delegation \gset
CREATE FUNCTION pg_temp.delegations(d0 bigint)
RETURNS TABLE (delegator text, delegate text, workflow text, bounded boolean, revoked boolean)
LANGUAGE sql AS $$
    SELECT delegator, delegate, workflow, ends IS NOT NULL, revoked_at IS NOT NULL
      FROM approval.delegation WHERE id > d0 ORDER BY id
$$;

SELECT approval.define_workflow('{"name": "delegation-manager",
  "stages": [{"name": "manager", "approvers": ["manager"]}]}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "delegation-pair",
  "stages": [{"name": "pair", "approvers": ["user:bob", "user:carol"], "min_approvals": "all"}]}') > 0 AS defined;

-- before: dave answers for himself and finance
SET ROLE regress_dave;
SELECT approval.my_targets();
RESET ROLE;

-- bob delegates to dave, open-ended, for every workflow
SET ROLE regress_bob;
SELECT approval.delegate('dave') AS bob_dave \gset
RESET ROLE;
SELECT * FROM pg_temp.delegations(:d0);

-- now dave answers for bob's targets too (user, groups, roles)
SET ROLE regress_dave;
SELECT approval.my_targets();
RESET ROLE;

-- alice's request waits on her manager bob; dave has it pending and approves for bob
SET ROLE regress_alice;
SELECT approval.submit('delegation-manager', '{"item": "monitor"}') AS rid \gset
RESET ROLE;
SET ROLE regress_dave;
SELECT workflow, requester, stage FROM approval.my_pending WHERE request_id = :rid;
SELECT count(*) AS dave_sees FROM approval.request WHERE id = :rid;
SELECT approval.approve(:rid, 'bob is on holiday');
RESET ROLE;
SELECT * FROM pg_temp.decisions(:rid);
SELECT kind, actor, data->>'on_behalf_of' AS on_behalf_of
  FROM approval.event WHERE request_id = :rid AND kind = 'voted';

--
-- a delegate's vote is the delegator's vote: one vote per principal, so the
-- delegator and the delegate cannot both vote for bob
--
SET ROLE regress_alice;
SELECT approval.submit('delegation-pair', '{"n": 1}') AS pair1 \gset
RESET ROLE;
SELECT stage, required FROM approval.request_stage WHERE request_id = :pair1;
SET ROLE regress_dave;
SELECT approval.approve(:pair1);
RESET ROLE;
-- bob's own approval is the same vote again: nothing changes
SET ROLE regress_bob;
SELECT approval.approve(:pair1);
SELECT count(*) AS bob_pending FROM approval.my_pending WHERE request_id = :pair1;
\set VERBOSITY sqlstate
SELECT approval.reject(:pair1, 'changed_mind');
RESET ROLE;
\set VERBOSITY default
SELECT approvals, required FROM approval.request_stage WHERE request_id = :pair1;
SET ROLE regress_carol;
SELECT approval.approve(:pair1);
RESET ROLE;
SELECT * FROM pg_temp.decisions(:pair1);

-- the other way round: bob votes first, dave has nothing left to do for him
SET ROLE regress_alice;
SELECT approval.submit('delegation-pair', '{"n": 2}') AS pair2 \gset
RESET ROLE;
SET ROLE regress_bob;
SELECT approval.approve(:pair2);
RESET ROLE;
SET ROLE regress_dave;
SELECT count(*) AS dave_pending FROM approval.my_pending WHERE request_id = :pair2;
SELECT approval.approve(:pair2);
\set VERBOSITY sqlstate
SELECT approval.reject(:pair2, 'over_budget');
RESET ROLE;
\set VERBOSITY default
SELECT approvals, rejections, required FROM approval.request_stage WHERE request_id = :pair2;
SELECT * FROM pg_temp.decisions(:pair2);

-- delegation is not transitive: dave's delegate does not answer for bob
SET ROLE regress_dave;
SELECT approval.delegate('erin') AS dave_erin \gset
RESET ROLE;
SET ROLE regress_erin;
SELECT 'user:dave' = ANY (approval.my_targets()) AS for_dave,
       'user:bob' = ANY (approval.my_targets()) AS for_bob;
RESET ROLE;
SET ROLE regress_dave;
SELECT approval.revoke_delegation(:dave_erin);
RESET ROLE;

--
-- separation of duties goes through delegation too
--
SELECT approval.define_workflow('{"name": "delegation-self",
  "stages": [{"name": "review", "approvers": ["user:alice", "user:ciso"]}]}') > 0 AS defined;
-- a delegate may not approve, for the requester, the requester's own request
SET ROLE regress_alice;
SELECT approval.delegate('erin', workflow => 'delegation-self') AS alice_erin \gset
SELECT approval.submit('delegation-self', '{}') AS self1 \gset
RESET ROLE;
\set VERBOSITY sqlstate
SET ROLE regress_erin;
SELECT approval.approve(:self1);
RESET ROLE;
\set VERBOSITY default
-- nor may the requester approve its own request as someone else's delegate:
-- bob delegates to alice, and alice's request waits on bob
SET ROLE regress_bob;
SELECT approval.delegate('alice') AS bob_alice \gset
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.submit('delegation-manager', '{"item": "chair"}') AS self2 \gset
SELECT count(*) AS alice_pending FROM approval.my_pending WHERE request_id = :self2;
\set VERBOSITY sqlstate
SELECT approval.approve(:self2);
\set VERBOSITY default
RESET ROLE;
SELECT state FROM approval.request WHERE id = :self2;
SELECT * FROM pg_temp.decisions(:self2);
SET ROLE regress_bob;
SELECT approval.revoke_delegation(:bob_alice);
RESET ROLE;

--
-- time windows: only a delegation whose [starts, ends) covers now counts
--
SELECT approval.define_workflow('{"name": "delegation-window",
  "stages": [{"name": "first",  "approvers": ["user:erin"]},
             {"name": "second", "approvers": ["user:carol"]}]}') > 0 AS defined;
SET ROLE regress_alice;
SELECT approval.submit('delegation-window', '{}') AS win \gset
RESET ROLE;
SET ROLE regress_erin;
SELECT approval.delegate('carol', now() + interval '1 day') AS future \gset
SELECT approval.delegate('carol', now() - interval '2 days', now() - interval '1 day') AS past \gset
RESET ROLE;
SET ROLE regress_carol;
SELECT 'user:erin' = ANY (approval.my_targets()) AS carol_for_erin;
\set VERBOSITY sqlstate
SELECT approval.approve(:win);
\set VERBOSITY default
RESET ROLE;
SET ROLE regress_erin;
SELECT approval.delegate('carol', now() - interval '1 hour', now() + interval '1 hour') AS current \gset
RESET ROLE;
SET ROLE regress_carol;
SELECT 'user:erin' = ANY (approval.my_targets()) AS carol_for_erin;
SELECT approval.approve(:win);
RESET ROLE;
SELECT stage, state FROM approval.request_stage WHERE request_id = :win ORDER BY stage_order;
SELECT * FROM pg_temp.decisions(:win);
SET ROLE regress_erin;
SELECT approval.revoke_delegation(:future), approval.revoke_delegation(:past),
       approval.revoke_delegation(:current);
RESET ROLE;

--
-- a delegation for one workflow counts for that workflow only
--
SELECT approval.define_workflow('{"name": "delegation-scoped",
  "stages": [{"name": "review", "approvers": ["user:ciso"]}]}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "delegation-other",
  "stages": [{"name": "review", "approvers": ["user:ciso"]}]}') > 0 AS defined;
SET ROLE regress_ciso;
SELECT approval.delegate('frank', workflow => 'delegation-scoped') AS ciso_frank \gset
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.submit('delegation-scoped', '{}') AS scoped \gset
SELECT approval.submit('delegation-other', '{}') AS other \gset
RESET ROLE;
BEGIN;
SET LOCAL ROLE regress_app;
SET LOCAL approval.actor = 'frank';
-- frank can act on the scoped workflow's request only, and sees only that one
SELECT workflow FROM approval.my_pending WHERE request_id IN (:scoped, :other) ORDER BY workflow;
SELECT workflow FROM approval.request WHERE id IN (:scoped, :other) ORDER BY workflow;
\set VERBOSITY sqlstate
SELECT approval.approve(:other);
ROLLBACK;
\set VERBOSITY default
BEGIN;
SET LOCAL ROLE regress_app;
SET LOCAL approval.actor = 'frank';
SELECT approval.approve(:scoped);
COMMIT;
SELECT * FROM pg_temp.decisions(:scoped);
SELECT state FROM approval.request WHERE id = :other;

--
-- revoking: the delegator or an approval_admin, nobody else
--
\set VERBOSITY sqlstate
SET ROLE regress_dave;          -- the delegate
SELECT approval.revoke_delegation(:bob_dave);
RESET ROLE;
SET ROLE regress_alice;         -- a bystander: it does not exist for her
SELECT approval.revoke_delegation(:bob_dave);
RESET ROLE;
SET ROLE regress_bob;
SELECT approval.revoke_delegation(-1);
RESET ROLE;
\set VERBOSITY default
SET ROLE regress_bob;
SELECT approval.revoke_delegation(:bob_dave);
SELECT approval.revoke_delegation(:bob_dave);   -- again: nothing to do
RESET ROLE;
-- an admin may revoke anyone's
SET ROLE regress_admin;
SELECT approval.revoke_delegation(:alice_erin);
SELECT approval.revoke_delegation(:ciso_frank);
RESET ROLE;
SELECT * FROM pg_temp.delegations(:d0);

-- revoked: dave no longer answers for bob, and a new request of alice's is
-- not his to see; the one he approved for bob stays visible to him
SET ROLE regress_dave;
SELECT 'user:bob' = ANY (approval.my_targets()) AS dave_for_bob;
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.submit('delegation-manager', '{"item": "desk"}') AS rid2 \gset
RESET ROLE;
SET ROLE regress_dave;
SELECT count(*) AS dave_pending FROM approval.my_pending WHERE request_id = :rid2;
SELECT id = :rid AS approved_before FROM approval.request WHERE id IN (:rid, :rid2);
\set VERBOSITY sqlstate
SELECT approval.approve(:rid2);
RESET ROLE;
\set VERBOSITY default

--
-- bad delegations
--
INSERT INTO approval.principal (id, display_name, active)
VALUES ('delegation-gone', 'Gone', false);
SELECT count(*) AS delegations_before FROM approval.delegation \gset
\set VERBOSITY sqlstate
SET ROLE regress_bob;
SELECT approval.delegate('bob');                       -- oneself
SELECT approval.delegate('nobody');                    -- no such principal
SELECT approval.delegate('delegation-gone');           -- inactive principal
SELECT approval.delegate(NULL);
SELECT approval.delegate('dave', now(), now() - interval '1 hour');  -- ends before it starts
SELECT approval.delegate('dave', now(), now());                      -- empty window
SELECT approval.delegate('dave', workflow => 'delegation-nosuch');   -- unknown workflow
RESET ROLE;
\set VERBOSITY default
SELECT count(*) = :delegations_before AS nothing_written FROM approval.delegation;
DELETE FROM approval.principal WHERE id = 'delegation-gone';

-- a gateway delegates for the person it acts for
BEGIN;
SET LOCAL ROLE regress_app;
SET LOCAL approval.actor = 'frank';
SELECT approval.delegate('bob', workflow => 'delegation-manager') AS frank_bob \gset
SELECT approval.revoke_delegation(:frank_bob);
COMMIT;
SELECT delegator, delegate, workflow, revoked_at IS NOT NULL AS revoked
  FROM approval.delegation WHERE id = :frank_bob;

--
-- one person, one vote per stage, even when the capacity they voted in is
-- gone: alice votes for dave, dave's delegation ends, and her next call is
-- a repeat of that vote, not a new one for erin
--
SELECT approval.define_workflow('{"name": "delegation-one-vote",
  "stages": [{"name": "finance", "approvers": ["group:finance", "user:ciso"], "min_approvals": 2}]}') > 0 AS defined;
SET ROLE regress_dave;
SELECT approval.delegate('alice') AS dave_alice \gset
RESET ROLE;
SET ROLE regress_erin;
SELECT approval.delegate('alice') AS erin_alice \gset
RESET ROLE;
SET ROLE regress_bob;
SELECT approval.submit('delegation-one-vote', '{}', 'one vote') AS ov \gset
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.approve(:ov);
RESET ROLE;
SET ROLE regress_dave;
SELECT approval.revoke_delegation(:dave_alice);
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.approve(:ov) AS repeated;
\set VERBOSITY sqlstate
SELECT approval.reject(:ov);
SELECT approval.request_changes(:ov, 'as erin now?');
\set VERBOSITY default
RESET ROLE;
SELECT actor, on_behalf_of, decision FROM approval.decision WHERE request_id = :ov ORDER BY id;
SET ROLE regress_erin;
SELECT approval.revoke_delegation(:erin_alice);
RESET ROLE;
