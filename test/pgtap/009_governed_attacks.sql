-- pgTAP: governed tables (DESIGN §10) under attack, by the tables' owners,
-- their requesters and careless operators (009_governed.sql has the
-- features).
--
--   - the owner's code run by an apply (as the owner, in a
--     security-restricted operation, on the approver's behalf) may not act
--     as the approver, hold a change of another governed table, smuggle a
--     change past the trigger through another role's code, or end every
--     tick of the timer by raising query_canceled;
--   - the request shows its requester the row, so they must be able to
--     read it (DELETE privilege alone, column privileges, SELECT policies);
--   - referential actions into a governed table, inheritance children;
--   - columns named like the statements' aliases, reg* columns, ALTER
--     TABLE between hold and apply, and values whose text depends on the
--     session's settings.
--
-- Everything happens in one transaction that is rolled back, including
-- CREATE EXTENSION and the roles the test makes.
\set ON_ERROR_STOP 1
BEGIN;

SELECT plan(30);

SELECT current_setting('search_path') AS search_path_before \gset
CREATE EXTENSION approval;
SELECT set_config('search_path', :'search_path_before', true) AS search_path_restored \gset

-- ---------------------------------------------------------------------------
-- People, tables, workflows
-- ---------------------------------------------------------------------------
CREATE ROLE ap_g_owner;         -- owns the governed tables
CREATE ROLE ap_g_alice;         -- changes them
CREATE ROLE ap_g_bob;           -- approves, with no privilege on the tables
CREATE ROLE ap_g_carol;         -- a requester of other things
CREATE ROLE ap_g_stranger;      -- owns a table of their own
GRANT approval_user TO ap_g_owner, ap_g_alice, ap_g_bob, ap_g_carol, ap_g_stranger;
INSERT INTO approval.principal (id, display_name, pg_role) VALUES
    ('alice', 'Alice', 'ap_g_alice'), ('bob', 'Bob', 'ap_g_bob'), ('carol', 'Carol', 'ap_g_carol'),
    ('owner', 'Owner', 'ap_g_owner'), ('stranger', 'Stranger', 'ap_g_stranger');

CREATE SCHEMA ap_g AUTHORIZATION ap_g_owner;
GRANT USAGE ON SCHEMA ap_g TO PUBLIC;

SELECT approval.define_workflow($j${"name": "g-plain", "stages": [{"name": "review", "approvers": ["user:bob"]}]}$j$)
    > 0 AS defined \gset
SELECT approval.define_workflow($j${"name": "g-exp", "expires_after": "1 hour",
    "stages": [{"name": "review", "approvers": ["user:bob"]}]}$j$) > 0 AS defined \gset
SELECT approval.define_workflow($j${"name": "g-timeout", "stages": [{"name": "review", "approvers": ["user:bob"],
    "timeout": "30 minutes", "on_timeout": "approve"}]}$j$) > 0 AS defined \gset

-- a governed table the owner's trigger below changes
SET LOCAL ROLE ap_g_owner;
CREATE TABLE ap_g.seat (org text, id int, holder text, PRIMARY KEY (org, id));
INSERT INTO ap_g.seat VALUES ('acme', 1, 'ann'), ('acme', 2, 'cat');
SELECT approval.govern('ap_g.seat', 'g-plain') IS NULL AS governed \gset
RESET ROLE;

-- the latest request with this title, and what one request looks like
CREATE FUNCTION ap_g.req(t text) RETURNS bigint LANGUAGE sql
    AS $$ SELECT max(id) FROM approval.request WHERE title = t $$;
CREATE FUNCTION ap_g.outcome(r bigint) RETURNS text LANGUAGE sql
    AS $$ SELECT COALESCE(outcome, 'held') FROM approval.held_change WHERE request_id = r $$;

