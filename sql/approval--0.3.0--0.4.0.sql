/* approval 0.3.0 -> 0.4.0: time (DESIGN §6) — business calendars, SLA,
 * escalation, stage timeouts, expiry, approval.tick(), the background worker
 * and the pg_cron alternative, SLA reports. */

\echo Use "ALTER EXTENSION approval UPDATE TO '0.4.0'" to load this file. \quit

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
