--
-- definition: define_workflow validates the whole document, stores immutable
-- versions, and draws them; enable/disable; only approval_admin defines.
--
SET ROLE regress_admin;

-- a valid definition returns the new version's id; the same name again is version 2
SELECT approval.define_workflow('{
  "name": "definition-basic",
  "description": "two stages",
  "stages": [
    {"name": "manager", "approvers": ["manager"]},
    {"name": "finance", "approvers": ["group:finance"], "min_approvals": 2}
  ]}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "definition-basic", "stages": [{"name": "only", "approvers": ["user:carol"]}]}') > 0 AS defined;
SELECT name, version, description, priority, enabled, stages
  FROM approval.workflows WHERE name = 'definition-basic';
SELECT w.version, s.idx, s.name, s.stage_order, s.approvers, s.min_approvals, s.reject_policy
  FROM approval.workflow w JOIN approval.workflow_stage s ON s.workflow_id = w.id
 WHERE w.name = 'definition-basic' ORDER BY w.version, s.idx;

-- every key of DESIGN §3 is accepted
SELECT approval.define_workflow('{
  "name": "definition-full", "description": "all keys", "priority": 10,
  "match": "$.cost > 500", "auto_approve": "$.cost == 0",
  "require_ack": "I understand", "allow_self_approval": false, "distinct_approvers": true,
  "reapprove_on_change": "all",
  "sla": "48 hours", "sla_warning": 0.75, "calendar": "eu-office",
  "escalate_after": "24 hours", "escalate_every": "24 hours", "escalate_to": "group:it-managers",
  "expires_after": "7 days",
  "stages": [
    {"name": "manager", "approvers": ["manager"]},
    {"name": "finance", "approvers": ["group:finance"], "min_approvals": 2,
     "when": "$.cost > 1000", "denial_message": "Over budget"},
    {"name": "security", "approvers": ["group:security", "user:ciso"], "order": 1,
     "reject_policy": "quorum", "reject_quorum": 2, "timeout": "72 hours", "on_timeout": "escalate"},
    {"name": "audit", "approvers": ["role:regress_carol"], "min_approvals": "all"}
  ]}') > 0 AS defined;
SELECT priority, match, auto_approve, require_ack, distinct_approvers, reapprove_on_change,
       sla, sla_warning, calendar, escalate_after, escalate_to, expires_after
  FROM approval.workflow WHERE name = 'definition-full';
SELECT s.idx, s.name, s.stage_order, s.approvers, s.min_approvals, s.reject_policy, s.reject_quorum,
       s.when_cond, s.denial_message, s.timeout, s.on_timeout
  FROM approval.workflow_stage s JOIN approval.workflow w ON w.id = s.workflow_id
 WHERE w.name = 'definition-full' ORDER BY idx;

-- bad documents: AP005 naming the key; nothing is written
SELECT count(*) AS workflows_before FROM approval.workflow \gset
\set VERBOSITY default
SELECT approval.define_workflow('[1, 2]');
SELECT approval.define_workflow('{"stages": []}');
SELECT approval.define_workflow('{"name": ""}');
SELECT approval.define_workflow('{"name": "x", "colour": "red"}');
SELECT approval.define_workflow('{"name": "x", "priority": "high"}');
SELECT approval.define_workflow('{"name": "x", "priority": 1.5}');
SELECT approval.define_workflow('{"name": "x", "allow_self_approval": "yes"}');
SELECT approval.define_workflow('{"name": "x", "reapprove_on_change": "some"}');
SELECT approval.define_workflow('{"name": "x", "sla": "48 hourz"}');
SELECT approval.define_workflow('{"name": "x", "sla": "-1 hour"}');
SELECT approval.define_workflow('{"name": "x", "sla_warning": 0.5}');
SELECT approval.define_workflow('{"name": "x", "sla": "1 day", "sla_warning": 1.5}');
SELECT approval.define_workflow('{"name": "x", "escalate_every": "1 day"}');
SELECT approval.define_workflow('{"name": "x", "escalate_to": "team:ops"}');
SELECT approval.define_workflow('{"name": "x", "stages": {"name": "a"}}');
SELECT approval.define_workflow('{"name": "x", "stages": ["manager"]}');
SELECT approval.define_workflow('{"name": "x", "stages": [{"approvers": ["manager"]}]}');
SELECT approval.define_workflow('{"name": "x", "stages": [{"name": "a"}]}');
SELECT approval.define_workflow('{"name": "x", "stages": [{"name": "a", "approvers": []}]}');
SELECT approval.define_workflow('{"name": "x", "stages": [{"name": "a", "approvers": ["manager"], "size": 1}]}');
SELECT approval.define_workflow('{"name": "x", "stages": [{"name": "a", "approvers": ["manager", "team:ops"]}]}');
SELECT approval.define_workflow('{"name": "x", "stages": [{"name": "a", "approvers": ["user:"]}]}');
SELECT approval.define_workflow('{"name": "x", "stages": [{"name": "a", "approvers": [42]}]}');
SELECT approval.define_workflow('{"name": "x", "stages": [{"name": "a", "approvers": ["manager"]}, {"name": "a", "approvers": ["manager"]}]}');
SELECT approval.define_workflow('{"name": "x", "stages": [{"name": "a", "approvers": ["manager"]}, {"name": "b", "approvers": ["manager"]}, {"name": "c", "approvers": ["manager"], "min_approvals": 0}]}');
SELECT approval.define_workflow('{"name": "x", "stages": [{"name": "a", "approvers": ["manager"], "min_approvals": "most"}]}');
SELECT approval.define_workflow('{"name": "x", "stages": [{"name": "a", "approvers": ["manager"], "order": -1}]}');
SELECT approval.define_workflow('{"name": "x", "stages": [{"name": "a", "approvers": ["manager"], "reject_policy": "majority"}]}');
SELECT approval.define_workflow('{"name": "x", "stages": [{"name": "a", "approvers": ["manager"], "reject_quorum": 2}]}');
SELECT approval.define_workflow('{"name": "x", "stages": [{"name": "a", "approvers": ["manager"], "reject_policy": "quorum", "reject_quorum": 0}]}');
SELECT approval.define_workflow('{"name": "x", "stages": [{"name": "a", "approvers": ["manager"], "on_timeout": "approve"}]}');
SELECT approval.define_workflow('{"name": "x", "stages": [{"name": "a", "approvers": ["manager"], "timeout": "3 days", "on_timeout": "ignore"}]}');
SELECT approval.define_workflow('{"name": "x", "match": "$.cost >"}');
SELECT approval.define_workflow('{"name": "x", "auto_approve": "$.cost"}');
SELECT approval.define_workflow('{"name": "x", "stages": [{"name": "a", "approvers": ["manager"], "when": "$.cost > $limit"}]}');
SELECT approval.define_workflow('{"name": "x", "on_approved": "no_such_function"}');
SELECT approval.define_workflow('{"name": "x", "on_approved": "public.no_such_function"}');
SELECT approval.define_workflow('{"name": "x", "on_rejected": "pg_catalog.abs(integer)"}');
SELECT count(*) = :workflows_before AS nothing_written FROM approval.workflow;

