# The listener examples of doc/listeners.md, run for real: doc/examples/
# listener.py (psycopg 3) and doc/examples/listener.js (node-postgres).
#
# First, the doc's code blocks marked "<!-- file: doc/examples/NAME -->" are
# exactly those files, so the guide shows the code that is tested here.
#
# Then one server (approval preloaded), a workflow, three people and a login
# role in approval_gateway that the examples connect as.  Each example in
# turn, with its own subscriber name, python with approval.notify = commit
# and minimal payloads, node with approval.notify = relay (the worker sends
# the notifications) and full payloads:
#   - with more than 100 events (its batch) already written, and more being
#     written while it starts, it catches up: its cursor reaches max(seq) and
#     it has printed the event_json of every event, in seq order, once;
#   - events written while it waits arrive (NOTIFY wakes it), and so do
#     events written with approval.notify = off, when a later event's
#     notification wakes it: the rows come from events_after, not from the
#     notifications;
#   - a transaction that wrote an event and stays open: once the example
#     has read the log after later events committed, its cursor is still
#     before that event and it has printed nothing from there on; after
#     the commit it prints them all, in seq order (events_after is gapless);
#   - SIGTERM: it exits 0; started again with the same name it prints only
#     the events after its cursor, among them those written meanwhile;
#   - the server stopped under it: it says it reconnects, tries again with a
#     longer pause while the server is down, and once the server is back it
#     prints the rest.
# Every comparison is exact, so a duplicate fails it.  None is expected: an
# example prints an event and then acks it, and the test stops the example
# or the server only once the cursor has reached max(seq), when there is
# nothing printed and not acked.
#
# The examples need python3 with psycopg 3 (Debian: python3-psycopg) and
# node with npm; the test installs node-postgres 8 ("pg@8") with npm into
# its own temporary directory.  When one is missing it fails under CI=true and
# is skipped otherwise.  No timed assertion: every wait polls with the
# default timeout.
use strict;
use warnings;

