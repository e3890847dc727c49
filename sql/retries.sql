--
-- retries: an application that lost the reply to its COMMIT calls again.
--
-- Repeating a vote that is recorded answers with the request's current
-- state, whatever happened since (the stage moved on, the request closed),
-- and writes nothing; a contradicting vote at the same stage is AP004; after
-- the request closed, a vote that was never cast is AP002.
--
SET ROLE regress_admin;
SELECT approval.define_workflow('{"name": "retries-two",
  "stages": [{"name": "manager", "approvers": ["manager"]},
             {"name": "finance", "approvers": ["group:finance"]}]}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "retries-quorum",
  "stages": [{"name": "manager", "approvers": ["manager"]},
             {"name": "finance", "approvers": ["group:finance"], "min_approvals": 2}]}') > 0 AS defined;
RESET ROLE;
CREATE TEMP TABLE retries_count AS SELECT 0::bigint AS decisions, 0::bigint AS events;
CREATE FUNCTION pg_temp.snapshot() RETURNS void LANGUAGE sql AS $$
    UPDATE retries_count SET decisions = (SELECT count(*) FROM approval.decision),
                             events = (SELECT count(*) FROM approval.event) $$;
CREATE FUNCTION pg_temp.nothing_written() RETURNS boolean LANGUAGE sql AS $$
    SELECT decisions = (SELECT count(*) FROM approval.decision)
       AND events = (SELECT count(*) FROM approval.event) FROM retries_count $$;

SET ROLE regress_alice;
SELECT approval.submit('retries-two', '{}', 'retry me') AS rid \gset
RESET ROLE;
-- bob approves the manager stage; finance is active now
SET ROLE regress_bob;
SELECT approval.approve(:rid);
RESET ROLE;
SELECT pg_temp.snapshot();
-- his retry: the stage moved on, he is no approver of finance, and the
-- answer is the state
SET ROLE regress_bob;
SELECT approval.approve(:rid) AS retried;
-- rejecting now contradicts nothing at an active stage: he is no approver
\set VERBOSITY sqlstate
SELECT approval.reject(:rid);
\set VERBOSITY default
RESET ROLE;
SELECT pg_temp.nothing_written();

-- a contradicting vote at the same stage is AP004
SET ROLE regress_alice;
SELECT approval.submit('retries-quorum', '{}', 'contradict') AS rid2 \gset
RESET ROLE;
SET ROLE regress_bob;
SELECT approval.approve(:rid2);
RESET ROLE;
SET ROLE regress_carol;
SELECT approval.approve(:rid2);
SELECT approval.approve(:rid2) AS same_vote_again;
\set VERBOSITY sqlstate
SELECT approval.reject(:rid2);
\set VERBOSITY default
RESET ROLE;

-- the request closes: the last vote repeated answers "approved"
SET ROLE regress_carol;
SELECT approval.approve(:rid);
RESET ROLE;
SELECT pg_temp.snapshot();
SET ROLE regress_carol;
SELECT approval.approve(:rid) AS retried_after_close;
\set VERBOSITY sqlstate
SELECT approval.reject(:rid);
SELECT approval.request_changes(:rid, 'too late');
\set VERBOSITY default
RESET ROLE;
SET ROLE regress_bob;
SELECT approval.approve(:rid) AS bob_retried_after_close;
RESET ROLE;
SELECT pg_temp.nothing_written();

-- request_changes repeated while the request waits for changes
SET ROLE regress_alice;
SELECT approval.submit('retries-two', '{}', 'changes') AS rid3 \gset
RESET ROLE;
SET ROLE regress_bob;
SELECT approval.request_changes(:rid3, 'which model?');
RESET ROLE;
SELECT pg_temp.snapshot();
SET ROLE regress_bob;
SELECT approval.request_changes(:rid3, 'which model?') AS retried_changes;
\set VERBOSITY sqlstate
SELECT approval.approve(:rid3);
\set VERBOSITY default
RESET ROLE;
SELECT pg_temp.nothing_written();

-- a rejection repeated after it rejected the request
SET ROLE regress_dave;
SELECT approval.reject(:rid2, 'over_budget');
SELECT approval.reject(:rid2, 'over_budget') AS retried_reject;
RESET ROLE;
-- bob's last vote was an approval: his reject is no repeat (AP002)
SET ROLE regress_bob;
\set VERBOSITY sqlstate
SELECT approval.reject(:rid2);
\set VERBOSITY default
RESET ROLE;
SELECT stage, state FROM approval.request_stage WHERE request_id = :rid2 ORDER BY stage_order;
