/* approval 0.6.0 -> 0.7.0: operating it for years (issue 12) — admin tools
 * for requests that are stuck (reassign, override, delegate_for, transfer;
 * events without a request, chained among themselves; who made a
 * delegation and why; overrides marked on decisions and in
 * approval.request_status), retention (purge and tombstones), and an audit
 * a superuser cannot rewrite quietly (verify_audit replays the events;
 * checkpoints chain the whole log). */

\echo Use "ALTER EXTENSION approval UPDATE TO '0.7.0'" to load this file. \quit

-- who made a delegation (NULL for those made before 0.7.0), an admin's reason
ALTER TABLE approval.delegation
    ADD COLUMN created_by text,
    ADD COLUMN reason text;

-- an admin's approval.override() (stage NULL): it decided the request
ALTER TABLE approval.decision
    ADD COLUMN override boolean NOT NULL DEFAULT false;

-- NULL: an admin's act on no request (delegate_for)
ALTER TABLE approval.event ALTER COLUMN request_id DROP NOT NULL;

-- an event without a request is seen by those who see every request
ALTER POLICY event_visible ON approval.event
    USING ((request_id IS NULL AND approval.sees(NULL, NULL, NULL))
           OR EXISTS (SELECT 1 FROM approval.request r WHERE r.id OPERATOR(pg_catalog.=) request_id));

-- the admin who decided a request with approval.override(), if one did
CREATE OR REPLACE VIEW approval.request_status WITH (security_barrier) AS
SELECT r.id AS request_id, r.workflow, r.title, r.requester, r.state,
       a.active_stages, a.votes, a.waiting_on, r.sla_state, r.due_at, a.waiting_on_names,
       CASE WHEN r.state IN ('approved', 'rejected') THEN
           (SELECT d.actor FROM approval.decision d
             WHERE d.request_id = r.id AND d.decision IN ('approve', 'reject') AND d.override
             ORDER BY d.id DESC LIMIT 1)
       END AS overridden_by
  FROM approval.request r
  LEFT JOIN LATERAL approval.waiting(r.id, r.state, r.requester) a ON true
 WHERE approval.sees(r.requester, r.workflow, r.audience);
-- ---------------------------------------------------------------------------
-- Admin tools (DESIGN §10): for requests stuck on people who left.  Each is
-- for approval_admin only (the C checks the actor too: a gateway acting for
-- someone who is no admin is refused), needs a reason, and is an event with
-- the admin as its actor.  Those on a request take the same lock-change-save
-- path as a vote (src/admin.c).
-- ---------------------------------------------------------------------------

-- Events without a request (delegate_for) chain among themselves; their
-- writers lock this one row first, which no one but the extension's owner
-- may read, so no user can take or block the lock.
CREATE TABLE approval.event_chain_lock (
    id  boolean PRIMARY KEY DEFAULT true CHECK (id)
);
INSERT INTO approval.event_chain_lock VALUES (true);
REVOKE ALL ON approval.event_chain_lock FROM PUBLIC;

-- Target from_target of a waiting or active stage becomes to_target,
-- resolved as submit resolves targets ("manager": the requester's)
CREATE FUNCTION approval.reassign(request bigint, stage text, from_target text, to_target text,
                                  reason text)
    RETURNS approval.request_state
    LANGUAGE c VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_reassign';
COMMENT ON FUNCTION approval.reassign(bigint, text, text, text, text) IS 'Admin: replace a target of a waiting or active stage of an open request (event reassigned)';

-- decision: approve or reject; the request closes at once, as by a last
-- vote or a rejection, marked as an override
CREATE FUNCTION approval.override(request bigint, decision text, reason text)
    RETURNS approval.request_state
    LANGUAGE c VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_override';
COMMENT ON FUNCTION approval.override(bigint, text, text) IS 'Admin: approve or reject an open request outright (its approved/rejected event says override)';

-- The delegation principal would make with approval.delegate(), for someone
-- who is absent (reason last, so the arguments keep delegate()'s order; it
-- is required)
CREATE FUNCTION approval.delegate_for(principal text, delegate text,
                                      starts timestamptz DEFAULT pg_catalog.now(),
                                      ends timestamptz DEFAULT NULL, workflow text DEFAULT NULL,
                                      reason text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE c VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_delegate_for';
COMMENT ON FUNCTION approval.delegate_for(text, text, timestamptz, timestamptz, text, text) IS 'Admin: a delegation from an absent principal (event delegated, with no request)';

-- An open request gets another requester, an active principal
CREATE FUNCTION approval.transfer(request bigint, new_requester text, reason text)
    RETURNS approval.request_state
    LANGUAGE c VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_transfer';
COMMENT ON FUNCTION approval.transfer(bigint, text, text) IS 'Admin: hand an open request to another requester (event transferred)';

REVOKE ALL ON FUNCTION approval.reassign(bigint, text, text, text, text),
    approval.override(bigint, text, text),
    approval.delegate_for(text, text, timestamptz, timestamptz, text, text),
    approval.transfer(bigint, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION approval.reassign(bigint, text, text, text, text),
    approval.override(bigint, text, text),
    approval.delegate_for(text, text, timestamptz, timestamptz, text, text),
    approval.transfer(bigint, text, text)
    TO approval_admin;

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
-- a witness (a listener) keeps each digest it sees; verify_audit() by a
-- gateway acting for no one reads the tombstones' hashes with the checkpoints
GRANT SELECT ON approval.purged, approval.checkpoints TO approval_admin, approval_gateway;
GRANT EXECUTE ON FUNCTION approval.purge(timestamptz, text), approval.checkpoint() TO approval_admin;

SELECT pg_catalog.pg_extension_config_dump('approval.purged', '');
SELECT pg_catalog.pg_extension_config_dump('approval.checkpoints', '');