-- ---------------------------------------------------------------------------
-- The tables of the attacks
-- ---------------------------------------------------------------------------
SET LOCAL ROLE ap_g_owner;
-- a trigger of the owner's that, when it runs as the owner (the apply),
-- approves another request and changes another governed table
CREATE TABLE ap_g.victim (id bigint);
CREATE TABLE ap_g.trap (id int PRIMARY KEY, v int);
INSERT INTO ap_g.trap VALUES (1, 1), (2, 1);
GRANT SELECT, UPDATE ON ap_g.trap TO ap_g_alice;
CREATE FUNCTION ap_g.trap_fire() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_user = 'ap_g_owner' AND NEW.id = 1 THEN
        PERFORM approval.approve(id) FROM ap_g.victim;
    ELSIF current_user = 'ap_g_owner' THEN
        UPDATE ap_g.seat SET holder = 'eve' WHERE org = 'acme' AND id = 2;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER trap_fire AFTER UPDATE ON ap_g.trap FOR EACH ROW EXECUTE FUNCTION ap_g.trap_fire();
SELECT approval.govern('ap_g.trap', 'g-plain') IS NULL AS governed \gset
-- rows a requester may change but not read
CREATE TABLE ap_g.vault (id int PRIMARY KEY, label text NOT NULL, secret text, v int);
INSERT INTO ap_g.vault VALUES (1, 'open', 's1', 0), (2, 'hidden', 's2', 0);
GRANT DELETE ON ap_g.vault TO ap_g_alice;
GRANT SELECT (id, label, v), UPDATE (v) ON ap_g.vault TO ap_g_carol;
GRANT SELECT, UPDATE ON ap_g.vault TO ap_g_stranger;
ALTER TABLE ap_g.vault ENABLE ROW LEVEL SECURITY;
CREATE POLICY vault_all ON ap_g.vault TO ap_g_alice, ap_g_carol USING (true);
CREATE POLICY vault_sel ON ap_g.vault FOR SELECT TO ap_g_stranger USING (label <> 'hidden');
CREATE POLICY vault_upd ON ap_g.vault FOR UPDATE TO ap_g_stranger USING (true);
SELECT approval.govern('ap_g.vault', 'g-plain') IS NULL AS governed \gset
-- a trigger of the owner's that raises query_canceled when it is applied
CREATE TABLE ap_g.fake (id int PRIMARY KEY, v int);
INSERT INTO ap_g.fake VALUES (1, 1);
GRANT SELECT, UPDATE ON ap_g.fake TO ap_g_alice;
CREATE FUNCTION ap_g.fake_cancel() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_user = 'ap_g_owner' THEN
        RAISE EXCEPTION 'not really cancelled' USING ERRCODE = 'query_canceled';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER fake_cancel BEFORE UPDATE ON ap_g.fake FOR EACH ROW EXECUTE FUNCTION ap_g.fake_cancel();
SELECT approval.govern('ap_g.fake', 'g-timeout') IS NULL AS governed \gset
-- a foreign key that cascades into a governed table
CREATE TABLE ap_g.orders (id int PRIMARY KEY);
INSERT INTO ap_g.orders VALUES (1);
CREATE TABLE ap_g.lines (id int PRIMARY KEY, order_id int REFERENCES ap_g.orders ON DELETE CASCADE);
INSERT INTO ap_g.lines VALUES (1, 1);
GRANT SELECT, DELETE ON ap_g.orders TO ap_g_alice;
SELECT approval.govern('ap_g.lines', 'g-plain') IS NULL AS governed \gset
-- a table with an inheritance child: a statement on the parent changes
-- the child's rows, which the parent's trigger does not see
CREATE TABLE ap_g.inh (id int PRIMARY KEY, v int);
CREATE TABLE ap_g.inh_child () INHERITS (ap_g.inh);
SELECT throws_ok($$SELECT approval.govern('ap_g.inh', 'g-plain')$$, '0A000', NULL,
                 'a table with inheritance children is refused (0A000): their rows would not be governed');
