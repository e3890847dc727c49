-- pgTAP: the public surface of the core engine (DESIGN §3, §4, §5, §7, §8):
-- function signatures and return types, SECURITY DEFINER with a pinned
-- search_path, the tables and columns a reader can rely on, the state enums
-- and the views for people.
-- Everything happens in one transaction that is rolled back, including
-- CREATE EXTENSION.
\set ON_ERROR_STOP 1
BEGIN;

SELECT plan(157);

SELECT current_setting('search_path') AS search_path_before \gset
CREATE EXTENSION approval;
-- pgTAP lives in public; the install script's SET search_path outlives
-- CREATE EXTENSION (see 001_identity), so put the session's path back.
SELECT set_config('search_path', :'search_path_before', true) AS search_path_restored \gset

SELECT has_schema('approval', 'schema approval exists');

-- ---------------------------------------------------------------------------
-- Functions: exact argument types and return types
-- ---------------------------------------------------------------------------
-- §3 definitions
SELECT has_function('approval', 'define_workflow', ARRAY['jsonb', 'text'],
                    'approval.define_workflow(jsonb, search_path text DEFAULT the caller''s) exists');
SELECT function_returns('approval', 'define_workflow', ARRAY['jsonb', 'text'], 'integer',
                        'approval.define_workflow(jsonb, text) returns integer');
SELECT has_function('approval', 'disable_workflow', ARRAY['text'], 'approval.disable_workflow(text) exists');
SELECT function_returns('approval', 'disable_workflow', ARRAY['text'], 'void',
                        'approval.disable_workflow(text) returns void');
SELECT has_function('approval', 'enable_workflow', ARRAY['text'], 'approval.enable_workflow(text) exists');
SELECT function_returns('approval', 'enable_workflow', ARRAY['text'], 'void',
                        'approval.enable_workflow(text) returns void');
SELECT has_function('approval', 'graph', ARRAY['text', 'text'], 'approval.graph(text, text) exists');
SELECT function_returns('approval', 'graph', ARRAY['text', 'text'], 'text',
                        'approval.graph(text, text) returns text');

-- §4 requests and decisions
SELECT has_function('approval', 'submit', ARRAY['text', 'jsonb', 'text', 'text', 'text'],
                    'approval.submit(text, jsonb, text, text, text) exists');
SELECT function_returns('approval', 'submit', ARRAY['text', 'jsonb', 'text', 'text', 'text'], 'bigint',
                        'approval.submit(...) returns bigint');
SELECT has_function('approval', 'approve', ARRAY['bigint', 'text'], 'approval.approve(bigint, text) exists');
SELECT function_returns('approval', 'approve', ARRAY['bigint', 'text'], 'approval.request_state',
                        'approval.approve(bigint, text) returns approval.request_state');
SELECT has_function('approval', 'reject', ARRAY['bigint', 'text', 'text'],
                    'approval.reject(bigint, text, text) exists');
SELECT function_returns('approval', 'reject', ARRAY['bigint', 'text', 'text'], 'approval.request_state',
                        'approval.reject(bigint, text, text) returns approval.request_state');
SELECT has_function('approval', 'request_changes', ARRAY['bigint', 'text'],
                    'approval.request_changes(bigint, text) exists');
SELECT function_returns('approval', 'request_changes', ARRAY['bigint', 'text'], 'approval.request_state',
                        'approval.request_changes(bigint, text) returns approval.request_state');
SELECT has_function('approval', 'resubmit', ARRAY['bigint', 'jsonb', 'text'],
                    'approval.resubmit(bigint, jsonb, text) exists');
SELECT function_returns('approval', 'resubmit', ARRAY['bigint', 'jsonb', 'text'], 'approval.request_state',
                        'approval.resubmit(bigint, jsonb, text) returns approval.request_state');
SELECT has_function('approval', 'cancel', ARRAY['bigint', 'text'], 'approval.cancel(bigint, text) exists');
SELECT function_returns('approval', 'cancel', ARRAY['bigint', 'text'], 'approval.request_state',
                        'approval.cancel(bigint, text) returns approval.request_state');
SELECT has_function('approval', 'comment', ARRAY['bigint', 'text'], 'approval.comment(bigint, text) exists');
SELECT function_returns('approval', 'comment', ARRAY['bigint', 'text'], 'void',
                        'approval.comment(bigint, text) returns void');