-- a callback must be a schema-qualified function taking one bigint
RESET ROLE;
CREATE SCHEMA definition_app;
CREATE FUNCTION definition_app.notify_done(request bigint) RETURNS void LANGUAGE sql AS 'SELECT';
-- (callbacks are resolved as the definer, who must be able to use the schema)
SET ROLE regress_admin;
SELECT approval.define_workflow('{"name": "definition-callback", "on_approved": "definition_app.notify_done"}');
RESET ROLE;
GRANT USAGE ON SCHEMA definition_app TO regress_admin;
SET ROLE regress_admin;
SELECT approval.define_workflow('{"name": "definition-callback", "on_approved": "definition_app.notify_done",
                                  "on_rejected": "definition_app.notify_done(bigint)"}') > 0 AS defined;
SELECT on_approved, on_rejected FROM approval.workflow WHERE name = 'definition-callback';

-- disable and enable work on the name; an unknown name is AP008
SELECT approval.disable_workflow('definition-basic');
SELECT name, enabled FROM approval.workflows WHERE name LIKE 'definition-%' ORDER BY name;
SELECT approval.enable_workflow('definition-basic');
\set VERBOSITY sqlstate
SELECT approval.disable_workflow('definition-nope');
\set VERBOSITY default

-- pictures: Mermaid (default) and DOT, parallel stages fan out and in
SELECT approval.graph('definition-full');
SELECT approval.graph('definition-full', 'dot');
SELECT approval.graph('definition-callback');
\set VERBOSITY sqlstate
SELECT approval.graph('definition-full', 'svg');
SELECT approval.graph('definition-nope');
\set VERBOSITY default

-- only approval_admin defines
RESET ROLE;
SET ROLE regress_alice;
\set VERBOSITY sqlstate
SELECT approval.define_workflow('{"name": "definition-by-alice"}');
SELECT approval.disable_workflow('definition-basic');
\set VERBOSITY default
RESET ROLE;

-- running requests keep the version they started with
SET ROLE regress_admin;
SELECT approval.define_workflow('{"name": "definition-versions", "stages": [{"name": "v1-stage", "approvers": ["user:carol"]}]}') > 0 AS defined;
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.submit('definition-versions', '{}', 'before the change') AS rid \gset
RESET ROLE;
SET ROLE regress_admin;
SELECT approval.define_workflow('{"name": "definition-versions", "stages": [{"name": "v2-stage", "approvers": ["user:dave"]}]}') > 0 AS defined;
RESET ROLE;
SET ROLE regress_alice;
SELECT approval.submit('definition-versions', '{}', 'after the change') AS rid2 \gset
RESET ROLE;
SELECT r.title, w.version, s.stage, s.targets
  FROM approval.request r JOIN approval.workflow w ON w.id = r.workflow_id
  JOIN approval.request_stage s ON s.request_id = r.id
 WHERE r.id IN (:rid, :rid2) ORDER BY r.id;
SET ROLE regress_carol;
SELECT approval.approve(:rid);
RESET ROLE;