-- columns named like the aliases of the statements the extension makes
CREATE TABLE ap_g.aliases (id int PRIMARY KEY, t text, n text, k text);
INSERT INTO ap_g.aliases VALUES (1, 't1', 'n1', 'k1'), (2, 't2', 'n2', 'k2');
GRANT SELECT, UPDATE, DELETE ON ap_g.aliases TO ap_g_alice;
SELECT approval.govern('ap_g.aliases', 'g-plain') IS NULL AS governed \gset
-- a regclass column, whose text depends on the search_path
RESET ROLE;
CREATE TABLE public.ap_g_pub (id int);
SET LOCAL ROLE ap_g_owner;
CREATE TABLE ap_g.regs (id int PRIMARY KEY, r regclass, v int);
INSERT INTO ap_g.regs VALUES (1, 'public.ap_g_pub', 0);
GRANT SELECT, UPDATE ON ap_g.regs TO ap_g_alice;
SELECT approval.govern('ap_g.regs', 'g-plain') IS NULL AS governed \gset
-- a table altered between a held INSERT and its approval
CREATE TABLE ap_g.shape (id int PRIMARY KEY, a text, b text);
GRANT SELECT, INSERT ON ap_g.shape TO ap_g_alice;
SELECT approval.govern('ap_g.shape', 'g-plain') IS NULL AS governed \gset
-- values whose text depends on the session's settings
CREATE TABLE ap_g.clock (id int PRIMARY KEY, at timestamptz, f float8, d interval);
INSERT INTO ap_g.clock VALUES (1, '2026-01-01 10:00+00', 1, '1 hour');
GRANT SELECT, UPDATE ON ap_g.clock TO ap_g_alice;
SELECT approval.govern('ap_g.clock', 'g-plain') IS NULL AS governed \gset
RESET ROLE;
-- a table of the stranger's whose rows cascade from a governed table's
CREATE SCHEMA ap_g_x AUTHORIZATION ap_g_stranger;
SET LOCAL ROLE ap_g_owner;
CREATE TABLE ap_g.acct (id int PRIMARY KEY, v int);
INSERT INTO ap_g.acct VALUES (1, 1);
GRANT SELECT, INSERT, DELETE, REFERENCES ON ap_g.acct TO ap_g_stranger;
SELECT approval.govern('ap_g.acct', 'g-plain') IS NULL AS governed \gset
SET LOCAL ROLE ap_g_stranger;
CREATE TABLE ap_g_x.link (id int PRIMARY KEY, acct int REFERENCES ap_g.acct ON DELETE CASCADE);
INSERT INTO ap_g_x.link VALUES (1, 1);
CREATE FUNCTION ap_g_x.smuggle() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ap_g.acct VALUES (99, 666);
    RETURN OLD;
END $$;
CREATE TRIGGER smuggle BEFORE DELETE ON ap_g_x.link FOR EACH ROW EXECUTE FUNCTION ap_g_x.smuggle();
RESET ROLE;

-- ---------------------------------------------------------------------------
-- The attacks
-- ---------------------------------------------------------------------------
-- the owner's code run by the apply may not act as the approver
SET LOCAL ROLE ap_g_alice;
UPDATE ap_g.trap SET v = 2 WHERE id = 1;
UPDATE ap_g.trap SET v = 2 WHERE id = 2;
SET LOCAL ROLE ap_g_carol;
SELECT approval.submit('g-plain', '{"what": "unrelated"}') AS victim \gset
RESET ROLE;
INSERT INTO ap_g.victim VALUES (:victim);
SELECT ap_g.req('UPDATE ap_g.trap (id=1)') AS trap1, ap_g.req('UPDATE ap_g.trap (id=2)') AS trap2 \gset
SET LOCAL ROLE ap_g_bob;
SELECT throws_ok(format('SELECT approval.approve(%s)', :trap1), '42501', NULL,
                 'the owner''s trigger, run by the apply, cannot call the approval functions as the approver (42501)');
SELECT throws_ok(format('SELECT approval.approve(%s)', :trap2), '42501', NULL,
                 'nor change another governed table, whose requester would be the approver (42501)');