SELECT has_function('approval', 'route', ARRAY['jsonb', 'text'], 'approval.route(jsonb, text) exists');
SELECT function_returns('approval', 'route', ARRAY['jsonb', 'text'], 'text',
                        'approval.route(jsonb, text) returns text');
SELECT has_function('approval', 'preview', ARRAY['text', 'jsonb', 'text'],
                    'approval.preview(text, jsonb, text) exists');
SELECT function_returns('approval', 'preview', ARRAY['text', 'jsonb', 'text'], 'setof record',
                        'approval.preview(text, jsonb, text) returns a set of rows');

-- §5 delegation
SELECT has_function('approval', 'delegate', ARRAY['text', 'timestamptz', 'timestamptz', 'text'],
                    'approval.delegate(text, timestamptz, timestamptz, text) exists');
SELECT function_returns('approval', 'delegate',
                        ARRAY['text', 'timestamp with time zone', 'timestamp with time zone', 'text'], 'bigint',
                        'approval.delegate(...) returns bigint');
SELECT has_function('approval', 'revoke_delegation', ARRAY['bigint'],
                    'approval.revoke_delegation(bigint) exists');
SELECT function_returns('approval', 'revoke_delegation', ARRAY['bigint'], 'void',
                        'approval.revoke_delegation(bigint) returns void');

-- §2 identity, §8 visibility
SELECT has_function('approval', 'current_actor', ARRAY[]::name[], 'approval.current_actor() exists');
SELECT function_returns('approval', 'current_actor', ARRAY[]::name[], 'text',
                        'approval.current_actor() returns text');
SELECT has_function('approval', 'my_targets', ARRAY[]::name[], 'approval.my_targets() exists');
SELECT function_returns('approval', 'my_targets', ARRAY[]::name[], 'text[]',
                        'approval.my_targets() returns text[]');
SELECT has_function('approval', 'can_see', ARRAY['bigint'], 'approval.can_see(bigint) exists');
SELECT function_returns('approval', 'can_see', ARRAY['bigint'], 'boolean',
                        'approval.can_see(bigint) returns boolean');

-- §7 events
SELECT has_function('approval', 'verify_audit', ARRAY['bigint', 'bytea'], 'approval.verify_audit(bigint, bytea) exists');
SELECT function_returns('approval', 'verify_audit', ARRAY['bigint', 'bytea'], 'setof record',
                        'approval.verify_audit(bigint, bytea) returns a set of rows');
SELECT has_function('approval', 'events_after', ARRAY['bigint', 'integer'],
                    'approval.events_after(bigint, integer) exists');
SELECT function_returns('approval', 'events_after', ARRAY['bigint', 'integer'], 'setof approval.event',
                        'approval.events_after(bigint, integer) returns setof approval.event');
SELECT has_function('approval', 'ack', ARRAY['text', 'bigint'], 'approval.ack(text, bigint) exists');
SELECT function_returns('approval', 'ack', ARRAY['text', 'bigint'], 'void',
                        'approval.ack(text, bigint) returns void');

-- Argument names and defaults as DESIGN writes them: callers use named
-- arguments (ack => ...) and leave the defaulted ones out.
SELECT is(pg_get_function_arguments('approval.submit(text,jsonb,text,text,text)'::regprocedure),
          'workflow text, payload jsonb DEFAULT ''{}''::jsonb, title text DEFAULT NULL::text, '
          'subject text DEFAULT NULL::text, ack text DEFAULT NULL::text',
          'submit(workflow, payload DEFAULT ''{}'', title, subject, ack DEFAULT NULL)');
SELECT is(pg_get_function_arguments('approval.approve(bigint,text)'::regprocedure),
          'request bigint, comment text DEFAULT NULL::text',
          'approve(request, comment DEFAULT NULL)');
SELECT is(pg_get_function_arguments('approval.reject(bigint,text,text)'::regprocedure),
          'request bigint, reason text DEFAULT NULL::text, comment text DEFAULT NULL::text',
          'reject(request, reason DEFAULT NULL, comment DEFAULT NULL)');
SELECT is(pg_get_function_arguments('approval.request_changes(bigint,text)'::regprocedure),
          'request bigint, comment text',
          'request_changes(request, comment)');
SELECT is(pg_get_function_arguments('approval.resubmit(bigint,jsonb,text)'::regprocedure),
          'request bigint, payload jsonb DEFAULT NULL::jsonb, comment text DEFAULT NULL::text',
          'resubmit(request, payload DEFAULT NULL, comment DEFAULT NULL)');
