-- Data for the "Time" section of tools/bench-time.sh: :n open requests, of
-- which :due will come due in the benchmark of firing, and the same
-- requests in the plain table a team would keep instead (team.request).
-- Run as the cluster's superuser in a fresh database:
--
--   psql -v n=1000000 -v due=90000 -v sample=200 -f time_setup.sql
--
--   workflow "time-open"   "sla": "48 hours", "sla_warning": 0.75,
--                          "expires_after": "30 days", one stage "review"
--                          (group "reviewers"): :n - :due requests, created
--                          one every 10 ms or so in the 3 hours before the
--                          set-up, so that nothing is due on them for 33 hours
--   workflow "time-due"    "sla": "1 day", "expires_after": "30 days": :due
--                          requests whose SLA breach the benchmark fires (one
--                          deadline each), created one a millisecond from 5
--                          minutes before the set-up (and :sample at its end)
--   workflow "time-worker" "expires_after": "2 seconds": the requests of the
--                          worker's latency (submitted by the benchmark)
--
-- :sample requests of each of the first two are submitted through
-- approval.submit(), one transaction each.  The others are written
-- set-based (a minute instead of many), by views that give each the rows
-- the engine writes at submit: the request with its deadlines and next_due,
-- its active stage, its pending_vote row, and its two events with their
-- sha256 chain.  Before anything is written, the views are applied to the
-- submitted samples and must give exactly the rows the engine wrote there
-- (the script stops otherwise); afterwards verify_audit() checks the chains
-- of a thousand generated requests.

\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE EXTENSION approval;
CREATE SCHEMA bench_time;

INSERT INTO approval.principal (id, display_name)
SELECT 'r' || lpad(i::text, 3, '0'), 'Requester ' || i FROM generate_series(0, 99) i;
INSERT INTO approval.principal (id, display_name)
SELECT 'a' || i, 'Reviewer ' || i FROM generate_series(0, 9) i;
INSERT INTO approval.approver_group (name, description) VALUES ('reviewers', 'Reviewers');
INSERT INTO approval.group_member (group_name, principal_id)
SELECT 'reviewers', 'a' || i FROM generate_series(0, 9) i;

SELECT approval.define_workflow('{"name": "time-open", "sla": "48 hours", "sla_warning": 0.75,
    "expires_after": "30 days",
    "stages": [{"name": "review", "approvers": ["group:reviewers"]}]}') AS wf_open \gset
SELECT approval.define_workflow('{"name": "time-due", "sla": "1 day", "expires_after": "30 days",
    "stages": [{"name": "review", "approvers": ["group:reviewers"]}]}') AS wf_due \gset
SELECT approval.define_workflow('{"name": "time-worker", "expires_after": "2 seconds",
    "stages": [{"name": "review", "approvers": ["group:reviewers"]}]}') AS wf_worker \gset

-- n submit() calls of a workflow, one transaction each (so each has its own
-- now()), by requesters r000..r099 in turn
CREATE PROCEDURE bench_time.submit_many(wf text, n integer)
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..n LOOP
        PERFORM set_config('approval.actor', 'r' || lpad((i % 100)::text, 3, '0'), false);
        PERFORM approval.submit(wf, '{}', 'bench');
        COMMIT;
    END LOOP;
    PERFORM set_config('approval.actor', '', false);
END
$$;

-- ---------------------------------------------------------------------------
-- What the engine writes at the submit of a "time-open" or "time-due"
-- request, as views over bench_time.gen (id, workflow, requester,
-- created_at, seq of its first event) and the workflows' deadlines
-- ---------------------------------------------------------------------------
CREATE TABLE bench_time.spec (workflow text PRIMARY KEY, workflow_id integer, sla interval,
                              warn interval, expires interval);
INSERT INTO bench_time.spec VALUES
    ('time-open', :wf_open, interval '48 hours', interval '36 hours', interval '30 days'),
    ('time-due', :wf_due, interval '1 day', NULL, interval '30 days');
CREATE TABLE bench_time.gen (id bigint, workflow text, requester text, at timestamptz, seq bigint);

CREATE VIEW bench_time.gen_request AS
SELECT g.id, s.workflow_id, g.workflow, 'bench'::text AS title,
       NULL::text AS subject, '{}'::jsonb AS payload, g.requester,
       'pending'::approval.request_state AS state, g.at AS created_at,
       NULL::timestamptz AS decided_at, g.at + s.sla AS due_at,
       'on_track'::text AS sla_state, 0 AS escalations, 0 AS current_order, g.at AS updated_at,
       ARRAY['group:reviewers'] AS audience,
       g.at + s.warn AS warn_at, NULL::timestamptz AS escalate_at,
       g.at + s.expires AS expires_at, NULL::timestamptz AS paused_at,
       g.at + coalesce(s.warn, s.sla) AS next_due, 0 AS timer_failures, NULL::text AS timer_error
  FROM bench_time.gen g JOIN bench_time.spec s ON s.workflow = g.workflow;

