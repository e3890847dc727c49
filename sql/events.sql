--
-- events: the event log (DESIGN §7)
--
-- Which events each operation writes and in what order, what their data
-- holds, the hash chain (verify_audit), the append-only rule, events_after
-- and ack, and the NOTIFY of every event.
--

-- requests of this test, by label; events are shown with the label
CREATE TEMP TABLE reqs (label text PRIMARY KEY, id bigint NOT NULL UNIQUE);
-- the last event already shown
CREATE TEMP TABLE mark (seq bigint NOT NULL);
INSERT INTO mark SELECT COALESCE(max(seq), 0) FROM approval.event;
SELECT seq AS s0 FROM mark \gset

-- the events written since the last call, oldest first
CREATE FUNCTION pg_temp.new_events()
RETURNS TABLE (request text, kind text, actor text, data jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    m bigint;
BEGIN
    SELECT mk.seq INTO m FROM mark mk;
    RETURN QUERY
        SELECT COALESCE(r.label, '?'), e.kind, e.actor, e.data
          FROM approval.event e LEFT JOIN reqs r ON r.id = e.request_id
         WHERE e.seq > m ORDER BY e.seq;
    UPDATE mark SET seq = (SELECT COALESCE(max(e.seq), m) FROM approval.event e);
END
$$;

SELECT approval.define_workflow('{
  "name": "events-flow",
  "stages": [
    {"name": "manager", "approvers": ["manager"]},
    {"name": "finance", "approvers": ["group:finance"], "min_approvals": 2},
    {"name": "big",     "approvers": ["user:carol"], "when": "$.cost > 1000",
     "denial_message": "Too big"}
  ]}') > 0 AS defined;

--
-- submit: submitted, then the first order's stage_activated
--
SET ROLE regress_alice;
SELECT approval.submit('events-flow', '{"cost": 500}', 'Laptop', 'events:laptop') AS rid \gset
RESET ROLE;
INSERT INTO reqs VALUES ('flow', :rid);
SELECT * FROM pg_temp.new_events();

-- a retry for the same open subject writes nothing
SET ROLE regress_alice;
SELECT approval.submit('events-flow', '{"cost": 500}', 'Laptop', 'events:laptop') = :rid AS same;
RESET ROLE;
SELECT * FROM pg_temp.new_events();

-- the approval that meets the quorum: voted, quorum_satisfied, stage_approved,
-- then the next order's stage_activated
SET ROLE regress_bob;
SELECT approval.approve(:rid, 'ok from me');
RESET ROLE;
SELECT * FROM pg_temp.new_events();

-- a vote below the quorum: voted only
SET ROLE regress_dave;
SELECT approval.approve(:rid);
-- the same vote again: a no-op, no event
SELECT approval.approve(:rid);
RESET ROLE;
SELECT * FROM pg_temp.new_events();

-- a failed call and a rolled-back one write nothing
\set VERBOSITY sqlstate
SET ROLE regress_alice;
SELECT approval.approve(:rid);
RESET ROLE;
\set VERBOSITY default
BEGIN;
SET LOCAL ROLE regress_erin;
SELECT approval.approve(:rid);
ROLLBACK;
SELECT * FROM pg_temp.new_events();

-- a comment: commented
SET ROLE regress_carol;
SELECT approval.comment(:rid, 'I will not be needed');
RESET ROLE;
SELECT * FROM pg_temp.new_events();

-- the last approval: the later stage is skipped and the request approved
SET ROLE regress_erin;
SELECT approval.approve(:rid);
RESET ROLE;
SELECT * FROM pg_temp.new_events();

--
-- rejection: voted, stage_rejected (reason and denial message), rejected
--
SET ROLE regress_alice;
SELECT approval.submit('events-flow', '{"cost": 5000}', 'Server') AS rid \gset
RESET ROLE;
INSERT INTO reqs VALUES ('rejected', :rid);
SET ROLE regress_bob;
SELECT approval.approve(:rid);
RESET ROLE;
SET ROLE regress_dave;
SELECT approval.approve(:rid);
RESET ROLE;
SET ROLE regress_erin;
SELECT approval.approve(:rid);
RESET ROLE;
SELECT * FROM pg_temp.new_events() WHERE kind NOT IN ('voted', 'quorum_satisfied');
SET ROLE regress_carol;
SELECT approval.reject(:rid, 'over_budget', 'not this year');
RESET ROLE;
SELECT * FROM pg_temp.new_events();

-- with reject_policy "quorum", a rejection below the quorum is only a vote
SELECT approval.define_workflow('{
  "name": "events-quorum",
  "stages": [{"name": "board", "approvers": ["group:finance"],
              "reject_policy": "quorum", "reject_quorum": 2}]}') > 0 AS defined;
SET ROLE regress_alice;
SELECT approval.submit('events-quorum', '{}') AS rid \gset
RESET ROLE;
INSERT INTO reqs VALUES ('quorum', :rid);
SELECT * FROM pg_temp.new_events();
SET ROLE regress_dave;
SELECT approval.reject(:rid, 'risky');
RESET ROLE;
SELECT * FROM pg_temp.new_events();
SET ROLE regress_erin;
SELECT approval.reject(:rid, 'risky');
RESET ROLE;
SELECT * FROM pg_temp.new_events();

--
-- approved at once: auto_approve, and a workflow without stages
--
SELECT approval.define_workflow('{
  "name": "events-auto", "auto_approve": "$.cost == 0",
  "stages": [{"name": "manager", "approvers": ["manager"]}]}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "events-empty"}') > 0 AS defined;
