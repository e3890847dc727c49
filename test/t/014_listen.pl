# approval_listen (DESIGN §7, doc/approval_listen.md).
#
# One node with approval preloaded; the program runs as a gateway (and once
# as an admin), through PATH (tools/run-tests.sh puts pg_config --bindir
# first).  Checked: bad options and missing rights exit 1 with a message;
# --once prints exactly event_json() of every event, in seq order, and
# moves the cursor to max(seq), and a second run prints nothing; --kind and
# --workflow print only their events but ack all; a running listener
# catches up and then follows live events, woken by the notification (with
# --poll=3600, so that nothing else could have read them), on a changed
# approval.notify_channel too, by the worker's relayed minimal
# notifications (notify = relay, notify_payload = minimal), and by --poll
# alone with approval.notify = off; a notified event held back behind an
# open transaction that then rolls back (no notification) is still read,
# with --poll 3600; SIGTERM while waiting, in a command's back-off and while a command
# runs: exit 0 (the command's process group gone, its event not acked);
# --exec appends each event's line and sees APPROVAL_SEQ/KIND/WORKFLOW; a
# failing command is run again for the same event, never skipped, and the
# cursor stays before it until it succeeds; the server restarted under a
# listener (restart, immediate stop, pg_terminate_backend) while two
# writers submit and approve: every event printed, duplicates only where it
# reconnected (counted and reported), the cursor at max(seq); a closed
# stdout (| head) is exit 1.  No timed assertion: every wait polls with
# the default timeout.
use strict;
use warnings;

use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $listen = $ENV{APPROVAL_LISTEN} // 'approval_listen';
my $tmp = PostgreSQL::Test::Utils::tempdir;
my $timeout = $PostgreSQL::Test::Utils::timeout_default;

eval { IPC::Run::run([ $listen, '--version' ], '>', \my $v, '2>', \my $e); 1 }
  or BAIL_OUT("$listen not found in PATH ($@): make install puts it into pg_config --bindir");

my $node = PostgreSQL::Test::Cluster->new('listen');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'approval'
approval.databases = 'postgres'
restart_after_crash = on
});
$node->start;

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION approval;
	CREATE ROLE l_gw LOGIN IN ROLE approval_gateway;
	CREATE ROLE l_admin LOGIN IN ROLE approval_admin;
	CREATE ROLE l_user LOGIN IN ROLE approval_user;
	CREATE ROLE l_none LOGIN;
	CREATE DATABASE other;
	INSERT INTO approval.principal (id, display_name) VALUES ('alice', 'Alice'), ('bob', 'Bob');
	SELECT approval.define_workflow('{"name": "wa", "stages": [{"name": "one", "approvers": ["user:bob"]}]}');
	SELECT approval.define_workflow('{"name": "wb", "stages": [{"name": "one", "approvers": ["user:bob"]}]}');
});

# --- helpers ---

sub seq_of
{
	my ($line) = @_;
	my $j = eval { decode_json($line) };
	return defined $j ? $j->{seq} : -1;
}

sub conn
{
	my ($role, $db) = @_;
	return $node->connstr($db // 'postgres') . " user=$role";
}

# run the program to its end: (exit status, stdout, stderr)
sub run_listen
{
	my @args = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $listen, @args ], '<', '/dev/null', '>', \$out, '2>', \$err,
		IPC::Run::timeout($timeout));
	return ($? >> 8, $out, $err);
}

# start it in the background, stdout and stderr into files
sub start_listen
{
	my ($name, @args) = @_;
	my %l = (
		out => "$tmp/$name.out",
		err => "$tmp/$name.err",
		timer => IPC::Run::timeout($timeout));
	$l{h} = IPC::Run::start([ $listen, @args ],
		'<', '/dev/null', '>', $l{out}, '2>', $l{err}, $l{timer});
	return \%l;
}

sub slurp_or_empty
{
	my ($f) = @_;
	return -e $f ? slurp_file($f) : '';
}

# the complete lines written so far
sub lines_of
{
	my ($f) = @_;
	my $text = slurp_or_empty($f);
	$text =~ s/[^\n]*\z//;
	return split /\n/, $text;
}

# poll until $cond returns true, up to the default timeout
sub wait_until
{
	my ($cond) = @_;
	my $deadline = time + $timeout;
	while (time < $deadline)
	{
		return 1 if $cond->();
		usleep(100_000);
	}
	return $cond->();
}

