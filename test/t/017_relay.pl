# approval.notify = relay and approval.notify_payload (DESIGN §7; doc
# "Events" and doc/listeners.md).
#
# With relay, decisions write only the log and the background worker sends
# the notifications shortly after commit: a listener receives them from the
# worker's process, not the writer's (so the writer's commit took no NOTIFY
# lock), in seq order, with the same payload as at commit; events of a
# transaction still writing hold back the later ones (the relay follows the
# gapless cursor), rolled-back events are never sent, and many concurrent
# writers' events all arrive, each once, in order.  Where no worker runs
# (a database not in approval.databases) the writer notifies at commit
# instead.  notify_payload = minimal sends only seq, kind and request, at
# commit and relayed.
use strict;
use warnings;

use DBI;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('relay');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'approval'\napproval.notify = relay\napproval.tick_interval = 1000");
$node->start;

my $setup = q{
	CREATE EXTENSION approval;
	INSERT INTO approval.principal (id) VALUES ('boss');
	INSERT INTO approval.principal (id, manager_id)
	    SELECT 'p' || i, 'boss' FROM generate_series(1, 4) i;
	SELECT approval.define_workflow('{"name": "relay", "stages": [
	    {"name": "manager", "approvers": ["manager"]}]}');
};
$node->safe_psql('postgres', $setup . 'CREATE ROLE r_gateway LOGIN; GRANT approval_gateway TO r_gateway;');
$node->safe_psql('postgres', 'CREATE DATABASE elsewhere');
$node->safe_psql('elsewhere', $setup);

my %opts = (AutoCommit => 1, RaiseError => 1, PrintError => 0);
sub dsn { return "dbi:Pg:dbname=$_[0];host=" . $node->host . ';port=' . $node->port; }
sub conn { my ($db, $user) = @_; return DBI->connect(dsn($db), $user, undef, \%opts) || die $DBI::errstr; }

my $listener = conn('postgres');
$listener->do('LISTEN approval');
my $w1 = conn('postgres', 'r_gateway');
my $w2 = conn('postgres', 'r_gateway');

sub submit
{
	my ($dbh, $who) = @_;
	$dbh->do("SELECT set_config('approval.actor', ?, false)", undef, $who);
	return $dbh->selectrow_array("SELECT approval.submit('relay', '{}')");
}

# wait until $n notifications arrived (or 60 s); returns [pid, json] pairs
sub receive
{
	my ($n, $dbh) = @_;
	$dbh //= $listener;
	my @got;
	for (my $i = 0; $i < 6000 && @got < $n; $i++)
	{
		while (my $note = $dbh->pg_notifies)
		{
			push @got, [ $note->[1], decode_json($note->[2]), $note->[2] ];
		}
		select(undef, undef, undef, 0.01) if @got < $n;
	}
	return @got;
}

# what arrives within a short while: for checks that nothing (more) comes
sub drain
{
	my ($dbh) = @_;
	$dbh //= $listener;
	my @got;
	for (1 .. 150)
	{
		while (my $note = $dbh->pg_notifies)
		{
			push @got, [ $note->[1], decode_json($note->[2]), $note->[2] ];
		}
		select(undef, undef, undef, 0.01);
	}
	return @got;
}

sub seqs_after
{
	my ($dbh, $after) = @_;
	return map { $_->[0] } @{ $dbh->selectall_arrayref(
			'SELECT seq FROM approval.event WHERE seq > ? ORDER BY seq', undef, $after) };
}

my $worker_pid;
for (1 .. 600)
{
	$worker_pid = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE application_name = 'approval worker' AND datname = 'postgres'");
	last if $worker_pid;
	select(undef, undef, undef, 0.1);
}
ok($worker_pid, 'the worker runs in postgres');

# the worker starts relaying at its first round that finds the extension;
# until then writers notify at their commit: wait for a relayed one
my $ready = 0;
for (1 .. 100)
{
	submit($w1, 'p1');
	for my $note (receive(2))
	{
		$ready = 1 if $note->[0] == $worker_pid;
	}
	last if $ready;
	select(undef, undef, undef, 0.1);
}
ok($ready, 'the worker relays');
drain();

# --- relayed by the worker, with the payload of a notification at commit ---

my $top = $listener->selectrow_array('SELECT coalesce(max(seq), 0) FROM approval.event');
my $r1 = submit($w1, 'p1');
my @got = receive(2);
is(scalar @got, 2, 'a submit: two notifications arrive');
is_deeply([ map { $_->[0] } @got ], [ $worker_pid, $worker_pid ], 'they come from the worker, not the writer');
is_deeply([ map { $_->[1]{seq} } @got ], [ seqs_after($listener, $top) ], 'in seq order, one per event');
my $want = $listener->selectall_arrayref(
	q{SELECT (approval.event_json(e)::jsonb - 'data')::text FROM approval.event e
	   WHERE e.request_id = ? ORDER BY e.seq}, undef, $r1);
