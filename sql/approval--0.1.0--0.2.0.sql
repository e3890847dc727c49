-- approval 0.1.0 -> 0.2.0: hardening (issue "Hardening").
--
-- Run by ALTER EXTENSION approval UPDATE.  Every change here is also in
-- sql/approval.sql, so that an upgraded database and a fresh install of
-- 0.2.0 have the same objects (test/t/ checks it with pg_dump -s).

\echo Use "ALTER EXTENSION approval UPDATE TO '0.2.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- 0.1.0 installed into a schema "approval" that someone had made first.
-- 0.2.0 refuses that at install (sql/approval.sql); before the statements
-- below resolve names in the schema, the upgrade refuses a schema that a
-- role other than a superuser owns or may create in, or that holds a
-- function, operator or relation that is not the extension's.
-- ---------------------------------------------------------------------------
DO $schema$
DECLARE
    nsp      oid;
    ext      oid;
    owner    name;
    super    boolean;
    held     text;
    creator  text;
    hint     constant text := 'Move or drop what is not the extension''s, make a superuser the schema''s owner '
                              '(ALTER SCHEMA approval OWNER TO ...) and REVOKE CREATE on it from everyone else; '
                              'then run ALTER EXTENSION approval UPDATE again.';
BEGIN
    SELECT n.oid, r.rolname, r.rolsuper INTO nsp, owner, super
      FROM pg_catalog.pg_namespace n
      JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
     WHERE n.nspname OPERATOR(pg_catalog.=) 'approval'::pg_catalog.name;
    SELECT oid INTO ext FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'approval'::pg_catalog.name;
    IF NOT super THEN
        RAISE EXCEPTION 'schema "approval" is owned by role "%", which is not a superuser', owner
            USING ERRCODE = 'duplicate_schema',
                  DETAIL = 'Its owner could change the extension''s objects, or add their own beside them.',
                  HINT = hint;
    END IF;

    SELECT i.type OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) i.identity INTO held
      FROM (SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, oid FROM pg_catalog.pg_proc
             WHERE pronamespace OPERATOR(pg_catalog.=) nsp
            UNION ALL SELECT 'pg_catalog.pg_operator'::pg_catalog.regclass, oid FROM pg_catalog.pg_operator
             WHERE oprnamespace OPERATOR(pg_catalog.=) nsp
            UNION ALL SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, oid FROM pg_catalog.pg_class
             WHERE relnamespace OPERATOR(pg_catalog.=) nsp
               AND relkind OPERATOR(pg_catalog.=) ANY ('{r,v,m,f,p,S}'::"char"[])
           ) o(classid, objid),
           LATERAL pg_catalog.pg_identify_object(o.classid, o.objid, 0) i
     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                        WHERE d.classid OPERATOR(pg_catalog.=) o.classid
                          AND d.objid OPERATOR(pg_catalog.=) o.objid
                          AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
                          AND d.refobjid OPERATOR(pg_catalog.=) ext
                          AND d.deptype OPERATOR(pg_catalog.=) 'e'::"char")
     ORDER BY o.objid
     LIMIT 1;
    IF held IS NOT NULL THEN
        RAISE EXCEPTION 'schema "approval" holds %, which is not the extension''s', held
            USING ERRCODE = 'duplicate_schema',
                  DETAIL = 'An object beside the extension''s could capture the names its SQL uses.',
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
        RAISE EXCEPTION 'schema "approval" lets % create objects in it', creator
            USING ERRCODE = 'duplicate_schema',
                  DETAIL = 'Whoever may create in schema approval can add objects beside the extension''s.',
                  HINT = hint;
    END IF;
END
$schema$;

-- ---------------------------------------------------------------------------
-- Closing a request cancels its open stages: stage state "cancelled".
-- (ADD VALUE appends, as the label stands last in a fresh install; nothing
-- below uses it in this transaction.)
-- ---------------------------------------------------------------------------
ALTER TYPE approval.stage_state ADD VALUE 'cancelled';

-- ---------------------------------------------------------------------------
-- Callbacks: on_submitted, on_cancelled, on_expired, and the definer's
-- search_path they run with.  Versions defined before 0.2.0 have none
-- stored; their callbacks run with PostgreSQL's default ("$user", public).
-- ---------------------------------------------------------------------------
ALTER TABLE approval.workflow
    ADD COLUMN on_submitted text,
    ADD COLUMN on_cancelled text,
    ADD COLUMN on_expired text,
    ADD COLUMN search_path text;

DROP FUNCTION approval.define_workflow(jsonb);
-- search_path: the definer's, with which callbacks are resolved now and run
-- later.  The default is evaluated in the caller's query, before the switch
-- to the pinned path below, so it is the caller's own.
CREATE FUNCTION approval.define_workflow(definition jsonb,
                                         search_path text DEFAULT pg_catalog.current_setting('search_path'))
    RETURNS integer
    LANGUAGE c VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_define_workflow';