use FindBin;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $root = "$FindBin::RealBin/../..";
my $in_ci = ($ENV{CI} // '') eq 'true';

# --- the doc shows the files ---

my %example = (
	'doc/examples/listener.py' => 1,
	'doc/examples/listener.js' => 1);
my $doc = slurp_file("$root/doc/listeners.md");
my %shown;
while ($doc =~ /^<!-- file: (\S+) -->\n```[a-z]*\n(.*?)^```$/msg)
{
	push @{ $shown{$1} }, $2;
}
is_deeply([ sort keys %shown ], [ sort keys %example ],
	'doc/listeners.md marks a code block for each example file, and no other');
foreach my $file (sort keys %example)
{
	my @blocks = @{ $shown{$file} // [] };
	is(scalar(@blocks), 1, "doc/listeners.md shows $file once");
	is($blocks[0] // '', slurp_file("$root/$file"),
		"the block marked $file in doc/listeners.md is that file, byte for byte");
}

# --- what runs the examples ---

# run a command quietly; true if it ran and exited 0
sub runs
{
	my ($cmd, %env) = @_;
	my ($out, $err);
	return eval {
		IPC::Run::run($cmd, '<', \undef, '>', \$out, '2>', \$err,
			init => sub { $ENV{$_} = $env{$_} foreach keys %env; });
	} ? 1 : 0;
}

my @langs;

my ($python) = grep { runs([ $_, '-c', 'import psycopg' ]) } ('python3', '/usr/bin/python3');
push @langs,
  {
	lang => 'python',
	settings => { 'approval.notify' => 'commit', 'approval.notify_payload' => 'minimal' },
	why => 'no python3 that can import psycopg (Debian: python3-psycopg; tools/bootstrap.sh)',
	cmd => $python ? [ $python, "$root/doc/examples/listener.py" ] : undef,
	connect => sub {
		my $node = shift;
		return (DATABASE_URL => sprintf('host=%s port=%d dbname=postgres user=l_listener',
				$node->host, $node->port));
	},
  };

my ($node_modules, $npm_why);
if (!runs([ 'node', '--version' ]) || !runs([ 'npm', '--version' ]))
{
	$npm_why = 'node or npm is not installed (Debian: nodejs, npm; tools/bootstrap.sh)';
}
else
{
	# node-postgres, from the npm registry, into a directory of this test
	my $dir = PostgreSQL::Test::Utils::tempdir('npm');
	my ($out, $err);
	eval {
		IPC::Run::run(
			[
				'npm', 'install', '--no-save', '--no-package-lock', '--no-audit', '--no-fund',
				'--prefix', $dir, 'pg@8'
			],
			'<', \undef, '>', \$out, '2>', \$err,
			init => sub {
				$ENV{npm_config_cache} = "$dir/cache";
				$ENV{npm_config_update_notifier} = 'false';
			});
	};
	if (-f "$dir/node_modules/pg/package.json")
	{
		$node_modules = "$dir/node_modules";
	}
	else
	{
		$npm_why = "npm install pg failed: " . ($err // '') . ($@ // '');
	}
}
push @langs,
  {
	lang => 'node',
	settings => { 'approval.notify' => 'relay', 'approval.notify_payload' => 'full' },
	why => $npm_why,
	cmd => $node_modules ? [ 'node', "$root/doc/examples/listener.js" ] : undef,
	connect => sub {
		my $node = shift;
		return (
			NODE_PATH => $node_modules,
			PGHOST => $node->host,
			PGPORT => $node->port,
			PGUSER => 'l_listener',
			PGDATABASE => 'postgres');
	},
  };

# --- the server ---

my $node = PostgreSQL::Test::Cluster->new('listener');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'approval'
timezone = 'UTC'
});
$node->start;

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION approval;
	CREATE ROLE l_alice;
	CREATE ROLE l_bob;
	CREATE ROLE l_carol;
	GRANT approval_user TO l_alice, l_bob, l_carol;
	CREATE ROLE l_listener LOGIN;
	GRANT approval_gateway TO l_listener;
	INSERT INTO approval.principal (id, display_name, manager_id, pg_role) VALUES
	    ('bob',   'Bob',   NULL,  'l_bob'),
	    ('alice', 'Alice', 'bob', 'l_alice'),
	    ('carol', 'Carol', NULL,  'l_carol');
	INSERT INTO approval.approver_group (name) VALUES ('finance');
	INSERT INTO approval.group_member (group_name, principal_id) VALUES ('finance', 'carol');
	SELECT approval.define_workflow('{"name": "lwf", "stages": [
	    {"name": "manager", "approvers": ["manager"]},
	    {"name": "finance", "approvers": ["group:finance"]}]}');
});

# Requests approved, rejected, sent back and resubmitted and approved,
# commented and cancelled: about 30 events, one transaction per call.
# With $quiet, approval.notify is off, so none of them is notified.
sub write_events
{
	my ($tag, $quiet) = @_;
	$node->safe_psql(
		'postgres', ($quiet ? "SET approval.notify = off;\n" : '') . qq{
	SET ROLE l_alice;
	SELECT approval.submit('lwf', '{"n": 1}', '$tag approved') AS a \\gset
	SELECT approval.submit('lwf', '{"n": 2}', '$tag rejected') AS r \\gset
	SELECT approval.submit('lwf', '{"n": 3}', '$tag changed') AS c \\gset
	SELECT approval.submit('lwf', '{"n": 4}', '$tag cancelled') AS x \\gset
	SET ROLE l_bob;
	SELECT approval.approve(:a);
	SELECT approval.reject(:r, 'over_budget');
	SELECT approval.request_changes(:c, 'say why');
	SELECT approval.comment(:x, 'looking');
	SET ROLE l_alice;
	SELECT approval.resubmit(:c, '{"n": 3, "why": "needed"}');
	SELECT approval.cancel(:x);
	SET ROLE l_bob;
	SELECT approval.approve(:c);
	SET ROLE l_carol;
	SELECT approval.approve(:a);
	SELECT approval.approve(:c);
});
	return;
}

sub max_seq
{
	return $node->safe_psql('postgres', 'SELECT COALESCE(max(seq), 0) FROM approval.event');
}

sub cursor_of
{
	my $name = shift;
	return $node->safe_psql('postgres',
		"SELECT COALESCE((SELECT last_seq FROM approval.subscriber WHERE name = '$name'), 0)");
}

