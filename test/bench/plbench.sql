-- plbench: the approval engine a team writes in PL/pgSQL when it does not
-- have the extension.  It is the baseline of "make bench" (tools/bench.sh).
--
-- It does the same one-stage flow as approval.submit() / approval.approve()
-- and writes the same rows, so that the benchmark compares engines, not
-- amounts of work:
--
--   submit   one request row, one active stage row, events "submitted" and
--            "stage_activated"
--   approve  row lock on the request (FOR UPDATE), eligibility by group
--            membership (the actor's user: and group: targets overlap the
--            stage's), no self-approval, one vote row (one vote per person
--            per stage, by a unique index), the quorum count (approvals
--            against required), the stage and request state changes, events
--            "voted", "quorum_satisfied", "stage_approved", "approved"
--
-- Every event is chained per request with the built-in sha256() (hash of the
-- previous hash and the row), its chain head kept on the request row, and
-- sent with pg_notify() on channel "plbench" (the same compact JSON as the
-- extension's) unless plbench.notify is off.  The tables carry the same
-- indexes and foreign keys as the extension's tables for the same data, the
-- event log is append-only by trigger, and the functions are SECURITY DEFINER
-- with a pinned search_path, as the extension's are.
--
-- What it leaves out, in its favour: delegation and role: targets (the
-- extension resolves both on every vote), more than one stage per workflow,
-- jsonpath conditions, subjects, request_changes/resubmit, row-level security.

\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE SCHEMA plbench;
REVOKE ALL ON SCHEMA plbench FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- People and groups
-- ---------------------------------------------------------------------------
CREATE TABLE plbench.principal (
    id            text PRIMARY KEY,
    display_name  text,
    pg_role       name UNIQUE,
    active        boolean NOT NULL DEFAULT true
);

CREATE TABLE plbench.approver_group (
    name         text PRIMARY KEY,
    description  text
);

CREATE TABLE plbench.group_member (
    group_name    text NOT NULL REFERENCES plbench.approver_group (name) ON DELETE CASCADE,
    principal_id  text NOT NULL REFERENCES plbench.principal (id) ON DELETE CASCADE,
    PRIMARY KEY (group_name, principal_id)
);
CREATE INDEX ON plbench.group_member (principal_id);

-- one stage per workflow: who approves and how many must
CREATE TABLE plbench.workflow (
    name           text PRIMARY KEY,
    stage          text NOT NULL,
    approvers      text[] NOT NULL,
    min_approvals  integer NOT NULL CHECK (min_approvals >= 1),
    enabled        boolean NOT NULL DEFAULT true
);

-- ---------------------------------------------------------------------------
-- Requests, stages, votes, events.  Like the extension's, these are written
-- only by the engine's functions under the request's row lock, and carry no
-- foreign keys among themselves.
-- ---------------------------------------------------------------------------
CREATE SEQUENCE plbench.request_id_seq;
CREATE TABLE plbench.request (
    id          bigint PRIMARY KEY DEFAULT nextval('plbench.request_id_seq'),
    workflow    text NOT NULL,
    title       text,
    payload     jsonb NOT NULL DEFAULT '{}',
    requester   text NOT NULL,
    state       text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'approved', 'rejected', 'cancelled')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    decided_at  timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    last_hash   bytea                       -- head of the request's event chain
);
ALTER SEQUENCE plbench.request_id_seq OWNED BY plbench.request.id;
CREATE INDEX ON plbench.request (requester, created_at);                 -- "my requests"
CREATE INDEX ON plbench.request (created_at) WHERE state = 'pending';     -- open requests

CREATE TABLE plbench.request_stage (
    request_id    bigint NOT NULL,
    stage         text NOT NULL,
    state         text NOT NULL CHECK (state IN ('active', 'approved', 'rejected')),
    targets       text[] NOT NULL,
    required      integer NOT NULL,
    approvals     integer NOT NULL DEFAULT 0,
    activated_at  timestamptz,
    decided_at    timestamptz,
    PRIMARY KEY (request_id, stage)
);
-- "what can I approve": active stages by target
CREATE INDEX ON plbench.request_stage USING gin (targets) WHERE state = 'active';

CREATE TABLE plbench.vote (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id  bigint NOT NULL,
    stage       text NOT NULL,
    actor       text NOT NULL,
    decision    text NOT NULL CHECK (decision IN ('approve', 'reject')),
    comment     text,
    at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (request_id, stage, actor)           -- one vote per person per stage
);
CREATE INDEX ON plbench.vote (actor);

CREATE SEQUENCE plbench.event_seq;
CREATE TABLE plbench.event (
    seq         bigint PRIMARY KEY,
    request_id  bigint NOT NULL,
    at          timestamptz NOT NULL,
    kind        text NOT NULL,
    actor       text,
    data        jsonb NOT NULL DEFAULT '{}',
    hash        bytea NOT NULL
);
CREATE INDEX ON plbench.event (request_id, seq);

