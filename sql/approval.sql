-- approval: human approval workflows inside PostgreSQL
--
-- The install script.  sql/approval--VERSION.sql is generated from this file
-- by the Makefile; edit this one.  Objects are created without IF NOT EXISTS
-- or OR REPLACE (so nothing pre-created by someone else is adopted), and
-- every name is schema-qualified under a pinned search_path.

\echo Use "CREATE EXTENSION approval" to load this file. \quit

-- CREATE EXTENSION runs this with search_path = approval, pg_temp (and
-- pg_catalog implicitly first); nothing here relies on the path.

-- ---------------------------------------------------------------------------
-- The schema.  CREATE EXTENSION makes schema approval when it is missing and
-- otherwise installs into the one there is.  One that someone made first
-- would let them keep or add objects beside ours (a function or operator
-- that the names below, or a caller's, resolve to), so it is refused unless
-- it is empty, owned by a superuser and lets no one else create in it.  An
-- empty schema of a superuser (a pg_dump restore makes one before CREATE
-- EXTENSION; DROP EXTENSION leaves one) is fine.  Nothing is created before
-- this check, and it names every operator and function with its schema, as
-- it runs before the schema is known to be clean.  Install only: an upgrade
-- runs in the schema this check passed.
-- ---------------------------------------------------------------------------
DO $schema$
DECLARE
    nsp      oid;
    owner    name;
    super    boolean;
    held     text;
    creator  text;
    hint     constant text := 'Look at what schema approval holds and drop it (DROP SCHEMA approval), '
                              'or leave it empty, owned by a superuser, with CREATE granted to no one else; '
                              'then run CREATE EXTENSION approval again.';
BEGIN
    SELECT n.oid, r.rolname, r.rolsuper INTO nsp, owner, super
      FROM pg_catalog.pg_namespace n
      JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
     WHERE n.nspname OPERATOR(pg_catalog.=) 'approval'::pg_catalog.name;
    IF NOT super THEN
        RAISE EXCEPTION 'schema "approval" already exists and is owned by role "%", which is not a superuser', owner
            USING ERRCODE = 'duplicate_schema',
                  DETAIL = 'Its owner could change the extension''s objects, or add their own beside them.',
                  HINT = hint;
    END IF;

    SELECT i.type OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) i.identity INTO held
      FROM (SELECT 1, 'pg_catalog.pg_class'::pg_catalog.regclass, oid FROM pg_catalog.pg_class
             WHERE relnamespace OPERATOR(pg_catalog.=) nsp
            UNION ALL SELECT 2, 'pg_catalog.pg_proc'::pg_catalog.regclass, oid FROM pg_catalog.pg_proc
             WHERE pronamespace OPERATOR(pg_catalog.=) nsp
            UNION ALL SELECT 3, 'pg_catalog.pg_type'::pg_catalog.regclass, oid FROM pg_catalog.pg_type
             WHERE typnamespace OPERATOR(pg_catalog.=) nsp
            UNION ALL SELECT 4, 'pg_catalog.pg_operator'::pg_catalog.regclass, oid FROM pg_catalog.pg_operator
             WHERE oprnamespace OPERATOR(pg_catalog.=) nsp
            UNION ALL SELECT 5, 'pg_catalog.pg_opclass'::pg_catalog.regclass, oid FROM pg_catalog.pg_opclass
             WHERE opcnamespace OPERATOR(pg_catalog.=) nsp
            UNION ALL SELECT 5, 'pg_catalog.pg_opfamily'::pg_catalog.regclass, oid FROM pg_catalog.pg_opfamily
             WHERE opfnamespace OPERATOR(pg_catalog.=) nsp
            UNION ALL SELECT 5, 'pg_catalog.pg_collation'::pg_catalog.regclass, oid FROM pg_catalog.pg_collation
             WHERE collnamespace OPERATOR(pg_catalog.=) nsp
            UNION ALL SELECT 5, 'pg_catalog.pg_conversion'::pg_catalog.regclass, oid FROM pg_catalog.pg_conversion
             WHERE connamespace OPERATOR(pg_catalog.=) nsp
            UNION ALL SELECT 5, 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass, oid FROM pg_catalog.pg_statistic_ext
             WHERE stxnamespace OPERATOR(pg_catalog.=) nsp
            UNION ALL SELECT 5, 'pg_catalog.pg_ts_config'::pg_catalog.regclass, oid FROM pg_catalog.pg_ts_config
             WHERE cfgnamespace OPERATOR(pg_catalog.=) nsp
            UNION ALL SELECT 5, 'pg_catalog.pg_ts_dict'::pg_catalog.regclass, oid FROM pg_catalog.pg_ts_dict
             WHERE dictnamespace OPERATOR(pg_catalog.=) nsp
            UNION ALL SELECT 5, 'pg_catalog.pg_ts_parser'::pg_catalog.regclass, oid FROM pg_catalog.pg_ts_parser
             WHERE prsnamespace OPERATOR(pg_catalog.=) nsp
            UNION ALL SELECT 5, 'pg_catalog.pg_ts_template'::pg_catalog.regclass, oid FROM pg_catalog.pg_ts_template
             WHERE tmplnamespace OPERATOR(pg_catalog.=) nsp
            UNION ALL SELECT 6, 'pg_catalog.pg_extension'::pg_catalog.regclass, oid FROM pg_catalog.pg_extension
             WHERE extnamespace OPERATOR(pg_catalog.=) nsp
               AND extname OPERATOR(pg_catalog.<>) 'approval'::pg_catalog.name    -- this one
            UNION ALL SELECT 6, 'pg_catalog.pg_default_acl'::pg_catalog.regclass, oid FROM pg_catalog.pg_default_acl
             WHERE defaclnamespace OPERATOR(pg_catalog.=) nsp
           ) o(rank, classid, objid),
           LATERAL pg_catalog.pg_identify_object(o.classid, o.objid, 0) i
     ORDER BY o.rank, o.objid
     LIMIT 1;
    IF held IS NOT NULL THEN
        RAISE EXCEPTION 'schema "approval" already exists and is not empty: it holds %', held
            USING ERRCODE = 'duplicate_schema',
                  DETAIL = 'An object made before the extension would sit beside its objects as if it were one of them.',
                  HINT = hint;
    END IF;

    SELECT CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid THEN 'PUBLIC'
                ELSE pg_catalog.format('role "%s"', r.rolname) END INTO creator
      FROM pg_catalog.pg_namespace n
     CROSS JOIN LATERAL pg_catalog.aclexplode(n.nspacl) a
      LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) a.grantee
     WHERE n.oid OPERATOR(pg_catalog.=) nsp
       AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'::pg_catalog.text
       AND (a.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid OR NOT r.rolsuper)
     ORDER BY r.rolname NULLS FIRST
     LIMIT 1;
    IF creator IS NOT NULL THEN
        RAISE EXCEPTION 'schema "approval" already exists and % may create objects in it', creator
            USING ERRCODE = 'duplicate_schema',
                  DETAIL = 'Whoever may create in schema approval can add objects beside the extension''s.',
                  HINT = hint;
    END IF;