RESET ROLE;
SELECT is((SELECT state::text FROM approval.request WHERE id = :victim), 'pending',
          'the other request was not approved in the approver''s name');
SELECT is((SELECT array_agg(state::text ORDER BY id) FROM approval.request WHERE id IN (:trap1, :trap2)),
          '{pending,pending}', 'the approvals failed: both held changes are still pending');
SELECT is((SELECT holder FROM ap_g.seat WHERE id = 2), 'cat', 'the other governed table is untouched');

-- while a change is applied, only the statements it makes pass the trigger:
-- not another role's code they set off (here a cascade to the stranger's table)
SET LOCAL ROLE ap_g_stranger;
DELETE FROM ap_g.acct WHERE id = 1;
RESET ROLE;
SET LOCAL ROLE ap_g_bob;
SELECT throws_ok(format('SELECT approval.approve(%s)', ap_g.req('DELETE ap_g.acct (id=1)')), '42501', NULL,
                 'a change of the governed table by another role''s trigger during the apply is not let through');
RESET ROLE;
SELECT is((SELECT array_agg(id ORDER BY id) FROM ap_g.acct), '{1}', 'no row was smuggled in past the trigger');

SET LOCAL ROLE ap_g_alice;
SELECT throws_ok($$DELETE FROM ap_g.vault$$, '42501', NULL,
                 'a DELETE by a requester who may not SELECT the table is refused (42501)');
SET LOCAL ROLE ap_g_carol;
SELECT throws_ok($$UPDATE ap_g.vault SET v = 1 WHERE id = 1$$, '42501', NULL,
                 'an UPDATE by a requester who may not read every column is refused (42501)');
SET LOCAL ROLE ap_g_stranger;
SELECT throws_ok($$UPDATE ap_g.vault SET v = 1$$, '42501', NULL,
                 'an UPDATE of a row the requester''s SELECT policy hides is refused (42501)');
SELECT lives_ok($$UPDATE ap_g.vault SET v = 1 WHERE id = 1$$, 'an UPDATE of a row they may read is held');
RESET ROLE;
SELECT is((SELECT array_agg(title || ' ' || requester) FROM approval.request WHERE title LIKE '% ap_g.vault %'),
          '{"UPDATE ap_g.vault (id=1) stranger"}', 'only that change is held: no hidden row reached a request');

-- the owner's code cannot stop the timer for everyone: a query_canceled it
-- raises in an apply by a stage timeout is that firing's failure, not a
-- cancel of the tick (which would end every tick at that request)
SET LOCAL ROLE ap_g_alice;
UPDATE ap_g.fake SET v = 2 WHERE id = 1;
SET LOCAL ROLE ap_g_carol;
SELECT approval.submit('g-exp', '{"what": "expires"}') AS expiring \gset
RESET ROLE;
SELECT lives_ok($$SELECT approval.tick(now() + interval '3 hours')$$,
                'a tick survives the owner''s fake query_canceled in an apply');
SELECT is((SELECT state::text FROM approval.request WHERE id = :expiring), 'expired',
          'and fires the other requests'' deadlines');
SELECT is((SELECT state::text FROM approval.request WHERE id = ap_g.req('UPDATE ap_g.fake (id=1)')), 'pending',
          'the failed firing leaves its request pending, to be tried again');

-- a referential action cannot be held: the referenced row would go (or
-- change) and the referencing one stay
SET LOCAL ROLE ap_g_alice;
SELECT throws_ok($$DELETE FROM ap_g.orders WHERE id = 1$$, '0A000', NULL,
                 'a DELETE that cascades into a governed table is refused (0A000), not half made');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM ap_g.lines l WHERE NOT EXISTS (SELECT FROM ap_g.orders o WHERE o.id = l.order_id)),
          0, 'no referencing row is left without its referenced row');

-- a column named t, n or k is no whole-row reference
SET LOCAL ROLE ap_g_alice;
SELECT lives_ok($$UPDATE ap_g.aliases SET t = 't1x', n = 'n1x', k = 'k1x' WHERE id = 1$$,
                'an UPDATE of a table with columns t, n and k is held');
