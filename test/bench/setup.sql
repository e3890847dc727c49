-- Benchmark set-up for tools/bench.sh (run as the cluster's superuser in a
-- fresh database, after test/bench/plbench.sql).
--
-- The same people and the same one-stage workflow for both engines:
--
--   bench_requester   LOGIN role, principal "requester": submits
--   bench_approver    LOGIN role, principal "approver": approves, member of
--                     group "bench"
--   approver2..10     more members of "bench" (no role), so that the group
--                     resolves to more than one person
--   workflow "bench"  one stage "review", approvers ["group:bench"],
--                     min_approvals 1
--
-- pgbench connects as these roles (-U), so current_actor() finds the
-- principal through approval.principal.pg_role, and plbench finds it through
-- plbench.principal.pg_role: no SET ROLE, no gateway, in either engine.

\set ON_ERROR_STOP on
SET client_min_messages = warning;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_requester') THEN
        CREATE ROLE bench_requester LOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_approver') THEN
        CREATE ROLE bench_approver LOGIN;
    END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- The extension
-- ---------------------------------------------------------------------------
CREATE EXTENSION approval;
GRANT approval_user TO bench_requester, bench_approver;

INSERT INTO approval.principal (id, display_name, pg_role) VALUES
    ('requester', 'Bench requester', 'bench_requester'),
    ('approver',  'Bench approver',  'bench_approver');
INSERT INTO approval.principal (id, display_name)
    SELECT 'approver' || i, 'Bench approver ' || i FROM generate_series(2, 10) i;
INSERT INTO approval.approver_group (name, description) VALUES ('bench', 'Benchmark approvers');
INSERT INTO approval.group_member (group_name, principal_id)
    SELECT 'bench', id FROM approval.principal WHERE id LIKE 'approver%';

SELECT approval.define_workflow('{
    "name": "bench",
    "description": "one stage, one approval from group bench",
    "stages": [{"name": "review", "approvers": ["group:bench"], "min_approvals": 1}]
}');

-- ---------------------------------------------------------------------------
-- The PL/pgSQL engine (test/bench/plbench.sql): the same people and workflow
-- ---------------------------------------------------------------------------
INSERT INTO plbench.principal (id, display_name, pg_role)
    SELECT id, display_name, pg_role FROM approval.principal;
INSERT INTO plbench.approver_group (name, description) VALUES ('bench', 'Benchmark approvers');
INSERT INTO plbench.group_member (group_name, principal_id)
    SELECT group_name, principal_id FROM approval.group_member;
INSERT INTO plbench.workflow (name, stage, approvers, min_approvals)
    VALUES ('bench', 'review', '{group:bench}', 1);
GRANT USAGE ON SCHEMA plbench TO bench_requester, bench_approver;
GRANT EXECUTE ON FUNCTION plbench.submit(text, jsonb, text), plbench.approve(bigint, text)
    TO bench_requester, bench_approver;

-- ---------------------------------------------------------------------------
-- Cursors over the pending requests: each approve transaction takes the next
-- id (tools/bench.sh sets them to the oldest pending request before a run)
-- ---------------------------------------------------------------------------
CREATE SCHEMA bench;
GRANT USAGE ON SCHEMA bench TO bench_approver;
CREATE SEQUENCE bench.ext_next;
CREATE SEQUENCE bench.pl_next;
GRANT USAGE ON SEQUENCE bench.ext_next, bench.pl_next TO bench_approver;

-- the id range of the pending requests, and whether it has no holes
CREATE FUNCTION bench.pending_range(engine text, OUT lo bigint, OUT hi bigint, OUT n bigint)
    LANGUAGE plpgsql AS $$
BEGIN
    IF engine = 'ext' THEN
        SELECT min(id), max(id), count(*) INTO lo, hi, n
          FROM approval.request WHERE state = 'pending';
    ELSE
        SELECT min(id), max(id), count(*) INTO lo, hi, n
          FROM plbench.request WHERE state = 'pending';
    END IF;
END
$$;
