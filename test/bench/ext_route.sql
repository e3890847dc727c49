-- routing benchmark: approval.route() among 1,000 workflows (tools/bench.sh)
SELECT approval.route('{"dept": "dept-1000", "cost": 120}'::jsonb);
