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
    revoked_at  timestamptz,
    rounds      integer NOT NULL                -- sum of the request's stage rounds at issue
);
CREATE INDEX token_request ON approval.token (request_id);
CREATE INDEX token_unused_approver ON approval.token (approver) WHERE used_at IS NULL AND revoked_at IS NULL;

-- a principal made inactive, renamed or removed loses its unused tokens
-- for good (they would work again once it is active again, or for whoever
-- gets its id next)
CREATE FUNCTION approval.token_principal_changed() RETURNS trigger
    LANGUAGE c SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_token_principal_changed';
CREATE TRIGGER principal_tokens AFTER UPDATE OF id, active OR DELETE ON approval.principal
    FOR EACH ROW EXECUTE FUNCTION approval.token_principal_changed();
-- also under session_replication_role = replica, like the identity triggers
ALTER TABLE approval.principal ENABLE ALWAYS TRIGGER principal_tokens;
REVOKE ALL ON FUNCTION approval.token_principal_changed() FROM PUBLIC;

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
-- the keys: no grants at all, and row-level security without a policy, so
-- that a role with pg_read_all_data (which bypasses grants, not RLS) reads
-- no key; the owner and superusers still do
ALTER TABLE approval.token_key ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON approval.token TO approval_admin;
GRANT EXECUTE ON FUNCTION approval.issue_token(bigint, text, interval), approval.redeem_token(text, text, text)
    TO approval_gateway, approval_admin;
GRANT EXECUTE ON FUNCTION approval.revoke_tokens(bigint) TO approval_admin;

SELECT pg_catalog.pg_extension_config_dump('approval.token_key', '');
SELECT pg_catalog.pg_extension_config_dump('approval.token', '');
SELECT approval.new_token_key();

-- ---------------------------------------------------------------------------
-- Governed tables (DESIGN §10): a change to a table's rows is held as a
-- request and made when the request is approved (src/govern.c,
-- src/govern_apply.c).  approval.governed lists the governed tables;
-- approval.held_change keeps each held change, the one that approval
-- applies (never the request's payload).  Both are written only by the
-- functions below and the trigger.  A table is named by regclass, which
-- pg_dump writes as its name, so a restore finds it again.
-- ---------------------------------------------------------------------------
CREATE TABLE approval.governed (
    tbl          regclass PRIMARY KEY,
    workflow     text NOT NULL,
    operations   text[] NOT NULL,    -- of INSERT, UPDATE, DELETE
    key_columns  text[] NOT NULL,    -- the primary key when it was governed
    governed_by  text NOT NULL,      -- the role that called govern()
    governed_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE approval.held_change (
    request_id  bigint PRIMARY KEY,
    tbl         regclass NOT NULL,
    operation   text NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE')),
    old_row     jsonb,               -- UPDATE, DELETE: the row as it was
    new_row     jsonb,               -- INSERT, UPDATE: the row asked for (no generated columns)
    key         jsonb NOT NULL,      -- its primary key
    -- NULL while held; applied, conflict (the row changed meanwhile: the
    -- request was rejected) or discarded (rejected, cancelled, expired)
    outcome     text CHECK (outcome IN ('applied', 'conflict', 'discarded')),
    held_at     timestamptz NOT NULL DEFAULT now(),
    decided_at  timestamptz
);

CREATE FUNCTION approval.govern(tbl regclass, workflow text,
                                operations text[] DEFAULT '{INSERT,UPDATE,DELETE}') RETURNS void
    LANGUAGE c VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_govern';

CREATE FUNCTION approval.ungovern(tbl regclass) RETURNS void
    LANGUAGE c VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_ungovern';

-- The trigger govern() installs.  Not SECURITY DEFINER: it runs as whoever
-- changes the table, tries the change as them (row-level security's WITH
-- CHECK, constraints) and takes the extension owner's identity, with this
-- search_path pinned, to hold it.  Firing a trigger needs no EXECUTE.
CREATE FUNCTION approval.governed_change() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'approval_governed_change';

REVOKE ALL ON approval.governed, approval.held_change FROM PUBLIC;
REVOKE ALL ON FUNCTION approval.govern(regclass, text, text[]), approval.ungovern(regclass),
    approval.governed_change() FROM PUBLIC;
GRANT SELECT ON approval.governed TO approval_admin, approval_user;
GRANT SELECT ON approval.held_change TO approval_admin;
-- the functions check that the caller owns the table or is an approval_admin
GRANT EXECUTE ON FUNCTION approval.govern(regclass, text, text[]), approval.ungovern(regclass)
    TO approval_admin, approval_user;

SELECT pg_catalog.pg_extension_config_dump('approval.governed', '');
SELECT pg_catalog.pg_extension_config_dump('approval.held_change', '');