CREATE VIEW bench_time.gen_stage AS
SELECT g.id AS request_id, 'review'::text AS stage, 0 AS stage_idx, 0 AS stage_order,
       'active'::approval.stage_state AS state, ARRAY['group:reviewers'] AS targets,
       1 AS required, 0 AS approvals, 0 AS rejections, 1 AS reject_required, 1 AS round,
       g.at AS activated_at, NULL::timestamptz AS decided_at, NULL::timestamptz AS timeout_at,
       '{}'::text[] AS added_targets
  FROM bench_time.gen g;

CREATE VIEW bench_time.gen_vote AS
SELECT g.id AS request_id, 'review'::text AS stage, 'group:reviewers'::text AS target, 1 AS round,
       g.at AS submitted_at, g.requester, g.workflow,
       false AS allow_self_approval, false AS distinct_approvers, ARRAY['group:reviewers'] AS targets
  FROM bench_time.gen g;

-- the two events and their hashes (src/event.c: sha256 of the previous hash,
-- seq, request_id and at as big-endian int8, kind NUL actor NUL data);
-- STABLE, so that it is inlined
CREATE FUNCTION bench_time.event_hash(prev bytea, seq bigint, rid bigint, at timestamptz,
                                      kind text, actor text, data jsonb)
RETURNS bytea LANGUAGE sql STABLE AS $$
    SELECT sha256(coalesce(prev, '') || int8send(seq) || int8send(rid)
                  || int8send((extract(epoch FROM at) * 1000000)::bigint - 946684800000000)
                  || convert_to(kind, 'UTF8') || '\x00'::bytea
                  || convert_to(coalesce(actor, ''), 'UTF8') || '\x00'::bytea
                  || convert_to(data::text, 'UTF8'))
$$;
CREATE VIEW bench_time.gen_chain AS
SELECT g.*, d.submitted, d.activated, h.h1,
       bench_time.event_hash(h.h1, g.seq + 1, g.id, g.at, 'stage_activated', g.requester, d.activated) AS h2
  FROM bench_time.gen g
 CROSS JOIN LATERAL (SELECT jsonb_build_object('title', 'bench', 'subject', NULL, 'version', 1,
                                               'workflow', g.workflow) AS submitted,
                            '{"order": 0, "round": 1, "stage": "review", "targets": ["group:reviewers"], "required": 1}'::jsonb
                                AS activated) d
 CROSS JOIN LATERAL (SELECT bench_time.event_hash(NULL, g.seq, g.id, g.at, 'submitted', g.requester,
                                                  d.submitted) AS h1) h;
CREATE VIEW bench_time.gen_event AS
SELECT seq, id AS request_id, at, 'submitted'::text AS kind, requester AS actor, submitted AS data, h1 AS hash
  FROM bench_time.gen_chain
UNION ALL
SELECT seq + 1, id, at, 'stage_activated', requester, activated, h2 FROM bench_time.gen_chain;

-- ---------------------------------------------------------------------------
-- The samples, through the engine, and the views checked against them
-- ---------------------------------------------------------------------------
CALL bench_time.submit_many('time-open', :sample);
CALL bench_time.submit_many('time-due', :sample);

INSERT INTO bench_time.gen
SELECT r.id, r.workflow, r.requester, r.created_at, min(e.seq)
  FROM approval.request r JOIN approval.event e ON e.request_id = r.id
 GROUP BY r.id;

CREATE TEMP TABLE mismatch (what text, n bigint);
INSERT INTO mismatch
SELECT 'request', count(*) FROM (
    (SELECT id, workflow_id, workflow, title, subject, payload, requester, state, created_at,
            decided_at, due_at, sla_state, escalations, current_order, updated_at, audience,
            warn_at, escalate_at, expires_at, paused_at, next_due, timer_failures, timer_error
       FROM approval.request EXCEPT ALL SELECT * FROM bench_time.gen_request)
    UNION ALL
    (SELECT * FROM bench_time.gen_request
     EXCEPT ALL SELECT id, workflow_id, workflow, title, subject, payload, requester, state, created_at,
            decided_at, due_at, sla_state, escalations, current_order, updated_at, audience,
            warn_at, escalate_at, expires_at, paused_at, next_due, timer_failures, timer_error
       FROM approval.request)) d
UNION ALL
SELECT 'last_hash', count(*) FROM approval.request r
 WHERE r.last_hash IS DISTINCT FROM (SELECT c.h2 FROM bench_time.gen_chain c WHERE c.id = r.id)
UNION ALL
SELECT 'request_stage', count(*) FROM (
    (SELECT * FROM approval.request_stage EXCEPT ALL SELECT * FROM bench_time.gen_stage)
    UNION ALL (SELECT * FROM bench_time.gen_stage EXCEPT ALL SELECT * FROM approval.request_stage)) d
UNION ALL
SELECT 'pending_vote', count(*) FROM (
    (SELECT * FROM approval.pending_vote EXCEPT ALL SELECT * FROM bench_time.gen_vote)
    UNION ALL (SELECT * FROM bench_time.gen_vote EXCEPT ALL SELECT * FROM approval.pending_vote)) d
