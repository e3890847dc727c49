--
-- timer: deadlines and approval.tick() (DESIGN §6), on the wall clock
--
-- Each open request carries its deadlines (SLA warning and breach, next
-- escalation, stage timeouts, expiry); tick(at) fires those due at "at",
-- each once, through the same path as a vote.  The tests move the clock by
-- passing "at"; times are shown relative to the request's created_at.
-- (Deadlines on a business calendar: test "calendar".)
--

-- what the tests look at, as the superuser (who sees every row)
CREATE FUNCTION pg_temp.times(rid bigint)
RETURNS TABLE (state approval.request_state, sla_state text, escalations int,
               due interval, warn interval, escalate interval, expires interval, next interval)
LANGUAGE sql AS $$
    SELECT state, sla_state, escalations, due_at - created_at, warn_at - created_at,
           escalate_at - created_at, expires_at - created_at, next_due - created_at
      FROM approval.request WHERE id = rid
$$;
CREATE FUNCTION pg_temp.stages(rid bigint)
RETURNS TABLE (stage text, state approval.stage_state, targets text[], timeout interval)
LANGUAGE sql AS $$
    SELECT s.stage, s.state, s.targets, s.timeout_at - r.created_at
      FROM approval.request_stage s JOIN approval.request r ON r.id = s.request_id
     WHERE s.request_id = rid ORDER BY s.stage_order, s.stage_idx
$$;
CREATE FUNCTION pg_temp.events(rid bigint) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(kind, ', ' ORDER BY seq) FROM approval.event WHERE request_id = rid
$$;
-- tick at created_at + offset of a request
CREATE FUNCTION pg_temp.tick_at(rid bigint, offs interval) RETURNS integer LANGUAGE sql AS $$
    SELECT approval.tick(created_at + offs) FROM approval.request WHERE id = rid
$$;

-- the earlier tests' requests have no deadlines: nothing is due, ever
SELECT approval.tick(now() + interval '100 years') AS fired_before;

SET ROLE regress_admin;
SELECT approval.define_workflow('{"name": "sla-flow",
    "sla": "48 hours", "sla_warning": 0.75,
    "stages": [{"name": "it", "approvers": ["group:it-managers"]}]}') > 0 AS defined;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- SLA: warning at 75 % (36 h), breach at 48 h; each fires once
-- ---------------------------------------------------------------------------
SET ROLE regress_alice;
SELECT approval.submit('sla-flow', '{}', 'laptop') AS sla1 \gset
RESET ROLE;
SELECT * FROM pg_temp.times(:sla1);
SELECT pg_temp.tick_at(:sla1, '35 hours') AS fired_at_35h;
SELECT pg_temp.tick_at(:sla1, '36 hours') AS fired_at_36h;
SELECT pg_temp.tick_at(:sla1, '36 hours') AS fired_again_at_36h;
SELECT * FROM pg_temp.times(:sla1);
SELECT pg_temp.tick_at(:sla1, '48 hours') AS fired_at_48h;
SELECT pg_temp.tick_at(:sla1, '100 hours') AS fired_at_100h;
SELECT * FROM pg_temp.times(:sla1);
SELECT pg_temp.events(:sla1);
SELECT data->>'due_at' = (SELECT due_at::text FROM approval.request WHERE id = :sla1) AS breach_names_due_at
  FROM approval.event WHERE request_id = :sla1 AND kind = 'sla_breached';
-- the people's views show it
SET ROLE regress_alice;
SELECT request_id = :sla1 AS mine, sla_state, due_at IS NOT NULL AS has_due FROM approval.request_status WHERE request_id = :sla1;
RESET ROLE;
SET ROLE regress_bob;
SELECT sla_state, due_at IS NOT NULL AS has_due FROM approval.my_pending WHERE request_id = :sla1;
-- (the tick moved the clock; in real time the deadline is still ahead)
SELECT sla_state, time_left > interval '47 hours' AS real_time_left FROM approval.at_risk WHERE request_id = :sla1;
SELECT approval.approve(:sla1);
RESET ROLE;
-- closed: nothing more is due, but due_at and the SLA state stay for reports
SELECT * FROM pg_temp.times(:sla1);
SELECT count(*) AS at_risk_after_close FROM approval.at_risk WHERE request_id = :sla1;