SELECT lives_ok($$DELETE FROM ap_g.aliases WHERE id = 2$$, 'and a DELETE');
SET LOCAL ROLE ap_g_bob;
SELECT is(approval.approve(ap_g.req('UPDATE ap_g.aliases (id=1)'))::text || '/' ||
          approval.approve(ap_g.req('DELETE ap_g.aliases (id=2)'))::text, 'approved/approved',
          'both are approved');
RESET ROLE;
SELECT is((SELECT array_agg(row(id, t, n, k)::text) FROM ap_g.aliases), '{"(1,t1x,n1x,k1x)"}', 'and applied');

-- the row check does not depend on the search_path of the apply
SET LOCAL ROLE ap_g_alice;
UPDATE ap_g.regs SET v = 1 WHERE id = 1;
SET LOCAL ROLE ap_g_bob;
SELECT is(approval.approve(ap_g.req('UPDATE ap_g.regs (id=1)'))::text, 'approved',
          'a row with a regclass column is no conflict for its search_path');
RESET ROLE;
SELECT is((SELECT row(r, v)::text FROM ap_g.regs), '(ap_g_pub,1)', 'and is applied');

-- ALTER TABLE between the hold and the apply: a column added gets its
-- default, a column renamed would lose its value (a conflict)
SET LOCAL ROLE ap_g_alice;
INSERT INTO ap_g.shape VALUES (1, 'a1', 'b1');
INSERT INTO ap_g.shape VALUES (2, 'a2', 'b2');
SET LOCAL ROLE ap_g_owner;
ALTER TABLE ap_g.shape ADD COLUMN c text NOT NULL DEFAULT 'c-default';
SET LOCAL ROLE ap_g_bob;
SELECT is(approval.approve(ap_g.req('INSERT ap_g.shape (id=1)'))::text, 'approved',
          'a held INSERT is approved after a column was added');
SET LOCAL ROLE ap_g_owner;
ALTER TABLE ap_g.shape RENAME COLUMN b TO b_renamed;
SET LOCAL ROLE ap_g_bob;
SELECT is(approval.approve(ap_g.req('INSERT ap_g.shape (id=2)'))::text, 'rejected',
          'a held INSERT of a column renamed since is a conflict');
RESET ROLE;
SELECT is((SELECT array_agg(row(id, a, b_renamed, c)::text ORDER BY id) FROM ap_g.shape), '{"(1,a1,b1,c-default)"}',
          'the added column got its default; the row whose value would be lost was not inserted');
SELECT is(ap_g.outcome(ap_g.req('INSERT ap_g.shape (id=2)')), 'conflict', 'and its held change is marked conflict');

-- the images do not depend on the requester's or the approver's settings
SET LOCAL ROLE ap_g_alice;
SET LOCAL TimeZone = 'Asia/Tokyo';
SET LOCAL extra_float_digits = 0;
SET LOCAL IntervalStyle = 'sql_standard';
UPDATE ap_g.clock SET f = 0.1::float8 + 0.2::float8, d = '-1 day -2 hours' WHERE id = 1;
SET LOCAL TimeZone = 'America/New_York';
SET LOCAL extra_float_digits = 3;
SET LOCAL IntervalStyle = 'postgres';
SET LOCAL ROLE ap_g_bob;
SELECT is(approval.approve(ap_g.req('UPDATE ap_g.clock (id=1)'))::text, 'approved',
          'a change held in one time zone is approved in another: no false conflict');
RESET ROLE;
RESET TimeZone;
RESET extra_float_digits;
RESET IntervalStyle;
SELECT is((SELECT row(at = '2026-01-01 10:00+00', f = 0.1::float8 + 0.2::float8, d = '-1 day -2 hours')::text
             FROM ap_g.clock), '(t,t,t)',
          'applied exactly: the float with all its digits, the interval with its signs, the time untouched');

SELECT * FROM finish();
ROLLBACK;
