# The event cursor and the relay under attack and misfortune (DESIGN §7,
# §8; doc "Following the log", "Notifications").  Each part was a bug found
# by a review of 0.5.0, and fails without its fix:
#
#   hijack    a database owner who is no superuser puts an operator ">" of
#             their own first on the database's search_path: neither the
#             worker's relay nor a superuser's events_after(), event_json()
#             or verify_audit() runs it (it would make them superuser);
#   killed    a writer terminated in the middle of its transaction, while a
#             relay waits for it: the relay goes on at once;
#   race      a relayed writer with lower seqs that ends while a relay round
#             is between taking its work and reading the horizon (the round
#             held there with gdb; skipped when gdb cannot attach): its
#             events are relayed too;
#   stall     a writer whose first nextval() waits for a catalog lock: every
#             events_after() goes on (returning what is below that writer)
#             and can be cancelled; the writer cancelled there leaves
#             nothing held back;
#   savepoint without shared_preload_libraries, a writer whose first event
#             was in a subtransaction that rolled back still holds back the
#             events after its later ones.
use strict;
use warnings;

use DBI;
use DBD::Pg qw(:async);
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $setup = q{
	CREATE EXTENSION approval;
	INSERT INTO approval.principal (id) VALUES ('boss');
	INSERT INTO approval.principal (id, manager_id) SELECT 'p' || i, 'boss' FROM generate_series(1, 4) i;
	SELECT approval.define_workflow('{"name": "wf", "stages": [{"name": "manager", "approvers": ["manager"]}]}');
};
my $roles = q{
	CREATE ROLE a_gateway LOGIN;
	GRANT approval_gateway TO a_gateway;
};
my %opts = (AutoCommit => 1, RaiseError => 1, PrintError => 0);

sub conn
{
	my ($node, $user, $db) = @_;
	$db //= 'postgres';
	return DBI->connect('dbi:Pg:dbname=' . $db . ';host=' . $node->host . ';port=' . $node->port,
		$user, undef, \%opts) || die $DBI::errstr;
}

sub submit
{
	my ($dbh, $who) = @_;
	$dbh->do("SELECT set_config('approval.actor', ?, false)", undef, $who);
	return $dbh->selectrow_array("SELECT approval.submit('wf', '{}')");
}

sub seqs_after
{
	my ($dbh, $after) = @_;
	return map { $_->[0] }
	  @{ $dbh->selectall_arrayref('SELECT seq FROM approval.event WHERE seq > ? ORDER BY seq', undef, $after) };
}

# the seqs of the notifications that arrive within $secs seconds
sub collect
{
	my ($dbh, $secs) = @_;
	my @got;
	for (1 .. $secs * 100)
	{
		while (my $n = $dbh->pg_notifies)
		{
			push @got, decode_json($n->[2])->{seq};
		}
		select(undef, undef, undef, 0.01);
	}
	return @got;
}

# wait (up to 60 s) until the notifications of @want have all arrived
sub collect_all
{
	my ($dbh, @want) = @_;
	my %want = map { $_ => 1 } @want;
	my @got;
	for (1 .. 6000)
	{
		while (my $n = $dbh->pg_notifies)
		{
			my $seq = decode_json($n->[2])->{seq};
			push @got, $seq;
			delete $want{$seq};
		}
		last unless %want;
		select(undef, undef, undef, 0.01);
	}
	return @got;
}

# ---------------------------------------------------------------------------
my $node = PostgreSQL::Test::Cluster->new('attacks');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'approval'\napproval.notify = relay\napproval.databases = 'postgres, mdb'");
$node->start;
$node->safe_psql('postgres', $setup . $roles);

my $worker;
for (1 .. 600)
{
	$worker = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE application_name = 'approval worker' AND datname = 'postgres'");
	last if $worker;
	select(undef, undef, undef, 0.1);
}
ok($worker, 'the worker runs');

