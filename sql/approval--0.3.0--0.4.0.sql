/* approval 0.3.0 -> 0.4.0: time (DESIGN §6) — business calendars, SLA,
 * escalation, stage timeouts, expiry, approval.tick(), the background worker
 * and the pg_cron alternative, SLA reports. */

\echo Use "ALTER EXTENSION approval UPDATE TO '0.4.0'" to load this file. \quit
