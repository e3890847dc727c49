-- pgTAP: governed tables (DESIGN §10).
--
--   1. govern() and ungovern(): their signatures, who may call them, and
--      every refusal with its SQLSTATE;
--   2. each operation held (the row untouched, the request's payload, title
--      and subject, the held change) and applied on approval by an approver
--      who has no privilege on the table; approved at once: the change
--      proceeds in the user's statement;
--   3. rejection and cancellation discard; resubmit with a payload is 0A000;
--      a second change of a held row is AP013, a repeat a no-op;
--   4. a multi-row statement makes one request per row;
--   5. conflicts (the row changed, deleted, or appeared meanwhile): the
--      request ends rejected with reason conflict, the row untouched,
--      on_rejected called instead of on_approved;
--   6. a composite and a partitioned table's key; conditions on $.new;
--      generated and identity columns;
--   7. row-level security: only rows the requester's policies pass, and a
--      change their WITH CHECK refuses is not held;
--   8. the requester behind a gateway (approval.actor);
--   9. ungovern: the trigger goes, a held change still applies;
--  10. privileges of the new objects.
--
-- Everything happens in one transaction that is rolled back, including
-- CREATE EXTENSION and the roles the test makes.
\set ON_ERROR_STOP 1
BEGIN;

SELECT plan(170);

SELECT current_setting('search_path') AS search_path_before \gset
CREATE EXTENSION approval;
SELECT set_config('search_path', :'search_path_before', true) AS search_path_restored \gset

-- ---------------------------------------------------------------------------
-- People, tables, workflows
-- ---------------------------------------------------------------------------
CREATE ROLE ap_g_owner;         -- owns the governed tables
CREATE ROLE ap_g_alice;         -- changes them
CREATE ROLE ap_g_bob;           -- approves, with no privilege on the tables
CREATE ROLE ap_g_carol;         -- approves big changes
CREATE ROLE ap_g_stranger;      -- an approval_user who owns nothing
CREATE ROLE ap_g_admin;
CREATE ROLE ap_g_app;           -- a gateway acting for people
GRANT approval_user TO ap_g_owner, ap_g_alice, ap_g_bob, ap_g_carol, ap_g_stranger;
GRANT approval_admin TO ap_g_admin;
GRANT approval_gateway TO ap_g_app;
INSERT INTO approval.principal (id, display_name, pg_role) VALUES
    ('alice', 'Alice', 'ap_g_alice'), ('bob', 'Bob', 'ap_g_bob'), ('carol', 'Carol', 'ap_g_carol'),
    ('owner', 'Owner', 'ap_g_owner');

CREATE SCHEMA ap_g AUTHORIZATION ap_g_owner;
GRANT USAGE ON SCHEMA ap_g TO PUBLIC;

-- callbacks: which was called for which request
CREATE TABLE ap_g.cb_log (request bigint, kind text);
CREATE FUNCTION ap_g.cb_approved(request bigint) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO ap_g.cb_log VALUES (request, 'approved') $$;
CREATE FUNCTION ap_g.cb_rejected(request bigint) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO ap_g.cb_log VALUES (request, 'rejected') $$;

-- seat changes up to 10 need no approval; above 100 carol approves too
SELECT approval.define_workflow($j${"name": "g-lic",
    "auto_approve": "$.operation == \"UPDATE\" && $.new.seats <= 10",
    "on_approved": "ap_g.cb_approved", "on_rejected": "ap_g.cb_rejected",
    "stages": [{"name": "review", "approvers": ["user:bob"], "order": 0},
               {"name": "big", "approvers": ["user:carol"], "order": 0, "when": "$.new.seats > 100"}]}$j$)
    > 0 AS defined \gset
SELECT approval.define_workflow($j${"name": "g-plain", "stages": [{"name": "review", "approvers": ["user:bob"]}]}$j$)
    > 0 AS defined \gset
SELECT approval.define_workflow($j${"name": "g-now"}$j$) > 0 AS defined \gset
SELECT approval.define_workflow($j${"name": "g-exp", "expires_after": "1 hour",
    "stages": [{"name": "review", "approvers": ["user:bob"]}]}$j$) > 0 AS defined \gset
SELECT approval.define_workflow($j${"name": "g-off", "stages": [{"name": "r", "approvers": ["user:bob"]}]}$j$)
    > 0 AS defined \gset
SELECT approval.disable_workflow('g-off') IS NULL AS disabled \gset
SELECT approval.define_workflow($j${"name": "g-ack", "require_ack": "I know",
    "stages": [{"name": "r", "approvers": ["user:bob"]}]}$j$) > 0 AS defined \gset

SET LOCAL ROLE ap_g_owner;
CREATE TABLE ap_g.licenses (id int PRIMARY KEY, product text NOT NULL, seats int NOT NULL);
INSERT INTO ap_g.licenses VALUES (1, 'db', 5), (2, 'ide', 3), (3, 'cad', 7), (4, 'crm', 1);
GRANT SELECT, INSERT, UPDATE, DELETE ON ap_g.licenses TO ap_g_alice, ap_g_app;
CREATE TABLE ap_g.nokey (a int);
CREATE TABLE ap_g.exp (id int PRIMARY KEY, v int);
INSERT INTO ap_g.exp VALUES (1, 1);
GRANT SELECT, UPDATE ON ap_g.exp TO ap_g_alice;
CREATE VIEW ap_g.lic_view AS SELECT * FROM ap_g.licenses;
CREATE SEQUENCE ap_g.seq;
CREATE TABLE ap_g.multi (id int PRIMARY KEY, n int);
INSERT INTO ap_g.multi SELECT g, 0 FROM generate_series(1, 3) g;
GRANT SELECT, UPDATE ON ap_g.multi TO ap_g_alice;
CREATE TABLE ap_g.seat (org text, id int, holder text, PRIMARY KEY (org, id));
INSERT INTO ap_g.seat VALUES ('acme', 1, 'ann'), ('acme', 2, 'ben');
GRANT SELECT, UPDATE ON ap_g.seat TO ap_g_alice;
CREATE TABLE ap_g.gen (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, qty int, price int,
                       total int GENERATED ALWAYS AS (qty * price) STORED);
