# Live events with LISTEN/NOTIFY (DESIGN §7, doc "Events").
#
# One psql session listens on "approval" and "other", then submits and
# decides in autocommit statements; psql prints every notification it
# receives after the command that delivered it:
#
#   Asynchronous notification "approval" with payload "{...}" received from server process with PID 123.
#
# The script prints "@@ <phase>" markers with \echo, so each notification is
# known to have arrived in a phase.  The test checks: one notification per
# event row, in seq order, with exactly the keys of DESIGN §7; the targets of
# stage_activated; never the request payload; long target lists cut under
# 8000 bytes with "targets_truncated" while the event row keeps them all;
# approval.notify = off; approval.notify_channel; nothing from a rolled-back
# transaction; delivery at commit.
use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('notify');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'approval'");
$node->start;

my $marker = 'SECRET-PAYLOAD-MARKER-5f3a9c';
my $ntargets = 2000;

# --- people, a group, workflows ---

$node->safe_psql(
	'postgres', qq{
	CREATE EXTENSION approval;
	CREATE ROLE n_alice;
	CREATE ROLE n_bob;
	CREATE ROLE n_carol;
	CREATE ROLE n_dave;
	GRANT approval_user TO n_alice, n_bob, n_carol, n_dave;
	INSERT INTO approval.principal (id, display_name, manager_id, pg_role) VALUES
	    ('bob',   'Bob',   NULL,  'n_bob'),
	    ('alice', 'Alice', 'bob', 'n_alice'),
	    ('carol', 'Carol', NULL,  'n_carol'),
	    ('dave',  'Dave',  NULL,  'n_dave'),
	    ('erin',  'Erin',  NULL,  NULL);
	INSERT INTO approval.approver_group (name) VALUES ('finance');
	INSERT INTO approval.group_member (group_name, principal_id) VALUES ('finance', 'carol'), ('finance', 'dave');
	SELECT approval.define_workflow('{"name": "nwf", "stages": [
	    {"name": "manager", "approvers": ["manager"]},
	    {"name": "finance", "approvers": ["group:finance", "user:erin"]}]}');
	-- $ntargets principals with long ids, all approvers of one stage
	INSERT INTO approval.principal (id, display_name)
	SELECT format('a-principal-with-a-rather-long-identifier-for-notify-%s', lpad(i::text, 5, '0')), 'Crowd'
	  FROM generate_series(1, $ntargets) i;
	SELECT approval.define_workflow(jsonb_build_object(
	    'name', 'nbig',
	    'stages', jsonb_build_array(jsonb_build_object(
	        'name', 'crowd',
	        'approvers', (SELECT jsonb_agg('user:' || id ORDER BY id) FROM approval.principal
	                       WHERE display_name = 'Crowd')))));
});

# --- one listening session ---

my $payload = qq({"marker": "$marker", "cost": 1200});
my $script = qq{
LISTEN approval;
LISTEN other;
\\echo \@\@ submit
SET ROLE n_alice;
SELECT approval.submit('nwf', '$payload', 'laptop') AS a \\gset
RESET ROLE;
\\echo \@\@ request :a
BEGIN;
\\echo \@\@ in-transaction
SET LOCAL ROLE n_bob;
SELECT approval.approve(:a) AS ignored \\gset
\\echo \@\@ committing
COMMIT;
\\echo \@\@ after-commit
SET approval.notify_channel = 'other';
SET ROLE n_carol;
SELECT approval.approve(:a) AS ignored \\gset
RESET ROLE;
RESET approval.notify_channel;
\\echo \@\@ channel-reset
SET ROLE n_alice;
SELECT approval.submit('nwf', '$payload', 'monitor') AS d \\gset
RESET ROLE;
\\echo \@\@ request-d :d
SET approval.notify = off;
SET ROLE n_bob;
SELECT approval.approve(:d) AS ignored \\gset
RESET ROLE;
SET approval.notify = on;
\\echo \@\@ notify-on
BEGIN;
SET LOCAL ROLE n_alice;
SELECT approval.submit('nwf', '$payload', 'rolled back') AS ignored \\gset
\\echo \@\@ rolling-back
ROLLBACK;
\\echo \@\@ rolled-back
SET ROLE n_alice;
SELECT approval.submit('nbig', '$payload', 'crowd') AS c \\gset
RESET ROLE;
\\echo \@\@ request-c :c
\\echo \@\@ end
};