-- both due at once: the warning comes first, then the breach
SET ROLE regress_alice;
SELECT approval.submit('sla-flow', '{}', 'late tick') AS sla2 \gset
RESET ROLE;
SELECT pg_temp.tick_at(:sla2, '3 days') AS fired_both;
SELECT pg_temp.events(:sla2);

-- ---------------------------------------------------------------------------
-- The SLA clock stops while changes are requested; resubmit gives back what
-- was left.  With "sla_pause": "never" it runs on.
-- ---------------------------------------------------------------------------
SET ROLE regress_alice;
SELECT approval.submit('sla-flow', '{}', 'pausing') AS p1 \gset
RESET ROLE;
SET ROLE regress_bob;
SELECT approval.request_changes(:p1, 'which model?');
RESET ROLE;
SELECT state, paused_at IS NOT NULL AS paused FROM approval.request WHERE id = :p1;
-- while paused nothing of the SLA fires, however late
SELECT pg_temp.tick_at(:p1, '30 days') AS fired_while_paused;
SELECT * FROM pg_temp.times(:p1);
SET ROLE regress_alice;
SELECT approval.resubmit(:p1, '{"model": "x1"}');
RESET ROLE;
-- resubmitted at (about) created_at: the deadlines moved by the pause
SELECT paused_at IS NULL AS resumed,
       due_at - now() BETWEEN interval '47 hours 59 minutes' AND interval '48 hours' AS due_48h_from_resubmit,
       warn_at - now() BETWEEN interval '35 hours 59 minutes' AND interval '36 hours' AS warn_36h_from_resubmit
  FROM approval.request WHERE id = :p1;
SET ROLE regress_alice;
SELECT approval.cancel(:p1);    -- (so that it fires in no later tick)
RESET ROLE;

SET ROLE regress_admin;
SELECT approval.define_workflow('{"name": "sla-never",
    "sla": "48 hours", "sla_pause": "never",
    "stages": [{"name": "it", "approvers": ["group:it-managers"]}]}') > 0 AS defined;
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.submit('sla-never', '{}', 'no pause') AS p2 \gset
RESET ROLE;
SET ROLE regress_bob;
SELECT approval.request_changes(:p2, 'which model?');
RESET ROLE;
SELECT pg_temp.tick_at(:p2, '49 hours') AS fired_while_waiting;
SELECT * FROM pg_temp.times(:p2);

-- ---------------------------------------------------------------------------
-- Escalation: after 24 h, then every 24 h, at most 2 times; the target
-- joins the active stage and may act
-- ---------------------------------------------------------------------------
SET ROLE regress_admin;
SELECT approval.define_workflow('{"name": "esc-flow",
    "escalate_after": "24 hours", "escalate_every": "24 hours", "escalate_max": 2,
    "escalate_to": "user:carol",
    "stages": [{"name": "finance", "approvers": ["user:dave"]}]}') > 0 AS defined;
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.submit('esc-flow', '{}', 'escalating') AS e1 \gset
RESET ROLE;
SELECT * FROM pg_temp.times(:e1);
SET ROLE regress_carol;
SELECT count(*) AS carol_pending_before FROM approval.my_pending WHERE request_id = :e1;
SELECT approval.can_see(:e1) AS carol_sees_before;
RESET ROLE;
SELECT pg_temp.tick_at(:e1, '24 hours') AS fired_at_24h;
SELECT * FROM pg_temp.times(:e1);
SELECT * FROM pg_temp.stages(:e1);
SELECT data FROM approval.event WHERE request_id = :e1 AND kind = 'escalated';
SET ROLE regress_carol;
SELECT count(*) AS carol_pending_after FROM approval.my_pending WHERE request_id = :e1;
SELECT approval.can_see(:e1) AS carol_sees_after;
RESET ROLE;
-- a late tick fires one escalation, not all it missed; the next is a period on
SELECT pg_temp.tick_at(:e1, '72 hours') AS fired_at_72h;
SELECT * FROM pg_temp.times(:e1);
-- the second was the last (escalate_max 2)
SELECT pg_temp.tick_at(:e1, '30 days') AS fired_after_max;
SELECT * FROM pg_temp.stages(:e1);
SET ROLE regress_carol;
SELECT approval.approve(:e1);
RESET ROLE;
SELECT pg_temp.events(:e1);