GRANT SELECT, INSERT, UPDATE ON ap_g.gen TO ap_g_alice;
CREATE TABLE ap_g.docs (id int PRIMARY KEY, owner_name text NOT NULL, body text);
INSERT INTO ap_g.docs VALUES (1, 'alice', 'a1'), (2, 'carol', 'c1');
ALTER TABLE ap_g.docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY mine ON ap_g.docs TO ap_g_alice
    USING (owner_name = 'alice') WITH CHECK (owner_name = 'alice');
GRANT SELECT, INSERT, UPDATE, DELETE ON ap_g.docs TO ap_g_alice;
CREATE TYPE ap_g.mood AS ENUM ('calm', 'cross');
CREATE TABLE ap_g.cast_log (who text);
GRANT INSERT ON ap_g.cast_log TO PUBLIC;
-- a cast to json that to_jsonb() calls: it must never run as the extension's owner
CREATE FUNCTION ap_g.mood_json(m ap_g.mood) RETURNS json LANGUAGE sql
    AS $$ INSERT INTO ap_g.cast_log VALUES (current_user); SELECT to_json(m::text) $$;
CREATE CAST (ap_g.mood AS json) WITH FUNCTION ap_g.mood_json(ap_g.mood);
CREATE TABLE ap_g.moods (id int PRIMARY KEY, m ap_g.mood);
INSERT INTO ap_g.moods VALUES (1, 'calm');
GRANT SELECT, UPDATE ON ap_g.moods TO ap_g_alice;
CREATE TABLE ap_g.part (id int, region text, v int, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE ap_g.part_eu PARTITION OF ap_g.part FOR VALUES IN ('eu');
CREATE TABLE ap_g.part_us PARTITION OF ap_g.part FOR VALUES IN ('us');
INSERT INTO ap_g.part VALUES (1, 'eu', 10), (2, 'us', 20);
GRANT SELECT, UPDATE ON ap_g.part TO ap_g_alice;
RESET ROLE;
CREATE TEMP TABLE ap_g_temp (id int PRIMARY KEY);

-- the latest request with this title, and what one request looks like
CREATE FUNCTION ap_g.req(t text) RETURNS bigint LANGUAGE sql
    AS $$ SELECT max(id) FROM approval.request WHERE title = t $$;
CREATE FUNCTION ap_g.outcome(r bigint) RETURNS text LANGUAGE sql
    AS $$ SELECT COALESCE(outcome, 'held') FROM approval.held_change WHERE request_id = r $$;

-- ---------------------------------------------------------------------------
-- 1. govern(), ungovern(): surface and refusals
-- ---------------------------------------------------------------------------
SELECT has_function('approval', 'govern', ARRAY['regclass', 'text', 'text[]'],
                    'approval.govern(regclass, text, text[]) exists');
SELECT function_returns('approval', 'govern', ARRAY['regclass', 'text', 'text[]'], 'void',
                        'approval.govern(...) returns void');
SELECT has_function('approval', 'ungovern', ARRAY['regclass'], 'approval.ungovern(regclass) exists');
SELECT function_returns('approval', 'governed_change', ARRAY[]::text[], 'trigger',
                        'approval.governed_change() is a trigger function');
SELECT is((SELECT pg_get_function_arguments('approval.govern(regclass,text,text[])'::regprocedure)),
          $$tbl regclass, workflow text, operations text[] DEFAULT '{INSERT,UPDATE,DELETE}'::text[]$$,
          'govern() governs every operation by default');
SELECT has_table('approval', 'governed', 'approval.governed exists');
SELECT columns_are('approval', 'governed',
                   ARRAY['tbl', 'workflow', 'operations', 'key_columns', 'governed_by', 'governed_at'],
                   'approval.governed: tbl, workflow, operations, key columns, who and when');

SET LOCAL ROLE ap_g_owner;
SELECT throws_ok($$SELECT approval.govern('ap_g.nokey', 'g-plain')$$, '55000',
                 'table ap_g.nokey has no primary key', 'a table without a primary key is refused (55000)');
SELECT throws_ok($$SELECT approval.govern('ap_g.lic_view', 'g-plain')$$, '42809', NULL,
                 'a view is refused (42809)');
SELECT throws_ok($$SELECT approval.govern('ap_g.seq', 'g-plain')$$, '42809', NULL,
                 'a sequence is refused (42809)');
SELECT throws_ok($$SELECT approval.govern('ap_g.licenses', 'g-plain', '{UPDATE,MERGE}')$$, '22023',
                 '"MERGE" is not an operation that can be governed', 'an unknown operation is 22023');
SELECT throws_ok($$SELECT approval.govern('ap_g.licenses', 'g-plain', '{TRUNCATE}')$$, '22023',
                 '"TRUNCATE" is not an operation that can be governed', 'TRUNCATE cannot be governed (22023)');
SELECT throws_ok($$SELECT approval.govern('ap_g.licenses', 'g-plain', '{}')$$, '22023',
                 'no operation to govern', 'no operation is 22023');
SELECT throws_ok($$SELECT approval.govern('ap_g.licenses', NULL)$$, '22004', NULL,
                 'a NULL workflow is 22004');
SELECT throws_ok($$SELECT approval.govern('ap_g.licenses', 'g-nosuch')$$, 'AP008',
                 'workflow "g-nosuch" does not exist', 'an unknown workflow is AP008');
SELECT throws_ok($$SELECT approval.govern('ap_g.licenses', 'g-off')$$, 'AP008',
                 'workflow "g-off" is disabled', 'a disabled workflow is AP008');
SELECT throws_ok($$SELECT approval.govern('ap_g.licenses', 'g-ack')$$, '22023', NULL,
                 'a workflow that needs an acknowledgment is 22023');
SELECT throws_ok($$SELECT approval.govern('approval.principal', 'g-plain')$$, '42501', NULL,
                 'a table of the approval schema is refused (42501)');
RESET ROLE;
SELECT throws_ok($$SELECT approval.govern('approval.request', 'g-plain')$$, '42501', NULL,
                 'even for a superuser, the extension''s tables are not governable');
SELECT throws_ok($$SELECT approval.govern('ap_g_temp', 'g-plain')$$, '0A000', NULL,
                 'a temporary table is refused (0A000)');
SET LOCAL ROLE ap_g_stranger;
SELECT throws_ok($$SELECT approval.govern('ap_g.licenses', 'g-lic')$$, '42501',
                 'role "ap_g_stranger" may not govern table ap_g.licenses',
                 'a caller neither owner nor admin is refused (42501)');
SELECT throws_ok($$SELECT approval.ungovern('ap_g.licenses')$$, '42501', NULL,
                 'nor may they ungovern (42501)');
SET LOCAL ROLE ap_g_owner;
SELECT throws_ok($$SELECT approval.ungovern('ap_g.licenses')$$, '42704',
                 'table ap_g.licenses is not governed', 'ungovern of a table not governed is 42704');
SELECT is((SELECT count(*)::int FROM approval.governed), 0, 'the refusals registered nothing');
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgname = 'approval_governed'), 0,
          'the refusals installed no trigger');

