--
-- identity: who is acting (approval.current_actor, DESIGN §2)
--
CREATE EXTENSION approval;

CREATE ROLE regress_plain;
CREATE ROLE regress_mapped;
CREATE ROLE regress_app;
GRANT approval_user TO regress_plain, regress_mapped;
GRANT approval_gateway TO regress_app;

INSERT INTO approval.principal (id, display_name, pg_role)
VALUES ('alice', 'Alice', 'regress_mapped'),
       ('bob', 'Bob', NULL);

-- a role mapped to no principal acts as itself
SET ROLE regress_plain;
SELECT approval.current_actor();
RESET ROLE;

-- a role mapped to a principal acts as that principal
SET ROLE regress_mapped;
SELECT approval.current_actor();
RESET ROLE;

-- a gateway member acts for whoever approval.actor names
BEGIN;
SET LOCAL ROLE regress_app;
SET LOCAL approval.actor = 'bob';
SELECT approval.current_actor();
ROLLBACK;

-- anyone else setting approval.actor gets AP010
\set VERBOSITY sqlstate
BEGIN;
SET LOCAL ROLE regress_plain;
SET LOCAL approval.actor = 'bob';
SELECT approval.current_actor();
ROLLBACK;
\set VERBOSITY default

-- the setting is gone with the transaction
SET ROLE regress_plain;
SELECT approval.current_actor();
RESET ROLE;

DROP EXTENSION approval;
DROP ROLE regress_plain, regress_mapped, regress_app;