# --- hijack ---
$node->safe_psql('postgres', 'CREATE ROLE mallory LOGIN CREATEDB');
$node->safe_psql('postgres', 'CREATE DATABASE mdb OWNER mallory');
$node->safe_psql('mdb', $setup);
$node->safe_psql(
	'mdb', q{
	SET ROLE mallory;
	CREATE SCHEMA evil;
	CREATE FUNCTION evil.gt(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS $$
	BEGIN
	    BEGIN
	        EXECUTE 'ALTER ROLE mallory SUPERUSER';
	    EXCEPTION WHEN insufficient_privilege THEN NULL;
	    END;
	    RETURN $1 OPERATOR(pg_catalog.>) $2;
	END $$;
	CREATE FUNCTION evil.eq(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS $$
	BEGIN
	    BEGIN
	        EXECUTE 'ALTER ROLE mallory SUPERUSER';
	    EXCEPTION WHEN insufficient_privilege THEN NULL;
	    END;
	    RETURN $1 OPERATOR(pg_catalog.=) $2;
	END $$;
	CREATE OPERATOR evil.> (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.gt);
	CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.eq);
	ALTER DATABASE mdb SET search_path = evil, pg_catalog, public;
});
# the worker of mdb: started at the reload, it relays once it is ready
$node->reload;
my $mdb_ready = $node->poll_query_until('mdb',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'approval worker' AND datname = 'mdb'");
ok($mdb_ready, 'a worker runs in the owner\'s database');
my $ml = conn($node, undef, 'mdb');
$ml->do('LISTEN approval');
my $mw = conn($node, undef, 'mdb');
my $mdb_worker = $ml->selectrow_array(
	"SELECT pid FROM pg_stat_activity WHERE application_name = 'approval worker' AND datname = 'mdb'");
my $relayed = 0;
for (1 .. 100)
{
	submit($mw, 'p1');
	for (1 .. 500)
	{
		my $n = $ml->pg_notifies;
		if ($n)
		{
			$relayed = 1 if $n->[1] == $mdb_worker;
			next;
		}
		last if $relayed;
		select(undef, undef, undef, 0.01);
	}
	last if $relayed;
}
ok($relayed, 'the worker relays the events of the owner\'s database');
my $super = conn($node, undef, 'mdb');
$super->selectall_arrayref('SELECT approval.event_json(e) FROM approval.events_after(0) e');
$super->selectall_arrayref('SELECT * FROM approval.verify_audit()');
$super->selectall_arrayref('SELECT * FROM approval.verify_audit(1)');
is($node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'"),
	'f', 'the owner\'s operators ran neither in the relay nor in a superuser\'s calls');
$_->disconnect for ($ml, $mw, $super);

# --- killed ---
my $listener = conn($node);
$listener->do('LISTEN approval');
my ($w1, $w2) = (conn($node, 'a_gateway'), conn($node, 'a_gateway'));
submit($w1, 'p1');
collect($listener, 1);
my $top = $listener->selectrow_array('SELECT max(seq) FROM approval.event');
my $victim = conn($node, 'a_gateway');
$victim->begin_work;
submit($victim, 'p2');
submit($w2, 'p3');
is(scalar(collect($listener, 1)), 0, 'killed: an open writer holds the relay back');
$listener->do('SELECT pg_terminate_backend(?)', undef, $victim->{pg_pid});
my @want = seqs_after($listener, $top);
is_deeply([ collect_all($listener, @want) ], \@want,
	'killed: once the writer is terminated, the committed events are relayed, with no other commit');

# --- race ---
SKIP:
{
	my $gdb = `command -v gdb 2>/dev/null`;
	chomp $gdb;
	skip 'race: gdb is not installed', 2 unless $gdb;
	my $probe = system("gdb -q -batch -p $worker -ex detach >/dev/null 2>&1");
	skip 'race: gdb cannot attach to the worker here', 2 if $probe != 0;

	$top = $listener->selectrow_array('SELECT max(seq) FROM approval.event');
	$w1->begin_work;
	submit($w1, 'p1');    # lower seqs, still running
	my $cmd = "${PostgreSQL::Test::Utils::tmp_check}/race.gdb";
	open my $fh, '>', $cmd or die "$cmd: $!";
	print $fh "set pagination off\nbreak approval_event_horizon\ncontinue\n"
	  . "shell touch $cmd.hit\nshell while [ ! -f $cmd.go ]; do sleep 0.1; done\n"
	  . "delete\ndetach\nquit\n";
	close $fh;
	my $pid = fork();
	if ($pid == 0)
	{
		exec('gdb', '-q', '-batch', '-x', $cmd, '-p', $worker) or die "gdb: $!";
	}
	sleep 3;              # attached, the breakpoint set
	submit($w2, 'p3');    # the worker takes this work and stops before the horizon
	for (1 .. 300)
	{
		last if -f "$cmd.hit";
		select(undef, undef, undef, 0.1);
	}
	ok(-f "$cmd.hit", 'race: the relay round stopped before reading the horizon');
	$w1->commit;          # the lower writer ends meanwhile
	open $fh, '>', "$cmd.go" or die;
	close $fh;
	waitpid($pid, 0);
	@want = seqs_after($listener, $top);
	my @got = collect_all($listener, @want);
	is_deeply([ sort { $a <=> $b } @got ], \@want, 'race: every event is relayed')
	  or diag("want @want, got @got");
}

# --- stall ---
my $locker = conn($node);
my $r = conn($node);
my $w = conn($node, 'a_gateway');
submit($w, 'p1');
$locker->do('ALTER SEQUENCE approval.event_seq CACHE 1');    # its pg_sequence entry is read again
$locker->begin_work;
$locker->do('LOCK TABLE pg_catalog.pg_sequence IN ACCESS EXCLUSIVE MODE');
$w->do("SELECT approval.submit('wf', '{}')", { pg_async => PG_ASYNC });
ok( $node->poll_query_until('postgres',
		"SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $w->{pg_pid}"),
	'stall: a writer waits for a catalog lock in its first nextval()');
$r->do("SET statement_timeout = '60s'");
my $before = $r->selectrow_array('SELECT count(*) FROM approval.events_after(0)');
is($before, $r->selectrow_array('SELECT count(*) FROM approval.event'),
	'stall: events_after() goes on, returning the events below that writer');
$r->do('SELECT pg_sleep(30) FROM approval.events_after(0) LIMIT 1', { pg_async => PG_ASYNC });
# a cancel that arrives before the statement starts is lost: wait for it
ok( $node->poll_query_until('postgres',
		"SELECT state = 'active' AND query LIKE 'SELECT pg_sleep(30)%' FROM pg_stat_activity WHERE pid = $r->{pg_pid}"),
	'stall: a reader runs events_after()');
$locker->do('SELECT pg_cancel_backend(?)', undef, $r->{pg_pid});
eval { $r->pg_result };
like($@, qr/canceling statement/, 'stall: and it can be cancelled');
# the writer is cancelled in nextval(): it holds nothing back afterwards
$locker->do('SELECT pg_cancel_backend(?)', undef, $w->{pg_pid});
eval { $w->pg_result };
like($@, qr/canceling statement/, 'stall: the waiting writer is cancelled');
$locker->commit;
submit($w1, 'p2');
is($r->selectrow_array('SELECT count(*) FROM approval.events_after(0)'),
	$r->selectrow_array('SELECT count(*) FROM approval.event'),
	'stall: a writer cancelled in its first nextval() holds no event back');
$_->disconnect for ($listener, $w1, $w2, $locker, $r, $w);
$node->stop;

# --- savepoint (not preloaded) ---
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', $setup . $roles);
my ($a, $b) = (conn($plain, 'a_gateway'), conn($plain, 'a_gateway'));
$r = conn($plain);
my $cursor = $r->selectrow_array('SELECT coalesce(max(seq), 0) FROM approval.event');
$a->begin_work;
$a->do('SAVEPOINT s');
submit($a, 'p1');
$a->do('ROLLBACK TO SAVEPOINT s');
submit($a, 'p3');    # the lowest seqs still open
submit($b, 'p2');
$r->do('SET statement_timeout = 3000');
my @got = eval { map { $_->[0] } @{ $r->selectall_arrayref('SELECT seq FROM approval.events_after(?)', undef, $cursor) } };
like($@, qr/statement timeout/, 'savepoint: events_after() waits for the writer, whose lock outlived the subtransaction');
$a->commit;
$r->do('RESET statement_timeout');
@got = map { $_->[0] } @{ $r->selectall_arrayref('SELECT seq FROM approval.events_after(?)', undef, $cursor) };
is_deeply(\@got, [ seqs_after($r, $cursor) ], 'savepoint: once it commits, every event comes, in seq order');
$_->disconnect for ($a, $b, $r);
$plain->stop;

done_testing();
