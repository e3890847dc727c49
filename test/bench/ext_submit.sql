-- approval.submit() of a one-stage request (pgbench -U bench_requester)
\set amount random(1, 100000)
SELECT approval.submit('bench', jsonb_build_object('amount', :amount), 'bench request');
