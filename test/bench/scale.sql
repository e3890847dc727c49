-- Scale data for the "pages at scale" section of tools/bench.sh: :n pending
-- requests (psql -v n=...) from 1,000 people over 50 groups, written
-- set-based in the shape the engine writes them (request with its audience,
-- its one active stage, its pending_vote rows), so that a million take a
-- minute rather than the hours of a million submit() calls.  Run as the
-- cluster's superuser in a fresh database.
--
--   p0000..p0999   principals; p(i) is in group g(i mod 50)
--   scale_p0000..scale_p0004   LOGIN roles (approval_user) of p0000..p0004
--   workflow "scale"   one stage "review"
--   request i      by p(i mod 1000), waiting on group g((i mod 1000 + 1) mod 50),
--                  submitted i seconds after the first
--
-- so each person answers for n/50 pending requests and has submitted n/1000.

\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE EXTENSION approval;
INSERT INTO approval.approver_group (name, description)
SELECT 'g' || lpad(g::text, 2, '0'), 'Group ' || g FROM generate_series(0, 49) g;
INSERT INTO approval.principal (id, display_name)
SELECT 'p' || lpad(i::text, 4, '0'), 'Person ' || i FROM generate_series(0, 999) i;
INSERT INTO approval.group_member (group_name, principal_id)
SELECT 'g' || lpad((i % 50)::text, 2, '0'), 'p' || lpad(i::text, 4, '0') FROM generate_series(0, 999) i;
DO $$
BEGIN
    FOR i IN 0..4 LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = format('scale_p%s', lpad(i::text, 4, '0'))) THEN
            EXECUTE format('CREATE ROLE scale_p%s LOGIN', lpad(i::text, 4, '0'));
        END IF;
        EXECUTE format('GRANT approval_user TO scale_p%s', lpad(i::text, 4, '0'));
        UPDATE approval.principal SET pg_role = format('scale_p%s', lpad(i::text, 4, '0'))
         WHERE id = 'p' || lpad(i::text, 4, '0');
    END LOOP;
END
$$;
SELECT approval.define_workflow('{"name": "scale", "stages": [{"name": "review", "approvers": ["group:g00"]}]}') AS wf \gset

CREATE TEMP TABLE gen AS
SELECT i AS id,
       'p' || lpad((i % 1000)::text, 4, '0') AS requester,
       'group:g' || lpad(((i % 1000 + 1) % 50)::text, 2, '0') AS target,
       timestamptz '2026-01-01 00:00+00' + i * interval '1 second' AS at
  FROM generate_series(1, :n) i;

INSERT INTO approval.request (id, workflow_id, workflow, title, payload, requester, state,
                              created_at, current_order, updated_at, audience)
SELECT id, :wf, 'scale', 'Request ' || id, jsonb_build_object('amount', id % 1000), requester,
       'pending', at, 0, at, ARRAY[target]
  FROM gen;
INSERT INTO approval.request_stage (request_id, stage, stage_idx, stage_order, state, targets,
                                    required, activated_at)
SELECT id, 'review', 0, 0, 'active', ARRAY[target], 1, at FROM gen;
INSERT INTO approval.pending_vote (request_id, stage, target, round, submitted_at, requester,
                                   workflow, allow_self_approval, distinct_approvers, targets)
SELECT id, 'review', target, 1, at, requester, 'scale', false, false, ARRAY[target] FROM gen;
SELECT setval('approval.request_id_seq', :n);
VACUUM ANALYZE;