END
$schema$;

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

-- Delegation (DESIGN §5); written only through approval.delegate() and an
-- admin's approval.delegate_for().
CREATE TABLE approval.delegation (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delegator   text NOT NULL,
    delegate    text NOT NULL,
    starts      timestamptz NOT NULL DEFAULT now(),
    ends        timestamptz,
    workflow    text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    created_by  text,           -- who made it: the delegator, or an admin (delegate_for)
    reason      text,           -- an admin's reason (delegate_for)
    CHECK (delegator <> delegate),
    CHECK (ends IS NULL OR ends > starts)
);
CREATE INDEX ON approval.delegation (delegate) WHERE revoked_at IS NULL;

-- Sessions cache who is who; a change to these tables tells every session
-- (at commit) to forget it.
CREATE FUNCTION approval.identity_changed() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'approval_identity_changed';
CREATE TRIGGER principal_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON approval.principal
    FOR EACH STATEMENT EXECUTE FUNCTION approval.identity_changed();
CREATE TRIGGER approver_group_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON approval.approver_group
    FOR EACH STATEMENT EXECUTE FUNCTION approval.identity_changed();
CREATE TRIGGER group_member_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON approval.group_member
    FOR EACH STATEMENT EXECUTE FUNCTION approval.identity_changed();
CREATE TRIGGER delegation_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON approval.delegation
    FOR EACH STATEMENT EXECUTE FUNCTION approval.identity_changed();
-- also under session_replication_role = replica (a logical replication
-- subscriber applying changes), or sessions would go on with stale identities
ALTER TABLE approval.principal ENABLE ALWAYS TRIGGER principal_changed;
ALTER TABLE approval.approver_group ENABLE ALWAYS TRIGGER approver_group_changed;
ALTER TABLE approval.group_member ENABLE ALWAYS TRIGGER group_member_changed;
ALTER TABLE approval.delegation ENABLE ALWAYS TRIGGER delegation_changed;

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

CREATE FUNCTION approval.my_target_sets()
    RETURNS TABLE (principal text, delegated boolean, workflow text, targets text[])
    LANGUAGE c STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_my_target_sets';
COMMENT ON FUNCTION approval.my_target_sets() IS 'Each capacity the current actor can act in: itself, and each active delegator (workflow: the one workflow the delegation covers, or NULL)';

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

-- ---------------------------------------------------------------------------
-- Definitions (DESIGN §3).  Versions are immutable: define_workflow() adds a
-- row; nothing but "enabled" ever changes.
-- ---------------------------------------------------------------------------
CREATE TYPE approval.request_state AS ENUM
    ('pending', 'changes_requested', 'approved', 'rejected', 'expired', 'cancelled');
CREATE TYPE approval.stage_state AS ENUM
    ('waiting', 'active', 'approved', 'rejected', 'skipped', 'expired', 'cancelled');

CREATE TABLE approval.workflow (
    id                   integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                 text NOT NULL,
    version              integer NOT NULL,
    description          text,
    priority             integer NOT NULL DEFAULT 100,
    match                jsonpath,
    auto_approve         jsonpath,
    require_ack          text,
    allow_self_approval  boolean NOT NULL DEFAULT false,
    distinct_approvers   boolean NOT NULL DEFAULT false,
    reapprove_on_change  text NOT NULL DEFAULT 'stage' CHECK (reapprove_on_change IN ('stage', 'all')),
    sla                  interval,
    sla_warning          double precision,
    calendar             text REFERENCES approval.calendar (name),
    escalate_after       interval,
    escalate_every       interval,
    escalate_to          text,
    expires_after        interval,
    on_approved          text,          -- "schema.fn(bigint)", resolved at call
    on_rejected          text,
    definition           jsonb NOT NULL,
    enabled              boolean NOT NULL DEFAULT true,
    created_at           timestamptz NOT NULL DEFAULT now(),
    created_by           oid NOT NULL,  -- role callbacks run as
    on_submitted         text,
    on_cancelled         text,
    on_expired           text,
    search_path          text,          -- the definer's, callbacks run with it
    sla_pause            text NOT NULL DEFAULT 'changes_requested'
                         CHECK (sla_pause IN ('changes_requested', 'never')),
    escalate_max         integer CHECK (escalate_max >= 1),
    UNIQUE (name, version)
);

