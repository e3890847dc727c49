-- The roles of the test data (test/t/ApprovalFixture.pm): cluster-wide, so
-- made once per cluster and granted approval_user (which CREATE EXTENSION
-- approval makes).  Runs as a superuser; safe to run again.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['fx_alice', 'fx_bob', 'fx_carol', 'fx_dave', 'fx_erin'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
        EXECUTE format('GRANT approval_user TO %I', r);
    END LOOP;
END
$$;