SELECT lives_ok($$SELECT approval.govern('ap_g.licenses', 'g-lic')$$, 'the owner may govern its table');
SELECT throws_ok($$SELECT approval.govern('ap_g.licenses', 'g-plain')$$, '42710',
                 'table ap_g.licenses is already governed', 'governing twice is 42710');
RESET ROLE;
SET LOCAL ROLE ap_g_admin;
SELECT lives_ok($$SELECT approval.govern('ap_g.multi', 'g-plain', '{update}')$$,
                'an approval_admin may govern a table it does not own (operations in any case)');
SELECT lives_ok($$SELECT approval.govern('ap_g.seat', 'g-plain')$$, 'a composite key');
SELECT lives_ok($$SELECT approval.govern('ap_g.gen', 'g-plain', '{INSERT,UPDATE}')$$,
                'generated and identity columns');
SELECT lives_ok($$SELECT approval.govern('ap_g.docs', 'g-plain')$$, 'a table under row-level security');
SELECT lives_ok($$SELECT approval.govern('ap_g.part', 'g-plain', '{UPDATE}')$$, 'a partitioned table');
SELECT lives_ok($$SELECT approval.govern('ap_g.moods', 'g-plain')$$, 'a table with a cast to json');
SELECT lives_ok($$SELECT approval.govern('ap_g.exp', 'g-exp')$$, 'a workflow that expires');
RESET ROLE;
SELECT is((SELECT row(workflow, operations, key_columns, governed_by)::text FROM approval.governed
            WHERE tbl = 'ap_g.licenses'::regclass),
          row('g-lic', '{INSERT,UPDATE,DELETE}'::text[], '{id}'::text[], 'ap_g_owner')::text,
          'approval.governed: workflow, operations, key, who');
SELECT is((SELECT row(operations, key_columns)::text FROM approval.governed WHERE tbl = 'ap_g.seat'::regclass),
          row('{INSERT,UPDATE,DELETE}'::text[], '{org,id}'::text[])::text,
          'approval.governed: a composite key in index order');
SELECT is((SELECT operations FROM approval.governed WHERE tbl = 'ap_g.multi'::regclass), '{UPDATE}',
          'approval.governed: the operations given, canonical');
SELECT is((SELECT tgtype::int & (4 | 8 | 16) FROM pg_trigger
            WHERE tgrelid = 'ap_g.multi'::regclass AND tgname = 'approval_governed'), 16,
          'the trigger fires for the governed operations only');

-- ---------------------------------------------------------------------------
-- 2. Held, then applied
-- ---------------------------------------------------------------------------
SELECT ok(NOT has_table_privilege('ap_g_bob', 'ap_g.licenses', 'SELECT, UPDATE, INSERT, DELETE'),
          'the approver has no privilege on the table');

