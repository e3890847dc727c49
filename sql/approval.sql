-- approval: human approval workflows inside PostgreSQL
--
-- The install script.  sql/approval--VERSION.sql is generated from this file
-- by the Makefile; edit this one.  Objects are created without IF NOT EXISTS
-- or OR REPLACE (so nothing pre-created by someone else is adopted), and
-- every name is schema-qualified under a pinned search_path.

\echo Use "CREATE EXTENSION approval" to load this file. \quit

SET search_path = pg_catalog, pg_temp;

-- ---------------------------------------------------------------------------
-- Roles.  Created when missing; never dropped by DROP EXTENSION, since roles
-- are cluster-wide and may hold grants elsewhere.
-- ---------------------------------------------------------------------------
DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['approval_admin', 'approval_user', 'approval_gateway'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$roles$;

GRANT USAGE ON SCHEMA approval TO approval_admin, approval_user, approval_gateway;

-- ---------------------------------------------------------------------------
-- Identity (DESIGN §2): reference tables written by approval_admin.
-- ---------------------------------------------------------------------------
CREATE TABLE approval.principal (
    id            text PRIMARY KEY CHECK (id <> '' AND strpos(id, ':') = 0),
    display_name  text,
    email         text,
    manager_id    text REFERENCES approval.principal (id) ON UPDATE CASCADE ON DELETE SET NULL,
    attributes    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
    pg_role       name UNIQUE,
    active        boolean NOT NULL DEFAULT true,
    CHECK (manager_id IS DISTINCT FROM id)
);
COMMENT ON TABLE approval.principal IS 'People who submit and approve; pg_role maps a PostgreSQL role to a person';

CREATE TABLE approval.approver_group (
    name         text PRIMARY KEY CHECK (name <> '' AND strpos(name, ':') = 0),
    description  text,
    pg_role      name
);
COMMENT ON TABLE approval.approver_group IS 'Approver groups; members of pg_role, when set, are members too';

CREATE TABLE approval.group_member (
    group_name    text NOT NULL REFERENCES approval.approver_group (name) ON UPDATE CASCADE ON DELETE CASCADE,
    principal_id  text NOT NULL REFERENCES approval.principal (id) ON UPDATE CASCADE ON DELETE CASCADE,
    PRIMARY KEY (group_name, principal_id)
);
CREATE INDEX ON approval.group_member (principal_id);

-- Delegation (DESIGN §5); written only through approval.delegate().
CREATE TABLE approval.delegation (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delegator   text NOT NULL,
    delegate    text NOT NULL,
    starts      timestamptz NOT NULL DEFAULT now(),
    ends        timestamptz,
    workflow    text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CHECK (delegator <> delegate),
    CHECK (ends IS NULL OR ends > starts)
);
CREATE INDEX ON approval.delegation (delegate) WHERE revoked_at IS NULL;

-- ---------------------------------------------------------------------------
-- Who is acting (DESIGN §2)
-- ---------------------------------------------------------------------------
CREATE FUNCTION approval.current_actor() RETURNS text
    LANGUAGE c STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_current_actor';
COMMENT ON FUNCTION approval.current_actor() IS 'The principal acting now: approval.actor (gateway only), else the principal mapped to the calling role, else the role name';

CREATE FUNCTION approval.my_targets() RETURNS text[]
    LANGUAGE c STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_my_targets';
COMMENT ON FUNCTION approval.my_targets() IS 'Approver targets (user:, group:, role:) the current actor answers for, including those of active delegators';