UNION ALL
SELECT 'event', count(*) FROM (
    (SELECT seq, request_id, at, kind, actor, data, hash FROM approval.event
     EXCEPT ALL SELECT seq, request_id, at, kind, actor, data, hash FROM bench_time.gen_event)
    UNION ALL
    (SELECT seq, request_id, at, kind, actor, data, hash FROM bench_time.gen_event
     EXCEPT ALL SELECT seq, request_id, at, kind, actor, data, hash FROM approval.event)) d;
DO $$
DECLARE
    bad text;
BEGIN
    SELECT string_agg(what || ' (' || n || ' rows)', ', ') INTO bad FROM mismatch WHERE n > 0;
    IF bad IS NOT NULL OR (SELECT count(*) FROM bench_time.gen) = 0 THEN
        RAISE EXCEPTION 'the generated rows differ from what submit() wrote: %', coalesce(bad, 'no sample');
    END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- The generated requests, ids and event seqs after the samples':
--   "time-open", one every 10 ms or so in the 3 hours before now
--   "time-due", :due - :sample of them, one a millisecond from 5 minutes
--   before now (due a day later)
-- ---------------------------------------------------------------------------
TRUNCATE bench_time.gen;
SELECT max(id) AS id0, (SELECT max(seq) FROM approval.event) AS seq0,
       :n - :sample - :due AS open_n, :n - 2 * :sample AS gen_n
  FROM approval.request \gset
INSERT INTO bench_time.gen
SELECT :id0 + i, CASE WHEN i <= :open_n THEN 'time-open' ELSE 'time-due' END,
       'r' || lpad((i % 100)::text, 3, '0'),
       CASE WHEN i <= :open_n
            THEN date_trunc('second', now()) - interval '3 hours' + (i - 1) * (interval '3 hours' / :open_n)
            ELSE date_trunc('second', now()) - interval '5 minutes' + (i - :open_n) * interval '1 millisecond' END,
       :seq0 + 2 * i - 1
  FROM generate_series(1, :gen_n) i;

CREATE TEMP TABLE chain AS SELECT * FROM bench_time.gen_chain;
INSERT INTO approval.request (id, workflow_id, workflow, title, subject, payload, requester, state,
                              created_at, decided_at, due_at, sla_state, escalations, current_order,
                              updated_at, audience, warn_at, escalate_at, expires_at, paused_at,
                              next_due, timer_failures, timer_error, last_hash)
SELECT r.*, c.h2 FROM bench_time.gen_request r JOIN chain c ON c.id = r.id ORDER BY r.id;
INSERT INTO approval.request_stage SELECT * FROM bench_time.gen_stage ORDER BY request_id;
INSERT INTO approval.pending_vote SELECT * FROM bench_time.gen_vote ORDER BY request_id;
INSERT INTO approval.event (seq, request_id, at, kind, actor, data, hash)
SELECT seq, request_id, at, kind, actor, data, hash FROM (
    SELECT seq, id AS request_id, at, 'submitted' AS kind, requester AS actor, submitted AS data, h1 AS hash FROM chain
    UNION ALL
    SELECT seq + 1, id, at, 'stage_activated', requester, activated, h2 FROM chain) e
 ORDER BY seq;
DROP TABLE chain;
SELECT setval('approval.request_id_seq', :id0 + :gen_n), setval('approval.event_seq', :seq0 + 2 * :gen_n);

-- the chains of about a thousand of the generated requests verify
DO $$
DECLARE
    broken bigint;
BEGIN
    SELECT count(*) INTO broken
      FROM bench_time.gen g CROSS JOIN LATERAL approval.verify_audit(g.id) v
     WHERE g.id % greatest(1, (SELECT count(*) FROM bench_time.gen) / 1000) = 0 AND NOT v.ok;
    IF broken > 0 THEN
        RAISE EXCEPTION 'verify_audit() finds % broken chains among the generated requests', broken;
    END IF;
END
$$;
TRUNCATE bench_time.gen;

-- ---------------------------------------------------------------------------
-- The team's table: the same open requests, with the SLA as a column and the
-- indexes a team would add for its pages and for the scan ("state" and the
-- open requests by age); no index can serve created_at + sla < now(), whose
-- sum is not immutable (timestamptz + interval)
-- ---------------------------------------------------------------------------
CREATE SCHEMA team;
CREATE TABLE team.request AS
SELECT id, state::text AS state, created_at,
       CASE workflow WHEN 'time-due' THEN interval '1 day' ELSE interval '48 hours' END AS sla,
       'on_track'::text AS sla_state
  FROM approval.request ORDER BY id;
ALTER TABLE team.request ADD PRIMARY KEY (id);
CREATE INDEX request_state ON team.request (state);
CREATE INDEX request_open_created ON team.request (created_at) WHERE state = 'pending';

VACUUM ANALYZE;