-- UPDATE
SET LOCAL ROLE ap_g_alice;
UPDATE ap_g.licenses SET seats = 20 WHERE id = 1;
RESET ROLE;
SELECT is((SELECT seats FROM ap_g.licenses WHERE id = 1), 5, 'UPDATE held: the row is unchanged');
SELECT ap_g.req('UPDATE ap_g.licenses (id=1)') AS upd \gset
SELECT ok(:'upd' <> '', 'UPDATE held: a request titled "UPDATE ap_g.licenses (id=1)"');
SELECT is((SELECT row(workflow, requester, subject, state)::text FROM approval.request WHERE id = :upd),
          row('g-lic', 'alice', 'ap_g.licenses {"id": 1}', 'pending')::text,
          'UPDATE held: workflow, requester, a subject naming the table and key, pending');
SELECT is((SELECT payload FROM approval.request WHERE id = :upd),
          '{"table": "ap_g.licenses", "operation": "UPDATE", "key": {"id": 1},
            "old": {"id": 1, "product": "db", "seats": 5}, "new": {"id": 1, "product": "db", "seats": 20}}'::jsonb,
          'UPDATE held: the payload has table, operation, old, new and key');
SELECT is((SELECT row(tbl, operation, old_row, new_row, key, outcome)::text FROM approval.held_change
            WHERE request_id = :upd),
          row('ap_g.licenses'::regclass, 'UPDATE', '{"id": 1, "product": "db", "seats": 5}'::jsonb,
              '{"id": 1, "product": "db", "seats": 20}'::jsonb, '{"id": 1}'::jsonb, NULL::text)::text,
          'UPDATE held: the held change is stored');
SELECT is((SELECT state::text FROM approval.request_stage WHERE request_id = :upd AND stage = 'big'), 'skipped',
          'a condition on $.new skips a stage (20 seats: no big stage)');

SET LOCAL ROLE ap_g_alice;
UPDATE ap_g.licenses SET seats = 20 WHERE id = 1;
RESET ROLE;
SELECT is((SELECT count(*)::int FROM approval.request WHERE title = 'UPDATE ap_g.licenses (id=1)'), 1,
          'the same change again by the same requester is a no-op');
SET LOCAL ROLE ap_g_alice;
SELECT throws_ok($$UPDATE ap_g.licenses SET seats = 30 WHERE id = 1$$, 'AP013', NULL,
                 'another change of a held row is AP013');
RESET ROLE;

SET LOCAL ROLE ap_g_bob;
SELECT is(approval.approve(:upd)::text, 'approved', 'UPDATE: the approval returns approved');
RESET ROLE;
SELECT is((SELECT seats FROM ap_g.licenses WHERE id = 1), 20, 'UPDATE applied by an approver without privileges');
SELECT is(ap_g.outcome(:upd), 'applied', 'UPDATE: the held change is applied');
SELECT is((SELECT decided_at IS NOT NULL FROM approval.held_change WHERE request_id = :upd), true,
          'UPDATE: the held change has its decision time');
SELECT is((SELECT array_agg(kind ORDER BY kind) FROM ap_g.cb_log WHERE request = :upd), '{approved}',
          'UPDATE: on_approved was called');

-- conditions: approved at once (<= 10 seats) proceeds in the statement
SET LOCAL ROLE ap_g_alice;
UPDATE ap_g.licenses SET seats = 9 WHERE id = 2;
RESET ROLE;
SELECT is((SELECT seats FROM ap_g.licenses WHERE id = 2), 9, 'approved at once: the change is made by the statement');
SELECT is((SELECT state::text FROM approval.request WHERE id = ap_g.req('UPDATE ap_g.licenses (id=2)')), 'approved',
          'approved at once: the request is approved');
SELECT is(ap_g.outcome(ap_g.req('UPDATE ap_g.licenses (id=2)')), 'applied',
          'approved at once: the held change is marked applied');

-- a condition on $.new adds a stage (> 100 seats)
SET LOCAL ROLE ap_g_alice;
UPDATE ap_g.licenses SET seats = 150 WHERE id = 2;
RESET ROLE;
SELECT ap_g.req('UPDATE ap_g.licenses (id=2)') AS big \gset
SELECT is((SELECT array_agg(stage ORDER BY stage) FROM approval.request_stage
            WHERE request_id = :big AND state = 'active'), '{big,review}',
          'a condition on $.new routes to an extra stage (150 seats)');
SET LOCAL ROLE ap_g_bob;
SELECT is(approval.approve(:big)::text, 'pending', 'one stage of two approved: still pending');
RESET ROLE;
SELECT is((SELECT seats FROM ap_g.licenses WHERE id = 2), 9, 'not applied before the request is approved');
SET LOCAL ROLE ap_g_carol;
SELECT is(approval.approve(:big)::text, 'approved', 'the last stage approves');
RESET ROLE;
SELECT is((SELECT seats FROM ap_g.licenses WHERE id = 2), 150, 'applied on the last approval');

-- INSERT
SET LOCAL ROLE ap_g_alice;
INSERT INTO ap_g.licenses VALUES (10, 'erp', 3);
RESET ROLE;
SELECT ap_g.req('INSERT ap_g.licenses (id=10)') AS ins \gset
SELECT is((SELECT count(*)::int FROM ap_g.licenses WHERE id = 10), 0, 'INSERT held: no row');
SELECT is((SELECT payload - 'table' FROM approval.request WHERE id = :ins),
          '{"operation": "INSERT", "key": {"id": 10}, "old": null, "new": {"id": 10, "product": "erp", "seats": 3}}'::jsonb,
          'INSERT held: old is null, the key is the new row''s');
