# Randomized test of the gapless cursor of approval.events_after()
# (DESIGN §7; doc/listeners.md).
#
# Writers: pgbench clients connected as a gateway, each transaction acting
# for a random person, submitting one to three requests with random pauses
# in between (so that transactions take their seqs in one order and commit
# in another), a fifth of them rolled back.  Meanwhile a listener follows
# the log as a listener must: it calls events_after(cursor, max) with a
# random max, takes the last seq it got as its new cursor, and never looks
# below it again.
#
# Checked once the writers have finished and the listener has caught up:
#   - every committed event (every row of approval.event) was given to the
#     listener, and each once: the cursor is exactly-once for a listener
#     that does not crash;
#   - nothing it got was rolled back (every seq it got is a row);
#   - each call returned seqs in increasing order, all above the cursor;
#   - the writers did roll back (there are holes in the seqs), so the test
#     saw what it means to test.
# A naive follower (SELECT ... WHERE seq > cursor, as 0.4.0 did) runs along
# the same log; how many events it missed is reported, not asserted (it
# depends on timing), to show what the guarantee is for.
#
# The whole is run twice: with the library in shared_preload_libraries (the
# horizon in shared memory) and without it (writers hold a lock, readers
# wait for them).  The listener is a DBD::Pg connection, quick enough to
# follow the log at its head, where the order of commits matters.
# APPROVAL_CURSOR_SEED sets the seed (printed), and
# APPROVAL_CURSOR_SECONDS the writers' run (default 6).
use strict;
use warnings;

use DBI;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $seed = $ENV{APPROVAL_CURSOR_SEED} // int(rand(1 << 30));
my $seconds = $ENV{APPROVAL_CURSOR_SECONDS} // 6;
srand($seed);
note "APPROVAL_CURSOR_SEED=$seed";

my $script = <<'EOS';
\set who random(1, 8)
\set n random(1, 3)
\set pause random(0, 30)
\set fate random(1, 10)
BEGIN;
SELECT set_config('approval.actor', 'p' || :who, true);
SELECT approval.submit('cursor-rnd', '{}');
\sleep :pause ms
\if :n > 1
SELECT approval.submit('cursor-rnd', '{}');
\sleep :pause ms
\endif
\if :n > 2
SELECT approval.submit('cursor-rnd', '{}');
\endif
\if :fate <= 2
ROLLBACK;
\else
COMMIT;
\endif
EOS

sub run_case
{
	my ($name, $preload) = @_;

	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		$preload ? "shared_preload_libraries = 'approval'" : "max_connections = 40");
	$node->start;
	$node->safe_psql(
		'postgres', q{
		CREATE EXTENSION approval;
		CREATE ROLE c_gateway LOGIN;
		GRANT approval_gateway TO c_gateway;
		INSERT INTO approval.principal (id) VALUES ('boss');
		INSERT INTO approval.principal (id, manager_id)
		    SELECT 'p' || i, 'boss' FROM generate_series(1, 8) i;
		SELECT approval.define_workflow('{"name": "cursor-rnd", "stages": [
		    {"name": "manager", "approvers": ["manager"]}]}');
	});

	my $file = "${PostgreSQL::Test::Utils::tmp_check}/cursor_$name.sql";
	open my $fh, '>', $file or die "$file: $!";
	print $fh $script;
	close $fh;

	my ($out, $err) = ('', '');
	my $bench = IPC::Run::start(
		[
			$node->installed_command('pgbench'), '-n', '-c', '4', '-T', $seconds,
			'-f', $file, '-U', 'c_gateway', '-h', $node->host, '-p', $node->port,
			'postgres'
		],
		'>', \$out, '2>', \$err);

	my $dsn = 'dbi:Pg:dbname=postgres;host=' . $node->host . ';port=' . $node->port;
	my %opts = (AutoCommit => 1, RaiseError => 1, PrintError => 0);
	my $db = DBI->connect($dsn, 'c_gateway', undef, \%opts) or die $DBI::errstr;
	my $gapless = $db->prepare('SELECT seq FROM approval.events_after(?, ?)');
	my $plain = $db->prepare('SELECT seq FROM approval.event WHERE seq > ? ORDER BY seq LIMIT ?');

	my $cursor = 0;
	my $naive = 0;
	my (%got, %naive_got);
	my $dups = 0;
	my $disorder = 0;
	my $calls = 0;
	my $follow = sub {
		my $max = rand() < 0.2 ? 1 + int(rand(5)) : 1 + int(rand(500));
		my @seqs = map { $_->[0] } @{ $db->selectall_arrayref($gapless, undef, $cursor, $max) };
		$calls++;
		my $prev = $cursor;
		for my $s (@seqs)
		{
			$disorder++ if $s <= $prev;
			$prev = $s;
			$dups++ if $got{$s}++;
		}
		$cursor = $seqs[-1] if @seqs;
		my @n = map { $_->[0] } @{ $db->selectall_arrayref($plain, undef, $naive, $max) };
		$naive_got{$_} = 1 for @n;
		$naive = $n[-1] if @n;
		return scalar @seqs;
	};

	while ($bench->pumpable)
	{
		$bench->pump_nb;
		$follow->();
	}
	$bench->finish;
	is(($bench->results)[0], 0, "$name: the writers ran") or diag($err);
	# catch up: the writers have finished, so nothing is held back
	while ($follow->() > 0) { }
	$db->disconnect;

	my @all = grep { length } split /\n/,
	  $node->safe_psql('postgres', 'SELECT seq FROM approval.event ORDER BY seq');
	my %all = map { $_ => 1 } @all;
	my @missed = grep { !$got{$_} } @all;
	my @phantom = grep { !$all{$_} } keys %got;
	my $max_seq = $node->safe_psql('postgres', "SELECT last_value FROM approval.event_seq");

	cmp_ok(scalar @all, '>', 50, "$name: the writers wrote events (" . scalar(@all) . ")");
	cmp_ok($max_seq, '>', scalar @all,
		"$name: some transactions rolled back (seqs up to $max_seq for " . scalar(@all) . " events)");
	is(scalar @missed, 0, "$name: the listener got every committed event")
	  or diag("missed: @missed[0 .. ($#missed < 20 ? $#missed : 19)]");
	is(scalar @phantom, 0, "$name: the listener got nothing that rolled back")
	  or diag("phantoms: @phantom");
	is($dups, 0, "$name: the listener got each event once");
	is($disorder, 0, "$name: every call returned increasing seqs above the cursor");
	my $naive_missed = grep { !$naive_got{$_} } @all;
	note "$name: $calls calls; a naive follower (seq > cursor) missed $naive_missed of "
	  . scalar(@all) . " events";

	$node->stop;
	return;
}

run_case('cursor_shmem', 1);
run_case('cursor_lock', 0);

done_testing();