SET ROLE regress_alice;
SELECT approval.submit('events-auto', '{"cost": 0}') AS rid \gset
RESET ROLE;
INSERT INTO reqs VALUES ('auto', :rid);
SET ROLE regress_alice;
SELECT approval.submit('events-empty', '{}') AS rid \gset
RESET ROLE;
INSERT INTO reqs VALUES ('empty', :rid);
SELECT * FROM pg_temp.new_events();

--
-- parallel stages are activated together; changes, resubmit and cancel
--
SELECT approval.define_workflow('{
  "name": "events-parallel",
  "stages": [
    {"name": "legal", "approvers": ["user:carol"], "order": 1},
    {"name": "it",    "approvers": ["group:it-managers"], "order": 1}
  ]}') > 0 AS defined;
BEGIN;
SET LOCAL ROLE regress_app;
SET LOCAL approval.actor = 'frank';
SELECT approval.submit('events-parallel', '{"tool": "scanner"}') AS rid \gset
COMMIT;
INSERT INTO reqs VALUES ('parallel', :rid);
SELECT * FROM pg_temp.new_events();
SET ROLE regress_carol;
SELECT approval.request_changes(:rid, 'which licence?');
RESET ROLE;
SELECT * FROM pg_temp.new_events();
BEGIN;
SET LOCAL ROLE regress_app;
SET LOCAL approval.actor = 'frank';
SELECT approval.resubmit(:rid, '{"tool": "scanner", "licence": "MIT"}', 'MIT');
COMMIT;
SELECT * FROM pg_temp.new_events();
BEGIN;
SET LOCAL ROLE regress_app;
SET LOCAL approval.actor = 'frank';
SELECT approval.cancel(:rid, 'found a free one');
COMMIT;
SELECT * FROM pg_temp.new_events();

--
-- the hash chain
--
SELECT r.label, v.events, v.ok, v.first_bad_seq
  FROM reqs r, approval.verify_audit(r.id) v ORDER BY r.label;
SELECT r.label, e.events
  FROM reqs r, LATERAL (SELECT count(*) AS events FROM approval.event e WHERE e.request_id = r.id) e
 ORDER BY r.label;

-- rows cannot be changed or removed
\set VERBOSITY terse
BEGIN;
UPDATE approval.event SET actor = 'mallory' WHERE request_id = (SELECT id FROM reqs WHERE label = 'flow');
ROLLBACK;
BEGIN;
DELETE FROM approval.event WHERE request_id = (SELECT id FROM reqs WHERE label = 'flow');
ROLLBACK;
BEGIN;
TRUNCATE approval.event;
ROLLBACK;
\set VERBOSITY default

