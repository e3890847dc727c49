/* approval 0.5.0 -> 0.6.0: acting from anywhere and on real data (DESIGN §2,
 * §10) — actionable tokens (issue_token, redeem_token, revoke_tokens),
 * governed tables (govern, ungovern, approval.governed), and (in the
 * library) approval.actor_claim for PostgREST's request.jwt.claims. */

\echo Use "ALTER EXTENSION approval UPDATE TO '0.6.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Actionable tokens (DESIGN §10): approve and reject buttons in email or
-- chat (src/token.c).  A gateway issues a token for an approver of a request
-- and puts it in a link; redeeming it records that approver's decision,
-- once.  Tokens are signed with HMAC-SHA256 under a key of
-- approval.token_key, which only the extension's owner can read: CREATE
-- EXTENSION makes one, and a restore, whose CREATE EXTENSION makes another
-- before the dumped keys are loaded beside it, keeps the old ones, so a
-- token issued before a dump still redeems after the restore.  The newest
-- key signs.  The database keeps a sha256 of each token, never the token.
-- ---------------------------------------------------------------------------
CREATE TABLE approval.token_key (
    id          integer PRIMARY KEY,            -- random; a token names its key
    secret      bytea NOT NULL CHECK (length(secret) = 32),
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);

CREATE TABLE approval.token (
    id          text PRIMARY KEY,               -- random (hex); "token" of its voted event
    hash        bytea NOT NULL UNIQUE,          -- sha256 of the token
    key_id      integer NOT NULL,
    request_id  bigint NOT NULL,
    approver    text NOT NULL,
    issued_by   text NOT NULL,
    issued_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    used_by     text,                           -- who redeemed it (the gateway's actor)
    decision    text CHECK (decision IN ('approve', 'reject')),
    revoked_at  timestamptz
);
CREATE INDEX token_request ON approval.token (request_id);

-- a new signing key; the install script makes the first, the owner may rotate
CREATE FUNCTION approval.new_token_key() RETURNS integer
    LANGUAGE c VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_new_token_key';

CREATE FUNCTION approval.issue_token(request bigint, approver text, ttl interval DEFAULT '7 days')
    RETURNS text
    LANGUAGE c VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_issue_token';

CREATE FUNCTION approval.redeem_token(token text, decision text, comment text DEFAULT NULL)
    RETURNS approval.request_state
    LANGUAGE c VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_redeem_token';

CREATE FUNCTION approval.revoke_tokens(request bigint) RETURNS integer
    LANGUAGE c VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_revoke_tokens';

REVOKE ALL ON approval.token_key, approval.token FROM PUBLIC;
REVOKE ALL ON FUNCTION approval.new_token_key(), approval.issue_token(bigint, text, interval),
    approval.redeem_token(text, text, text), approval.revoke_tokens(bigint)
    FROM PUBLIC;
-- the keys: no grants at all
GRANT SELECT ON approval.token TO approval_admin;
GRANT EXECUTE ON FUNCTION approval.issue_token(bigint, text, interval), approval.redeem_token(text, text, text)
    TO approval_gateway, approval_admin;
GRANT EXECUTE ON FUNCTION approval.revoke_tokens(bigint) TO approval_admin;

SELECT pg_catalog.pg_extension_config_dump('approval.token_key', '');
SELECT pg_catalog.pg_extension_config_dump('approval.token', '');
SELECT approval.new_token_key();
