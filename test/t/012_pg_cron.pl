# pg_cron instead of the background worker (DESIGN §6, doc "pg_cron instead
# of the worker").
#
# One node with approval and pg_cron preloaded, cron.database_name =
# postgres and no approval worker (approval.databases = ''), so that only
# pg_cron ticks.  approval.schedule_with_pg_cron() makes the job
# "approval-tick:postgres", which fires a deadline (pg_cron 1.4 runs jobs
# on the minute: the one wait of up to a minute, with poll_query_until);
# called again it keeps one job; in another database it raises 55000 with
# the statement to run in the cron database as the hint, quoted so that it
# runs as it is; unschedule_pg_cron() removes the job; only approval_admin
# may call them.  A second node without pg_cron: CREATE EXTENSION approval
# works, and the functions raise 55000 saying pg_cron is not installed.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;

my $node = PostgreSQL::Test::Cluster->new('cron');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'approval,pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
approval.databases = ''
max_worker_processes = 16
});
$node->start;

# Deadlines (test/t/ApprovalDeadlines.pm): requests that expire a second
# after they are submitted; one has fired when its request is expired.
use ApprovalDeadlines qw(install deadline fired_sql);

# run SQL that must fail; returns (SQLSTATE, message, hint) from psql's verbose report
sub error_of
{
	my ($n, $db, $sql) = @_;
	my ($ret, $out, $err) =
	  $n->psql($db, $sql, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	return ('no error') if $ret == 0;
	my ($state, $msg) = $err =~ /ERROR:  ([0-9A-Z]{5}): (.*)/;
	my ($hint) = $err =~ /HINT:  (.*)/;
	return ($state // "?: $err", $msg // '', $hint // '');
}

# --- in the cron database, before CREATE EXTENSION pg_cron ---

install($node, 'postgres');
my ($state, $msg, $hint) =
  error_of($node, 'postgres', 'SELECT approval.schedule_with_pg_cron()');
is($state, '55000', 'pg_cron preloaded but not created: 55000');
like($msg, qr/extension "pg_cron" is not installed in database "postgres"/,
	'the message says pg_cron is not installed here');
like($hint, qr/CREATE EXTENSION pg_cron/, 'the hint says how');

# --- scheduled in the cron database, the tick fires ---

$node->safe_psql('postgres', 'CREATE EXTENSION pg_cron');
my $job = $node->safe_psql('postgres', 'SELECT approval.schedule_with_pg_cron()');
like($job, qr/^\d+$/, 'schedule_with_pg_cron() returns the job id');
is( $node->safe_psql(
		'postgres',
		"SELECT jobname, schedule, command, database FROM cron.job WHERE jobid = $job"),
	'approval-tick:postgres|* * * * *|SELECT approval.tick()|postgres',
	'the job is named after the database and ticks it every minute');
my $d = deadline($node, 'postgres');
is($node->safe_psql('postgres', 'SELECT approval.schedule_with_pg_cron()'),
	$job, 'scheduled again: the same job');
is( $node->safe_psql(
		'postgres', "SELECT count(*) FROM cron.job WHERE jobname = 'approval-tick:postgres'"),
	'1',
	'still one job');

($state, $msg) = error_of($node, 'postgres', q{SELECT approval.schedule_with_pg_cron('every now and then')});
is($state, '22023', 'a schedule pg_cron does not understand: its error, 22023');

# --- in another database: the hint gives the statement to run in the cron database ---

$node->safe_psql('postgres', q{CREATE DATABASE other; CREATE DATABASE "it's"});
install($node, 'other');
install($node, "it's");
($state, $msg, $hint) = error_of($node, 'other', 'SELECT approval.schedule_with_pg_cron()');
is($state, '55000', 'schedule_with_pg_cron() in another database: 55000');
like($msg, qr/pg_cron keeps its jobs in database "postgres", not in "other"/,
	'the message names the cron database');
is( $hint,
	q{Run this in database "postgres": SELECT cron.schedule_in_database('approval-tick:other', '* * * * *', 'SELECT approval.tick()', 'other');},
	'the hint gives the statement to run there');

($state, $msg, $hint) =
  error_of($node, "it's", q{SELECT approval.schedule_with_pg_cron('0 0 1 1 *')});
is($state, '55000', 'the same in a database whose name needs quoting');
my ($stmt) = $hint =~ /^Run this in database "postgres": (.*)$/;
is( $stmt,
	q{SELECT cron.schedule_in_database('approval-tick:it''s', '0 0 1 1 *', 'SELECT approval.tick()', 'it''s');},
	'the statement quotes the names');
my $other_job = $node->safe_psql('postgres', $stmt);
is( $node->safe_psql(
		'postgres', "SELECT jobname, schedule, database FROM cron.job WHERE jobid = $other_job"),
	"approval-tick:it's|0 0 1 1 *|it's",
	'run in the cron database, it makes the job of that database');

($state, $msg, $hint) = error_of($node, "it's", 'SELECT approval.unschedule_pg_cron()');
is($state, '55000', 'unschedule_pg_cron() in another database: 55000');
is( $hint,
	q{Run this in database "postgres": SELECT cron.unschedule('approval-tick:it''s');},
	'with the statement to run there');
is($node->safe_psql('postgres', ($hint =~ /: (SELECT .*);$/)[0]),
	't', 'which removes that job');

# --- only approval_admin ---

$node->safe_psql(
	'postgres', q{
	CREATE ROLE cron_admin LOGIN IN ROLE approval_admin;
	CREATE ROLE cron_user LOGIN IN ROLE approval_user;
});
($state) = error_of($node, 'postgres',
	'SET ROLE cron_user; SELECT approval.schedule_with_pg_cron()');
is($state, '42501', 'approval_user may not schedule');
($state) = error_of($node, 'postgres', 'SET ROLE cron_user; SELECT approval.unschedule_pg_cron()');
is($state, '42501', 'nor unschedule');
is( $node->safe_psql(
		'postgres', 'SET ROLE cron_admin; SELECT approval.schedule_with_pg_cron()'),
	$job,
	'approval_admin may: the same job (it belongs to the extension owner)');

# --- without pg_cron: the extension installs, the functions say what is missing ---

my $plain = PostgreSQL::Test::Cluster->new('nocron');
$plain->init;
$plain->append_conf('postgresql.conf', "shared_preload_libraries = 'approval'\napproval.databases = ''");
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION approval');
pass('CREATE EXTENSION approval works without pg_cron');
($state, $msg, $hint) = error_of($plain, 'postgres', 'SELECT approval.schedule_with_pg_cron()');
is($state, '55000', 'schedule_with_pg_cron() without pg_cron: 55000');
is($msg, 'pg_cron is not installed', 'saying pg_cron is not installed');
like($hint, qr/shared_preload_libraries.*approval\.databases/,
	'the hint names both ways: pg_cron, or the background worker');
($state) = error_of($plain, 'postgres', 'SELECT approval.unschedule_pg_cron()');
is($state, '55000', 'unschedule_pg_cron() too');
$plain->stop;

# --- the job fires the deadline (pg_cron 1.4: on the next minute) ---

ok($node->poll_query_until('postgres', fired_sql($d)), 'the pg_cron job fires the deadline');
is( $node->safe_psql(
		'postgres',
		"SELECT status FROM cron.job_run_details WHERE jobid = $job ORDER BY runid DESC LIMIT 1"),
	'succeeded',
	'pg_cron records the run as succeeded');

# --- unschedule ---

is($node->safe_psql('postgres', 'SELECT approval.unschedule_pg_cron()'),
	't', 'unschedule_pg_cron() removes the job');
is( $node->safe_psql(
		'postgres', "SELECT count(*) FROM cron.job WHERE jobname = 'approval-tick:postgres'"),
	'0',
	'it is gone');
is($node->safe_psql('postgres', 'SELECT approval.unschedule_pg_cron()'),
	'f', 'again: false, nothing to remove');

$node->stop;
done_testing();
