/* approval 0.4.0 -> 0.5.0: events for listeners (DESIGN §7) — a gapless
 * cursor for events_after(), what each event tells a listener stored with
 * it, event_json(), and (in the library) approval.notify = commit | relay |
 * off and approval.notify_payload = full | minimal. */

\echo Use "ALTER EXTENSION approval UPDATE TO '0.5.0'" to load this file. \quit

-- what a listener is told (not hashed); NULL for the events of 0.4.0 and before
ALTER TABLE approval.event
    ADD COLUMN state text,
    ADD COLUMN stage text,
    ADD COLUMN targets text[];

-- gapless, in C; read as of the call, hence VOLATILE
CREATE OR REPLACE FUNCTION approval.events_after(seq bigint, max integer DEFAULT 1000)
    RETURNS SETOF approval.event
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'approval_events_after';

CREATE FUNCTION approval.event_json(e approval.event) RETURNS json
    LANGUAGE c STABLE STRICT
    AS 'MODULE_PATHNAME', 'approval_event_json';
REVOKE ALL ON FUNCTION approval.event_json(approval.event) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION approval.event_json(approval.event)
    TO approval_admin, approval_user, approval_gateway;