-- the escalation clock stops while changes are requested
SET ROLE regress_alice;
SELECT approval.submit('esc-flow', '{}', 'escalation paused') AS e2 \gset
RESET ROLE;
SET ROLE regress_dave;
SELECT approval.request_changes(:e2, 'details please');
RESET ROLE;
SELECT pg_temp.tick_at(:e2, '5 days') AS fired_while_paused;
SELECT escalations FROM approval.request WHERE id = :e2;

-- ---------------------------------------------------------------------------
-- Stage timeouts: on_timeout escalate | approve | reject | expire
-- ---------------------------------------------------------------------------
CREATE SCHEMA timer_app;
CREATE TABLE timer_app.expired (request bigint);
GRANT USAGE ON SCHEMA timer_app TO regress_admin;
GRANT INSERT ON timer_app.expired TO regress_admin;
CREATE FUNCTION timer_app.on_expired(request bigint) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO timer_app.expired VALUES (request) $$;

SET ROLE regress_admin;
SELECT approval.define_workflow('{"name": "timeouts", "escalate_to": "manager",
    "on_expired": "timer_app.on_expired",
    "stages": [
      {"name": "a", "approvers": ["user:dave"], "timeout": "2 hours", "on_timeout": "approve"},
      {"name": "b", "approvers": ["user:erin"], "timeout": "3 hours", "on_timeout": "escalate"},
      {"name": "c", "approvers": ["user:dave"], "timeout": "4 hours", "on_timeout": "reject",
       "denial_message": "No answer in time"}]}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "timeout-expire", "on_expired": "timer_app.on_expired",
    "stages": [
      {"name": "x", "approvers": ["user:dave"], "timeout": "1 hour"},
      {"name": "y", "approvers": ["user:erin"], "order": 0},
      {"name": "z", "approvers": ["user:erin"]}]}') > 0 AS defined;
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.submit('timeouts', '{}', 'three timeouts') AS t1 \gset
RESET ROLE;
SELECT * FROM pg_temp.stages(:t1);
-- a: approved by its timeout; b activates, its timeout runs from then (2 h + 3 h)
SELECT pg_temp.tick_at(:t1, '2 hours') AS fired_a;
SELECT * FROM pg_temp.stages(:t1);
-- b: escalated to alice's manager, bob, who approves; c's timeout starts then
SELECT pg_temp.tick_at(:t1, '5 hours') AS fired_b;
SELECT * FROM pg_temp.stages(:t1);
SET ROLE regress_bob;
SELECT approval.approve(:t1);
RESET ROLE;
SELECT stage, state, timeout_at - now() BETWEEN interval '3 hours 59 minutes' AND interval '4 hours' AS c_timeout_4h
  FROM approval.request_stage WHERE request_id = :t1 AND stage = 'c';
-- c: rejected by its timeout, with its denial message
SELECT approval.tick(now() + interval '4 hours') AS fired_c;
SELECT * FROM pg_temp.times(:t1);
SELECT data FROM approval.event WHERE request_id = :t1 AND kind IN ('stage_rejected', 'rejected') ORDER BY seq;
SELECT pg_temp.events(:t1);