SELECT is(pg_get_function_arguments('approval.cancel(bigint,text)'::regprocedure),
          'request bigint, comment text DEFAULT NULL::text',
          'cancel(request, comment DEFAULT NULL)');
SELECT is(pg_get_function_arguments('approval.comment(bigint,text)'::regprocedure),
          'request bigint, comment text',
          'comment(request, comment)');
SELECT is(pg_get_function_arguments('approval.delegate(text,timestamptz,timestamptz,text)'::regprocedure),
          'delegate text, starts timestamp with time zone DEFAULT now(), '
          'ends timestamp with time zone DEFAULT NULL::timestamp with time zone, workflow text DEFAULT NULL::text',
          'delegate(delegate, starts DEFAULT now(), ends DEFAULT NULL, workflow DEFAULT NULL)');
SELECT is(pg_get_function_arguments('approval.graph(text,text)'::regprocedure),
          'name text, format text DEFAULT ''mermaid''::text',
          'graph(name, format DEFAULT ''mermaid'')');
SELECT is(pg_get_function_arguments('approval.verify_audit(bigint,bytea)'::regprocedure),
          'request bigint DEFAULT NULL::bigint, since_checkpoint bytea DEFAULT NULL::bytea',
          'verify_audit(request DEFAULT NULL, since_checkpoint DEFAULT NULL)');
SELECT is(pg_get_function_arguments('approval.events_after(bigint,integer)'::regprocedure),
          'seq bigint, max integer DEFAULT 1000',
          'events_after(seq, max DEFAULT 1000)');
SELECT is(pg_get_function_arguments('approval.ack(text,bigint)'::regprocedure),
          'name text, seq bigint',
          'ack(name, seq)');
SELECT is(pg_get_function_arguments('approval.route(jsonb,text)'::regprocedure),
          'payload jsonb, requester text DEFAULT NULL::text',
          'route(payload, requester DEFAULT NULL)');
SELECT is(pg_get_function_arguments('approval.preview(text,jsonb,text)'::regprocedure),
          'workflow text, payload jsonb, requester text DEFAULT NULL::text',
          'preview(workflow, payload, requester DEFAULT NULL)');
SELECT is(pg_get_function_result('approval.preview(text,jsonb,text)'::regprocedure),
          'TABLE(stage_order integer, stage text, targets text[], required integer, runs boolean, require_ack text)',
          'preview() returns TABLE(stage_order, stage, targets, required, runs, require_ack)');
SELECT ok((SELECT proargnames @> ARRAY['request_id', 'ok', 'first_bad_seq', 'problem', 'checkpoint']
             FROM pg_proc WHERE oid = 'approval.verify_audit(bigint,bytea)'::regprocedure),
          'verify_audit() reports request_id, ok, first_bad_seq, problem and checkpoint');

-- ---------------------------------------------------------------------------
-- SECURITY DEFINER with a pinned search_path (DESIGN §8)
-- ---------------------------------------------------------------------------
SELECT is_definer('approval', 'define_workflow', ARRAY['jsonb', 'text'], 'define_workflow is SECURITY DEFINER');
SELECT is_definer('approval', 'disable_workflow', ARRAY['text'], 'disable_workflow is SECURITY DEFINER');
SELECT is_definer('approval', 'enable_workflow', ARRAY['text'], 'enable_workflow is SECURITY DEFINER');
SELECT is_definer('approval', 'submit', ARRAY['text', 'jsonb', 'text', 'text', 'text'],
                  'submit is SECURITY DEFINER');
SELECT is_definer('approval', 'approve', ARRAY['bigint', 'text'], 'approve is SECURITY DEFINER');
SELECT is_definer('approval', 'reject', ARRAY['bigint', 'text', 'text'], 'reject is SECURITY DEFINER');
SELECT is_definer('approval', 'request_changes', ARRAY['bigint', 'text'], 'request_changes is SECURITY DEFINER');
SELECT is_definer('approval', 'resubmit', ARRAY['bigint', 'jsonb', 'text'], 'resubmit is SECURITY DEFINER');
SELECT is_definer('approval', 'cancel', ARRAY['bigint', 'text'], 'cancel is SECURITY DEFINER');
SELECT is_definer('approval', 'comment', ARRAY['bigint', 'text'], 'comment is SECURITY DEFINER');
SELECT is_definer('approval', 'delegate',
                  ARRAY['text', 'timestamp with time zone', 'timestamp with time zone', 'text'],
                  'delegate is SECURITY DEFINER');