REVOKE ALL ON FUNCTION approval.define_workflow(jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION approval.define_workflow(jsonb, text) TO approval_admin;

-- ---------------------------------------------------------------------------
-- The acknowledgment to accept, shown by preview() (and approval.workflows,
-- below).
-- ---------------------------------------------------------------------------
DROP FUNCTION approval.preview(text, jsonb, text);
CREATE FUNCTION approval.preview(workflow text, payload jsonb, requester text DEFAULT NULL)
    RETURNS TABLE (stage_order integer, stage text, targets text[], required integer, runs boolean,
                   require_ack text)
    LANGUAGE c STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_preview';
REVOKE ALL ON FUNCTION approval.preview(text, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION approval.preview(text, jsonb, text)
    TO approval_admin, approval_user, approval_gateway;

-- ---------------------------------------------------------------------------
-- verify_audit() for everyone, over the chains each can see (it runs as the
-- caller, so row-level security filters it).
-- ---------------------------------------------------------------------------
GRANT EXECUTE ON FUNCTION approval.verify_audit(bigint) TO approval_user, approval_gateway;

-- ---------------------------------------------------------------------------
-- pg_dump / restore (issue "pg_dump / restore breaks the engine"): the
-- sequences of the identity columns are registered with the tables, so a
-- dump carries their position (test/t/003_dump_restore).
-- ---------------------------------------------------------------------------
SELECT pg_catalog.pg_extension_config_dump('approval.workflow_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('approval.decision_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('approval.delegation_id_seq', '');

-- ---------------------------------------------------------------------------
-- Security (issue "Hardening"): views that filter for the actor are security
-- barriers; approval.delegation is seen by the delegator, the delegate and
-- admins; the append-only guard and the identity-cache triggers fire under
-- session_replication_role = replica too.  (The install-time check of a
-- schema approval made beforehand is for CREATE EXTENSION only.)  A view
-- redefined with CREATE OR REPLACE VIEW loses its options: say WITH
-- (security_barrier) there too.
-- ---------------------------------------------------------------------------
ALTER VIEW approval.my_pending SET (security_barrier = true);
ALTER VIEW approval.my_requests SET (security_barrier = true);
ALTER VIEW approval.request_status SET (security_barrier = true);

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

ALTER TABLE approval.event ENABLE ALWAYS TRIGGER event_no_update_delete;
ALTER TABLE approval.event ENABLE ALWAYS TRIGGER event_no_truncate;
ALTER TABLE approval.principal ENABLE ALWAYS TRIGGER principal_changed;
ALTER TABLE approval.approver_group ENABLE ALWAYS TRIGGER approver_group_changed;
ALTER TABLE approval.group_member ENABLE ALWAYS TRIGGER group_member_changed;
ALTER TABLE approval.delegation ENABLE ALWAYS TRIGGER delegation_changed;

-- ---------------------------------------------------------------------------
-- The definitions cache follows direct changes of approval.workflow (a
-- superuser handing a dropped definer's callbacks to another role).
-- ---------------------------------------------------------------------------
CREATE FUNCTION approval.workflow_changed() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'approval_workflow_changed';
CREATE TRIGGER workflow_changed AFTER UPDATE OR DELETE OR TRUNCATE ON approval.workflow
    FOR EACH STATEMENT EXECUTE FUNCTION approval.workflow_changed();
ALTER TABLE approval.workflow ENABLE ALWAYS TRIGGER workflow_changed;
REVOKE ALL ON FUNCTION approval.workflow_changed() FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Views: approval.workflows shows the acknowledgment to accept; my_pending
-- leaves out stages a distinct_approvers rule forbids; request_status does
-- not wait on inactive principals.  (CREATE OR REPLACE sets the options
-- anew, so security_barrier is repeated.)
-- ---------------------------------------------------------------------------
CREATE OR REPLACE VIEW approval.workflows AS
SELECT DISTINCT ON (w.name)
       w.id, w.name, w.version, w.description, w.priority, w.enabled, w.match,
       (SELECT count(*) FROM approval.workflow_stage s WHERE s.workflow_id = w.id)::integer AS stages,
       w.created_at, w.definition, w.require_ack
  FROM approval.workflow w
 ORDER BY w.name, w.version DESC;

CREATE OR REPLACE VIEW approval.my_pending WITH (security_barrier) AS
WITH me AS MATERIALIZED (
    SELECT approval.current_actor() AS actor
), sets AS MATERIALIZED (
    SELECT * FROM approval.my_target_sets()
)
SELECT r.id AS request_id, r.workflow, r.title, r.requester, s.stage,
       r.created_at AS submitted_at, r.due_at
  FROM me, approval.request_stage s
  JOIN approval.request r ON r.id = s.request_id
  JOIN approval.workflow w ON w.id = r.workflow_id
 WHERE s.state = 'active'
   AND r.state = 'pending'
   AND s.targets && (SELECT array_agg(t) FROM sets, unnest(sets.targets) AS t)
   AND EXISTS (
       SELECT 1 FROM sets
        WHERE s.targets && sets.targets
          AND (sets.workflow IS NULL OR sets.workflow = r.workflow)
          AND (w.allow_self_approval OR (sets.principal <> r.requester AND me.actor <> r.requester))
          AND NOT EXISTS (SELECT 1 FROM approval.decision d
                           WHERE d.request_id = s.request_id AND d.stage = s.stage AND d.round = s.round
                             AND d.decision IN ('approve', 'reject')
                             AND COALESCE(d.on_behalf_of, d.actor) = sets.principal)
          -- distinct_approvers: not where an approval of another stage
          -- involved this principal or me, counted or casting
          AND NOT (w.distinct_approvers AND EXISTS (
                   SELECT 1 FROM approval.decision d
                     JOIN approval.request_stage o
                       ON o.request_id = d.request_id AND o.stage = d.stage AND o.round = d.round
                    WHERE d.request_id = s.request_id AND d.stage <> s.stage AND d.decision = 'approve'
                      AND (COALESCE(d.on_behalf_of, d.actor) IN (sets.principal, me.actor)
                           OR d.actor IN (sets.principal, me.actor)))))
   AND NOT EXISTS (SELECT 1 FROM approval.decision d
                    WHERE d.request_id = s.request_id AND d.stage = s.stage AND d.round = s.round
                      AND d.decision IN ('approve', 'reject') AND d.actor = me.actor)
 ORDER BY r.created_at, r.id, s.stage_order, s.stage;

CREATE OR REPLACE VIEW approval.request_status WITH (security_barrier) AS
SELECT r.id AS request_id, r.workflow, r.title, r.requester, r.state,
       a.active_stages, a.votes, a.waiting_on, r.sla_state, r.due_at
  FROM approval.request r
  LEFT JOIN LATERAL (
      SELECT array_agg(s.stage ORDER BY s.stage_order, s.stage_idx) AS active_stages,
             string_agg(s.stage || ' ' || s.approvals || '/' || s.required, ', '
                        ORDER BY s.stage_order, s.stage_idx) AS votes,
             CASE r.state
                  WHEN 'pending' THEN
                      (SELECT array_agg(DISTINCT t ORDER BY t)
                         FROM approval.request_stage s2, unnest(s2.targets) AS t
                        WHERE s2.request_id = r.id AND s2.state = 'active'
                          -- an inactive principal is no approver
                          AND (t NOT LIKE 'user:%' OR NOT EXISTS (
                                   SELECT 1 FROM approval.principal p
                                    WHERE p.id = substr(t, 6) AND NOT p.active)))
                  WHEN 'changes_requested' THEN ARRAY['user:' || r.requester]
             END AS waiting_on
        FROM approval.request_stage s
       WHERE s.request_id = r.id AND s.state = 'active' AND r.state = 'pending'
  ) a ON true
 WHERE approval.can_see(r.id);

-- ---------------------------------------------------------------------------
-- A 0.1.0 database restored from pg_dump got these sequences back at their
-- start (they were not registered): move each past the highest id in use.
-- ---------------------------------------------------------------------------
SELECT pg_catalog.setval('approval.workflow_id_seq', x.m)
  FROM (SELECT pg_catalog.max(id) AS m FROM approval.workflow) x, approval.workflow_id_seq s
 WHERE x.m OPERATOR(pg_catalog.>) s.last_value
    OR (x.m OPERATOR(pg_catalog.=) s.last_value AND NOT s.is_called);
SELECT pg_catalog.setval('approval.decision_id_seq', x.m)
  FROM (SELECT pg_catalog.max(id) AS m FROM approval.decision) x, approval.decision_id_seq s
 WHERE x.m OPERATOR(pg_catalog.>) s.last_value
    OR (x.m OPERATOR(pg_catalog.=) s.last_value AND NOT s.is_called);
SELECT pg_catalog.setval('approval.delegation_id_seq', x.m)
  FROM (SELECT pg_catalog.max(id) AS m FROM approval.delegation) x, approval.delegation_id_seq s
 WHERE x.m OPERATOR(pg_catalog.>) s.last_value
    OR (x.m OPERATOR(pg_catalog.=) s.last_value AND NOT s.is_called);
