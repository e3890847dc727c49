-- Set-up of the routing benchmark of tools/bench.sh (run as the cluster's
-- superuser in a fresh database): 1,000 workflows whose "match" holds for
-- dept-N only, and route_rules, the same conditions as the table the SQL
-- baseline (sql_route.sql) reads.

\set ON_ERROR_STOP on
CREATE EXTENSION approval;
INSERT INTO approval.principal (id, pg_role, attributes)
VALUES ('requester', 'bench_requester', '{"department": "it"}');
SELECT count(approval.define_workflow(jsonb_build_object(
           'name', 'route-' || lpad(i::text, 4, '0'),
           'priority', i,
           'match', format('$.dept == "dept-%s" && $.cost < 5000', i))))
  FROM generate_series(1, 1000) AS i;
-- the rows the expert's query reads: the same conditions, already compiled
CREATE TABLE route_rules AS
SELECT name, priority, match FROM approval.workflows WHERE enabled;
CREATE INDEX ON route_rules (priority, name);
GRANT SELECT ON route_rules TO bench_requester;
GRANT SELECT ON approval.principal TO bench_requester;