SELECT is_definer('approval', 'revoke_delegation', ARRAY['bigint'], 'revoke_delegation is SECURITY DEFINER');

-- events_after must see the log through row-level security, as the caller
SELECT isnt_definer('approval', 'events_after', ARRAY['bigint', 'integer'],
                    'events_after runs as the caller (RLS filters it)');

-- one query over every function of the extension
SELECT is_empty($$
    SELECT p.oid::regprocedure::text
      FROM pg_catalog.pg_proc p
      JOIN pg_catalog.pg_depend d
        ON d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid
       AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e'
      JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'approval'
     WHERE p.prosecdef
       AND NOT COALESCE(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)
$$, 'every SECURITY DEFINER function of the extension pins search_path=pg_catalog, pg_temp');

SELECT cmp_ok((SELECT count(*)::int
                 FROM pg_catalog.pg_proc p
                 JOIN pg_catalog.pg_depend d
                   ON d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid
                  AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e'
                 JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'approval'
                WHERE p.prosecdef),
              '>=', 12, 'the extension owns the SECURITY DEFINER functions checked above');

SELECT is_empty($$
    SELECT p.oid::regprocedure::text
      FROM pg_catalog.pg_proc p
     WHERE p.pronamespace = 'approval'::regnamespace
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                        JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'approval'
                       WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid
                         AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e')
$$, 'every function in schema approval belongs to the extension');

-- ---------------------------------------------------------------------------
-- Tables of DESIGN §4 and §7
-- ---------------------------------------------------------------------------
SELECT has_table('approval', 'request', 'table approval.request exists');
SELECT has_column('approval', 'request', 'id', 'request.id');
SELECT has_column('approval', 'request', 'workflow_id', 'request.workflow_id');
SELECT has_column('approval', 'request', 'workflow', 'request.workflow');
SELECT has_column('approval', 'request', 'title', 'request.title');
SELECT has_column('approval', 'request', 'subject', 'request.subject');
SELECT has_column('approval', 'request', 'payload', 'request.payload');
SELECT has_column('approval', 'request', 'requester', 'request.requester');
SELECT has_column('approval', 'request', 'state', 'request.state');
SELECT has_column('approval', 'request', 'created_at', 'request.created_at');
SELECT has_column('approval', 'request', 'decided_at', 'request.decided_at');
SELECT has_column('approval', 'request', 'due_at', 'request.due_at');
SELECT has_column('approval', 'request', 'sla_state', 'request.sla_state');
SELECT has_column('approval', 'request', 'escalations', 'request.escalations');
SELECT col_is_pk('approval', 'request', 'id', 'request is keyed by id');
SELECT col_type_is('approval', 'request', 'id', 'bigint', 'request.id is bigint');
SELECT col_type_is('approval', 'request', 'payload', 'jsonb', 'request.payload is jsonb');
SELECT col_type_is('approval', 'request', 'state', 'approval', 'request_state',
                   'request.state is approval.request_state');

SELECT has_table('approval', 'request_stage', 'table approval.request_stage exists');
SELECT has_column('approval', 'request_stage', 'request_id', 'request_stage.request_id');
SELECT has_column('approval', 'request_stage', 'stage', 'request_stage.stage');
SELECT has_column('approval', 'request_stage', 'stage_order', 'request_stage.stage_order');
SELECT has_column('approval', 'request_stage', 'state', 'request_stage.state');
SELECT has_column('approval', 'request_stage', 'targets', 'request_stage.targets');
SELECT has_column('approval', 'request_stage', 'required', 'request_stage.required');
SELECT has_column('approval', 'request_stage', 'approvals', 'request_stage.approvals');
SELECT has_column('approval', 'request_stage', 'rejections', 'request_stage.rejections');
SELECT has_column('approval', 'request_stage', 'activated_at', 'request_stage.activated_at');
SELECT has_column('approval', 'request_stage', 'decided_at', 'request_stage.decided_at');
SELECT col_type_is('approval', 'request_stage', 'state', 'approval', 'stage_state',
                   'request_stage.state is approval.stage_state');
SELECT col_type_is('approval', 'request_stage', 'targets', 'text[]', 'request_stage.targets is text[]');