my ($ret, $out, $err);
$ret = $node->psql('postgres', $script, stdout => \$out, stderr => \$err);
is($ret, 0, 'the listening session ran') or diag($err);

# --- parse: markers and notifications, in the order psql printed them ---

my $phase = 'start';
my %ids;
my @notes;      # { phase, channel, raw, json }
my @lines = split /\n/, $out;
foreach my $line (@lines)
{
	if ($line =~ /^@@ (\S+)(?: (\d+))?$/)
	{
		$phase = $1;
		$ids{$1} = $2 if defined $2;
		next;
	}
	if ($line =~
		/^Asynchronous notification "([^"]+)" with payload "(.*)" received from server process with PID \d+\.$/)
	{
		my ($channel, $raw) = ($1, $2);
		my $json = eval { decode_json($raw) };
		push @notes,
		  { phase => $phase, channel => $channel, raw => $raw, json => $json, len => length($raw) };
	}
}

my $ra = $ids{request};
my $d = $ids{'request-d'};
my $c = $ids{'request-c'};
ok(defined $ra && defined $d && defined $c, 'the script printed the three request ids')
  or diag($out);
ok(@notes > 0, 'notifications were received') or diag($out);
is(scalar(grep { !defined $_->{json} } @notes), 0, 'every notification payload is valid JSON');

my @good = grep { defined $_->{json} } @notes;
sub for_request
{
	my $id = shift;
	return grep { defined $id && $_->{json}{request} == $id } @good;
}

# --- request A: one notification per event row, in seq order ---

my $events_a = $node->safe_psql(
	'postgres', qq{
	SELECT seq, kind, COALESCE(actor, ''), to_json(at)#>>'{}', COALESCE(data->>'stage', ''),
	       COALESCE(data->'targets', 'null')::text
	  FROM approval.event WHERE request_id = $ra ORDER BY seq});
my @rows_a = map { [ split /\|/, $_, 6 ] } split /\n/, $events_a;
my @notes_a = for_request($ra);

is_deeply([ map { $_->{json}{seq} } @notes_a ], [ map { $_->[0] } @rows_a ],
	'request A: one notification per event row, in seq order');
is_deeply([ map { $_->{json}{kind} } @notes_a ], [ map { $_->[1] } @rows_a ],
	'request A: each notification has the kind of its event row');
