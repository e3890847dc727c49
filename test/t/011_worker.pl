# The background worker (DESIGN §6, doc "The background worker").
#
# One primary with approval preloaded, tick_interval 100ms and
# approval.databases naming postgres and a database that does not exist.
# The deadlines are requests that expire a second after they are submitted
# (test/t/ApprovalDeadlines.pm).  The worker fires them with nobody calling
# tick() and writes the event; a request whose on_expired callback raises
# is recorded and backed off while the others fire, and fires once the
# callback is fixed; a tick that fails as a whole is logged and retried
# while the worker keeps its process; a database added with ALTER SYSTEM +
# reload gets a worker; a missing database and one without the extension
# are each warned about once, as is an extension older than tick(); DROP,
# CREATE and ALTER EXTENSION need no restart; a
# plain DROP DATABASE of a watched database succeeds (the worker gives
# way), as do CREATE DATABASE from it as the template and DROP DATABASE
# WITH (FORCE); pg_terminate_backend() of a worker: started again; with
# tick_interval 1h a submit's commit wakes the worker; kill -9 of a worker
# or of the launcher: the postmaster restarts everything and the deadlines
# fire again; on a streaming standby nothing runs and nothing is logged,
# and after promotion what came due meanwhile fires.  No timed assertion:
# every wait is poll_query_until / wait_for_log with the default timeout.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;

my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init(allows_streaming => 1);
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'approval'
approval.databases = 'postgres, nosuch'
approval.tick_interval = '100ms'
restart_after_crash = on
max_worker_processes = 16
log_statement = none
});
$node->start;

# Deadlines (test/t/ApprovalDeadlines.pm): requests that expire a second
# after they are submitted; one has fired when its request is expired.
use ApprovalDeadlines qw(install uninstall deadline fired_sql fired set_broken);

sub worker_pid
{
	my ($n, $db) = @_;
	return $n->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'approval worker' AND datname = '$db'");
}

sub launcher_pid
{
	my ($n) = @_;
	return $n->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'approval launcher'");
}

sub wait_worker
{
	my ($n, $db, $not_pid) = @_;
	$not_pid //= 0;
	$n->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'approval worker' "
		  . "AND datname = '$db' AND pid <> $not_pid AND application_name = 'approval worker'")
	  or die "no approval worker in $db";
	return worker_pid($n, $db);
}

sub count_in_log
{
	my ($n, $re) = @_;
	my $log = slurp_file($n->logfile);
	my @m = ($log =~ /$re/g);
	return scalar @m;
}

# --- it runs, and fires with nobody calling tick() ---

my $lpid = launcher_pid($node);
like($lpid, qr/^\d+$/, 'the launcher runs');
is( $node->safe_psql(
		'postgres',
		"SELECT datname IS NULL, application_name FROM pg_stat_activity WHERE pid = $lpid"),
	't|approval launcher',
	'the launcher is connected to no database and shows as "approval launcher"');

install($node, 'postgres');
my $wpid = wait_worker($node, 'postgres');
is( $node->safe_psql(
		'postgres', "SELECT application_name FROM pg_stat_activity WHERE pid = $wpid"),
	'approval worker',
	'the worker of postgres shows as "approval worker"');

my $d = deadline($node, 'postgres');
ok(!fired($node, 'postgres', $d), 'a deadline due in a second has not fired yet');
ok($node->poll_query_until('postgres', fired_sql($d)),
	'the worker fires it, with nobody calling tick()');
is( $node->safe_psql(
		'postgres',
		"SELECT kind FROM approval.event WHERE request_id = $d ORDER BY seq DESC LIMIT 1"),
	'expired',
	'and writes the event "expired"');

# --- a failing action: recorded, backed off; the worker goes on with the others ---

my $offset = -s $node->logfile;
set_broken($node, 'postgres', 1);
my $fragile = deadline($node, 'postgres', 'fragile');
$d = deadline($node, 'postgres');
ok($node->poll_query_until('postgres', fired_sql($d)),
	'while the on_expired callback of another request raises, this deadline still fires');
$node->wait_for_log(qr/WARNING:  approval: a deadline of request $fragile could not fire/, $offset);
pass('the failing firing is logged by the worker');
is( $node->safe_psql(
		'postgres',
		"SELECT state, timer_failures > 0, timer_error LIKE '%on_expired_fragile is broken%' "
		  . "FROM approval.request WHERE id = $fragile"),
	'pending|t|t',
	'the failed request stays pending with its failure recorded');
is(worker_pid($node, 'postgres'), $wpid, 'the worker kept its process');
# fixed: it fires after its back-off (checked at the end, to wait meanwhile)
set_broken($node, 'postgres', 0);

# --- a failing tick: logged, retried with back-off, the worker keeps its process ---

$node->safe_psql('postgres',
	"ALTER SYSTEM SET lock_timeout = '50ms'; SELECT pg_reload_conf()");