# what a listener must print after cursor $after (and before $before):
# one line per event
sub expected_after
{
	my ($after, $before) = @_;
	my $out = $node->safe_psql('postgres',
		"SELECT approval.event_json(e)::text FROM approval.event e WHERE e.seq > $after"
		  . (defined $before ? " AND e.seq < $before" : '')
		  . ' ORDER BY e.seq');
	return [ split /\n/, $out ];
}

# --- a running example ---

sub start_listener
{
	my ($lang, $name) = @_;
	my %env = $lang->{connect}->($node);
	my $l = { name => $name, out => '', err => '' };
	$l->{h} = IPC::Run::start(
		[ @{ $lang->{cmd} }, $name ],
		'<', \undef, '>', \$l->{out}, '2>', \$l->{err},
		init => sub {
			delete $ENV{PGTZ};
			$ENV{$_} = $env{$_} foreach keys %env;
		});
	return $l;
}

# the complete lines it printed
sub lines_of
{
	my $l = shift;
	my $text = $l->{out} =~ s/[^\n]*\z//r;
	return [ split /\n/, $text ];
}

# poll $cond while reading the example's output; false if it did not hold
# within the timeout or the example exited first
sub wait_for
{
	my ($l, $cond) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (1)
	{
		$l->{h}->pump_nb if $l->{h}->pumpable;
		return 1 if $cond->();
		return 0 if time > $deadline || !$l->{h}->pumpable;
		usleep(200_000);
	}
}

# wait until its cursor is $seq and it has printed $n lines
sub caught_up
{
	my ($l, $seq, $n) = @_;
	return wait_for($l, sub { cursor_of($l->{name}) eq $seq })
	  && wait_for($l, sub { @{ lines_of($l) } >= $n });
}

# SIGTERM; returns 0 when it exited with status 0, else how it ended
sub stop_listener
{
	my $l = shift;
	$l->{h}->signal('TERM');
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while ($l->{h}->pumpable && time <= $deadline)
	{
		$l->{h}->pump_nb;
		usleep(100_000);
	}
	if ($l->{h}->pumpable)
	{
		$l->{h}->kill_kill;
		return 'killed';
	}
	$l->{h}->finish;
	my $status = $l->{h}->full_result(0);
	return $status & 127 ? 'signal ' . ($status & 127) : $status >> 8;
}