is_deeply([ map { $_->{json}{actor} // '' } @notes_a ], [ map { $_->[2] } @rows_a ],
	'request A: each notification has the actor of its event row');
is_deeply([ map { $_->{json}{at} } @notes_a ], [ map { $_->[3] } @rows_a ],
	'request A: each notification has the time of its event row');
ok(
	(grep { $_->[1] eq 'approved' } @rows_a)
	  && (grep { $_->[1] eq 'stage_activated' } @rows_a) == 2,
	'request A went through two activated stages to approved');

my @keys = qw(seq kind request workflow state stage actor targets at);
is_deeply([ map { join ',', sort keys %{ $_->{json} } } @notes_a ],
	[ map { join ',', sort @keys } @notes_a ],
	'request A: every notification has exactly the keys seq, kind, request, workflow, state, stage, actor, targets, at');
is_deeply([ map { $_->{json}{workflow} } @notes_a ], [ map { 'nwf' } @notes_a ],
	'request A: "workflow" is the workflow name');

my @activated = grep { $_->{json}{kind} eq 'stage_activated' } @notes_a;
is_deeply(
	[ map { [ $_->{json}{stage}, $_->{json}{targets} ] } @activated ],
	[ [ 'manager', ['user:bob'] ], [ 'finance', [ 'group:finance', 'user:erin' ] ] ],
	'stage_activated: "stage" and "targets" name the stage and its resolved targets');
is_deeply(
	[ map { $_->{json}{targets} } @activated ],
	[ map { decode_json($_->[5]) } grep { $_->[1] eq 'stage_activated' } @rows_a ],
	'stage_activated: "targets" equals the targets in the event row');
is($notes_a[0]{json}{state}, 'pending', 'the "submitted" notification has state pending');
is($notes_a[-1]{json}{kind} . '/' . $notes_a[-1]{json}{state}, 'approved/approved',
	'the last notification is "approved" with state approved');

# --- never the payload ---

is(scalar(grep { index($_->{raw}, $marker) >= 0 } @notes), 0,
	'no notification carries the request payload (marker not found)');
unlike($out, qr/\Q$marker\E/, 'the marker appears nowhere in the session output');
is(scalar(grep { index($_->{raw}, '"cost"') >= 0 } @notes), 0, 'no notification carries a payload key');

# --- delivered at commit ---

is(scalar(grep { $_->{phase} eq 'in-transaction' } @notes), 0,
	'inside BEGIN: no notification for the approve before COMMIT');
my @at_commit = grep { $_->{phase} eq 'committing' } @notes;
is_deeply([ map { $_->{json}{kind} } @at_commit ],
	[ map { $_->[1] } grep { $_->[2] eq 'bob' } @rows_a ],
	'the approve\'s notifications arrive with COMMIT (printed after it), one per event of bob\'s vote');

# --- approval.notify_channel ---

my @channel_phase = grep { $_->{phase} eq 'after-commit' } @notes;
ok(@channel_phase > 0, 'notify_channel = other: the decision sent notifications');
is(scalar(grep { $_->{channel} ne 'other' } @channel_phase), 0,
	'notify_channel = other: all of them on "other", none on "approval"');
is(scalar(grep { $_->{channel} eq 'other' && $_->{phase} ne 'after-commit' } @notes), 0,
	'notify_channel reset: nothing else arrives on "other"');
my @d_submit = grep { $_->{phase} eq 'channel-reset' } @notes;
ok(@d_submit > 0 && !(grep { $_->{channel} ne 'approval' } @d_submit),
	'notify_channel reset: notifications are back on "approval"');

# --- approval.notify = off ---

is(scalar(grep { $_->{phase} eq 'request-d' } @notes), 0,
	'approval.notify = off: the decision sends no notification');
my $d_bob = $node->safe_psql('postgres',
	"SELECT string_agg(kind, ',' ORDER BY seq) FROM approval.event WHERE request_id = $d AND actor = 'bob'");
is($d_bob, join(',', map { $_->{json}{kind} } @at_commit),
	'approval.notify = off: the event rows of the decision are still written');
my $d_rest = $node->safe_psql('postgres',
	"SELECT string_agg(seq::text, ',' ORDER BY seq) FROM approval.event WHERE request_id = $d AND actor IS DISTINCT FROM 'bob'");
is(join(',', map { $_->{json}{seq} } for_request($d)), $d_rest,
	'request D: exactly the events written with notify on were sent');

# --- rolled back ---

is(scalar(grep { $_->{phase} eq 'notify-on' || $_->{phase} eq 'rolling-back' } @notes), 0,
	'a rolled-back transaction sends nothing');
is($node->safe_psql('postgres', "SELECT count(*) FROM approval.request WHERE title = 'rolled back'"),
	'0', 'and leaves no request behind');

# --- long target lists ---

my @crowd = grep { $_->{json}{kind} eq 'stage_activated' } for_request($c);
is(scalar(@crowd), 1, 'the crowd request sent one stage_activated notification');
my $big = $crowd[0] // { len => 0, json => {} };
ok($big->{len} < 8000, "the crowd stage_activated payload is under 8000 bytes ($big->{len})");
is($big->{json}{targets_truncated}, JSON::PP::true, '"targets_truncated": true');
my $sent = ref $big->{json}{targets} eq 'ARRAY' ? scalar @{ $big->{json}{targets} } : 0;
ok($sent > 0 && $sent < $ntargets, "a prefix of the targets is sent ($sent of $ntargets)");
is( $node->safe_psql(
		'postgres',
		"SELECT jsonb_array_length(data->'targets') FROM approval.event
		  WHERE request_id = $c AND kind = 'stage_activated'"),
	$ntargets,
	"the event row keeps all $ntargets targets");
my $prefix_ok = $node->safe_psql(
	'postgres',
	"SELECT (SELECT array_agg(t ORDER BY n) FROM jsonb_array_elements_text(data->'targets')
	           WITH ORDINALITY AS x(t, n) WHERE n <= $sent)
	        = (SELECT array_agg(t ORDER BY n) FROM jsonb_array_elements_text('"
	  . encode_json($big->{json}{targets} // []) =~ s/'/''/gr
	  . "'::jsonb) WITH ORDINALITY AS y(t, n))
	   FROM approval.event WHERE request_id = $c AND kind = 'stage_activated'");
is($prefix_ok, 't', 'the sent targets are the first ones of the event row, in order');
is(scalar(grep { $_->{len} >= 8000 } @notes), 0, 'no notification is 8000 bytes or more');

$node->stop;
done_testing();