$offset = -s $node->logfile;
my $locker = $node->background_psql('postgres');
$locker->query_safe('SET lock_timeout = 0');
$locker->query_safe('BEGIN; LOCK TABLE approval.request IN ACCESS EXCLUSIVE MODE');
$offset = $node->wait_for_log(
	qr/WARNING:  approval worker: approval\.tick\(\) failed in database "postgres": canceling statement due to lock timeout/,
	$offset);
pass('a tick that fails is logged as a warning with the error');
$locker->query_safe('COMMIT');
$locker->quit;
$d = deadline($node, 'postgres');
ok($node->poll_query_until('postgres', fired_sql($d)),
	'after the failures the worker fires again');
$node->wait_for_log(
	qr/LOG:  approval worker: approval\.tick\(\) in database "postgres" works again after \d+ failed attempts/,
	$offset);
pass('and says that it works again');
is(worker_pid($node, 'postgres'), $wpid, 'the same worker process throughout');
$node->safe_psql('postgres', "ALTER SYSTEM RESET lock_timeout; SELECT pg_reload_conf()");

# --- a database added with ALTER SYSTEM + reload; one without the extension ---

$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql('postgres', 'CREATE DATABASE noext');
install($node, 'app');
$node->safe_psql('postgres',
	"ALTER SYSTEM SET approval.databases = 'postgres, nosuch, app, noext'; SELECT pg_reload_conf()");
my $apid = wait_worker($node, 'app');
pass('the reload starts a worker for app');
is(worker_pid($node, 'postgres'), $wpid, 'the worker of postgres keeps running');
$d = deadline($node, 'app');
ok($node->poll_query_until('app', fired_sql($d)), 'a deadline in app fires');
wait_worker($node, 'noext');

# --- DROP EXTENSION and CREATE EXTENSION need no restart ---

$offset = -s $node->logfile;
uninstall($node, 'app');
$offset = $node->wait_for_log(
	qr/WARNING:  approval worker: extension "approval" is not installed in database "app"/, $offset);
pass('DROP EXTENSION: the worker says once that the extension is gone');
install($node, 'app');
$node->wait_for_log(qr/LOG:  approval worker: extension "approval" is ready in database "app"/,
	$offset);
$d = deadline($node, 'app');
ok($node->poll_query_until('app', fired_sql($d)),
	'CREATE EXTENSION again: the same worker fires deadlines');
is(worker_pid($node, 'app'), $apid, 'app kept its worker process');

# --- the databases the worker cannot serve: one warning each ---

# the reloads above retried "nosuch" without a second warning; one more
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
# noext: first a version without tick(), then ALTER EXTENSION UPDATE
$node->safe_psql('noext', "CREATE EXTENSION approval VERSION '0.3.0'");
$node->wait_for_log(qr/WARNING:  approval worker: extension "approval" in database "noext" has no approval\.tick\(\)/);
pass('an extension without tick(): the worker says so');
$node->safe_psql('noext', 'ALTER EXTENSION approval UPDATE');
install($node, 'noext', 'installed');
$node->wait_for_log(qr/LOG:  approval worker: extension "approval" is ready in database "noext"/);
pass('ALTER EXTENSION approval UPDATE: it starts ticking, without a restart');
is( count_in_log(
		$node, qr/database "nosuch" of approval\.databases does not exist/),
	1,
	'a missing database: one warning over three reloads and many tick intervals');
is( count_in_log(
		$node, qr/extension "approval" is not installed in database "noext"/),
	1,
	'a database without the extension: one warning until it is created');
is(count_in_log($node, qr/in database "noext" has no approval\.tick\(\)/),
	1, 'an extension without tick(): one warning until it is updated');

# --- DROP DATABASE of a watched database, CREATE DATABASE from it ---

$offset = -s $node->logfile;
my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE app');
is($ret, 0, 'a plain DROP DATABASE of a watched database succeeds') or diag($err);
$offset = $node->wait_for_log(qr/LOG:  approval worker: leaving database "app"/, $offset);
pass('its worker says that it gave way');
$node->wait_for_log(qr/WARNING:  approval launcher: database "app" of approval\.databases does not exist/,
	$offset);
pass('the launcher then warns that app no longer exists');

my $npid = worker_pid($node, 'noext');
($ret, $out, $err) = $node->psql('template1', 'CREATE DATABASE copy TEMPLATE noext');
is($ret, 0, 'CREATE DATABASE with a watched database as the template succeeds') or diag($err);
wait_worker($node, 'noext', $npid);
pass('and the worker of that database comes back');
$node->safe_psql('postgres', 'DROP DATABASE copy');

