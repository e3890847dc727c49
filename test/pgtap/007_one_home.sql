-- pgTAP: each rule has one home (issue "Ready for a million requests").
--
-- On a generated population — people in overlapping groups, a group that
-- stands for a PostgreSQL role, managers, delegations for every workflow and
-- for one, a revoked and a future one, workflows with parallel stages,
-- quorums, "all", distinct_approvers, self-approval allowed, and requests in
-- every state — for every person and every request:
--
--   * row-level security shows the request exactly when the functions do
--     not raise AP001 for it (approval.comment() in a savepoint);
--   * approval.my_pending lists an active stage exactly when approve() (in a
--     savepoint) records that person's vote there — for distinct_approvers
--     workflows, where one approve() records at one of several listed
--     parallel stages, it records at a listed stage whenever one is listed.
--
-- Everyone acts through one gateway role (approval.actor), as a web
-- application would.  One transaction, rolled back.
\set ON_ERROR_STOP 1
BEGIN;

SELECT plan(9);

SELECT current_setting('search_path') AS search_path_before \gset
CREATE EXTENSION approval;
SELECT set_config('search_path', :'search_path_before', true) AS search_path_restored \gset

CREATE ROLE ho_gw;
GRANT approval_gateway TO ho_gw;
CREATE ROLE ho_auditors;                    -- group "audit" stands for it
DO $$
BEGIN
    FOR i IN 1..12 LOOP
        EXECUTE format('CREATE ROLE ho_p%s', i);
        EXECUTE format('GRANT approval_user TO ho_p%s', i);
    END LOOP;
END $$;
GRANT ho_auditors TO ho_p11, ho_p12;

INSERT INTO approval.principal (id, display_name, pg_role)
SELECT 'p' || i, 'Person ' || i, 'ho_p' || i FROM generate_series(1, 12) i;
UPDATE approval.principal SET manager_id = 'p' || (1 + (substr(id, 2)::int % 4)) WHERE id <> 'p1';
INSERT INTO approval.approver_group (name, pg_role) VALUES ('fin', NULL), ('ops', NULL), ('audit', 'ho_auditors');
INSERT INTO approval.group_member (group_name, principal_id) VALUES
    ('fin', 'p2'), ('fin', 'p3'), ('fin', 'p4'), ('fin', 'p5'),
    ('ops', 'p5'), ('ops', 'p6'), ('ops', 'p7'), ('ops', 'p8'),
    ('fin', 'p9'), ('ops', 'p9');

SELECT approval.define_workflow('{"name": "ho-seq", "stages": [
    {"name": "manager", "approvers": ["manager"]},
    {"name": "fin", "approvers": ["group:fin"], "min_approvals": 2}]}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "ho-par", "stages": [
    {"name": "fin", "approvers": ["group:fin"], "order": 0},
    {"name": "ops", "approvers": ["group:ops", "user:p10"], "order": 0},
    {"name": "audit", "approvers": ["group:audit"], "order": 1}]}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "ho-distinct", "distinct_approvers": true, "stages": [
    {"name": "a", "approvers": ["group:fin"], "order": 0},
    {"name": "b", "approvers": ["group:ops", "group:fin"], "order": 0},
    {"name": "c", "approvers": ["group:fin", "user:p10"]}]}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "ho-self", "allow_self_approval": true, "stages": [
    {"name": "any", "approvers": ["group:fin", "group:ops"], "min_approvals": "all"}]}') > 0 AS defined;
SELECT approval.define_workflow('{"name": "ho-role", "stages": [
    {"name": "role", "approvers": ["role:ho_auditors", "user:p1"]}]}') > 0 AS defined;