SELECT has_table('approval', 'decision', 'table approval.decision exists');
SELECT has_column('approval', 'decision', 'id', 'decision.id');
SELECT has_column('approval', 'decision', 'request_id', 'decision.request_id');
SELECT has_column('approval', 'decision', 'stage', 'decision.stage');
SELECT has_column('approval', 'decision', 'actor', 'decision.actor');
SELECT has_column('approval', 'decision', 'on_behalf_of', 'decision.on_behalf_of');
SELECT has_column('approval', 'decision', 'decision', 'decision.decision');
SELECT has_column('approval', 'decision', 'reason', 'decision.reason');
SELECT has_column('approval', 'decision', 'comment', 'decision.comment');
SELECT has_column('approval', 'decision', 'at', 'decision.at');
SELECT col_is_pk('approval', 'decision', 'id', 'decision is keyed by id');

SELECT has_table('approval', 'event', 'table approval.event exists');
SELECT has_column('approval', 'event', 'seq', 'event.seq');
SELECT has_column('approval', 'event', 'request_id', 'event.request_id');
SELECT has_column('approval', 'event', 'at', 'event.at');
SELECT has_column('approval', 'event', 'kind', 'event.kind');
SELECT has_column('approval', 'event', 'actor', 'event.actor');
SELECT has_column('approval', 'event', 'data', 'event.data');
SELECT has_column('approval', 'event', 'hash', 'event.hash');
SELECT col_is_pk('approval', 'event', 'seq', 'event is keyed by seq');
SELECT col_type_is('approval', 'event', 'hash', 'bytea', 'event.hash is bytea');

-- ---------------------------------------------------------------------------
-- State enums (DESIGN §4)
-- ---------------------------------------------------------------------------
SELECT has_enum('approval', 'request_state', 'enum approval.request_state exists');
SELECT enum_has_labels('approval', 'request_state',
                       ARRAY['pending', 'changes_requested', 'approved', 'rejected', 'expired', 'cancelled'],
                       'approval.request_state has the states of DESIGN §4');
SELECT has_enum('approval', 'stage_state', 'enum approval.stage_state exists');
SELECT enum_has_labels('approval', 'stage_state',
                       ARRAY['waiting', 'active', 'approved', 'rejected', 'skipped', 'expired', 'cancelled'],
                       'approval.stage_state has the states of DESIGN §4');

-- ---------------------------------------------------------------------------
-- Views (DESIGN §3, §8)
-- ---------------------------------------------------------------------------
SELECT has_view('approval', 'workflows', 'view approval.workflows exists');
SELECT has_column('approval', 'workflows', 'name', 'workflows.name');
SELECT has_column('approval', 'workflows', 'version', 'workflows.version');

SELECT has_view('approval', 'my_pending', 'view approval.my_pending exists');
SELECT has_column('approval', 'my_pending', 'request_id', 'my_pending.request_id');
SELECT has_column('approval', 'my_pending', 'workflow', 'my_pending.workflow');
SELECT has_column('approval', 'my_pending', 'title', 'my_pending.title');
SELECT has_column('approval', 'my_pending', 'requester', 'my_pending.requester');
SELECT has_column('approval', 'my_pending', 'stage', 'my_pending.stage');
SELECT has_column('approval', 'my_pending', 'submitted_at', 'my_pending.submitted_at');
SELECT has_column('approval', 'my_pending', 'due_at', 'my_pending.due_at');

SELECT has_view('approval', 'my_requests', 'view approval.my_requests exists');
SELECT has_column('approval', 'my_requests', 'request_id', 'my_requests.request_id');
SELECT has_column('approval', 'my_requests', 'state', 'my_requests.state');

SELECT has_view('approval', 'request_status', 'view approval.request_status exists');
SELECT has_column('approval', 'request_status', 'request_id', 'request_status.request_id');
SELECT has_column('approval', 'request_status', 'workflow', 'request_status.workflow');
SELECT has_column('approval', 'request_status', 'title', 'request_status.title');
SELECT has_column('approval', 'request_status', 'requester', 'request_status.requester');
SELECT has_column('approval', 'request_status', 'state', 'request_status.state');
SELECT has_column('approval', 'request_status', 'waiting_on', 'request_status.waiting_on');
SELECT has_column('approval', 'request_status', 'sla_state', 'request_status.sla_state');
SELECT has_column('approval', 'request_status', 'due_at', 'request_status.due_at');

-- ---------------------------------------------------------------------------
-- Event consumers (DESIGN §7)
-- ---------------------------------------------------------------------------
SELECT has_table('approval', 'subscriber', 'table approval.subscriber exists');
SELECT has_column('approval', 'subscriber', 'name', 'subscriber.name');
SELECT has_column('approval', 'subscriber', 'last_seq', 'subscriber.last_seq');

SELECT * FROM finish();
ROLLBACK;