-- expire (the default action): the stage expires, so does the request, the
-- other active stage is cancelled, and on_expired is called
SET ROLE regress_alice;
SELECT approval.submit('timeout-expire', '{}', 'too slow') AS t2 \gset
RESET ROLE;
SELECT pg_temp.tick_at(:t2, '1 hour') AS fired_x;
SELECT * FROM pg_temp.stages(:t2);
SELECT state, decided_at - created_at AS decided_after FROM approval.request WHERE id = :t2;
SELECT data FROM approval.event WHERE request_id = :t2 AND kind = 'expired';
SELECT count(*) AS on_expired_called FROM timer_app.expired WHERE request = :t2;

-- a stage timeout waits while changes are requested; resubmit restarts the
-- stage and its timeout
SET ROLE regress_alice;
SELECT approval.submit('timeout-expire', '{}', 'waiting on me') AS t3 \gset
RESET ROLE;
SET ROLE regress_dave;
SELECT approval.request_changes(:t3, 'more detail');
RESET ROLE;
SELECT pg_temp.tick_at(:t3, '3 hours') AS fired_while_waiting;
SELECT state FROM approval.request WHERE id = :t3;
SET ROLE regress_alice;
SELECT approval.resubmit(:t3);
RESET ROLE;
SELECT timeout_at - now() BETWEEN interval '59 minutes' AND interval '1 hour' AS restarted
  FROM approval.request_stage WHERE request_id = :t3 AND stage = 'x';
SET ROLE regress_alice;
SELECT approval.cancel(:t3);
RESET ROLE;

-- ---------------------------------------------------------------------------
-- Expiry: never pauses; the request expires, its stages are cancelled
-- ---------------------------------------------------------------------------
SET ROLE regress_admin;
SELECT approval.define_workflow('{"name": "expiring", "expires_after": "7 days",
    "on_expired": "timer_app.on_expired",
    "stages": [{"name": "it", "approvers": ["group:it-managers"]}]}') > 0 AS defined;
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.submit('expiring', '{}', 'will expire') AS x1 \gset
SELECT approval.submit('expiring', '{}', 'expires while waiting on me') AS x2 \gset
RESET ROLE;
SET ROLE regress_bob;
SELECT approval.request_changes(:x2, 'fix it');
RESET ROLE;
SELECT pg_temp.tick_at(:x1, '6 days 23 hours') AS fired_early;
SELECT approval.tick(created_at + interval '7 days') AS fired_both FROM approval.request WHERE id = :x2;
SELECT id = :x1 AS first, state, next_due FROM approval.request WHERE id IN (:x1, :x2) ORDER BY id;
SELECT * FROM pg_temp.stages(:x1);
SELECT count(*) AS on_expired_called FROM timer_app.expired WHERE request IN (:x1, :x2);
SELECT pg_temp.events(:x2);
SET ROLE regress_bob;
SELECT error_of(format('SELECT approval.approve(%s)', :x1));
RESET ROLE;

-- ---------------------------------------------------------------------------
-- A firing that fails is recorded and retried with a back-off; the others
-- still fire
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION timer_app.on_expired(request bigint) RETURNS void LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'mailer is down'; END $$;
SET ROLE regress_alice;
SELECT approval.submit('expiring', '{}', 'callback fails') AS f1 \gset
SELECT approval.submit('sla-flow', '{}', 'fires anyway') AS f2 \gset
RESET ROLE;
-- (the warning names the request and its error; the request records them too)
SET client_min_messages = error;
SELECT approval.tick(created_at + interval '7 days') AS fired_f2_warning_and_breach
  FROM approval.request WHERE id = :f1;
SELECT id = :f1 AS failing, state, sla_state, timer_failures, timer_error,
       next_due - (created_at + interval '7 days') AS retry_after
  FROM approval.request WHERE id IN (:f1, :f2) ORDER BY id;
-- not before the back-off
SELECT approval.tick(created_at + interval '7 days 5 seconds') AS fired_in_backoff FROM approval.request WHERE id = :f1;
-- the second failure doubles it
SELECT approval.tick(created_at + interval '7 days 10 seconds') AS fired FROM approval.request WHERE id = :f1;
SELECT timer_failures, next_due - (created_at + interval '7 days 10 seconds') AS retry_after
  FROM approval.request WHERE id = :f1;