CREATE FUNCTION plbench.event_is_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'plbench.event is append-only: % is not allowed', TG_OP;
END
$$;
CREATE TRIGGER event_append_only BEFORE UPDATE OR DELETE ON plbench.event
    FOR EACH ROW EXECUTE FUNCTION plbench.event_is_append_only();
CREATE TRIGGER event_no_truncate BEFORE TRUNCATE ON plbench.event
    FOR EACH STATEMENT EXECUTE FUNCTION plbench.event_is_append_only();

-- ---------------------------------------------------------------------------
-- The event log: append one event to a request's chain and announce it.
-- hash = sha256(previous hash || the row as text); the time goes in as epoch
-- seconds so that the text does not depend on the session's TimeZone.
-- Returns the new head of the chain.  Internal: called by submit/approve,
-- which pin search_path.
-- ---------------------------------------------------------------------------
CREATE FUNCTION plbench.log_event(p_request bigint, p_prev bytea, p_kind text, p_actor text,
                                  p_data jsonb, p_workflow text, p_state text, p_stage text,
                                  p_targets text[])
    RETURNS bytea
    LANGUAGE plpgsql AS $$
DECLARE
    v_seq  bigint := pg_catalog.nextval('plbench.event_seq');
    v_at   timestamptz := pg_catalog.now();
    v_hash bytea;
BEGIN
    v_hash := sha256(COALESCE(p_prev, '\x'::bytea)
                     || convert_to(ROW(v_seq, p_request, date_part('epoch', v_at),
                                       p_kind, p_actor, p_data)::text, 'UTF8'));
    INSERT INTO plbench.event (seq, request_id, at, kind, actor, data, hash)
    VALUES (v_seq, p_request, v_at, p_kind, p_actor, p_data, v_hash);
    IF pg_catalog.current_setting('plbench.notify', true) IS DISTINCT FROM 'off' THEN
        PERFORM pg_catalog.pg_notify('plbench', pg_catalog.json_build_object(
            'seq', v_seq, 'kind', p_kind, 'request', p_request, 'workflow', p_workflow,
            'state', p_state, 'stage', p_stage, 'actor', p_actor, 'targets', p_targets,
            'at', v_at)::text);
    END IF;
    RETURN v_hash;
END
$$;

