/* approval 0.3.0 -> 0.4.0: time (DESIGN §6) — business calendars, SLA,
 * escalation, stage timeouts, expiry, approval.tick(), the background worker
 * and the pg_cron alternative, SLA reports. */

\echo Use "ALTER EXTENSION approval UPDATE TO '0.4.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Business calendars (DESIGN §6): a reference table written by
-- approval_admin.  calendar_check() refuses a bad row (a time zone that is
-- not in the time zone database, hours that are not increasing pairs of
-- "HH:MM", a week without hours, a NULL holiday); sessions cache parsed
-- calendars, and a change tells every session (at commit) to forget them.
-- ---------------------------------------------------------------------------
CREATE TABLE approval.calendar (
    name      text PRIMARY KEY,
    timezone  text NOT NULL,
    hours     jsonb NOT NULL,
    holidays  date[] NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE approval.calendar IS 'Business calendars: an IANA time zone, opening hours per weekday ({"mon": ["09:00", "12:00", "13:00", "17:00"], ...}) and holidays';

CREATE FUNCTION approval.calendar_check() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'approval_calendar_check';
CREATE TRIGGER calendar_check BEFORE INSERT OR UPDATE ON approval.calendar
    FOR EACH ROW EXECUTE FUNCTION approval.calendar_check();
CREATE FUNCTION approval.calendar_changed() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'approval_calendar_changed';
CREATE TRIGGER calendar_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON approval.calendar
    FOR EACH STATEMENT EXECUTE FUNCTION approval.calendar_changed();
-- also under session_replication_role = replica, like the identity tables
ALTER TABLE approval.calendar ENABLE ALWAYS TRIGGER calendar_check;
ALTER TABLE approval.calendar ENABLE ALWAYS TRIGGER calendar_changed;

CREATE FUNCTION approval.business_add(start timestamptz, amount interval, calendar text)
    RETURNS timestamptz
    LANGUAGE c STABLE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_business_add_fn';
COMMENT ON FUNCTION approval.business_add(timestamptz, interval, text) IS 'start plus amount of business time on a calendar: its days are business days, its hours business hours';
CREATE FUNCTION approval.business_elapsed(since timestamptz, until timestamptz, calendar text)
    RETURNS interval
    LANGUAGE c STABLE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_business_elapsed_fn';
COMMENT ON FUNCTION approval.business_elapsed(timestamptz, timestamptz, text) IS 'Business time of a calendar in [since, until), in hours; negative when until is before since';

REVOKE ALL ON approval.calendar FROM PUBLIC;
REVOKE ALL ON FUNCTION approval.calendar_check(), approval.calendar_changed(),
    approval.business_add(timestamptz, interval, text),
    approval.business_elapsed(timestamptz, timestamptz, text)
    FROM PUBLIC;
GRANT SELECT ON approval.calendar TO approval_user, approval_gateway;
GRANT SELECT, INSERT, UPDATE, DELETE ON approval.calendar TO approval_admin;
GRANT EXECUTE ON FUNCTION
    approval.business_add(timestamptz, interval, text),
    approval.business_elapsed(timestamptz, timestamptz, text)
    TO approval_admin, approval_user, approval_gateway;
SELECT pg_catalog.pg_extension_config_dump('approval.calendar', '');

-- Workflows named calendars before there were any.  Each that does not exist
-- is made here, open around the clock in UTC (so that deadlines keep the
-- meaning they had: plain time), with a warning; then workflow.calendar
-- refers to approval.calendar as in a fresh install.
DO $calendars$
DECLARE
    missing text;
BEGIN
    FOR missing IN
        SELECT DISTINCT w.calendar FROM approval.workflow w
         WHERE w.calendar IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM approval.calendar c
                            WHERE c.name OPERATOR(pg_catalog.=) w.calendar)
         ORDER BY 1
    LOOP
        INSERT INTO approval.calendar (name, timezone, hours)
        VALUES (missing, 'UTC',
                '{"mon": ["00:00", "24:00"], "tue": ["00:00", "24:00"], "wed": ["00:00", "24:00"],
                  "thu": ["00:00", "24:00"], "fri": ["00:00", "24:00"], "sat": ["00:00", "24:00"],
                  "sun": ["00:00", "24:00"]}');
        RAISE WARNING 'calendar "%", which workflows name, did not exist: it was made open around the clock in UTC', missing
            USING DETAIL = 'Its deadlines count every hour of every day, as they would without a calendar.',
                  HINT = pg_catalog.format('Give it its time zone, hours and holidays: UPDATE approval.calendar SET timezone = ..., hours = ..., holidays = ... WHERE name = %L;', missing);
    END LOOP;