-- mended: the next attempt fires, and the failures are over
CREATE OR REPLACE FUNCTION timer_app.on_expired(request bigint) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO timer_app.expired VALUES (request) $$;
SELECT approval.tick(created_at + interval '7 days 30 seconds') AS fired FROM approval.request WHERE id = :f1;
SELECT state, timer_failures, timer_error, next_due FROM approval.request WHERE id = :f1;
RESET client_min_messages;
SELECT pg_temp.events(:f1);

-- ---------------------------------------------------------------------------
-- Every firing is in the hash chain
-- ---------------------------------------------------------------------------
SELECT count(*) AS broken_chains FROM approval.verify_audit() WHERE NOT ok;
SELECT actor IS NULL AS by_the_clock, count(*) FROM approval.event
 WHERE kind IN ('sla_warning', 'sla_breached', 'escalated', 'expired') GROUP BY 1;

-- ---------------------------------------------------------------------------
-- Reports
-- ---------------------------------------------------------------------------
SELECT workflow, closed, decided, expired, with_sla, compliance_pct, breaches, escalations,
       mean_time IS NOT NULL AS has_mean, median_time <= p90_time AS median_le_p90
  FROM approval.sla_report(now() - interval '1 day', now() + interval '100 days')
 WHERE workflow IN ('sla-flow', 'esc-flow', 'timeouts', 'timeout-expire', 'expiring')
 ORDER BY workflow;
SELECT count(*) AS one_workflow FROM approval.sla_report(now() - interval '1 day', now() + interval '100 days', 'sla-flow');
-- at_risk: soonest due first
SELECT request_id = :sla2 AS late_tick, sla_state FROM approval.at_risk WHERE request_id IN (:sla2, :f2) ORDER BY due_at, request_id;
-- users see only their own figures
SET ROLE regress_outsider;
SELECT count(*) AS outsider_rows FROM approval.sla_report(now() - interval '1 day', now() + interval '100 days');
SELECT count(*) AS outsider_at_risk FROM approval.at_risk;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- Errors
-- ---------------------------------------------------------------------------
SELECT error_of('SELECT approval.tick(now(), 0)');
SET ROLE regress_alice;
SELECT error_of('SELECT approval.tick()');
RESET ROLE;
SET ROLE regress_admin;
SELECT error_of($$SELECT approval.define_workflow('{"name": "x", "escalate_after": "1 day"}')$$);
SELECT error_of($$SELECT approval.define_workflow('{"name": "x", "escalate_max": 2, "escalate_to": "manager"}')$$);
SELECT error_of($$SELECT approval.define_workflow('{"name": "x", "escalate_after": "1 day", "escalate_to": "manager", "escalate_max": 0}')$$);
SELECT error_of($$SELECT approval.define_workflow('{"name": "x", "sla": "1 day", "sla_pause": "sometimes"}')$$);
SELECT error_of($$SELECT approval.define_workflow('{"name": "x", "stages": [{"name": "a", "approvers": ["manager"], "timeout": "1 day", "on_timeout": "escalate"}]}')$$);
-- an escalation target that cannot be resolved when it is due: a failure, retried
SELECT approval.define_workflow('{"name": "esc-nobody", "escalate_after": "1 hour", "escalate_to": "manager",
    "stages": [{"name": "it", "approvers": ["group:it-managers"]}]}') > 0 AS defined;
RESET ROLE;
SET ROLE regress_carol;     -- carol has no manager
SELECT approval.submit('esc-nobody', '{}', 'no one to escalate to') AS n1 \gset
RESET ROLE;
SET client_min_messages = error;
SELECT pg_temp.tick_at(:n1, '1 hour') AS fired;
RESET client_min_messages;
SELECT timer_failures, timer_error FROM approval.request WHERE id = :n1;
SET ROLE regress_carol;
SELECT approval.cancel(:n1);
RESET ROLE;
SELECT next_due FROM approval.request WHERE id = :n1;