SET LOCAL ROLE ap_g_bob;
SELECT is(approval.approve(:ins)::text, 'approved', 'INSERT approved');
RESET ROLE;
SELECT is((SELECT row(product, seats)::text FROM ap_g.licenses WHERE id = 10), '(erp,3)', 'INSERT applied');
SELECT is(ap_g.outcome(:ins), 'applied', 'INSERT: the held change is applied');

SET LOCAL ROLE ap_g_alice;
SELECT throws_ok($$INSERT INTO ap_g.licenses VALUES (1, 'dup', 1)$$, '23505', NULL,
                 'an INSERT of a key that exists fails as the requester''s own would (23505)');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM approval.request WHERE title = 'INSERT ap_g.licenses (id=1)'), 0,
          'and is not held');

-- DELETE
SET LOCAL ROLE ap_g_alice;
DELETE FROM ap_g.licenses WHERE id = 10;
RESET ROLE;
SELECT ap_g.req('DELETE ap_g.licenses (id=10)') AS del \gset
SELECT is((SELECT count(*)::int FROM ap_g.licenses WHERE id = 10), 1, 'DELETE held: the row is there');
SELECT is((SELECT payload->'new' FROM approval.request WHERE id = :del), 'null'::jsonb, 'DELETE held: new is null');
SET LOCAL ROLE ap_g_bob;
SELECT is(approval.approve(:del)::text, 'approved', 'DELETE approved');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM ap_g.licenses WHERE id = 10), 0, 'DELETE applied');
SELECT is(ap_g.outcome(:del), 'applied', 'DELETE: the held change is applied');

-- ---------------------------------------------------------------------------
-- 3. Rejection, cancellation, resubmit
-- ---------------------------------------------------------------------------
SET LOCAL ROLE ap_g_alice;
UPDATE ap_g.licenses SET seats = 50 WHERE id = 3;
DELETE FROM ap_g.licenses WHERE id = 4;
RESET ROLE;
SELECT ap_g.req('UPDATE ap_g.licenses (id=3)') AS rej \gset
SELECT ap_g.req('DELETE ap_g.licenses (id=4)') AS can \gset
SET LOCAL ROLE ap_g_bob;
SELECT is(approval.reject(:rej, 'too_many')::text, 'rejected', 'a held UPDATE rejected');
RESET ROLE;
SELECT is((SELECT seats FROM ap_g.licenses WHERE id = 3), 7, 'rejected: the row is unchanged');
SELECT is(ap_g.outcome(:rej), 'discarded', 'rejected: the held change is discarded');
SELECT is((SELECT array_agg(kind) FROM ap_g.cb_log WHERE request = :rej), '{rejected}',
          'rejected: on_rejected was called');
SET LOCAL ROLE ap_g_alice;
SELECT is(approval.cancel(:can)::text, 'cancelled', 'a held DELETE cancelled by its requester');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM ap_g.licenses WHERE id = 4), 1, 'cancelled: the row is there');
SELECT is(ap_g.outcome(:can), 'discarded', 'cancelled: the held change is discarded');

SET LOCAL ROLE ap_g_alice;
UPDATE ap_g.exp SET v = 2 WHERE id = 1;
RESET ROLE;
SELECT is(approval.tick(now() + interval '2 hours'), 1, 'the timer fires the expiry');
SELECT is((SELECT state::text FROM approval.request WHERE id = ap_g.req('UPDATE ap_g.exp (id=1)')), 'expired',
          'a held change expired');
SELECT is(ap_g.outcome(ap_g.req('UPDATE ap_g.exp (id=1)')), 'discarded', 'expired: the held change is discarded');
SELECT is((SELECT v FROM ap_g.exp), 1, 'expired: the row is unchanged');

SET LOCAL ROLE ap_g_alice;
UPDATE ap_g.licenses SET seats = 60 WHERE id = 3;
RESET ROLE;
SELECT ap_g.req('UPDATE ap_g.licenses (id=3)') AS chg \gset
SET LOCAL ROLE ap_g_bob;
SELECT is(approval.request_changes(:chg, 'why?')::text, 'changes_requested', 'changes requested of a held change');
SET LOCAL ROLE ap_g_alice;
SELECT throws_ok(format($$SELECT approval.resubmit(%s, '{"seats": 1}')$$, :chg), '0A000', NULL,
                 'resubmit with a new payload of a held change is 0A000');
SELECT is(approval.resubmit(:chg, comment => 'because')::text, 'pending', 'resubmit without a payload works');
SET LOCAL ROLE ap_g_bob;
SELECT is(approval.approve(:chg)::text, 'approved', 'approved after resubmit');
RESET ROLE;
SELECT is((SELECT seats FROM ap_g.licenses WHERE id = 3), 60, 'the stored change is applied');

-- ---------------------------------------------------------------------------
-- 4. A multi-row statement: one request per row
-- ---------------------------------------------------------------------------
SET LOCAL ROLE ap_g_alice;
UPDATE ap_g.multi SET n = n + 1;
RESET ROLE;
SELECT is((SELECT count(*)::int FROM approval.request WHERE title LIKE 'UPDATE ap_g.multi (id=%)'), 3,
          'a three-row UPDATE makes three requests');
SELECT is((SELECT sum(n)::int FROM ap_g.multi), 0, 'no row changed yet');
SET LOCAL ROLE ap_g_bob;
SELECT is(approval.approve(ap_g.req('UPDATE ap_g.multi (id=2)'))::text, 'approved', 'one of them approved');
RESET ROLE;
SELECT is((SELECT array_agg(n ORDER BY id) FROM ap_g.multi), '{0,1,0}', 'only its row changed');

