/* approval 0.6.0 -> 0.7.0: operating it for years (issue 12) — admin tools,
 * retention (purge and tombstones), and an audit a superuser cannot rewrite
 * quietly (verify_audit replays the events; checkpoints chain the whole log). */

\echo Use "ALTER EXTENSION approval UPDATE TO '0.7.0'" to load this file. \quit

-- verify_audit gains the replay, the checkpoints and a witness's digest
DROP FUNCTION approval.verify_audit(bigint);
-- verify_audit (audit.c): each request's chain and its rows against its
-- events; with no request named, and for a caller who sees the whole log,
-- the checkpoints too, and a digest kept outside the database
CREATE FUNCTION approval.verify_audit(request bigint DEFAULT NULL, since_checkpoint bytea DEFAULT NULL)
    RETURNS TABLE (request_id bigint, events integer, ok boolean, first_bad_seq bigint,
                   problem text, checkpoint bigint)
    LANGUAGE c STABLE
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_verify_audit';
REVOKE ALL ON FUNCTION approval.verify_audit(bigint, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION approval.verify_audit(bigint, bytea)
    TO approval_admin, approval_user, approval_gateway;

-- ---------------------------------------------------------------------------
-- Retention and checkpoints (DESIGN §10): purge() removes closed requests and
-- leaves a tombstone for each (purge.c); checkpoints chain the whole log in
-- cursor order (checkpoint.c).  Both are append-only, like the event log.
-- ---------------------------------------------------------------------------
CREATE TABLE approval.purged (
    request_id    bigint PRIMARY KEY,
    workflow      text NOT NULL,
    state         approval.request_state NOT NULL,
    decided_at    timestamptz,
    last_hash     bytea,
    -- the seq and hash of each event removed, so that checkpoints verify
    first_seq     bigint,
    last_seq      bigint,
    event_seqs    bigint[] NOT NULL,
    event_hashes  bytea[] NOT NULL,
    purged_at     timestamptz NOT NULL,
    purged_by     text NOT NULL
);
CREATE INDEX purged_seqs ON approval.purged (last_seq);

CREATE TABLE approval.checkpoints (
    k         bigint PRIMARY KEY,
    upto_seq  bigint NOT NULL UNIQUE,   -- covers the events with seq in (upto_seq of k - 1, upto_seq]
    events    bigint NOT NULL,
    digest    bytea NOT NULL,           -- sha256(digest of k - 1 || k || upto_seq || seq, request_id, hash of each)
    at        timestamptz NOT NULL
);

CREATE TRIGGER purged_no_update_delete BEFORE UPDATE OR DELETE ON approval.purged
    FOR EACH ROW EXECUTE FUNCTION approval.event_is_append_only();
CREATE TRIGGER purged_no_truncate BEFORE TRUNCATE ON approval.purged
    FOR EACH STATEMENT EXECUTE FUNCTION approval.event_is_append_only();
CREATE TRIGGER checkpoints_no_update_delete BEFORE UPDATE OR DELETE ON approval.checkpoints
    FOR EACH ROW EXECUTE FUNCTION approval.event_is_append_only();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON approval.checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION approval.event_is_append_only();
ALTER TABLE approval.purged ENABLE ALWAYS TRIGGER purged_no_update_delete;
ALTER TABLE approval.purged ENABLE ALWAYS TRIGGER purged_no_truncate;
ALTER TABLE approval.checkpoints ENABLE ALWAYS TRIGGER checkpoints_no_update_delete;
ALTER TABLE approval.checkpoints ENABLE ALWAYS TRIGGER checkpoints_no_truncate;

CREATE FUNCTION approval.purge(before timestamptz, workflow text DEFAULT NULL) RETURNS bigint
    LANGUAGE c VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_purge';

CREATE FUNCTION approval.checkpoint() RETURNS approval.checkpoints
    LANGUAGE c VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_checkpoint';

REVOKE ALL ON approval.purged, approval.checkpoints FROM PUBLIC;
REVOKE ALL ON FUNCTION approval.purge(timestamptz, text), approval.checkpoint() FROM PUBLIC;
GRANT SELECT ON approval.purged TO approval_admin;
-- a witness (a listener) keeps each digest it sees
GRANT SELECT ON approval.checkpoints TO approval_admin, approval_gateway;
GRANT EXECUTE ON FUNCTION approval.purge(timestamptz, text), approval.checkpoint() TO approval_admin;

SELECT pg_catalog.pg_extension_config_dump('approval.purged', '');
SELECT pg_catalog.pg_extension_config_dump('approval.checkpoints', '');