END
$calendars$;
ALTER TABLE approval.workflow ADD FOREIGN KEY (calendar) REFERENCES approval.calendar (name);

-- ---------------------------------------------------------------------------
-- Time: pg_cron instead of the background worker (DESIGN §6).  pg_cron stays
-- optional: these reach cron.* only when they run (src/schedule.c).
-- ---------------------------------------------------------------------------
CREATE FUNCTION approval.schedule_with_pg_cron(schedule text DEFAULT '* * * * *') RETURNS bigint
    LANGUAGE c VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_schedule_with_pg_cron';

CREATE FUNCTION approval.unschedule_pg_cron() RETURNS boolean
    LANGUAGE c VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_unschedule_pg_cron';

REVOKE ALL ON FUNCTION approval.schedule_with_pg_cron(text), approval.unschedule_pg_cron() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION approval.schedule_with_pg_cron(text), approval.unschedule_pg_cron()
    TO approval_admin;
-- Deadlines (timer.c).  Requests open at the upgrade keep none: their
-- workflows' time keys apply to the requests submitted from now on (a
-- deadline computed now for an old request would fire at once).
-- ---------------------------------------------------------------------------
ALTER TABLE approval.workflow
    ADD COLUMN sla_pause text NOT NULL DEFAULT 'changes_requested'
        CHECK (sla_pause IN ('changes_requested', 'never')),
    ADD COLUMN escalate_max integer CHECK (escalate_max >= 1);

ALTER TABLE approval.request
    ADD COLUMN warn_at timestamptz,
    ADD COLUMN escalate_at timestamptz,
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN paused_at timestamptz,
    ADD COLUMN next_due timestamptz,
    ADD COLUMN timer_failures integer NOT NULL DEFAULT 0,
    ADD COLUMN timer_error text;
CREATE INDEX request_next_due ON approval.request (next_due) WHERE next_due IS NOT NULL;
-- a fired deadline leaves its old entry in request_next_due until VACUUM,
-- and ticks step over it: vacuum sooner than after 20 % of the rows changed
ALTER TABLE approval.request SET (autovacuum_vacuum_scale_factor = 0.02);
CREATE INDEX request_at_risk ON approval.request (due_at)
    WHERE sla_state IN ('warning', 'breached') AND state IN ('pending', 'changes_requested');

ALTER TABLE approval.request_stage
    ADD COLUMN timeout_at timestamptz,
    ADD COLUMN added_targets text[] NOT NULL DEFAULT '{}';

-- at: the time to fire for (tests move the clock with it)
CREATE FUNCTION approval.tick(at timestamptz DEFAULT pg_catalog.now(), max_items integer DEFAULT 1000)
    RETURNS integer
    LANGUAGE c VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_tick';
COMMENT ON FUNCTION approval.tick(timestamptz, integer) IS 'Fire every deadline due at "at" (SLA warnings and breaches, escalations, stage timeouts, expiry), each once; returns how many fired';

CREATE FUNCTION approval.next_due() RETURNS timestamptz
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT pg_catalog.min(r.next_due) FROM approval.request r WHERE r.next_due IS NOT NULL $$;
COMMENT ON FUNCTION approval.next_due() IS 'When the earliest deadline of the database comes due (NULL: none); the worker sleeps until then';