-- what everyone does, as the gateway
SET LOCAL ROLE ho_gw;
CREATE FUNCTION pg_temp.as_(who text, call text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    result text;
BEGIN
    PERFORM set_config('approval.actor', who, true);
    BEGIN
        EXECUTE 'SELECT (' || call || ')::text' INTO result;
    EXCEPTION WHEN OTHERS THEN
        result := 'ERROR ' || SQLSTATE;
    END;
    PERFORM set_config('approval.actor', '', true);
    RETURN result;
END $$;

-- delegations: p4 -> p6 for all, p3 -> p7 for ho-par only, p5 -> p12 revoked,
-- p2 -> p8 from tomorrow
SELECT pg_temp.as_('p4', $$approval.delegate('p6')$$) ~ '^\d+$' AS d1;
SELECT pg_temp.as_('p3', $$approval.delegate('p7', workflow => 'ho-par')$$) ~ '^\d+$' AS d2;
SELECT pg_temp.as_('p5', $$approval.delegate('p12')$$) AS revoked_id \gset
SELECT pg_temp.as_('p5', format($$approval.revoke_delegation(%s)$$, :revoked_id)) IS NOT NULL AS d3;
SELECT pg_temp.as_('p2', $$approval.delegate('p8', now() + interval '1 day')$$) ~ '^\d+$' AS d4;

-- requests: every workflow, every requester, then decisions that move some
-- on, reject, cancel or ask for changes, with a fixed pseudo-random order
CREATE TEMP TABLE ho_req (id bigint, wf text, requester text);
INSERT INTO ho_req
SELECT pg_temp.as_(p, format($$approval.submit(%L, '{}', %L)$$, wf, p || ' ' || wf))::bigint, wf, p
  FROM unnest(ARRAY['ho-seq', 'ho-par', 'ho-distinct', 'ho-self', 'ho-role']) wf,
       (SELECT 'p' || i AS p FROM generate_series(2, 12) i) people
 WHERE (length(wf) + substr(p, 2)::int) % 5 <> 0;
-- by the request's number: left alone; one approval; approved by whoever
-- can, twice round; rejected; cancelled; changes asked (and for some,
-- resubmitted and approved once); one approval and a comment.  People try
-- in turn, errors ignored.
CREATE TEMP TABLE ho_log (id bigint, who text, call text, outcome text);
CREATE FUNCTION pg_temp.everyone(rid bigint, call text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ho_log
    SELECT rid, 'p' || i, call, pg_temp.as_('p' || i, format(call, rid)) FROM generate_series(1, 12) i;
END $$;
-- the first person (from p<start>) for whom the call succeeds makes it
CREATE FUNCTION pg_temp.someone(rid bigint, call text, start int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    outcome text;
BEGIN
    FOR i IN 0..11 LOOP
        outcome := pg_temp.as_('p' || (1 + (start + i) % 12), format(call, rid));
        INSERT INTO ho_log VALUES (rid, 'p' || (1 + (start + i) % 12), call, outcome);
        EXIT WHEN outcome NOT LIKE 'ERROR%';
    END LOOP;
END $$;
DO $$
DECLARE
    h record;
BEGIN
    FOR h IN SELECT id FROM ho_req ORDER BY id LOOP
        CASE h.id % 8
            WHEN 1 THEN PERFORM pg_temp.someone(h.id, 'approval.approve(%s)', h.id::int);
            WHEN 2 THEN PERFORM pg_temp.everyone(h.id, 'approval.approve(%s)');
                        PERFORM pg_temp.everyone(h.id, 'approval.approve(%s)');
            WHEN 3 THEN PERFORM pg_temp.someone(h.id, 'approval.reject(%s)', h.id::int);
            WHEN 4 THEN PERFORM pg_temp.someone(h.id, 'approval.cancel(%s)', 0);
            WHEN 5 THEN PERFORM pg_temp.someone(h.id, $q$approval.request_changes(%s, 'why?')$q$, h.id::int);
                        PERFORM pg_temp.someone(h.id, 'approval.resubmit(%s)', 0);
                        PERFORM pg_temp.someone(h.id, 'approval.approve(%s)', h.id::int + 3);
            WHEN 6 THEN PERFORM pg_temp.someone(h.id, $q$approval.request_changes(%s, 'why?')$q$, h.id::int);
            WHEN 7 THEN PERFORM pg_temp.someone(h.id, 'approval.approve(%s)', h.id::int);
                        PERFORM pg_temp.someone(h.id, $q$approval.comment(%s, 'hm')$q$, h.id::int + 5);
            ELSE NULL;
        END CASE;
    END LOOP;
END $$;

RESET ROLE;
SELECT ok((SELECT count(DISTINCT state) FROM approval.request) >= 5,
          'the population has requests in (at least) five states: ' ||
          (SELECT string_agg(DISTINCT state::text, ', ') FROM approval.request));
SET LOCAL ROLE ho_gw;

-- visibility: RLS against AP001, for every person and request
CREATE FUNCTION pg_temp.visibility_mismatches() RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    bad text[] := '{}';
    who text;
    rid bigint;
    rls boolean;
    fn text;
BEGIN
    FOR who IN SELECT 'p' || i FROM generate_series(1, 12) i LOOP
        FOR rid IN SELECT id FROM ho_req LOOP
            PERFORM set_config('approval.actor', who, true);
            rls := EXISTS (SELECT 1 FROM approval.request WHERE id = rid);
            BEGIN
                PERFORM approval.comment(rid, 'probe');
                fn := 'ok';
                RAISE EXCEPTION USING ERRCODE = 'XX999';   -- undo the comment
            EXCEPTION WHEN OTHERS THEN
                IF SQLSTATE <> 'XX999' THEN fn := SQLSTATE; END IF;
            END;
            IF rls <> (fn <> 'AP001') THEN
                bad := bad || format('%s/%s: RLS %s, comment %s', who, rid, rls, fn);
            END IF;
        END LOOP;
    END LOOP;
    PERFORM set_config('approval.actor', '', true);
    RETURN bad;
END $$;
SELECT is(pg_temp.visibility_mismatches(), '{}'::text[],
          'for every person and request: RLS shows it exactly when the functions do not raise AP001');

CREATE FUNCTION pg_temp.visible_pairs() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint := 0;
    who text;
BEGIN
    FOR who IN SELECT 'p' || i FROM generate_series(1, 12) i LOOP
        PERFORM set_config('approval.actor', who, true);
        n := n + (SELECT count(*) FROM approval.request);
    END LOOP;
    PERFORM set_config('approval.actor', '', true);
    RETURN n;
END $$;
SELECT ok(pg_temp.visible_pairs() BETWEEN 1 AND 12 * (SELECT count(*) FROM ho_req) - 1,
          'and people see some requests but not all of them');

-- eligibility: my_pending against approve(), for every person and active stage
CREATE FUNCTION pg_temp.pending_mismatches(OUT bad text[], OUT listed bigint, OUT recorded bigint)
LANGUAGE plpgsql AS $$
DECLARE
    who text;
    rid bigint;
    distinct_wf boolean;
    list text[];
    rec text[];
BEGIN
    bad := '{}'; listed := 0; recorded := 0;
    FOR who IN SELECT 'p' || i FROM generate_series(1, 12) i LOOP
        FOR rid, distinct_wf IN
            SELECT h.id, h.wf = 'ho-distinct' FROM ho_req h
        LOOP
            PERFORM set_config('approval.actor', who, true);
            list := ARRAY(SELECT stage FROM approval.my_pending WHERE request_id = rid ORDER BY stage);
            BEGIN
                PERFORM approval.approve(rid);
                rec := ARRAY(SELECT d.stage FROM approval.decision d
                              WHERE d.request_id = rid AND d.actor = who AND d.decision = 'approve'
                                AND d.id > (SELECT COALESCE(max(id), 0) FROM pg_temp.ho_before)
                              ORDER BY d.stage);
                RAISE EXCEPTION USING ERRCODE = 'XX999';
            EXCEPTION WHEN OTHERS THEN
                IF SQLSTATE <> 'XX999' THEN rec := '{}'; END IF;
            END;
            listed := listed + cardinality(list);
            recorded := recorded + cardinality(rec);
            IF (NOT distinct_wf AND list <> rec)
               OR (distinct_wf AND (NOT rec <@ list OR (cardinality(list) > 0) <> (cardinality(rec) > 0))) THEN
                bad := bad || format('%s/%s: my_pending %s, approve() recorded %s', who, rid, list, rec);
            END IF;
        END LOOP;
    END LOOP;
    PERFORM set_config('approval.actor', '', true);
END $$;
RESET ROLE;
CREATE TEMP TABLE ho_before AS SELECT max(id) AS id FROM approval.decision;
GRANT SELECT ON ho_before, ho_req, ho_log TO ho_gw;
SET LOCAL ROLE ho_gw;
SELECT * FROM pg_temp.pending_mismatches() \gset
SELECT is(:'bad'::text[], '{}'::text[],
          'for every person and request: my_pending lists a stage exactly when approve() records a vote there');
SELECT ok(:listed > 40, format('my_pending listed %s stages across the population', :listed));
SELECT ok(:recorded > 40, format('approve() recorded %s votes across the population', :recorded));

-- my_pending is oldest first, for everyone (the walk is its order)
CREATE FUNCTION pg_temp.unordered() RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    bad text[] := '{}';
    who text;
    got text[];
BEGIN
    FOR who IN SELECT 'p' || i FROM generate_series(1, 12) i LOOP
        PERFORM set_config('approval.actor', who, true);
        got := ARRAY(SELECT format('%s %s %s', submitted_at, lpad(request_id::text, 12, '0'), stage)
                       FROM approval.my_pending);
        IF got <> ARRAY(SELECT x FROM unnest(got) x ORDER BY x) THEN
            bad := bad || who;
        END IF;
    END LOOP;
    PERFORM set_config('approval.actor', '', true);
    RETURN bad;
END $$;
SELECT is(pg_temp.unordered(), '{}'::text[], 'my_pending lists everyone''s stages oldest first');

-- and nothing was left behind by the probes
RESET ROLE;
SELECT is((SELECT count(*) FROM approval.decision WHERE id > (SELECT COALESCE(id, 0) FROM ho_before)), 0::bigint,
          'the probes wrote nothing');
SELECT ok((SELECT bool_and(ok) FROM approval.verify_audit()), 'every hash chain verifies');

SELECT * FROM finish();
ROLLBACK;