-- Sessions cache compiled definitions; define_workflow() tells them of a new
-- version, and this trigger of any other change (a superuser's UPDATE).
CREATE FUNCTION approval.workflow_changed() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'approval_workflow_changed';
CREATE TRIGGER workflow_changed AFTER UPDATE OR DELETE OR TRUNCATE ON approval.workflow
    FOR EACH STATEMENT EXECUTE FUNCTION approval.workflow_changed();
ALTER TABLE approval.workflow ENABLE ALWAYS TRIGGER workflow_changed;

CREATE TABLE approval.workflow_stage (
    workflow_id     integer NOT NULL REFERENCES approval.workflow (id),
    idx             integer NOT NULL,
    name            text NOT NULL,
    stage_order     integer NOT NULL,
    approvers       text[] NOT NULL,
    min_approvals   integer CHECK (min_approvals >= 1),     -- NULL: "all"
    reject_policy   text NOT NULL DEFAULT 'any' CHECK (reject_policy IN ('any', 'quorum')),
    reject_quorum   integer NOT NULL DEFAULT 1 CHECK (reject_quorum >= 1),
    when_cond       jsonpath,
    denial_message  text,
    timeout         interval,
    on_timeout      text CHECK (on_timeout IN ('escalate', 'approve', 'reject', 'expire')),
    PRIMARY KEY (workflow_id, idx),
    UNIQUE (workflow_id, name)
);

-- ---------------------------------------------------------------------------
-- Requests (DESIGN §4).  Written only by the extension's functions, each
-- under the request's row lock.  The engine is their only writer, so the
-- links between them (request -> workflow, stage and decision -> request)
-- are kept by it rather than by foreign keys: a foreign key to the workflow
-- would make every concurrent submit of one workflow share a lock on its row.
-- ---------------------------------------------------------------------------
CREATE SEQUENCE approval.request_id_seq;
CREATE TABLE approval.request (
    id             bigint PRIMARY KEY DEFAULT nextval('approval.request_id_seq'),
    workflow_id    integer NOT NULL,
    workflow       text NOT NULL,
    title          text,
    subject        text,
    payload        jsonb NOT NULL DEFAULT '{}',
    requester      text NOT NULL,
    state          approval.request_state NOT NULL DEFAULT 'pending',
    created_at     timestamptz NOT NULL DEFAULT now(),
    decided_at     timestamptz,
    due_at         timestamptz,
    sla_state      text CHECK (sla_state IN ('on_track', 'warning', 'breached')),
    escalations    integer NOT NULL DEFAULT 0,
    current_order  integer,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    last_hash      bytea,           -- head of the request's event chain
    -- who may see it besides its requester (visibility.c): every target of
    -- every stage, and "voter:<id>" for whoever voted or commented (and for
    -- whom a delegate did)
    audience       text[] NOT NULL DEFAULT '{}',
    -- deadlines (timer.c); each NULL when there is none.  The SLA's are
    -- due_at (breach) and warn_at; paused_at: waiting on the requester
    -- since then, the SLA and escalation clocks stopped
    warn_at        timestamptz,
    escalate_at    timestamptz,
    expires_at     timestamptz,
    paused_at      timestamptz,
    -- the earliest of the deadlines above and the stages' timeout_at that
    -- can fire (or a failed firing's retry): what approval.tick() looks for
    next_due       timestamptz,
    timer_failures integer NOT NULL DEFAULT 0,  -- firings failed in a row
    timer_error    text                         -- the last one's error
);
ALTER SEQUENCE approval.request_id_seq OWNED BY approval.request.id;
-- a fired deadline leaves its old entry in request_next_due until VACUUM,
-- and ticks step over it: vacuum sooner than after 20 % of the rows changed
ALTER TABLE approval.request SET (autovacuum_vacuum_scale_factor = 0.02);
-- one open request per (workflow, subject): submit is idempotent on it
CREATE UNIQUE INDEX request_open_subject ON approval.request (workflow, subject)
    WHERE subject IS NOT NULL AND state IN ('pending', 'changes_requested');
-- my_requests, newest first: an index scan backwards
CREATE INDEX request_requester ON approval.request (requester, created_at, id);
CREATE INDEX request_open ON approval.request (created_at) WHERE state IN ('pending', 'changes_requested');
-- tick(): the due requests, soonest first, whatever the number of open ones
CREATE INDEX request_next_due ON approval.request (next_due) WHERE next_due IS NOT NULL;
-- approval.at_risk
CREATE INDEX request_at_risk ON approval.request (due_at)
    WHERE sla_state IN ('warning', 'breached') AND state IN ('pending', 'changes_requested');

CREATE TABLE approval.request_stage (
    request_id       bigint NOT NULL,
    stage            text NOT NULL,
    stage_idx        integer NOT NULL,
    stage_order      integer NOT NULL,
    state            approval.stage_state NOT NULL DEFAULT 'waiting',
    targets          text[] NOT NULL,
    required         integer NOT NULL,
    approvals        integer NOT NULL DEFAULT 0,
    rejections       integer NOT NULL DEFAULT 0,
    reject_required  integer NOT NULL DEFAULT 1,
    round            integer NOT NULL DEFAULT 1,   -- + 1 each time the stage restarts
    activated_at     timestamptz,
    decided_at       timestamptz,
    timeout_at       timestamptz,   -- while active: when its timeout fires
    added_targets    text[] NOT NULL DEFAULT '{}',  -- by escalations (in targets too)
    PRIMARY KEY (request_id, stage)
);
CREATE INDEX request_stage_active_targets ON approval.request_stage USING gin (targets)
    WHERE state = 'active';

-- Who may vote where, now: one row per target of each active stage of a
-- pending request, kept by the engine under the request's row lock
-- (request.c).  approve() finds where the actor may vote here, and
-- my_pending walks it per target, oldest request first; the rule that
-- decides both is approval.vote_capacity().  The request's facts that rule
-- needs are copied in, so it reads no other row.
CREATE TABLE approval.pending_vote (
    request_id          bigint NOT NULL,
    stage               text NOT NULL,
    target              text NOT NULL,
    round               integer NOT NULL,
    submitted_at        timestamptz NOT NULL,
    requester           text NOT NULL,
    workflow            text NOT NULL,
    allow_self_approval boolean NOT NULL,
    distinct_approvers  boolean NOT NULL,
    targets             text[] NOT NULL,    -- all the stage's targets
    PRIMARY KEY (request_id, stage, target)
);
CREATE INDEX pending_vote_walk ON approval.pending_vote (target, submitted_at, request_id, stage);

CREATE TABLE approval.decision (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id      bigint NOT NULL,
    stage           text,
    actor           text NOT NULL,
    on_behalf_of    text,
    decision        text NOT NULL CHECK (decision IN ('approve', 'reject', 'request_changes', 'comment')),
    reason          text,
    comment         text,
    denial_message  text,
    round           integer NOT NULL DEFAULT 1,
    at              timestamptz NOT NULL DEFAULT now(),
    -- an admin's approval.override() (stage NULL): it decided the request
    override        boolean NOT NULL DEFAULT false
);
-- one vote per principal per stage and round
CREATE UNIQUE INDEX decision_one_vote ON approval.decision
    (request_id, stage, round, (COALESCE(on_behalf_of, actor)))
    WHERE decision IN ('approve', 'reject');
CREATE INDEX decision_actor ON approval.decision (actor);

-- ---------------------------------------------------------------------------
-- Event log (DESIGN §7): append-only, hash-chained per request.
-- ---------------------------------------------------------------------------
CREATE SEQUENCE approval.event_seq;

CREATE TABLE approval.event (
    seq         bigint PRIMARY KEY,
    request_id  bigint,             -- NULL: an admin's act on no request (delegate_for)
    at          timestamptz NOT NULL,
    kind        text NOT NULL,      -- one of the kinds of DESIGN §7, written by the engine only
    actor       text,
    data        jsonb NOT NULL DEFAULT '{}',
    hash        bytea NOT NULL,
    -- what a listener is told (not hashed): the request's state once the
    -- event happened, the stage it concerns, who must act next
    state       text,
    stage       text,
    targets     text[]
);
CREATE INDEX event_request ON approval.event (request_id, seq);

CREATE FUNCTION approval.event_is_append_only() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'approval_event_is_append_only';
CREATE TRIGGER event_no_update_delete BEFORE UPDATE OR DELETE ON approval.event
    FOR EACH ROW EXECUTE FUNCTION approval.event_is_append_only();
CREATE TRIGGER event_no_truncate BEFORE TRUNCATE ON approval.event
    FOR EACH STATEMENT EXECUTE FUNCTION approval.event_is_append_only();
-- even under session_replication_role = replica, which skips ordinary triggers
ALTER TABLE approval.event ENABLE ALWAYS TRIGGER event_no_update_delete;
ALTER TABLE approval.event ENABLE ALWAYS TRIGGER event_no_truncate;

-- ---------------------------------------------------------------------------
-- Functions.  Every function that changes state is SECURITY DEFINER with a
-- pinned search_path; the C behind it names every object with its schema.
-- ---------------------------------------------------------------------------
-- search_path: the definer's, with which callbacks are resolved now and run
-- later.  The default is evaluated in the caller's query, before the switch
-- to the pinned path below, so it is the caller's own.
CREATE FUNCTION approval.define_workflow(definition jsonb,
                                         search_path text DEFAULT pg_catalog.current_setting('search_path'))
    RETURNS integer
    LANGUAGE c VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_define_workflow';

CREATE FUNCTION approval.disable_workflow(name text) RETURNS void
    LANGUAGE c VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_disable_workflow';

CREATE FUNCTION approval.enable_workflow(name text) RETURNS void
    LANGUAGE c VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_enable_workflow';

CREATE FUNCTION approval.graph(name text, format text DEFAULT 'mermaid') RETURNS text
    LANGUAGE c STABLE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_graph';

CREATE FUNCTION approval.submit(workflow text, payload jsonb DEFAULT '{}', title text DEFAULT NULL,
                                subject text DEFAULT NULL, ack text DEFAULT NULL) RETURNS bigint
    LANGUAGE c VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_submit';

CREATE FUNCTION approval.approve(request bigint, comment text DEFAULT NULL) RETURNS approval.request_state
    LANGUAGE c VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_approve';

CREATE FUNCTION approval.reject(request bigint, reason text DEFAULT NULL, comment text DEFAULT NULL)
    RETURNS approval.request_state
    LANGUAGE c VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_reject';

CREATE FUNCTION approval.request_changes(request bigint, comment text) RETURNS approval.request_state
    LANGUAGE c VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_request_changes';

CREATE FUNCTION approval.resubmit(request bigint, payload jsonb DEFAULT NULL, comment text DEFAULT NULL)
    RETURNS approval.request_state
    LANGUAGE c VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_resubmit';

CREATE FUNCTION approval.cancel(request bigint, comment text DEFAULT NULL) RETURNS approval.request_state
    LANGUAGE c VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_cancel';

CREATE FUNCTION approval.comment(request bigint, comment text) RETURNS void
    LANGUAGE c VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_comment';

CREATE FUNCTION approval.delegate(delegate text, starts timestamptz DEFAULT now(),
                                  ends timestamptz DEFAULT NULL, workflow text DEFAULT NULL) RETURNS bigint
    LANGUAGE c VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_delegate';

CREATE FUNCTION approval.revoke_delegation(id bigint) RETURNS void
    LANGUAGE c VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_revoke_delegation';

CREATE FUNCTION approval.route(payload jsonb, requester text DEFAULT NULL) RETURNS text
    LANGUAGE c STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_route_fn';

CREATE FUNCTION approval.preview(workflow text, payload jsonb, requester text DEFAULT NULL)
    RETURNS TABLE (stage_order integer, stage text, targets text[], required integer, runs boolean,
                   require_ack text)
    LANGUAGE c STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_preview';

CREATE FUNCTION approval.simulate(definition jsonb, since timestamptz DEFAULT now() - interval '30 days')
    RETURNS TABLE (request_id bigint, workflow text, state text, would_match boolean,
                   would_auto_approve boolean, would_run text[], did_run text[],
                   differs boolean, change text)
    LANGUAGE c STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_simulate';

-- Who sees a request (DESIGN §8): its requester, whoever's capacities
-- answer for a target in its audience (every target of every stage, and
-- "voter:<id>" of whoever voted or commented), admins and a gateway acting
-- for no one.  The one home of the rule (visibility.c): row-level security,
-- can_see(), the views and every AP001 of the engine call it.  It reads no
-- table: who is asking is worked out once per query, then each row costs a
-- comparison of a few strings, so a scan stays a scan.
CREATE FUNCTION approval.sees(requester text, workflow text, audience text[]) RETURNS boolean
    LANGUAGE c STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_sees';

-- May the current actor see this request?
CREATE FUNCTION approval.can_see(request bigint) RETURNS boolean
    LANGUAGE c STABLE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_can_see';

-- In which capacity may the current actor cast a new vote at the stage of a
-- pending_vote row: the principal the vote would count for, or NULL (not
-- eligible, self-approval, distinct_approvers, or already voted there).  The
-- one home of eligibility (engine.c): approve() asks the same code.
CREATE FUNCTION approval.vote_capacity(spot approval.pending_vote) RETURNS text
    LANGUAGE c STABLE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_vote_capacity';

-- verify_audit (audit.c): each request's chain and its rows against its
-- events; with no request named, and for a caller who sees the whole log,
-- the checkpoints too, and a digest kept outside the database
CREATE FUNCTION approval.verify_audit(request bigint DEFAULT NULL, since_checkpoint bytea DEFAULT NULL)
    RETURNS TABLE (request_id bigint, events integer, ok boolean, first_bad_seq bigint,
                   problem text, checkpoint bigint)
    LANGUAGE c STABLE
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_verify_audit';

-- ---------------------------------------------------------------------------
-- Event consumers (DESIGN §7): the log is the source of truth.
-- ---------------------------------------------------------------------------
CREATE TABLE approval.subscriber (
    name      text PRIMARY KEY,
    last_seq  bigint NOT NULL DEFAULT 0
);

-- Gapless: the events after the cursor "seq" that every writer has finished
-- with (a transaction still writing holds back its events and all later
-- ones), read as of the call whatever the isolation level; as the caller
-- may see them.
CREATE FUNCTION approval.events_after(seq bigint, max integer DEFAULT 1000)
    RETURNS SETOF approval.event
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'approval_events_after';

-- The object a listener prints for an event of events_after(): its
-- notification (DESIGN §7) with its data.
CREATE FUNCTION approval.event_json(e approval.event) RETURNS json
    LANGUAGE c STABLE STRICT
    AS 'MODULE_PATHNAME', 'approval_event_json';

CREATE FUNCTION approval.ack(name text, seq bigint) RETURNS void
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS $$ INSERT INTO approval.subscriber AS s (name, last_seq) VALUES (ack.name, ack.seq)
          ON CONFLICT (name) DO UPDATE SET last_seq = GREATEST(s.last_seq, excluded.last_seq) $$;

-- ---------------------------------------------------------------------------
-- Row-level security (DESIGN §8): a user sees a request they submitted, are
-- or were eligible at, or voted on; approval_admin sees everything.
-- ---------------------------------------------------------------------------
ALTER TABLE approval.request ENABLE ROW LEVEL SECURITY;
ALTER TABLE approval.request_stage ENABLE ROW LEVEL SECURITY;
ALTER TABLE approval.decision ENABLE ROW LEVEL SECURITY;
ALTER TABLE approval.event ENABLE ROW LEVEL SECURITY;
CREATE POLICY request_visible ON approval.request FOR SELECT
    USING (approval.sees(requester, workflow, audience));
-- a stage, decision or event is seen with its request (whose policy applies)
CREATE POLICY request_stage_visible ON approval.request_stage FOR SELECT
    USING (EXISTS (SELECT 1 FROM approval.request r WHERE r.id OPERATOR(pg_catalog.=) request_id));
CREATE POLICY decision_visible ON approval.decision FOR SELECT
    USING (EXISTS (SELECT 1 FROM approval.request r WHERE r.id OPERATOR(pg_catalog.=) request_id));
-- an event without a request (an admin's delegate_for) is seen by those who
-- see every request: admins, and a gateway acting for no one
CREATE POLICY event_visible ON approval.event FOR SELECT
    USING ((request_id IS NULL AND approval.sees(NULL, NULL, NULL))
           OR EXISTS (SELECT 1 FROM approval.request r WHERE r.id OPERATOR(pg_catalog.=) request_id));

-- Delegations are seen by the delegator, the delegate and admins: an actor
-- whose role has the privileges of approval_admin (for a gateway acting for
-- someone, that principal's role, as for requests), or a calling role that
-- has them when it acts for no one.
ALTER TABLE approval.delegation ENABLE ROW LEVEL SECURITY;
CREATE POLICY delegation_visible ON approval.delegation FOR SELECT USING (
    delegator = (SELECT approval.current_actor())
    OR delegate = (SELECT approval.current_actor())
    OR CASE WHEN pg_catalog.current_setting('approval.actor', true) <> ''
            THEN EXISTS (SELECT 1 FROM approval.principal p
                           JOIN pg_catalog.pg_roles r ON r.rolname = p.pg_role
                          WHERE p.id = (SELECT approval.current_actor())
                            AND pg_catalog.pg_has_role(r.oid, 'approval_admin', 'USAGE'))
            ELSE pg_catalog.pg_has_role('approval_admin', 'USAGE')
       END);

-- Where a request stands: its active stages, their votes, and whom it waits
-- on (the targets of its active stages, without inactive principals; the
-- requester while changes are requested), with display names.  Inlined
-- into the views that call it for the rows they return (so it has no SET
-- clause, and names everything with its schema).
CREATE FUNCTION approval.waiting(request bigint, state approval.request_state, requester text)
    RETURNS TABLE (active_stages text[], votes text, waiting_on text[], waiting_on_names text[])
    LANGUAGE sql STABLE
    AS $$
    SELECT a.active_stages, a.votes, w.waiting_on, w.waiting_on_names
      FROM (SELECT pg_catalog.array_agg(s.stage ORDER BY s.stage_order, s.stage_idx) AS active_stages,
                   pg_catalog.string_agg(pg_catalog.format('%s %s/%s', s.stage, s.approvals, s.required),
                                         ', ' ORDER BY s.stage_order, s.stage_idx) AS votes
              FROM approval.request_stage s
             WHERE s.request_id OPERATOR(pg_catalog.=) $1
               AND s.state OPERATOR(pg_catalog.=) 'active'::approval.stage_state
               AND $2 OPERATOR(pg_catalog.=) 'pending'::approval.request_state) a,
           LATERAL (
            SELECT pg_catalog.array_agg(t.target ORDER BY t.target) AS waiting_on,
                   pg_catalog.array_agg(t.name ORDER BY t.target) AS waiting_on_names
              FROM (SELECT DISTINCT x.target,
                           COALESCE(CASE pg_catalog.split_part(x.target, ':', 1)
                                    WHEN 'user' THEN
                                        (SELECT p.display_name FROM approval.principal p
                                          WHERE p.id OPERATOR(pg_catalog.=) pg_catalog.split_part(x.target, ':', 2))
                                    WHEN 'group' THEN
                                        (SELECT g.description FROM approval.approver_group g
                                          WHERE g.name OPERATOR(pg_catalog.=) pg_catalog.split_part(x.target, ':', 2))
                                    END,
                                    pg_catalog.split_part(x.target, ':', 2)) AS name
                      FROM (SELECT pg_catalog.unnest(s.targets) AS target
                              FROM approval.request_stage s
                             WHERE s.request_id OPERATOR(pg_catalog.=) $1
                               AND s.state OPERATOR(pg_catalog.=) 'active'::approval.stage_state
                               AND $2 OPERATOR(pg_catalog.=) 'pending'::approval.request_state
                            UNION ALL
                            SELECT pg_catalog.concat('user:', $3)
                             WHERE $2 OPERATOR(pg_catalog.=) 'changes_requested'::approval.request_state) x
                     -- an inactive principal is no approver
                     WHERE $2 OPERATOR(pg_catalog.=) 'changes_requested'::approval.request_state
                        OR pg_catalog.split_part(x.target, ':', 1) OPERATOR(pg_catalog.<>) 'user'
                        OR NOT EXISTS (SELECT 1 FROM approval.principal p
                                        WHERE p.id OPERATOR(pg_catalog.=) pg_catalog.split_part(x.target, ':', 2)
                                          AND NOT p.active)) t
           ) w
    $$;

-- ---------------------------------------------------------------------------
-- Time (DESIGN §6): the deadlines are kept by the engine with each change
-- (timer.c); tick() fires those that are due (tick.c), called by the
-- background worker or a pg_cron job.
-- ---------------------------------------------------------------------------
-- at: the time to fire for (tests move the clock with it)
CREATE FUNCTION approval.tick(at timestamptz DEFAULT pg_catalog.now(), max_items integer DEFAULT 1000)
    RETURNS integer
    LANGUAGE c VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_tick';
COMMENT ON FUNCTION approval.tick(timestamptz, integer) IS 'Fire every deadline due at "at" (SLA warnings and breaches, escalations, stage timeouts, expiry), each once; returns how many fired';

CREATE FUNCTION approval.next_due() RETURNS timestamptz
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT pg_catalog.min(r.next_due) FROM approval.request r WHERE r.next_due IS NOT NULL $$;
COMMENT ON FUNCTION approval.next_due() IS 'When the earliest deadline of the database comes due (NULL: none); the worker sleeps until then';

-- Per workflow, over the requests closed in [since, until): how many were
-- decided, how many of those with an SLA kept it, how long decisions took
-- (business time on the workflow's calendar), breaches and escalations.
-- Runs as the caller: each sees the requests they may see.
CREATE FUNCTION approval.sla_report(since timestamptz, until timestamptz, workflow text DEFAULT NULL)
    RETURNS TABLE (workflow text, closed bigint, decided bigint, expired bigint,
                   with_sla bigint, compliance_pct numeric, mean_time interval,
                   median_time interval, p90_time interval, breaches bigint, escalations bigint)
    LANGUAGE sql STABLE
    AS $$
    SELECT r.workflow,
           pg_catalog.count(*),
           pg_catalog.count(*) FILTER (WHERE d.decided),
           pg_catalog.count(*) FILTER (WHERE r.state OPERATOR(pg_catalog.=) 'expired'::approval.request_state),
           pg_catalog.count(r.due_at),
           pg_catalog.round(100.0 OPERATOR(pg_catalog.*)
                            pg_catalog.count(*) FILTER (WHERE r.due_at IS NOT NULL
                                                          AND r.sla_state OPERATOR(pg_catalog.<>) 'breached')
                            OPERATOR(pg_catalog./) NULLIF(pg_catalog.count(r.due_at), 0), 1),
           pg_catalog.avg(d.took) FILTER (WHERE d.decided),
           pg_catalog.percentile_cont(0.5) WITHIN GROUP (ORDER BY d.took) FILTER (WHERE d.decided),
           pg_catalog.percentile_cont(0.9) WITHIN GROUP (ORDER BY d.took) FILTER (WHERE d.decided),
           pg_catalog.count(*) FILTER (WHERE r.sla_state OPERATOR(pg_catalog.=) 'breached'),
           pg_catalog.sum(r.escalations)::bigint
      FROM approval.request r
      JOIN approval.workflow w ON w.id OPERATOR(pg_catalog.=) r.workflow_id
     CROSS JOIN LATERAL (
           SELECT r.state OPERATOR(pg_catalog.=) ANY ('{approved,rejected}'::approval.request_state[]) AS decided,
                  CASE WHEN w.calendar IS NULL THEN r.decided_at OPERATOR(pg_catalog.-) r.created_at
                       ELSE approval.business_elapsed(r.created_at, r.decided_at, w.calendar) END AS took) d
     WHERE r.decided_at OPERATOR(pg_catalog.>=) $1 AND r.decided_at OPERATOR(pg_catalog.<) $2
       AND ($3 IS NULL OR r.workflow OPERATOR(pg_catalog.=) $3)
     GROUP BY r.workflow
     ORDER BY r.workflow
    $$;
COMMENT ON FUNCTION approval.sla_report(timestamptz, timestamptz, text) IS 'SLA figures per workflow over the requests closed in [since, until)';

-- ---------------------------------------------------------------------------
-- Views for people (DESIGN §8).  Each filters for the actor itself, so they
-- need no security_invoker and work the same on every supported version.
-- Those that filter are security_barrier views: a condition of the caller's
-- (a cheap function, an expression that can raise) is evaluated only on the
-- rows the view returns, unless it is leakproof.
-- ---------------------------------------------------------------------------
CREATE VIEW approval.workflows AS
SELECT DISTINCT ON (w.name)
       w.id, w.name, w.version, w.description, w.priority, w.enabled, w.match,
       (SELECT count(*) FROM approval.workflow_stage s WHERE s.workflow_id = w.id)::integer AS stages,
       w.created_at, w.definition, w.require_ack
  FROM approval.workflow w
 ORDER BY w.name, w.version DESC;

-- What I can act on now, oldest first: the pending_vote rows of my
-- capacities' targets, walked in (submitted_at, request, stage) order one
-- step at a time (a step looks at the next row of each target), so that a
-- first page reads a page's worth of rows however many wait; each (request,
-- stage) is listed where approval.vote_capacity() says approve() would
-- record a vote.  The walk is the order: the view has no ORDER BY of its own.
CREATE VIEW approval.my_pending WITH (security_barrier) AS
WITH RECURSIVE mine AS MATERIALIZED (
    SELECT DISTINCT t AS target
      FROM approval.my_target_sets() s, pg_catalog.unnest(s.targets) t
), walk AS (
    (SELECT n.* FROM mine,
            LATERAL (SELECT * FROM approval.pending_vote p
                      WHERE p.target = mine.target
                      ORDER BY p.submitted_at, p.request_id, p.stage LIMIT 1) n
      ORDER BY n.submitted_at, n.request_id, n.stage LIMIT 1)
    UNION ALL
    SELECT n.* FROM walk w,
           LATERAL (SELECT x.* FROM mine,
                           LATERAL (SELECT * FROM approval.pending_vote p
                                     WHERE p.target = mine.target
                                       AND (p.submitted_at, p.request_id, p.stage)
                                           > (w.submitted_at, w.request_id, w.stage)
                                     ORDER BY p.submitted_at, p.request_id, p.stage LIMIT 1) x
                     ORDER BY x.submitted_at, x.request_id, x.stage LIMIT 1) n
)
SELECT w.request_id, w.workflow, r.title, w.requester, w.stage,
       w.submitted_at, r.due_at,
       NULLIF(c.principal, approval.current_actor()) AS on_behalf_of, r.sla_state
  FROM walk w
 CROSS JOIN LATERAL (SELECT approval.vote_capacity(w::approval.pending_vote) AS principal OFFSET 0) c
 -- per row of the walk (a lateral join is a nested loop), so its order stays
 CROSS JOIN LATERAL (SELECT q.title, q.due_at, q.sla_state FROM approval.request q
                      WHERE q.id = w.request_id OFFSET 0) r
 WHERE c.principal IS NOT NULL;

-- What I submitted, newest first, with where each stands
CREATE VIEW approval.my_requests WITH (security_barrier) AS
SELECT r.id AS request_id, r.workflow, r.title, r.subject, r.state,
       r.created_at AS submitted_at, r.decided_at, r.due_at, r.sla_state,
       a.active_stages, a.waiting_on
  FROM approval.request r
  LEFT JOIN LATERAL approval.waiting(r.id, r.state, r.requester) a ON true
 WHERE r.requester = (SELECT approval.current_actor())
 ORDER BY r.created_at DESC, r.id DESC;

-- One row per request the actor may see: where it stands, and on whom it
-- waits (the targets that can still act, and their display names); the
-- admin who decided it with approval.override(), if one did
CREATE VIEW approval.request_status WITH (security_barrier) AS
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

-- Open requests in SLA warning or breach that the actor may see, soonest
-- due first, with the time left (business time on the workflow's calendar;
-- negative once breached)
CREATE VIEW approval.at_risk WITH (security_barrier) AS
SELECT r.id AS request_id, r.workflow, r.title, r.requester, r.state, r.sla_state, r.due_at,
       CASE WHEN w.calendar IS NULL THEN r.due_at - pg_catalog.now()
            ELSE approval.business_elapsed(pg_catalog.now(), r.due_at, w.calendar) END AS time_left,
       r.escalations
  FROM approval.request r
  JOIN approval.workflow w ON w.id = r.workflow_id
 WHERE r.state IN ('pending', 'changes_requested')
   AND r.sla_state IN ('warning', 'breached')
   AND approval.sees(r.requester, r.workflow, r.audience)
 ORDER BY r.due_at, r.id;

-- ---------------------------------------------------------------------------
-- Privileges (DESIGN §8)
-- ---------------------------------------------------------------------------
REVOKE ALL ON ALL TABLES IN SCHEMA approval FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA approval FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA approval FROM PUBLIC;

-- reference tables: read by users, written by admins with plain SQL
GRANT SELECT ON approval.principal, approval.approver_group, approval.group_member, approval.calendar
    TO approval_user, approval_gateway;
GRANT SELECT, INSERT, UPDATE, DELETE ON approval.principal, approval.approver_group, approval.group_member,
    approval.calendar
    TO approval_admin;
-- state tables: read (filtered by RLS), never written but through functions
GRANT SELECT ON approval.workflow, approval.workflow_stage, approval.request, approval.request_stage,
    approval.decision, approval.event, approval.delegation
    TO approval_admin, approval_user, approval_gateway;
GRANT SELECT ON approval.workflows, approval.my_pending, approval.my_requests, approval.request_status,
    approval.at_risk
    TO approval_admin, approval_user, approval_gateway;
GRANT SELECT, INSERT, UPDATE ON approval.subscriber TO approval_admin, approval_gateway;

GRANT EXECUTE ON FUNCTION
    approval.current_actor(), approval.my_targets(), approval.my_target_sets(), approval.can_see(bigint),
    approval.sees(text, text, text[]), approval.vote_capacity(approval.pending_vote),
    approval.waiting(bigint, approval.request_state, text),
    approval.graph(text, text),
    approval.submit(text, jsonb, text, text, text),
    approval.approve(bigint, text), approval.reject(bigint, text, text),
    approval.request_changes(bigint, text), approval.resubmit(bigint, jsonb, text),
    approval.cancel(bigint, text), approval.comment(bigint, text),
    approval.delegate(text, timestamptz, timestamptz, text), approval.revoke_delegation(bigint),
    approval.events_after(bigint, integer), approval.event_json(approval.event),
    approval.route(jsonb, text), approval.preview(text, jsonb, text),
    approval.business_add(timestamptz, interval, text),
    approval.business_elapsed(timestamptz, timestamptz, text)
    TO approval_admin, approval_user, approval_gateway;
GRANT EXECUTE ON FUNCTION
    approval.define_workflow(jsonb, text), approval.disable_workflow(text), approval.enable_workflow(text),
    approval.ack(text, bigint),
    approval.simulate(jsonb, timestamptz),
    approval.tick(timestamptz, integer), approval.next_due()
    TO approval_admin;
-- runs as the caller: each sees the figures of the requests they can see
GRANT EXECUTE ON FUNCTION approval.sla_report(timestamptz, timestamptz, text)
    TO approval_admin, approval_user, approval_gateway;
-- verify_audit runs as the caller: each checks the chains they can see
GRANT EXECUTE ON FUNCTION approval.verify_audit(bigint, bytea)
    TO approval_admin, approval_user, approval_gateway;
GRANT EXECUTE ON FUNCTION approval.ack(text, bigint) TO approval_gateway;

-- user data survives pg_dump
SELECT pg_catalog.pg_extension_config_dump('approval.principal', '');
SELECT pg_catalog.pg_extension_config_dump('approval.approver_group', '');
SELECT pg_catalog.pg_extension_config_dump('approval.group_member', '');
SELECT pg_catalog.pg_extension_config_dump('approval.calendar', '');
SELECT pg_catalog.pg_extension_config_dump('approval.delegation', '');
SELECT pg_catalog.pg_extension_config_dump('approval.workflow', '');
SELECT pg_catalog.pg_extension_config_dump('approval.workflow_stage', '');
SELECT pg_catalog.pg_extension_config_dump('approval.request', '');
SELECT pg_catalog.pg_extension_config_dump('approval.request_stage', '');
SELECT pg_catalog.pg_extension_config_dump('approval.decision', '');
SELECT pg_catalog.pg_extension_config_dump('approval.event', '');
SELECT pg_catalog.pg_extension_config_dump('approval.event_seq', '');
SELECT pg_catalog.pg_extension_config_dump('approval.request_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('approval.subscriber', '');
SELECT pg_catalog.pg_extension_config_dump('approval.pending_vote', '');
-- the identity columns' sequences too, or a restored database hands out ids
-- from 1 again (pg_dump then writes their setval; test/t/003_dump_restore)
SELECT pg_catalog.pg_extension_config_dump('approval.workflow_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('approval.decision_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('approval.delegation_id_seq', '');

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
