-- plbench.approve() of the next pending request (pgbench -U bench_approver);
-- tools/bench.sh points bench.pl_next at the oldest pending request first
SELECT plbench.approve(nextval('bench.pl_next'));