is_deeply([ map { JSON::PP->new->canonical->encode($_->[1]) } @got ],
	[ map { JSON::PP->new->canonical->encode(decode_json($_->[0])) } @$want ],
	'each is event_json() of its event without data: the full payload');
is_deeply([ sort keys %{ $got[1][1] } ],
	[ sort qw(seq kind request workflow state stage actor targets at) ],
	'the keys of DESIGN §7');
is_deeply($got[1][1]{targets}, ['user:boss'], 'stage_activated names who must act')
  or diag(explain($got[1][1]));

# --- a writer still running holds back the later events ---

$top = $listener->selectrow_array('SELECT coalesce(max(seq), 0) FROM approval.event');
$w1->begin_work;
submit($w1, 'p2');
submit($w2, 'p3');
is(scalar(drain()), 0, 'events committed after an open writer\'s are not relayed while it runs');
$w1->commit;
@got = receive(4);
is_deeply([ map { $_->[1]{seq} } @got ], [ seqs_after($listener, $top) ],
	'once it commits, its events and the later ones arrive, in seq order');

# --- rolled back: never sent ---

$top = $listener->selectrow_array('SELECT coalesce(max(seq), 0) FROM approval.event');
$w1->begin_work;
submit($w1, 'p2');
submit($w2, 'p3');
$w1->rollback;
@got = (receive(2), drain());
is_deeply([ map { $_->[1]{seq} } @got ], [ seqs_after($listener, $top) ],
	'a rolled-back transaction\'s events are never sent; the others are');
is(scalar @got, 2, '... two of them');

# --- many concurrent writers: every event, once, in order ---

$top = $listener->selectrow_array('SELECT coalesce(max(seq), 0) FROM approval.event');
my $script = "${PostgreSQL::Test::Utils::tmp_check}/relay.sql";
open my $fh, '>', $script or die "$script: $!";
print $fh <<'EOS';
\set who random(1, 4)
\set pause random(0, 5)
BEGIN;
SELECT set_config('approval.actor', 'p' || :who, true);
SELECT approval.submit('relay', '{}');
\sleep :pause ms
SELECT approval.submit('relay', '{}');
COMMIT;
EOS
close $fh;
my ($out, $err) = ('', '');
IPC::Run::run(
	[
		$node->installed_command('pgbench'), '-n', '-c', '4', '-T', '3', '-f', $script,
		'-U', 'r_gateway', '-h', $node->host, '-p', $node->port, 'postgres'
	],
	'>', \$out, '2>', \$err) or diag($err);
my @want = seqs_after($listener, $top);
cmp_ok(scalar @want, '>', 100, 'pgbench wrote events (' . scalar(@want) . ')');
@got = receive(scalar @want);
push @got, drain();
is(scalar @got, scalar @want, 'every one of them was relayed once');
is_deeply([ map { $_->[1]{seq} } @got ], \@want, 'in seq order, with no gaps');
is(scalar(grep { $_->[0] != $worker_pid } @got), 0, 'all by the worker');

# --- no worker in the database: notified at commit by the writer ---

my $l2 = conn('elsewhere');
$l2->do('LISTEN approval');
my $w3 = conn('elsewhere');
my $w3_pid = $w3->selectrow_array('SELECT pg_backend_pid()');
is($w3->selectrow_array('SHOW approval.notify'), 'relay', 'relay is set in the other database too');
$w3->do("SELECT set_config('approval.actor', 'p1', false)");
$w3->do("SELECT approval.submit('relay', '{}')");
@got = receive(2, $l2);
is_deeply([ map { $_->[0] } @got ], [ $w3_pid, $w3_pid ],
	'where no worker runs, the writer notifies at its commit');

# --- minimal payloads ---

$w3->do('SET approval.notify = commit');
$w3->do('SET approval.notify_payload = minimal');
$w3->do("SELECT approval.submit('relay', '{}')");
@got = receive(2, $l2);
is_deeply([ map { [ sort keys %{ $_->[1] } ] } @got ], [ [qw(kind request seq)], [qw(kind request seq)] ],
	'notify_payload = minimal at commit: seq, kind and request only');
like($got[0][2], qr/^\{"seq":\d+,"kind":"submitted","request":\d+\}$/, '... as compact JSON');

$node->append_conf('postgresql.conf', 'approval.notify_payload = minimal');
$node->reload;
# the worker applies the reload in its loop: wait until a relayed note is minimal
my $minimal = 0;
for (1 .. 100)
{
	submit($w1, 'p4');
	@got = receive(2);
	if (@got == 2 && !exists $got[0][1]{workflow})
	{
		$minimal = 1;
		last;
	}
}
ok($minimal, 'after a reload, the worker relays minimal payloads');
submit($w1, 'p4');
@got = receive(2);
is_deeply([ map { [ sort keys %{ $_->[1] } ] } @got ], [ [qw(kind request seq)], [qw(kind request seq)] ],
	'relayed minimal: seq, kind and request only');

$_->disconnect for ($listener, $w1, $w2, $l2, $w3);
$node->stop;
done_testing();
