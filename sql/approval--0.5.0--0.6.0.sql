/* approval 0.5.0 -> 0.6.0: acting from anywhere and on real data (DESIGN §2,
 * §10) — actionable tokens (issue_token, redeem_token, revoke_tokens),
 * governed tables (govern, ungovern, approval.governed), and (in the
 * library) approval.actor_claim for PostgREST's request.jwt.claims. */

\echo Use "ALTER EXTENSION approval UPDATE TO '0.6.0'" to load this file. \quit

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