-- ---------------------------------------------------------------------------
-- On a business calendar: sla, sla_warning, escalate_* and timeout count
-- business time (calendar "regress-plain" of test "calendar": Monday to
-- Friday, 09:00-17:00); a pause gives back what was left in business time
-- ---------------------------------------------------------------------------
SET ROLE regress_admin;
SELECT approval.define_workflow('{"name": "office-hours", "calendar": "regress-plain",
    "sla": "2 days", "sla_warning": 0.5, "escalate_after": "4 hours", "escalate_to": "user:carol",
    "expires_after": "30 days",
    "stages": [{"name": "it", "approvers": ["group:it-managers"], "timeout": "1 day 4 hours", "on_timeout": "approve"}]}') > 0 AS defined;
SELECT error_of($$SELECT approval.define_workflow('{"name": "x", "calendar": "no-such-calendar", "sla": "1 day"}')$$);
SELECT error_of($$SELECT approval.define_workflow('{"name": "x", "calendar": "regress-plain", "sla": "1 mon"}')$$);
SELECT error_of($$SELECT approval.define_workflow('{"name": "x", "calendar": "regress-plain", "stages": [{"name": "a", "approvers": ["manager"], "timeout": "2 months"}]}')$$);
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.submit('office-hours', '{}', 'on office hours') AS c1 \gset
RESET ROLE;
SELECT r.due_at = approval.business_add(r.created_at, '2 days', 'regress-plain') AS due_2_business_days,
       r.warn_at = approval.business_add(r.created_at, '8 hours', 'regress-plain') AS warn_half_of_16_hours,
       r.escalate_at = approval.business_add(r.created_at, '4 hours', 'regress-plain') AS escalate_4_business_hours,
       r.expires_at = r.created_at + interval '30 days' AS expiry_on_the_wall_clock,
       s.timeout_at = approval.business_add(r.created_at, '1 day 4 hours', 'regress-plain') AS timeout_on_calendar,
       r.next_due = r.escalate_at AS next_is_escalation
  FROM approval.request r JOIN approval.request_stage s ON s.request_id = r.id
 WHERE r.id = :c1;
SELECT due_at AS c1_due, paused_at FROM approval.request WHERE id = :c1 \gset
SET ROLE regress_bob;
SELECT approval.request_changes(:c1, 'which one?');
RESET ROLE;
SELECT paused_at AS c1_paused FROM approval.request WHERE id = :c1 \gset
SET ROLE regress_alice;
SELECT approval.resubmit(:c1);
RESET ROLE;
SELECT due_at = approval.business_add(now(), approval.business_elapsed(:'c1_paused', :'c1_due', 'regress-plain'),
                                      'regress-plain') AS due_keeps_what_was_left
  FROM approval.request WHERE id = :c1;
SET ROLE regress_alice;
SELECT approval.cancel(:c1);
RESET ROLE;

-- ---------------------------------------------------------------------------
-- A deadline that keeps failing holds back no other: carol has no manager,
-- so the escalation fails (and is put off), but the expiry still fires
-- ---------------------------------------------------------------------------
SET ROLE regress_admin;
SELECT approval.define_workflow('{"name": "esc-fails", "escalate_after": "1 hour", "escalate_to": "manager",
    "sla": "90 minutes", "expires_after": "2 hours",
    "stages": [{"name": "it", "approvers": ["group:it-managers"]}]}') > 0 AS defined;
SELECT error_of($$SELECT approval.define_workflow('{"name": "x", "sla": "1 day -23 hours"}')$$);
RESET ROLE;
SET ROLE regress_carol;
SELECT approval.submit('esc-fails', '{}', 'escalation fails') AS g1 \gset
RESET ROLE;
SET client_min_messages = error;
SELECT pg_temp.tick_at(:g1, '3 hours') AS fired_breach_and_expiry;
RESET client_min_messages;
SELECT state, sla_state, escalations, timer_failures, timer_error, next_due FROM approval.request WHERE id = :g1;
SELECT pg_temp.events(:g1);

