-- routing benchmark: the SQL an expert would write over the same rows (tools/bench.sh)
WITH v AS (
    SELECT jsonb_build_object('requester', p.attributes || jsonb_build_object(
               'id', p.id, 'email', p.email, 'display_name', p.display_name, 'manager', p.manager_id),
           'workflow', '') AS vars
      FROM approval.principal p WHERE p.pg_role = current_user)
SELECT r.name FROM route_rules r, v
 WHERE jsonb_path_match('{"dept": "dept-1000", "cost": 120}'::jsonb, r.match, v.vars, true)
 ORDER BY r.priority, r.name LIMIT 1;