# app is still listed: created again, it gets a worker at the next reload
$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
wait_worker($node, 'app');
($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE app WITH (FORCE)');
is($ret, 0, 'DROP DATABASE ... WITH (FORCE) of a watched database succeeds') or diag($err);

# --- pg_terminate_backend: the launcher starts the worker again ---

$npid = worker_pid($node, 'noext');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($npid)");
wait_worker($node, 'noext', $npid);
pass('a worker stopped with pg_terminate_backend() is started again');

# --- a commit that makes an earlier deadline wakes the worker ---

# noext has no other deadline: with tick_interval 1h only the commit's hint
# can make its worker tick within the poll's timeout
$offset = -s $node->logfile;
$node->safe_psql('postgres',
	"ALTER SYSTEM SET approval.tick_interval = '1h'; SELECT pg_reload_conf()");
$node->wait_for_log(qr/parameter "approval\.tick_interval" changed to "1h"/, $offset);
$d = deadline($node, 'noext');
ok($node->poll_query_until('noext', fired_sql($d)),
	'tick_interval 1h: the submit wakes the worker, which fires the deadline when it comes due');
$node->safe_psql('postgres',
	"ALTER SYSTEM RESET approval.tick_interval; SELECT pg_reload_conf()");

# --- SIGTERM during a long tick: the worker ends at once, not after it ---

# a callback that would sleep for an hour; pg_terminate_backend() (as DROP
# DATABASE ... WITH (FORCE) and a fast shutdown do) must not wait for it
$node->safe_psql('noext', q{
	CREATE FUNCTION public.on_expired_slow(request bigint) RETURNS void
	    LANGUAGE sql AS 'SELECT pg_sleep(3600)';
	SELECT approval.define_workflow('{"name": "slow", "expires_after": "1 second",
	    "on_expired": "public.on_expired_slow",
	    "stages": [{"name": "s", "approvers": ["user:erin"]}]}');
});
$npid = worker_pid($node, 'noext');
$d = deadline($node, 'noext', 'slow');
ok( $node->poll_query_until('postgres',
		"SELECT wait_event = 'PgSleep' FROM pg_stat_activity WHERE pid = $npid"),
	'the worker is in the slow callback');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($npid)");
$node->safe_psql('noext',
	"CREATE OR REPLACE FUNCTION public.on_expired_slow(request bigint) RETURNS void LANGUAGE sql AS 'SELECT'");
ok( $node->poll_query_until('postgres',
		"SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $npid)"),
	'pg_terminate_backend() ends a worker in the middle of a tick');
ok($node->poll_query_until('noext', fired_sql($d)),
	'the worker started again fires the deadline (the callback quick now)');

# --- the failed request of the start, its callback fixed since ---

ok($node->poll_query_until('postgres', fired_sql($fragile)),
	'the callback fixed, the failed request expires after its back-off');
is($node->safe_psql('postgres', "SELECT timer_failures FROM approval.request WHERE id = $fragile"),
	'0', 'and its failures are cleared');

# --- kill -9: the postmaster restarts everything, the deadlines fire ---

$d = deadline($node, 'postgres');
kill 'KILL', $wpid;
$node->poll_query_until('postgres', 'SELECT true')
  or die 'the server did not come back';
$wpid = wait_worker($node, 'postgres', $wpid);
ok($node->poll_query_until('postgres', fired_sql($d)),
	'kill -9 of the worker: a new one fires the deadline');

$lpid = launcher_pid($node);
$d = deadline($node, 'postgres');
kill 'KILL', $lpid;
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'approval launcher' AND pid <> $lpid")
  or die 'no new launcher';
$wpid = wait_worker($node, 'postgres', $wpid);
ok($node->poll_query_until('postgres', fired_sql($d)),
	'kill -9 of the launcher: a new launcher and worker fire the deadline');

# --- a streaming standby: nothing runs, nothing is logged; promotion fires ---

$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->start;

# the primary's worker stops, so that the deadline comes due unfired
$node->safe_psql('postgres',
	"ALTER SYSTEM SET approval.databases = ''; SELECT pg_reload_conf()");
$node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'approval worker'")
  or die 'the workers did not stop';
$d = deadline($node, 'postgres');
$node->wait_for_catchup($standby);
$standby->poll_query_until('postgres', "SELECT now() > expires_at FROM approval.request WHERE id = $d")
  or die 'the deadline did not come due';
is( $standby->safe_psql(
		'postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'approval%'"),
	'0',
	'on the standby no launcher and no worker run');
ok(!fired($standby, 'postgres', $d), 'the due deadline has not fired on the standby');
my $standby_log = slurp_file($standby->logfile);
unlike($standby_log, qr/approval/, 'the standby log says nothing of approval');
unlike($standby_log, qr/ERROR|FATAL/, 'and has no error');

$node->stop;
$standby->promote;
ok($standby->poll_query_until('postgres', fired_sql($d)),
	'after promotion the worker fires what came due meanwhile');

$standby->stop;
done_testing();
