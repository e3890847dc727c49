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