-- Per workflow, over the requests closed in [since, until): how many were
-- decided, how many of those with an SLA kept it, how long decisions took
-- (business time on the workflow's calendar), breaches and escalations.
-- Runs as the caller: each sees the requests they may see.
CREATE FUNCTION approval.sla_report(since timestamptz, until timestamptz, workflow text DEFAULT NULL)
    RETURNS TABLE (workflow text, closed bigint, decided bigint, expired bigint,
                   with_sla bigint, compliance_pct numeric, mean_time interval,
                   median_time interval, p90_time interval, breaches bigint, escalations bigint)
    LANGUAGE sql STABLE
    AS $$
    SELECT r.workflow,
           pg_catalog.count(*),
           pg_catalog.count(*) FILTER (WHERE d.decided),
           pg_catalog.count(*) FILTER (WHERE r.state OPERATOR(pg_catalog.=) 'expired'::approval.request_state),
           pg_catalog.count(r.due_at),
           pg_catalog.round(100.0 OPERATOR(pg_catalog.*)
                            pg_catalog.count(*) FILTER (WHERE r.due_at IS NOT NULL
                                                          AND r.sla_state OPERATOR(pg_catalog.<>) 'breached')
                            OPERATOR(pg_catalog./) NULLIF(pg_catalog.count(r.due_at), 0), 1),
           pg_catalog.avg(d.took) FILTER (WHERE d.decided),
           pg_catalog.percentile_cont(0.5) WITHIN GROUP (ORDER BY d.took) FILTER (WHERE d.decided),
           pg_catalog.percentile_cont(0.9) WITHIN GROUP (ORDER BY d.took) FILTER (WHERE d.decided),
           pg_catalog.count(*) FILTER (WHERE r.sla_state OPERATOR(pg_catalog.=) 'breached'),
           pg_catalog.sum(r.escalations)::bigint
      FROM approval.request r
      JOIN approval.workflow w ON w.id OPERATOR(pg_catalog.=) r.workflow_id
     CROSS JOIN LATERAL (
           SELECT r.state OPERATOR(pg_catalog.=) ANY ('{approved,rejected}'::approval.request_state[]) AS decided,
                  CASE WHEN w.calendar IS NULL THEN r.decided_at OPERATOR(pg_catalog.-) r.created_at
                       ELSE approval.business_elapsed(r.created_at, r.decided_at, w.calendar) END AS took) d
     WHERE r.decided_at OPERATOR(pg_catalog.>=) $1 AND r.decided_at OPERATOR(pg_catalog.<) $2
       AND ($3 IS NULL OR r.workflow OPERATOR(pg_catalog.=) $3)
     GROUP BY r.workflow
     ORDER BY r.workflow
    $$;
COMMENT ON FUNCTION approval.sla_report(timestamptz, timestamptz, text) IS 'SLA figures per workflow over the requests closed in [since, until)';

-- my_pending shows the SLA state
CREATE OR REPLACE VIEW approval.my_pending WITH (security_barrier) AS
WITH RECURSIVE mine AS MATERIALIZED (
    SELECT DISTINCT t AS target
      FROM approval.my_target_sets() s, pg_catalog.unnest(s.targets) t
), walk AS (
    (SELECT n.* FROM mine,
            LATERAL (SELECT * FROM approval.pending_vote p
                      WHERE p.target = mine.target
                      ORDER BY p.submitted_at, p.request_id, p.stage LIMIT 1) n
      ORDER BY n.submitted_at, n.request_id, n.stage LIMIT 1)
    UNION ALL
    SELECT n.* FROM walk w,
           LATERAL (SELECT x.* FROM mine,
                           LATERAL (SELECT * FROM approval.pending_vote p
                                     WHERE p.target = mine.target
                                       AND (p.submitted_at, p.request_id, p.stage)
                                           > (w.submitted_at, w.request_id, w.stage)
                                     ORDER BY p.submitted_at, p.request_id, p.stage LIMIT 1) x
                     ORDER BY x.submitted_at, x.request_id, x.stage LIMIT 1) n
)
SELECT w.request_id, w.workflow, r.title, w.requester, w.stage,
       w.submitted_at, r.due_at,
       NULLIF(c.principal, approval.current_actor()) AS on_behalf_of, r.sla_state
  FROM walk w
 CROSS JOIN LATERAL (SELECT approval.vote_capacity(w::approval.pending_vote) AS principal OFFSET 0) c
 -- per row of the walk (a lateral join is a nested loop), so its order stays
 CROSS JOIN LATERAL (SELECT q.title, q.due_at, q.sla_state FROM approval.request q
                      WHERE q.id = w.request_id OFFSET 0) r
 WHERE c.principal IS NOT NULL;

CREATE VIEW approval.at_risk WITH (security_barrier) AS
SELECT r.id AS request_id, r.workflow, r.title, r.requester, r.state, r.sla_state, r.due_at,
       CASE WHEN w.calendar IS NULL THEN r.due_at - pg_catalog.now()
            ELSE approval.business_elapsed(pg_catalog.now(), r.due_at, w.calendar) END AS time_left,
       r.escalations
  FROM approval.request r
  JOIN approval.workflow w ON w.id = r.workflow_id
 WHERE r.state IN ('pending', 'changes_requested')
   AND r.sla_state IN ('warning', 'breached')
   AND approval.sees(r.requester, r.workflow, r.audience)
 ORDER BY r.due_at, r.id;

REVOKE ALL ON approval.at_risk FROM PUBLIC;
GRANT SELECT ON approval.at_risk TO approval_admin, approval_user, approval_gateway;
REVOKE ALL ON FUNCTION approval.tick(timestamptz, integer), approval.next_due(),
    approval.sla_report(timestamptz, timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION approval.tick(timestamptz, integer), approval.next_due() TO approval_admin;
GRANT EXECUTE ON FUNCTION approval.sla_report(timestamptz, timestamptz, text)
    TO approval_admin, approval_user, approval_gateway;