-- ---------------------------------------------------------------------------
-- submit(workflow, payload, title) -> request id
-- ---------------------------------------------------------------------------
CREATE FUNCTION plbench.submit(p_workflow text, p_payload jsonb DEFAULT '{}', p_title text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    v_actor  text;
    v_wf     plbench.workflow;
    v_id     bigint;
    v_h      bytea;
BEGIN
    -- who is calling: the principal mapped to the login role, else its name
    v_actor := COALESCE((SELECT p.id FROM plbench.principal p
                          WHERE p.pg_role = session_user AND p.active), session_user);

    SELECT * INTO v_wf FROM plbench.workflow w WHERE w.name = p_workflow AND w.enabled;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'workflow "%" does not exist or is disabled', p_workflow
            USING ERRCODE = 'no_data_found';
    END IF;
    IF jsonb_typeof(p_payload) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'the payload of a request must be a JSON object'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- approver groups must exist now, not when someone tries to approve
    IF EXISTS (SELECT 1 FROM unnest(v_wf.approvers) t
                WHERE t LIKE 'group:%'
                  AND NOT EXISTS (SELECT 1 FROM plbench.approver_group g
                                   WHERE g.name = substr(t, 7))) THEN
        RAISE EXCEPTION 'an approver group of workflow "%" does not exist', p_workflow
            USING ERRCODE = 'undefined_object';
    END IF;

    v_id := nextval('plbench.request_id_seq');
    v_h := plbench.log_event(v_id, NULL, 'submitted', v_actor,
                             jsonb_build_object('workflow', p_workflow, 'title', p_title),
                             p_workflow, 'pending', NULL, NULL);
    v_h := plbench.log_event(v_id, v_h, 'stage_activated', v_actor,
                             jsonb_build_object('stage', v_wf.stage, 'targets', v_wf.approvers,
                                                'required', v_wf.min_approvals),
                             p_workflow, 'pending', v_wf.stage, v_wf.approvers);
    INSERT INTO plbench.request (id, workflow, title, payload, requester, state, last_hash)
    VALUES (v_id, p_workflow, p_title, p_payload, v_actor, 'pending', v_h);
    INSERT INTO plbench.request_stage (request_id, stage, state, targets, required, activated_at)
    VALUES (v_id, v_wf.stage, 'active', v_wf.approvers, v_wf.min_approvals, now());
    RETURN v_id;
END
$$;

-- ---------------------------------------------------------------------------
-- approve(request, comment) -> the request's new state
-- ---------------------------------------------------------------------------
CREATE FUNCTION plbench.approve(p_request bigint, p_comment text DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    v_actor        text;
    v_req          record;
    v_targets      text[];
    v_stage        record;
    v_approvals    integer;
    v_stage_state  text;
    v_state        text := 'pending';
    v_h            bytea;
BEGIN
    -- who is calling: the principal mapped to the login role, else its name
    v_actor := COALESCE((SELECT p.id FROM plbench.principal p
                          WHERE p.pg_role = session_user AND p.active), session_user);

    -- every decision on a request is serialized by its row lock
    SELECT r.workflow, r.requester, r.state, r.last_hash INTO v_req
      FROM plbench.request r WHERE r.id = p_request FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'request % not found', p_request USING ERRCODE = 'no_data_found';
    END IF;
    IF v_req.state <> 'pending' THEN
        RAISE EXCEPTION 'request % is closed', p_request
            USING ERRCODE = 'object_not_in_prerequisite_state', DETAIL = 'Its state is ' || v_req.state || '.';
    END IF;

    -- eligibility: the actor itself and the groups it belongs to
    v_targets := ('user:' || v_actor)
                 || ARRAY(SELECT 'group:' || m.group_name FROM plbench.group_member m
                           WHERE m.principal_id = v_actor);
    SELECT s.stage, s.required INTO v_stage
      FROM plbench.request_stage s
     WHERE s.request_id = p_request AND s.state = 'active' AND s.targets && v_targets;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not an approver at an active stage of request %', v_actor, p_request
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF v_req.requester = v_actor THEN
        RAISE EXCEPTION '% may not approve their own request %', v_actor, p_request
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    INSERT INTO plbench.vote (request_id, stage, actor, decision, comment)
    VALUES (p_request, v_stage.stage, v_actor, 'approve', p_comment)
    ON CONFLICT (request_id, stage, actor) DO NOTHING;
    IF NOT FOUND THEN
        IF EXISTS (SELECT 1 FROM plbench.vote v
                    WHERE v.request_id = p_request AND v.stage = v_stage.stage
                      AND v.actor = v_actor AND v.decision = 'approve') THEN
            RETURN v_req.state;                 -- the same vote again: nothing to do
        END IF;
        RAISE EXCEPTION '% already voted otherwise at stage "%" of request %',
            v_actor, v_stage.stage, p_request USING ERRCODE = 'unique_violation';
    END IF;

    -- the quorum count (the row lock makes "approvals + 1" exact)
    UPDATE plbench.request_stage s
       SET approvals = s.approvals + 1,
           state = CASE WHEN s.approvals + 1 >= s.required THEN 'approved' ELSE s.state END,
           decided_at = CASE WHEN s.approvals + 1 >= s.required THEN now() END
     WHERE s.request_id = p_request AND s.stage = v_stage.stage
    RETURNING s.approvals, s.state INTO v_approvals, v_stage_state;

    v_h := plbench.log_event(p_request, v_req.last_hash, 'voted', v_actor,
                             jsonb_build_object('stage', v_stage.stage, 'decision', 'approve',
                                                'approvals', v_approvals, 'required', v_stage.required),
                             v_req.workflow, 'pending', v_stage.stage, NULL);
    IF v_stage_state = 'approved' THEN
        v_h := plbench.log_event(p_request, v_h, 'quorum_satisfied', v_actor,
                                 jsonb_build_object('stage', v_stage.stage, 'approvals', v_approvals,
                                                    'required', v_stage.required),
                                 v_req.workflow, 'pending', v_stage.stage, NULL);
        v_h := plbench.log_event(p_request, v_h, 'stage_approved', v_actor,
                                 jsonb_build_object('stage', v_stage.stage),
                                 v_req.workflow, 'pending', v_stage.stage, NULL);
        -- one stage: its approval approves the request
        v_state := 'approved';
        v_h := plbench.log_event(p_request, v_h, 'approved', v_actor, '{}',
                                 v_req.workflow, v_state, NULL, NULL);
    END IF;

    UPDATE plbench.request
       SET state = v_state,
           decided_at = CASE WHEN v_state = 'approved' THEN now() END,
           updated_at = now(),
           last_hash = v_h
     WHERE id = p_request;
    RETURN v_state;
END
$$;

-- ---------------------------------------------------------------------------
-- verify_audit(request): is the request's chain intact and does it end at
-- the head stored on the request?  (Not part of the timed work.)
-- ---------------------------------------------------------------------------
CREATE FUNCTION plbench.verify_audit(p_request bigint) RETURNS boolean
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    e       plbench.event;
    v_prev  bytea;
BEGIN
    FOR e IN SELECT * FROM plbench.event WHERE request_id = p_request ORDER BY seq LOOP
        IF e.hash <> sha256(COALESCE(v_prev, '\x'::bytea)
                            || convert_to(ROW(e.seq, e.request_id, date_part('epoch', e.at),
                                              e.kind, e.actor, e.data)::text, 'UTF8')) THEN
            RETURN false;
        END IF;
        v_prev := e.hash;
    END LOOP;
    RETURN v_prev IS NOT DISTINCT FROM (SELECT last_hash FROM plbench.request WHERE id = p_request);
END
$$;

REVOKE ALL ON ALL TABLES IN SCHEMA plbench FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA plbench FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA plbench FROM PUBLIC;