sub follow_one
{
	my $lang = shift;
	my $n = $lang->{lang};
	my $name = "ex-$n";

	# how notifications are sent: the examples do not depend on it
	my %set = %{ $lang->{settings} };
	$node->safe_psql('postgres',
		join('', map { "ALTER SYSTEM SET $_ = '$set{$_}';\n" } sort keys %set)
		  . 'SELECT pg_reload_conf();');
	my $want = join('/', map { $set{$_} } sort keys %set);
	ok( $node->poll_query_until(
			'postgres',
			'SELECT ' . join(" || '/' || ", map { "current_setting('$_')" } sort keys %set),
			$want),
		"$n: the server runs with " . join(', ', map { "$_ = $set{$_}" } sort keys %set));

	# catching up: more than a batch written before, more while it starts
	write_events("$n-before-$_") foreach 1 .. 4;
	cmp_ok(max_seq(), '>', 100, "$n: more than 100 events (its batch) before it starts");
	my $l = start_listener($lang, $name);
	write_events("$n-starting");
	my $seq = max_seq();
	ok(caught_up($l, $seq, scalar @{ expected_after(0) }),
		"$n: catches up, its cursor reaches max(seq) = $seq")
	  or diag("stderr: $l->{err}");
	is_deeply(lines_of($l), expected_after(0),
		"$n: it printed the event_json of every event, in seq order, once");

	# live
	write_events("$n-live");
	$seq = max_seq();
	ok(caught_up($l, $seq, scalar @{ expected_after(0) }), "$n: events written while it waits arrive")
	  or diag("stderr: $l->{err}");
	is_deeply(lines_of($l), expected_after(0), "$n: ... and are printed in seq order, once");

	# written without notifications; a later notified event wakes it
	write_events("$n-quiet", 1);
	write_events("$n-loud");
	$seq = max_seq();
	ok(caught_up($l, $seq, scalar @{ expected_after(0) }),
		"$n: events written with approval.notify = off arrive with the next notified one")
	  or diag("stderr: $l->{err}");
	is_deeply(lines_of($l), expected_after(0), "$n: ... in seq order, once");

	# a transaction that wrote an event and is still open holds back the
	# events after it, also those committed since; at its commit they all
	# arrive, in seq order
	my $long = $node->background_psql('postgres');
	$long->query_safe('BEGIN; SET LOCAL ROLE l_alice');
	my $held = $long->query_safe("SELECT approval.submit('lwf', '{}', '$n held back')");
	$long->query_safe('RESET ROLE');
	my $held_seq = $long->query_safe("SELECT min(seq) FROM approval.event WHERE request_id = $held");
	write_events("$n-behind");
	my $t = $node->safe_psql(
		'postgres', qq{
	BEGIN;
	SET LOCAL ROLE l_alice;
	SELECT approval.submit('lwf', '{}', '$n wake-up') AS w \\gset
	SELECT clock_timestamp();
	COMMIT;
});
	ok( $node->poll_query_until(
			'postgres', qq{
	SELECT count(*) > 0 FROM pg_stat_activity
	 WHERE usename = 'l_listener' AND state = 'idle' AND query LIKE '%events_after%'
	   AND query_start > '$t'}),
		"$n: with a transaction open since seq $held_seq, it read the log after later events committed"
	) or diag("stderr: $l->{err}");
	$l->{h}->pump_nb;
	cmp_ok(cursor_of($name), '<', $held_seq, "$n: ... its cursor stays before seq $held_seq");
	is_deeply(lines_of($l), expected_after(0, $held_seq),
		"$n: ... and it printed no event from seq $held_seq on");
	$long->query_safe('COMMIT');
	$long->quit;
	$seq = max_seq();
	ok(caught_up($l, $seq, scalar @{ expected_after(0) }),
		"$n: the transaction committed: it catches up to max(seq) = $seq")
	  or diag("stderr: $l->{err}");
	is_deeply(lines_of($l), expected_after(0), "$n: ... printing all events in seq order, once");

	# SIGTERM, events meanwhile, started again
	is(stop_listener($l), 0, "$n: SIGTERM: it exits with status 0");
	my $cursor = cursor_of($name);
	is($cursor, $seq, "$n: its cursor stayed at max(seq)");
	write_events("$n-stopped");
	$l = start_listener($lang, $name);
	$seq = max_seq();
	ok(caught_up($l, $seq, scalar @{ expected_after($cursor) }),
		"$n: started again, it catches up to max(seq) = $seq")
	  or diag("stderr: $l->{err}");
	is_deeply(lines_of($l), expected_after($cursor),
		"$n: ... printing only the events after its cursor $cursor");

	# the server stops under it, and starts again
	my $said = length $l->{err};
	$node->stop('fast');
	my @retries;
	ok( wait_for(
			$l,
			sub {
				@retries = (substr($l->{err}, $said) =~ /reconnecting in (\d+) s/g);
				return @retries >= 2;
			}),
		"$n: the server stopped: it says it reconnects, twice")
	  or diag("stderr: $l->{err}");
	is_deeply([ @retries[ 0, 1 ] ], [ 1, 2 ],
		"$n: ... after 1 s, and after a failed attempt 2 s (back-off)");
	$node->start;
	write_events("$n-restarted");
	$seq = max_seq();
	ok(caught_up($l, $seq, scalar @{ expected_after($cursor) }),
		"$n: the server is back: it reconnects and catches up to max(seq) = $seq")
	  or diag("stderr: $l->{err}");
	is_deeply(lines_of($l), expected_after($cursor), "$n: ... printing every event once, in seq order");
	is(stop_listener($l), 0, "$n: SIGTERM: it exits with status 0");
	is(cursor_of($name), $seq, "$n: its cursor is max(seq)");
	return;
}

foreach my $lang (@langs)
{
	if (!$lang->{cmd})
	{
		if ($in_ci)
		{
			fail("$lang->{lang}: the example cannot run under CI: $lang->{why}");
		}
		else
		{
		  SKIP: { skip "$lang->{lang}: $lang->{why}", 1; }
		}
		next;
	}
	follow_one($lang);
}

$node->stop;
done_testing();