-- with the guard off, an edited row breaks the chain at that row ...
SELECT id AS flow FROM reqs WHERE label = 'flow' \gset
SELECT min(seq) AS edited FROM approval.event WHERE request_id = :flow AND kind = 'voted' \gset
BEGIN;
ALTER TABLE approval.event DISABLE TRIGGER event_no_update_delete;
UPDATE approval.event SET data = data || '{"approvals": 2}' WHERE seq = :edited;
SELECT events, ok, first_bad_seq = :edited AS at_edited_row FROM approval.verify_audit(:flow);
ROLLBACK;
-- ... and so does a removed newest row (the chain no longer ends at the request's head)
BEGIN;
ALTER TABLE approval.event DISABLE TRIGGER event_no_update_delete;
DELETE FROM approval.event WHERE seq = (SELECT max(seq) FROM approval.event WHERE request_id = :flow);
SELECT events, ok, first_bad_seq FROM approval.verify_audit(:flow);
ROLLBACK;
SELECT events, ok FROM approval.verify_audit(:flow);

--
-- events_after and ack: the log as a feed
--
SELECT (SELECT count(*) FROM approval.events_after(:s0))
     = (SELECT count(*) FROM approval.event WHERE seq > :s0) AS all_of_them;
SELECT r.label, e.kind FROM approval.events_after(:s0, 3) e JOIN reqs r ON r.id = e.request_id ORDER BY e.seq;
SELECT count(*) FROM approval.events_after(:s0, 0);
-- row-level security: people get the events of the requests they may see
SELECT id AS parallel FROM reqs WHERE label = 'parallel' \gset
SET ROLE regress_alice;
SELECT count(*) > 0 AS own, bool_and(request_id <> :parallel) AS not_franks
  FROM approval.events_after(:s0);
-- max counts the rows she may see
SELECT array_agg(seq ORDER BY seq) = (SELECT array_agg(seq) FROM (SELECT seq FROM approval.event
                                       WHERE seq > :s0 ORDER BY seq LIMIT 2) x) AS her_first_two
  FROM approval.events_after(:s0, 2);
RESET ROLE;
SET ROLE regress_admin;
SELECT (SELECT count(*) FROM approval.events_after(:s0))
     = (SELECT count(*) FROM approval.event WHERE seq > :s0) AS admin_gets_all;
RESET ROLE;
SET ROLE regress_outsider;
SELECT count(*) AS outsider FROM approval.events_after(:s0);
RESET ROLE;
-- a consumer (here an approval_admin) reads, acks, and resumes after its cursor
SELECT seq AS s1 FROM approval.event WHERE seq > :s0 ORDER BY seq OFFSET 9 LIMIT 1 \gset
SET ROLE regress_admin;
SELECT approval.ack('events-test', :s1);
SELECT last_seq = :s1 AS acked FROM approval.subscriber WHERE name = 'events-test';
SELECT approval.ack('events-test', :s0);     -- never moves back
SELECT last_seq = :s1 AS acked FROM approval.subscriber WHERE name = 'events-test';
SELECT count(*) = (SELECT count(*) FROM approval.event WHERE seq > :s1) AS resumes
  FROM approval.events_after((SELECT last_seq FROM approval.subscriber WHERE name = 'events-test'));
RESET ROLE;
\set VERBOSITY sqlstate
SET ROLE regress_alice;
SELECT approval.ack('events-test', :s0);
RESET ROLE;
\set VERBOSITY default
DELETE FROM approval.subscriber WHERE name = 'events-test';

--
-- NOTIFY: every event is sent at commit on approval.notify_channel.  psql
-- prints what this session receives; it goes to a file (the lines carry the
-- backend's PID), and the payloads are read back from there.
--
SHOW approval.notify;
SHOW approval.notify_channel;
INSERT INTO approval.principal (id)
SELECT 'events-principal-with-a-rather-long-identifier-' || lpad(i::text, 4, '0')
  FROM generate_series(1, 200) AS i;
SELECT approval.define_workflow(jsonb_build_object(
    'name', 'events-wide',
    'stages', jsonb_build_array(jsonb_build_object(
        'name', 'everyone',
        'approvers', (SELECT jsonb_agg('user:' || id ORDER BY id) FROM approval.principal
                       WHERE id LIKE 'events-principal-%'))))) > 0 AS defined;
SELECT max(seq) AS n0 FROM approval.event \gset

\getenv abs_builddir PG_ABS_BUILDDIR
\set notify_file :abs_builddir '/results/events.notify'
SET approval.notify_channel = 'events_test';
LISTEN events_test;
\o :notify_file
BEGIN;
SET LOCAL ROLE regress_app;
SET LOCAL approval.actor = 'frank';
SELECT approval.submit('events-flow', '{"cost": 2000, "secret": "s3cr3t"}', 'Phone') AS rid \gset
COMMIT;
SET ROLE regress_bob;
SELECT approval.request_changes(:rid, 'which model?');
RESET ROLE;
BEGIN;
SET LOCAL ROLE regress_app;
SET LOCAL approval.actor = 'frank';
SELECT approval.resubmit(:rid, comment => 'the small one');
COMMIT;
SET ROLE regress_bob;
SELECT approval.approve(:rid);
RESET ROLE;
-- nothing for a failed call, nor for a rolled-back transaction
\set VERBOSITY sqlstate
SET ROLE regress_outsider;
SELECT approval.approve(:rid);
RESET ROLE;
\set VERBOSITY default
BEGIN;
SET LOCAL ROLE regress_dave;
SELECT approval.approve(:rid);
ROLLBACK;
-- nothing with approval.notify off; the event is still logged
SET approval.notify = off;
SET ROLE regress_dave;
SELECT approval.approve(:rid);
RESET ROLE;
RESET approval.notify;
SET ROLE regress_erin;
SELECT approval.approve(:rid);
RESET ROLE;
SET ROLE regress_carol;
SELECT approval.reject(:rid, 'too_big');
RESET ROLE;
-- a stage with 200 long targets
SET ROLE regress_alice;
SELECT approval.submit('events-wide', '{}') AS wide \gset
RESET ROLE;
\o
UNLISTEN *;
RESET approval.notify_channel;
INSERT INTO reqs VALUES ('notified', :rid), ('wide', :wide);

\set notify_text `cat :'notify_file'`
CREATE TEMP TABLE notes AS
SELECT t.n AS line_no, m[1] AS channel, m[2] AS payload, m[2]::jsonb AS p
  FROM regexp_split_to_table(:'notify_text', E'\n') WITH ORDINALITY AS t(line, n),
       regexp_match(t.line, '^Asynchronous notification "([^"]*)" with payload "(.*)" received from server process with PID [0-9]+\.$') AS m
 WHERE m IS NOT NULL;

-- one notification per event, in the order of the log, and each matches its row
SELECT n.channel, n.p->>'kind' AS kind, n.p->>'workflow' AS workflow, n.p->>'state' AS state,
       n.p->>'stage' AS stage, n.p->>'actor' AS actor, n.p->'targets' AS targets
  FROM notes n WHERE (n.p->>'request')::bigint = :rid ORDER BY n.line_no;
SELECT count(*) AS notified,
       bool_and(e.seq IS NOT NULL) AS all_logged,
       bool_and(e.request_id = (n.p->>'request')::bigint AND e.kind = n.p->>'kind'
                AND e.actor = n.p->>'actor' AND e.at = (n.p->>'at')::timestamptz) AS match_log
  FROM notes n LEFT JOIN approval.event e ON e.seq = (n.p->>'seq')::bigint;
SELECT array_agg((p->>'seq')::bigint ORDER BY line_no)
     = array_agg((p->>'seq')::bigint ORDER BY (p->>'seq')::bigint) AS in_seq_order
  FROM notes;
-- every event of the log since n0 was sent, except dave's vote under notify = off
SELECT e.kind, e.actor FROM approval.event e
 WHERE e.seq > :n0 AND NOT EXISTS (SELECT 1 FROM notes n WHERE (n.p->>'seq')::bigint = e.seq)
 ORDER BY e.seq;
-- the shape: these keys, compact, never the request's payload
SELECT DISTINCT ARRAY(SELECT jsonb_object_keys(p) ORDER BY 1) AS keys
  FROM notes WHERE (p->>'request')::bigint = :rid;
SELECT bool_or(payload LIKE '%s3cr3t%') AS leaks_payload, bool_or(payload LIKE '%: %') AS spaced,
       max(octet_length(payload)) < 8000 AS short
  FROM notes;
-- the wide stage's targets are cut short, and say so
SELECT n.p->>'kind' AS kind, octet_length(n.payload) < 8000 AS short,
       jsonb_array_length(n.p->'targets') BETWEEN 1 AND 199 AS some_targets,
       n.p->'targets_truncated' AS truncated,
       (SELECT array_agg(t ORDER BY o) FROM jsonb_array_elements_text(n.p->'targets') WITH ORDINALITY AS x(t, o))
         = (SELECT (array_agg(t ORDER BY o))[1:jsonb_array_length(n.p->'targets')]
              FROM jsonb_array_elements_text(e.data->'targets') WITH ORDINALITY AS y(t, o)) AS a_prefix
  FROM notes n JOIN approval.event e ON e.seq = (n.p->>'seq')::bigint
 WHERE (n.p->>'request')::bigint = :wide AND n.p->>'kind' = 'stage_activated';

DELETE FROM approval.principal WHERE id LIKE 'events-principal-%';
SELECT r.label, v.ok FROM reqs r, approval.verify_audit(r.id) v
 WHERE r.label IN ('notified', 'wide') ORDER BY r.label;

-- a listener service: a gateway role that acts for nobody follows the whole
-- log (it could act for anyone); acting for frank, it sees what frank sees
SELECT count(*) AS all_events FROM approval.event \gset
BEGIN;
SET LOCAL ROLE regress_app;
SELECT count(*) = :all_events AS gateway_sees_every_event
  FROM approval.events_after(0, 1000000);
SET LOCAL approval.actor = 'frank';
SELECT count(*) > 0 AS frank_sees_some, count(*) < :all_events AS frank_sees_fewer
  FROM approval.events_after(0, 1000000);
ROLLBACK;