-- ---------------------------------------------------------------------------
-- 5. Conflicts: the row changed, vanished or appeared meanwhile
-- ---------------------------------------------------------------------------
SET LOCAL ROLE ap_g_alice;
UPDATE ap_g.licenses SET seats = 70 WHERE id = 3;
DELETE FROM ap_g.licenses WHERE id = 2;
DELETE FROM ap_g.licenses WHERE id = 4;
INSERT INTO ap_g.licenses VALUES (11, 'bi', 4);
RESET ROLE;
SELECT ap_g.req('UPDATE ap_g.licenses (id=3)') AS c_upd, ap_g.req('DELETE ap_g.licenses (id=2)') AS c_del,
       ap_g.req('DELETE ap_g.licenses (id=4)') AS c_gone, ap_g.req('INSERT ap_g.licenses (id=11)') AS c_ins \gset
-- the owner changes the rows directly, past the trigger
SET LOCAL session_replication_role = replica;
UPDATE ap_g.licenses SET seats = 61 WHERE id = 3;
UPDATE ap_g.licenses SET product = 'ide2' WHERE id = 2;
DELETE FROM ap_g.licenses WHERE id = 4;
INSERT INTO ap_g.licenses VALUES (11, 'bi-direct', 8);
SET LOCAL session_replication_role = origin;
SET LOCAL ROLE ap_g_bob;
SELECT is(approval.approve(:c_upd)::text, 'rejected', 'UPDATE of a row changed meanwhile: the approval returns rejected');
SELECT is(approval.approve(:c_del)::text, 'rejected', 'DELETE of a row changed meanwhile: rejected');
SELECT is(approval.approve(:c_gone)::text, 'rejected', 'DELETE of a row deleted meanwhile: rejected');
SELECT is(approval.approve(:c_ins)::text, 'rejected', 'INSERT of a row that appeared meanwhile: rejected');
RESET ROLE;
SELECT is((SELECT seats FROM ap_g.licenses WHERE id = 3), 61, 'UPDATE conflict: the row keeps the direct change');
SELECT is((SELECT product FROM ap_g.licenses WHERE id = 2), 'ide2', 'DELETE conflict: the row is still there');
SELECT is((SELECT product FROM ap_g.licenses WHERE id = 11), 'bi-direct', 'INSERT conflict: the other row stays');
SELECT is((SELECT array_agg(ap_g.outcome(r) ORDER BY r) FROM unnest(ARRAY[:c_upd, :c_del, :c_gone, :c_ins]::bigint[]) r),
          '{conflict,conflict,conflict,conflict}', 'the held changes are marked conflict');
SELECT is((SELECT array_agg(state::text ORDER BY id) FROM approval.request WHERE id IN (:c_upd, :c_del, :c_gone, :c_ins)),
          '{rejected,rejected,rejected,rejected}', 'the requests are rejected');
SELECT is((SELECT data->>'reason' FROM approval.event WHERE request_id = :c_upd AND kind = 'rejected'), 'conflict',
          'the rejected event gives the reason conflict');
SELECT is((SELECT count(*)::int FROM approval.event WHERE request_id = :c_upd AND kind = 'approved'), 0,
          'no approved event');
SELECT is((SELECT array_agg(kind) FROM ap_g.cb_log WHERE request = :c_upd), '{rejected}',
          'a conflict calls on_rejected, not on_approved');
SELECT is((SELECT array_agg(state::text) FROM approval.request_stage WHERE request_id = :c_upd AND stage = 'review'),
          '{approved}', 'the stage stays approved: the approvers did approve');

-- ---------------------------------------------------------------------------
-- 6. Composite and partitioned keys, generated and identity columns
-- ---------------------------------------------------------------------------
SET LOCAL ROLE ap_g_alice;
UPDATE ap_g.seat SET holder = 'cat' WHERE org = 'acme' AND id = 2;
RESET ROLE;
SELECT ap_g.req('UPDATE ap_g.seat (org=acme, id=2)') AS seat \gset
SELECT ok(:'seat' <> '', 'a composite key: titled with both columns');
SELECT is((SELECT row(subject, payload->'key')::text FROM approval.request WHERE id = :seat),
          row('ap_g.seat {"id": 2, "org": "acme"}', '{"org": "acme", "id": 2}'::jsonb)::text,
          'a composite key: subject and key');
SET LOCAL ROLE ap_g_bob;
SELECT is(approval.approve(:seat)::text, 'approved', 'composite key approved');
RESET ROLE;
SELECT is((SELECT array_agg(holder ORDER BY id) FROM ap_g.seat), '{ann,cat}', 'composite key: the right row changed');

SET LOCAL ROLE ap_g_alice;
UPDATE ap_g.part SET v = 11 WHERE id = 1;
RESET ROLE;
SELECT ap_g.req('UPDATE ap_g.part (id=1, region=eu)') AS part \gset
SELECT is((SELECT payload->>'table' FROM approval.request WHERE id = :part), 'ap_g.part',
          'a partition''s change is a change of the governed partitioned table');
SET LOCAL ROLE ap_g_bob;
SELECT is(approval.approve(:part)::text, 'approved', 'partitioned table: approved');
RESET ROLE;
SELECT is((SELECT v FROM ap_g.part WHERE id = 1), 11, 'partitioned table: applied');

