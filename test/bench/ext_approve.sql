-- approval.approve() of the next pending request (pgbench -U bench_approver);
-- tools/bench.sh points bench.ext_next at the oldest pending request first
SELECT approval.approve(nextval('bench.ext_next'));
