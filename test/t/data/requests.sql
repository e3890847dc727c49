-- The test data (test/t/ApprovalFixture.pm): requests in every state that
-- can be reached without the clock, made through the public API (and plain
-- SQL on the reference tables, as an admin would), so that every release
-- can make it.  Runs as a superuser after roles.sql, in a database where
-- the extension is installed and has no data.  Requests are titled by what
-- happened to them:
--   pending-v1      pending on version 1 of "expense", no vote
--   pending-voted   pending on version 2: the manager approved, finance to vote; commented
--   resubmitted     changes requested, then resubmitted with a new payload: pending again
--   changes         changes_requested
--   approved        approved by the manager and, for finance, by dave on behalf of carol
--   rejected        rejected by the manager with a reason
--   cancelled       cancelled by its requester
-- Delegations: carol to dave for "expense" (active), carol to erin
-- (revoked).  Subscriber "fx-listener" a few events behind.

INSERT INTO approval.principal (id, display_name, manager_id, pg_role) VALUES
    ('bob',   'Bob',   NULL,  'fx_bob'),
    ('alice', 'Alice', 'bob', 'fx_alice'),
    ('carol', 'Carol', NULL,  'fx_carol'),
    ('dave',  'Dave',  NULL,  'fx_dave'),
    ('erin',  'Erin',  'bob', 'fx_erin');
INSERT INTO approval.approver_group (name, description) VALUES ('finance', 'Finance');
INSERT INTO approval.group_member (group_name, principal_id) VALUES ('finance', 'carol');

SELECT approval.define_workflow('{"name": "expense", "stages": [
    {"name": "manager", "approvers": ["manager"]}]}');
SET ROLE fx_alice;
SELECT approval.submit('expense', '{"amount": 5}', 'pending-v1');
RESET ROLE;

SELECT approval.define_workflow('{"name": "expense", "description": "version 2", "stages": [
    {"name": "manager", "approvers": ["manager"]},
    {"name": "finance", "approvers": ["group:finance"]}]}');

SET ROLE fx_carol;
SELECT approval.delegate('dave', workflow => 'expense');
SELECT approval.revoke_delegation(approval.delegate('erin'));
RESET ROLE;

SET ROLE fx_alice;
SELECT approval.submit('expense', '{"amount": 10}', 'pending-voted');
SELECT approval.submit('expense', '{"amount": 20}', 'resubmitted');
SELECT approval.submit('expense', '{"amount": 30}', 'changes');
SELECT approval.submit('expense', '{"amount": 40}', 'approved');
SELECT approval.submit('expense', '{"amount": 50}', 'rejected');
SELECT approval.submit('expense', '{"amount": 60}', 'cancelled');
RESET ROLE;

CREATE TEMP TABLE fx_id AS SELECT title, id FROM approval.request;
GRANT SELECT ON fx_id TO PUBLIC;

SET ROLE fx_bob;
SELECT approval.approve((SELECT id FROM fx_id WHERE title = 'pending-voted'), 'fine by me');
SELECT approval.request_changes((SELECT id FROM fx_id WHERE title = 'resubmitted'), 'which project?');
SELECT approval.request_changes((SELECT id FROM fx_id WHERE title = 'changes'), 'receipt missing');
SELECT approval.approve((SELECT id FROM fx_id WHERE title = 'approved'));
SELECT approval.reject((SELECT id FROM fx_id WHERE title = 'rejected'), 'over_budget', 'too much');
RESET ROLE;

SET ROLE fx_alice;
SELECT approval.comment((SELECT id FROM fx_id WHERE title = 'pending-voted'), 'needed this week');
SELECT approval.resubmit((SELECT id FROM fx_id WHERE title = 'resubmitted'), '{"amount": 21, "project": "x"}', 'project x');
SELECT approval.cancel((SELECT id FROM fx_id WHERE title = 'cancelled'), 'not needed');
RESET ROLE;

SET ROLE fx_dave;
SELECT approval.approve((SELECT id FROM fx_id WHERE title = 'approved'), 'for carol');
RESET ROLE;

SELECT approval.ack('fx-listener', (SELECT max(seq) - 3 FROM approval.event));
DROP TABLE fx_id;