SET LOCAL ROLE ap_g_alice;
INSERT INTO ap_g.gen (qty, price) VALUES (2, 3);
RESET ROLE;
SELECT ap_g.req('INSERT ap_g.gen (id=1)') AS gen \gset
SELECT is((SELECT payload->'new' FROM approval.request WHERE id = :gen), '{"id": 1, "qty": 2, "price": 3}'::jsonb,
          'identity: the new row has its id; a generated column is left out');
SET LOCAL ROLE ap_g_bob;
SELECT is(approval.approve(:gen)::text, 'approved', 'identity ALWAYS and generated: INSERT approved');
RESET ROLE;
SELECT is((SELECT row(id, qty, price, total)::text FROM ap_g.gen), '(1,2,3,6)',
          'INSERT applied with the held identity value; the generated column computed');
SET LOCAL ROLE ap_g_alice;
UPDATE ap_g.gen SET qty = 5 WHERE id = 1;
RESET ROLE;
SET LOCAL ROLE ap_g_bob;
SELECT is(approval.approve(ap_g.req('UPDATE ap_g.gen (id=1)'))::text, 'approved', 'UPDATE of a table with generated columns approved');
RESET ROLE;
SELECT is((SELECT row(id, qty, price, total)::text FROM ap_g.gen), '(1,5,3,15)',
          'UPDATE applied; the generated column recomputed');

-- ---------------------------------------------------------------------------
-- 7. Row-level security
-- ---------------------------------------------------------------------------
SET LOCAL ROLE ap_g_alice;
UPDATE ap_g.docs SET body = 'a2' WHERE id = 1;
UPDATE ap_g.docs SET body = 'c2' WHERE id = 2;
SELECT throws_ok($$UPDATE ap_g.docs SET owner_name = 'carol' WHERE id = 1$$, '42501', NULL,
                 'an UPDATE the policy''s WITH CHECK refuses is refused, not held');
SELECT throws_ok($$INSERT INTO ap_g.docs VALUES (3, 'carol', 'x')$$, '42501', NULL,
                 'an INSERT the policy''s WITH CHECK refuses is refused, not held');
SELECT lives_ok($$INSERT INTO ap_g.docs VALUES (4, 'alice', 'x')$$, 'an INSERT the policy allows is held');
RESET ROLE;
SELECT is((SELECT array_agg(title ORDER BY id) FROM approval.request WHERE title LIKE '% ap_g.docs %'),
          '{"UPDATE ap_g.docs (id=1)","INSERT ap_g.docs (id=4)"}',
          'held: only the changes the policies let alice make (not carol''s row, not the WITH CHECK failures)');
SELECT is((SELECT count(*)::int FROM ap_g.docs WHERE id = 4), 0, 'the trial of the INSERT left no row');
SET LOCAL ROLE ap_g_bob;
SELECT is(approval.approve(ap_g.req('UPDATE ap_g.docs (id=1)'))::text, 'approved', 'RLS: approved');
SELECT is(approval.approve(ap_g.req('INSERT ap_g.docs (id=4)'))::text, 'approved', 'RLS: INSERT approved');
RESET ROLE;
SELECT is((SELECT array_agg(body ORDER BY id) FROM ap_g.docs), '{a2,c1,x}',
          'RLS: applied as the owner though the approver may not touch the table');

-- the owner's cast to json runs as the requester and the owner, never as
-- the extension's owner
SET LOCAL ROLE ap_g_alice;
UPDATE ap_g.moods SET m = 'cross' WHERE id = 1;
RESET ROLE;
SET LOCAL ROLE ap_g_bob;
SELECT is(approval.approve(ap_g.req('UPDATE ap_g.moods (id=1)'))::text, 'approved', 'a change with a cast to json approved');
RESET ROLE;
SELECT is((SELECT m::text FROM ap_g.moods), 'cross', 'and applied');
SELECT is((SELECT array_agg(DISTINCT who ORDER BY who) FROM ap_g.cast_log), '{ap_g_alice,ap_g_owner}',
          'to_jsonb() ran the cast as the requester (holding) and the table''s owner (applying) only');

-- an UPDATE that changes nothing has nothing to approve
SET LOCAL ROLE ap_g_alice;
UPDATE ap_g.seat SET holder = holder;
RESET ROLE;
SELECT is((SELECT count(*)::int FROM approval.request WHERE title LIKE 'UPDATE ap_g.seat %'), 1,
          'an UPDATE that changes no value makes no request');

-- ---------------------------------------------------------------------------
-- 8. The requester behind a gateway
-- ---------------------------------------------------------------------------
SET LOCAL ROLE ap_g_app;
SET LOCAL approval.actor = 'alice';
UPDATE ap_g.licenses SET seats = 44 WHERE id = 1;
RESET approval.actor;
RESET ROLE;
SELECT is((SELECT requester FROM approval.request WHERE id = ap_g.req('UPDATE ap_g.licenses (id=1)')), 'alice',
          'behind a gateway the requester is the actor the gateway names');

-- an approval through an actionable token applies the change too
SET LOCAL ROLE ap_g_alice;
UPDATE ap_g.seat SET holder = 'dan' WHERE org = 'acme' AND id = 1;
RESET ROLE;
SET LOCAL ROLE ap_g_app;
SELECT approval.issue_token(ap_g.req('UPDATE ap_g.seat (org=acme, id=1)'), 'bob') AS seat_token \gset
SELECT is(approval.redeem_token(:'seat_token', 'approve')::text, 'approved', 'a held change approved with a token');
RESET ROLE;
SELECT is((SELECT holder FROM ap_g.seat WHERE id = 1), 'dan', 'and applied');

