-- approval 0.2.0 -> 0.3.0: the pages people open as index look-ups
-- (issue "Ready for a million requests").
--
-- Run by ALTER EXTENSION approval UPDATE.  Every change here is also in
-- sql/approval.sql, so that an upgraded database and a fresh install of
-- 0.3.0 have the same objects (test/t/004_upgrade.pl checks it).

\echo Use "ALTER EXTENSION approval UPDATE TO '0.3.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Visibility: each request carries its audience (visibility.c), filled in
-- here from its stages' targets and its votes and comments.
-- ---------------------------------------------------------------------------
ALTER TABLE approval.request ADD COLUMN audience text[] NOT NULL DEFAULT '{}';
UPDATE approval.request r
   SET audience = ARRAY(
       SELECT DISTINCT k FROM (
           SELECT pg_catalog.unnest(s.targets) FROM approval.request_stage s
            WHERE s.request_id OPERATOR(pg_catalog.=) r.id
           UNION ALL
           SELECT 'voter:' OPERATOR(pg_catalog.||) d.actor FROM approval.decision d
            WHERE d.request_id OPERATOR(pg_catalog.=) r.id
           UNION ALL
           SELECT 'voter:' OPERATOR(pg_catalog.||) d.on_behalf_of FROM approval.decision d
            WHERE d.request_id OPERATOR(pg_catalog.=) r.id AND d.on_behalf_of IS NOT NULL) x(k)
        ORDER BY k);

-- my_requests, newest first: an index scan backwards
DROP INDEX approval.request_requester;
CREATE INDEX request_requester ON approval.request (requester, created_at, id);

-- ---------------------------------------------------------------------------
-- Eligibility: who may vote where, now, filled in from the active stages of
-- the pending requests.
-- ---------------------------------------------------------------------------
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
INSERT INTO approval.pending_vote (request_id, stage, target, round, submitted_at, requester,
                                   workflow, allow_self_approval, distinct_approvers, targets)
SELECT DISTINCT s.request_id, s.stage, t.target, s.round, r.created_at, r.requester,
       r.workflow, w.allow_self_approval, w.distinct_approvers, s.targets
  FROM approval.request_stage s
  JOIN approval.request r ON r.id OPERATOR(pg_catalog.=) s.request_id
  JOIN approval.workflow w ON w.id OPERATOR(pg_catalog.=) r.workflow_id
 CROSS JOIN LATERAL pg_catalog.unnest(s.targets) t(target)
 WHERE s.state OPERATOR(pg_catalog.=) 'active'::approval.stage_state
   AND r.state OPERATOR(pg_catalog.=) 'pending'::approval.request_state;
-- read by the engine and my_pending only (as the owner)
REVOKE ALL ON approval.pending_vote FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('approval.pending_vote', '');

-- ---------------------------------------------------------------------------
-- The rules, as functions the policies, the views and the engine share
-- ---------------------------------------------------------------------------
CREATE FUNCTION approval.sees(requester text, workflow text, audience text[]) RETURNS boolean
    LANGUAGE c STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_sees';

CREATE FUNCTION approval.vote_capacity(spot approval.pending_vote) RETURNS text
    LANGUAGE c STABLE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'approval_vote_capacity';

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

REVOKE ALL ON FUNCTION approval.sees(text, text, text[]), approval.vote_capacity(approval.pending_vote),
    approval.waiting(bigint, approval.request_state, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION approval.sees(text, text, text[]), approval.vote_capacity(approval.pending_vote),
    approval.waiting(bigint, approval.request_state, text)
    TO approval_admin, approval_user, approval_gateway;

ALTER POLICY request_visible ON approval.request
    USING (approval.sees(requester, workflow, audience));
ALTER POLICY request_stage_visible ON approval.request_stage
    USING (EXISTS (SELECT 1 FROM approval.request r WHERE r.id OPERATOR(pg_catalog.=) request_id));
ALTER POLICY decision_visible ON approval.decision
    USING (EXISTS (SELECT 1 FROM approval.request r WHERE r.id OPERATOR(pg_catalog.=) request_id));
ALTER POLICY event_visible ON approval.event
    USING (EXISTS (SELECT 1 FROM approval.request r WHERE r.id OPERATOR(pg_catalog.=) request_id));

-- ---------------------------------------------------------------------------
-- The views for people (CREATE OR REPLACE sets the options anew, so
-- security_barrier is repeated)
-- ---------------------------------------------------------------------------
CREATE OR REPLACE VIEW approval.my_pending WITH (security_barrier) AS
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
       NULLIF(c.principal, approval.current_actor()) AS on_behalf_of
  FROM walk w
 CROSS JOIN LATERAL (SELECT approval.vote_capacity(w::approval.pending_vote) AS principal OFFSET 0) c
 -- per row of the walk (a lateral join is a nested loop), so its order stays
 CROSS JOIN LATERAL (SELECT q.title, q.due_at FROM approval.request q
                      WHERE q.id = w.request_id OFFSET 0) r
 WHERE c.principal IS NOT NULL;

CREATE OR REPLACE VIEW approval.my_requests WITH (security_barrier) AS
SELECT r.id AS request_id, r.workflow, r.title, r.subject, r.state,
       r.created_at AS submitted_at, r.decided_at, r.due_at, r.sla_state,
       a.active_stages, a.waiting_on
  FROM approval.request r
  LEFT JOIN LATERAL approval.waiting(r.id, r.state, r.requester) a ON true
 WHERE r.requester = (SELECT approval.current_actor())
 ORDER BY r.created_at DESC, r.id DESC;

CREATE OR REPLACE VIEW approval.request_status WITH (security_barrier) AS
SELECT r.id AS request_id, r.workflow, r.title, r.requester, r.state,
       a.active_stages, a.votes, a.waiting_on, r.sla_state, r.due_at, a.waiting_on_names
  FROM approval.request r
  LEFT JOIN LATERAL approval.waiting(r.id, r.state, r.requester) a ON true
 WHERE approval.sees(r.requester, r.workflow, r.audience);