# SIGTERM; the raw wait status once it ended, undef if it did not
sub stop_listen
{
	my ($l) = @_;
	$l->{timer}->start($timeout);
	$l->{h}->signal('TERM');
	return eval { $l->{h}->finish; 1 } ? $l->{h}->full_result(0) : undef;
}

sub cursor_of
{
	my ($name) = @_;
	return $node->safe_psql('postgres',
		"SELECT COALESCE((SELECT last_seq FROM approval.subscriber WHERE name = '$name'), 0)");
}

sub max_seq
{
	return $node->safe_psql('postgres', 'SELECT COALESCE(max(seq), 0) FROM approval.event');
}

# event_json() of the events after $after (and matching $where), in seq order
sub json_lines
{
	my ($after, $where) = @_;
	$where //= 'true';
	my $text = $node->safe_psql('postgres',
		"SELECT approval.event_json(e)::text FROM approval.event e
		  WHERE e.seq > $after AND ($where) ORDER BY e.seq");
	return $text eq '' ? () : split /\n/, $text;
}

# $n requests in workflow $wf, and the first of them approved by bob
sub write_events
{
	my ($wf, $n) = @_;
	$node->safe_psql(
		'postgres', qq{
		SET approval.actor = 'alice';
		SELECT approval.submit('$wf', '{}', 'r' || i) FROM generate_series(1, $n) i;
		SET approval.actor = 'bob';
		SELECT approval.approve(max(request_id)) FROM approval.my_pending;
	});
	return;
}

# --- options and rights ---

my ($rc, $out, $err) = run_listen('--help');
is($rc, 0, '--help: exit 0');
like($out, qr/Usage:\n  approval_listen \[OPTION\]\.\.\. \[CONNINFO\]/, '--help prints the usage');
my $version = $node->safe_psql('postgres',
	"SELECT extversion FROM pg_extension WHERE extname = 'approval'");
($rc, $out) = run_listen('--version');
is($rc . $out, "0approval_listen (approval) $version\n", '--version: the version of the extension');

($rc, $out, $err) = run_listen('--no-such-option', '-s', 'x');
is($rc, 1, 'an unknown option: exit 1');
like($err, qr/unrecognized option.*\n.*Try "approval_listen --help"/, 'and it says so');
($rc, $out, $err) = run_listen('--once', conn('l_gw'));
is($rc, 1, 'no --subscriber: exit 1');
like($err, qr/no subscriber given/, 'and it says so');
($rc, $out, $err) = run_listen('--once', '-s', 'x', '--kind', 'voted,aproved', conn('l_gw'));
is($rc, 1, 'a misspelt --kind: exit 1');
like($err, qr/unknown event kind "aproved"/, 'and it names it');
($rc, $out, $err) = run_listen('--once', '-s', 'x', '--batch', '0', conn('l_gw'));
is($rc, 1, '--batch 0: exit 1');
($rc, $out, $err) = run_listen('--once', '-s', 'x', conn('l_gw'), 'extra');
is($rc, 1, 'two connection arguments: exit 1');

($rc, $out, $err) = run_listen('--once', '-s', 'x', conn('l_none'));
is($rc, 1, 'a role without rights: exit 1');
like($err, qr/role "l_none" may not use schema approval\n.*hint: .*approval_gateway/,
	'it says what the role may not do and which roles can');
($rc, $out, $err) = run_listen('--once', '-s', 'x', conn('l_user'));
is($rc, 1, 'approval_user (events_after but no ack): exit 1');
like($err, qr/role "l_user" may not call approval\.ack\(\)/, 'it says ack() is not allowed');
($rc, $out, $err) = run_listen('--once', '-s', 'x', conn('l_gw', 'other'));
is($rc, 1, 'a database without the extension: exit 1');
like($err, qr/extension "approval" is not installed in database "other"/, 'and it says so');
($rc, $out, $err) = run_listen('--once', '-s', 'x', conn('l_gw') . ' port=1');
is($rc, 1, 'no server there: exit 1 (the first connection must succeed)');
like($err, qr/could not connect/, 'and it says so');
is($node->safe_psql('postgres', 'SELECT count(*) FROM approval.subscriber'), '0',
	'none of these acked anything');

# --- catch-up with --once: exactly event_json() of each event ---

write_events('wa', 3);
write_events('wb', 2);
my @all = json_lines(0);
ok(@all >= 12, 'events were written (' . scalar(@all) . ')');

($rc, $out, $err) = run_listen('--once', '-s', 'once', '--batch', '4', '-v', conn('l_gw'));
is($rc, 0, '--once: exit 0');
is_deeply([ split /\n/, $out ], \@all,
	'--once prints event_json() of every event, one line each, in seq order (batches of 4)');
like($err, qr/caught up at seq ${\ max_seq()}/, '-v says where it caught up');
is(cursor_of('once'), max_seq(), 'the cursor is max(seq)');
($rc, $out) = run_listen('--once', '-s', 'once', conn('l_gw'));
is($rc . '/' . $out, '0/', 'run again: nothing to print');

($rc, $out) = run_listen('--once', '--subscriber=adm', "--dbname=" . conn('l_admin'));
is_deeply([ split /\n/, $out ], \@all, 'as approval_admin (--dbname=): the same lines');

# --- filters: the others are acked, not printed ---

($rc, $out) = run_listen('--once', '-s', 'fk', '-k', 'approved,stage_activated', conn('l_gw'));
is_deeply([ split /\n/, $out ], [ json_lines(0, "e.kind IN ('approved', 'stage_activated')") ],
	'--kind a,b: only those kinds');
is(cursor_of('fk'), max_seq(), '--kind: the cursor still reaches max(seq)');
($rc, $out) = run_listen('--once', '-s', 'fw', '-w', 'wb', conn('l_gw'));
my @wb = json_lines(0, "(SELECT workflow FROM approval.request r WHERE r.id = e.request_id) = 'wb'");
ok(@wb > 0, 'there are events of wb');
is_deeply([ split /\n/, $out ], \@wb, '--workflow wb: only its events');
is(cursor_of('fw'), max_seq(), '--workflow: the cursor reaches max(seq)');
($rc, $out) = run_listen('--once', '-s', 'fkw', '-k', 'submitted', '--kind=approved',
	'--workflow', 'wa', conn('l_gw'));
is_deeply(
	[ split /\n/, $out ],
	[   json_lines(0,
			"e.kind IN ('submitted', 'approved') AND "
			  . "(SELECT workflow FROM approval.request r WHERE r.id = e.request_id) = 'wa'")
	],
	'--kind twice and --workflow: both filters');

# --- live: catch up, then woken by notifications ---

my $l = start_listen('live', '-s', 'live', '--poll', '3600', '-v', conn('l_gw'));
ok(wait_until(sub { scalar(lines_of($l->{out})) == @all }), 'a listener catches up');
write_events('wa', 1);
my @now = json_lines(0);
ok(wait_until(sub { scalar(lines_of($l->{out})) == @now }),
	'and prints the live events, woken by their notification (--poll 3600)');
is_deeply([ lines_of($l->{out}) ], \@now, 'caught up and live: event_json() of each, once');
ok(wait_until(sub { cursor_of('live') eq max_seq() }), 'and acks them');
is(stop_listen($l), 0, 'SIGTERM while it waits: exit 0');

$node->append_conf('postgresql.conf', "approval.notify_channel = 'elsewhere'");
$node->reload;
$l = start_listen('channel', '-s', 'live', '--poll', '3600', '-v', conn('l_gw'));
ok(wait_until(sub { slurp_or_empty($l->{err}) =~ /listening on channel "elsewhere"/ }),
	'it listens on approval.notify_channel');
write_events('wb', 1);
ok(wait_until(sub { cursor_of('live') eq max_seq() }), 'and is woken there');
is(stop_listen($l), 0, 'SIGTERM: exit 0');

$node->append_conf('postgresql.conf', "approval.notify = off");
$node->reload;
my $before = max_seq();
$l = start_listen('poll', '-s', 'live', '--poll', '0.2', conn('l_gw'));
write_events('wa', 1);
ok(wait_until(sub { cursor_of('live') eq max_seq() }), 'approval.notify = off: --poll finds the events');
is(stop_listen($l), 0, 'SIGTERM: exit 0');
is_deeply([ lines_of($l->{out}) ], [ json_lines($before) ], 'and prints them');

$node->append_conf('postgresql.conf',
	"approval.notify = relay\napproval.notify_payload = minimal\napproval.notify_channel = 'approval'");
$node->reload;
$l = start_listen('relay', '-s', 'live', '--poll', '3600', conn('l_gw'));
ok(wait_until(sub { cursor_of('live') eq max_seq() }), 'notify = relay, minimal payloads: caught up');
write_events('wb', 2);
ok(wait_until(sub { cursor_of('live') eq max_seq() }), 'and woken by the worker\'s notifications');
is(stop_listen($l), 0, 'SIGTERM: exit 0');
$node->append_conf('postgresql.conf', "approval.notify = commit\napproval.notify_payload = full");
$node->reload;

# a transaction still writing holds back a later event; it ends without
# notifying (a rollback): the notified, held-back event is looked for again
$l = start_listen('held', '-s', 'held', '--poll', '3600', '-v', conn('l_gw'));
ok(wait_until(sub { cursor_of('held') eq max_seq() }), 'a listener caught up');
my $holder = $node->background_psql('postgres');
$holder->query_safe(
	"BEGIN; SET LOCAL approval.actor = 'alice'; SELECT approval.submit('wa', '{}', 'held back')");
$before = max_seq();
write_events('wb', 1);
ok(wait_until(sub { slurp_or_empty($l->{err}) =~ /was notified but is held back/ }),
	'a later event is notified, and held back by the open transaction');
is(cursor_of('held'), $before, 'the cursor stays behind it');
$holder->query_safe('ROLLBACK');
$holder->quit;
ok(wait_until(sub { cursor_of('held') eq max_seq() }),
	'after the rollback (no notification) it is read (--poll 3600)');
is(stop_listen($l), 0, 'SIGTERM: exit 0');
is(scalar(grep { /"held back"/ } lines_of($l->{out})), 0, 'nothing of the rolled-back transaction');

# --- --exec ---

my $file = "$tmp/exec.lines";
($rc, $out, $err) = run_listen('--once', '-s', 'ex', '-e', "cat >> '$file'", conn('l_gw'));
is($rc, 0, '--exec --once: exit 0');
is_deeply([ lines_of($file) ], [ json_lines(0) ], '--exec: each event\'s line on the command\'s stdin');
is($out, '', '--exec prints nothing itself');
is(cursor_of('ex'), max_seq(), '--exec: the cursor is max(seq)');

($rc) = run_listen('--once', '-s', 'exenv', '-k', 'submitted', '-e',
	qq{printf '%s %s %s\\n' "\$APPROVAL_SEQ" "\$APPROVAL_KIND" "\$APPROVAL_WORKFLOW" >> '$tmp/env'},
	conn('l_gw'));
is( slurp_or_empty("$tmp/env"),
	$node->safe_psql('postgres',
		"SELECT string_agg(e.seq || ' ' || e.kind || ' ' || r.workflow, E'\\n' ORDER BY e.seq) || E'\\n'
		   FROM approval.event e JOIN approval.request r ON r.id = e.request_id WHERE e.kind = 'submitted'"),
	'the command sees APPROVAL_SEQ, APPROVAL_KIND and APPROVAL_WORKFLOW');

# a command that fails until a file exists: run again, never skipped, not acked
my $go = "$tmp/go";
my $runs = "$tmp/runs";
$file = "$tmp/retry.lines";
$before = max_seq();
write_events('wa', 1);
my @new = json_lines($before);
$l = start_listen('retry', '-s', 'ex', '-e',
	"echo run >> '$runs'; [ -e '$go' ] || exit 3; cat >> '$file'", conn('l_gw'));
ok(wait_until(sub { (() = slurp_or_empty($l->{err}) =~ /running it again/g) >= 2 }),
	'a failing command is reported and run again');
my $first = seq_of($new[0]);
like(slurp_or_empty($l->{err}), qr/event $first: the command exited with status 3; running it again in 2 s/,
	'for the same event, with back-off');
is(cursor_of('ex'), $before, 'while it fails, the event is not acked');
is(slurp_or_empty($file), '', 'and nothing was handled');
open(my $fh, '>', $go) or die;
close $fh;
ok(wait_until(sub { cursor_of('ex') eq max_seq() }), 'once it succeeds, the events are acked');
is_deeply([ lines_of($file) ], \@new, 'each event handled once, in order, the failing one not skipped');
my $nruns = () = slurp_or_empty($runs) =~ /run/g;
ok($nruns >= @new + 2, "the command ran $nruns times for " . scalar(@new) . ' events');
is(stop_listen($l), 0, 'SIGTERM: exit 0');

unlink $go;
$before = max_seq();
write_events('wb', 1);
$l = start_listen('stop-backoff', '-s', 'ex', '-e', "[ -e '$go' ] || exit 3", conn('l_gw'));
ok(wait_until(sub { slurp_or_empty($l->{err}) =~ /running it again/ }), 'a command fails again');
is(stop_listen($l), 0, 'SIGTERM during the back-off: exit 0');
is(cursor_of('ex'), $before, 'and the event is not acked');

$l = start_listen('stop-running', '-s', 'ex', '-e', "echo \$\$ > '$tmp/pid'; exec sleep 1000",
	conn('l_gw'));
ok(wait_until(sub { slurp_or_empty("$tmp/pid") =~ /^\d+\n/ }), 'a command runs (sleep 1000)');
is(stop_listen($l), 0, 'SIGTERM while the command runs: exit 0');
my $pid = slurp_or_empty("$tmp/pid") =~ s/\s+//gr;
ok(!kill(0, $pid), 'the command was ended with it');
is(cursor_of('ex'), $before, 'and its event is not acked');

# --- the server restarted under a listener while two writers write ---

my $writer_sql = "$tmp/writer.sql";
open($fh, '>', $writer_sql) or die;
print $fh q{
SET approval.actor = 'alice';
SELECT approval.submit('wa', '{}', 'w') AS id \gset
SET approval.actor = 'bob';
SELECT approval.approve(:id);
};
close $fh;
my $stop = "$tmp/stop-writers";
my @writers;
foreach my $w (1, 2)
{
	push @writers,
	  IPC::Run::start(
		[   'bash', '-c',
			"while [ ! -e '$stop' ]; do psql -X -q -d '"
			  . $node->connstr('postgres')
			  . "' -f '$writer_sql' >/dev/null 2>&1 || sleep 0.2; done"
		]);
}

$before = max_seq();
$l = start_listen('restart', '-s', 'restart', '--batch', '7', '--poll', '1', conn('l_gw'));
my $printed = sub { scalar(lines_of($l->{out})) };
my $grows = sub {
	my $n = $printed->();
	my $events = max_seq();
	return wait_until(sub { $printed->() > $n && max_seq() > $events });
};
ok($grows->(), 'the writers write and the listener prints');
$node->restart;
ok($grows->(), 'after $node->restart: it prints again');
$node->stop('immediate');
$node->start;
ok($grows->(), 'after an immediate stop and start: it prints again');
$node->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'l_gw'");
ok($grows->(), 'after pg_terminate_backend: it prints again');
open($fh, '>', $stop) or die;
close $fh;
$_->finish foreach @writers;
ok(wait_until(sub { cursor_of('restart') eq max_seq() }), 'the cursor reaches max(seq)');
is(stop_listen($l), 0, 'SIGTERM: exit 0');

my @lines = lines_of($l->{out});
my %json = map { seq_of($_) => $_ } json_lines(0);
my @seqs = map { seq_of($_) } @lines;
my %count;
$count{$_}++ foreach @seqs;
my @written = grep { $_ > $before } sort { $a <=> $b } keys %json;
my @missed = grep { !$count{$_} } @written;
is_deeply(\@missed, [], 'every event written meanwhile was printed (' . scalar(@written) . ' events)');
my @wrong = grep { !defined $json{ $seqs[$_] } || $json{ $seqs[$_] } ne $lines[$_] } 0 .. $#lines;
is(scalar(@wrong), 0, 'every printed line is event_json() of its event');
my $dups = grep { $count{$_} > 1 } keys %count;
my $rewinds = grep { $seqs[$_] <= $seqs[ $_ - 1 ] } 1 .. $#seqs;
my $reconnects = () = slurp_or_empty($l->{err}) =~ /^approval_listen: reconnected$/mg;
ok($reconnects >= 3, "it reconnected ($reconnects times)");
ok($rewinds <= $reconnects,
	"printed again only where it reconnected: $dups events printed twice, $rewinds rewinds, $reconnects reconnections");
diag("restart test: " . scalar(@lines) . " lines, $dups events printed more than once, $reconnects reconnections");

# --- stdout closed under it ---

write_events('wb', 400) if max_seq() < 1000;
my ($hout, $herr) = ('', '');
my $h = IPC::Run::start([ $listen, '--once', '-s', 'pipe', '--batch', '10', conn('l_gw') ],
	'<', '/dev/null', '2>', \$herr, '|', [ 'head', '-n', '1' ], '>', \$hout,
	IPC::Run::timeout($timeout));
$h->finish;
is($h->full_result(0) >> 8, 1, 'stdout closed (| head -n 1): exit 1');
like($herr, qr/could not write to standard output: Broken pipe/, 'and it says so');
is($hout, $all[0] . "\n", 'head got the first line');
ok(cursor_of('pipe') < max_seq(), 'what was not written is not acked');

$node->stop;
done_testing();