-- ---------------------------------------------------------------------------
-- 9. ungovern
-- ---------------------------------------------------------------------------
SELECT ap_g.req('UPDATE ap_g.licenses (id=1)') AS left_held \gset
SET LOCAL ROLE ap_g_owner;
SELECT lives_ok($$SELECT approval.ungovern('ap_g.licenses')$$, 'the owner ungoverns its table');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'ap_g.licenses'::regclass), 0, 'ungovern: the trigger is gone');
SELECT is((SELECT count(*)::int FROM approval.governed WHERE tbl = 'ap_g.licenses'::regclass), 0,
          'ungovern: the registration is gone');
SET LOCAL ROLE ap_g_alice;
UPDATE ap_g.licenses SET seats = 12 WHERE id = 3;
RESET ROLE;
SELECT is((SELECT seats FROM ap_g.licenses WHERE id = 3), 12, 'ungoverned: a change is made at once');
SET LOCAL ROLE ap_g_bob;
SELECT is(approval.approve(:left_held)::text, 'approved', 'a change held before ungovern is still approved');
RESET ROLE;
SELECT is((SELECT seats FROM ap_g.licenses WHERE id = 1), 44, 'and applied');
SET LOCAL ROLE ap_g_admin;
SELECT lives_ok($$SELECT approval.ungovern('ap_g.multi')$$, 'an approval_admin ungoverns a table it does not own');
RESET ROLE;
-- a governed table dropped leaves its registration: an admin removes it by OID
SELECT 'ap_g.moods'::regclass::oid AS moods_oid \gset
DROP TABLE ap_g.moods;
SET LOCAL ROLE ap_g_owner;
SELECT throws_ok(format('SELECT approval.ungovern(%s)', :moods_oid), '42501', NULL,
                 'only an admin ungoverns a table that no longer exists');
SET LOCAL ROLE ap_g_admin;
SELECT lives_ok(format('SELECT approval.ungovern(%s)', :moods_oid), 'an admin ungoverns a dropped table by its OID');
SELECT throws_ok(format('SELECT approval.ungovern(%s)', :moods_oid), '42704', NULL, 'once');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 10. Privileges of the new objects
-- ---------------------------------------------------------------------------
SELECT ok(has_function_privilege(r, f, 'EXECUTE'), format('%s may execute %s', r, f))
  FROM unnest(ARRAY['approval_admin', 'approval_user']) r,
       unnest(ARRAY['approval.govern(regclass,text,text[])', 'approval.ungovern(regclass)']) f
 ORDER BY r, f;
SELECT ok(NOT has_function_privilege(r, f, 'EXECUTE'), format('%s may not execute %s', r, f))
  FROM unnest(ARRAY['public', 'approval_gateway']) r,
       unnest(ARRAY['approval.govern(regclass,text,text[])', 'approval.ungovern(regclass)',
                    'approval.governed_change()']) f
 ORDER BY r, f;
SELECT ok(has_table_privilege(r, 'approval.governed', 'SELECT'), format('%s may read approval.governed', r))
  FROM unnest(ARRAY['approval_admin', 'approval_user']) r ORDER BY r;
SELECT ok(NOT has_table_privilege(r, t, 'INSERT, UPDATE, DELETE, TRUNCATE'), format('%s may not write %s', r, t))
  FROM unnest(ARRAY['approval_admin', 'approval_user', 'approval_gateway']) r,
       unnest(ARRAY['approval.governed', 'approval.held_change']) t
 ORDER BY r, t;
SELECT ok(has_table_privilege('approval_admin', 'approval.held_change', 'SELECT'), 'approval_admin may read approval.held_change');
SELECT ok(NOT has_table_privilege('approval_user', 'approval.held_change', 'SELECT'),
          'approval_user may not read approval.held_change');
SELECT ok(NOT has_table_privilege('public', t, 'SELECT'), format('PUBLIC may not read %s', t))
  FROM unnest(ARRAY['approval.governed', 'approval.held_change']) t ORDER BY t;
SET LOCAL ROLE ap_g_alice;
SELECT is((SELECT count(*)::int FROM approval.governed), 5, 'an approval_user reads approval.governed');
SELECT throws_ok($$DELETE FROM approval.governed$$, '42501', NULL, 'an approval_user may not write it');
RESET ROLE;
SET LOCAL ROLE ap_g_admin;
SELECT throws_ok($$UPDATE approval.held_change SET outcome = 'applied'$$, '42501', NULL,
                 'an approval_admin may not write approval.held_change');
RESET ROLE;
SELECT is((SELECT prosecdef FROM pg_proc WHERE oid = 'approval.governed_change()'::regprocedure), false,
          'the trigger function runs as whoever changes the table');
SELECT is((SELECT array_agg(proname::text ORDER BY proname) FROM pg_proc
            WHERE pronamespace = 'approval'::regnamespace AND proname IN ('govern', 'ungovern')
              AND prosecdef AND proconfig @> ARRAY['search_path=pg_catalog, pg_temp']),
          '{govern,ungovern}', 'govern and ungovern are SECURITY DEFINER with a pinned search_path');

-- whatever happened above, every request's rows still replay from its events
RESET ROLE;
SELECT is_empty($$SELECT request_id, problem FROM approval.verify_audit() WHERE NOT ok$$,
                'verify_audit(): every request''s rows agree with its events');

SELECT * FROM finish();
ROLLBACK;