-- a version stored before 0.4.0 could escalate with no escalate_to (0.4.0
-- refuses to define one): its escalation is not planned, and its stage
-- timeout "escalate" fails cleanly, is put off, and lets the expiry fire
SET ROLE regress_admin;
SELECT approval.define_workflow('{"name": "old-escalation", "escalate_after": "1 hour", "escalate_to": "manager",
    "expires_after": "3 hours",
    "stages": [{"name": "it", "approvers": ["group:it-managers"], "timeout": "2 hours", "on_timeout": "escalate"}]}') AS old_wf \gset
RESET ROLE;
UPDATE approval.workflow SET escalate_to = NULL WHERE id = :old_wf;
SET ROLE regress_alice;
SELECT approval.submit('old-escalation', '{}', 'stored by 0.3.0') AS o1 \gset
RESET ROLE;
SELECT escalate_at IS NULL AS no_escalation_planned FROM approval.request WHERE id = :o1;
SET client_min_messages = error;
SELECT pg_temp.tick_at(:o1, '2 hours') AS fired_timeout;
SELECT timer_failures, timer_error FROM approval.request WHERE id = :o1;
SELECT pg_temp.tick_at(:o1, '3 hours') AS fired_expiry;
RESET client_min_messages;
SELECT state, timer_failures, timer_error FROM approval.request WHERE id = :o1;

-- a cancel (statement_timeout) during a firing ends the tick: it is not a
-- failure of the request's deadline
CREATE FUNCTION timer_app.slow(request bigint) RETURNS void LANGUAGE sql AS $$ SELECT pg_sleep(2) $$;
SET ROLE regress_admin;
SELECT approval.define_workflow('{"name": "slow-expiry", "expires_after": "1 hour", "on_expired": "timer_app.slow",
    "stages": [{"name": "it", "approvers": ["group:it-managers"]}]}') > 0 AS defined;
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.submit('slow-expiry', '{}', 'slow callback') AS s1 \gset
RESET ROLE;
SELECT set_config('timer_test.s1', :'s1', false) IS NOT NULL AS noted;
SET statement_timeout = '500ms';
DO $$
BEGIN
    PERFORM approval.tick(created_at + interval '1 hour')
       FROM approval.request WHERE id = current_setting('timer_test.s1')::bigint;
    RAISE NOTICE 'the tick ran to its end';
EXCEPTION WHEN query_canceled THEN
    RAISE NOTICE 'the tick was cancelled: %', SQLSTATE;
END $$;
RESET statement_timeout;
SELECT state, timer_failures FROM approval.request WHERE id = :s1;
SET ROLE regress_alice;
SELECT approval.cancel(:s1);
RESET ROLE;

-- "all" counts the stage's own approvers: an escalation's target does not
-- raise the votes needed, also when the stage restarts at resubmit
SET ROLE regress_admin;
SELECT approval.define_workflow('{"name": "all-escalated", "escalate_after": "1 hour", "escalate_to": "user:carol",
    "stages": [{"name": "both", "approvers": ["user:bob", "user:dave"], "min_approvals": "all"}]}') > 0 AS defined;
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.submit('all-escalated', '{}', 'all of them') AS a1 \gset
RESET ROLE;
SELECT pg_temp.tick_at(:a1, '1 hour') AS fired;
SET ROLE regress_bob;
SELECT approval.request_changes(:a1, 'more');
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.resubmit(:a1);
RESET ROLE;
SELECT stage, targets, added_targets, required FROM approval.request_stage WHERE request_id = :a1;
SET ROLE regress_bob;
SELECT approval.approve(:a1);
RESET ROLE;
SET ROLE regress_dave;
SELECT approval.approve(:a1);
RESET ROLE;
