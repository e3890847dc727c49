# Events without a request (DESIGN §10, doc "Admin tools"): an admin's
# approval.delegate_for() writes an event with request_id NULL.  What cannot
# be seen inside one transaction (test/pgtap/011_admin.sql has the rest):
#
#   * its notification, at commit: kind "delegated", "request": null,
#     "workflow": null, the admin as actor, the delegate as target; with
#     approval.notify_payload = minimal, {"seq","kind","request": null};
#   * events_after() returns it, once committed, to an admin and to a
#     gateway acting for no one, not to a user; event_json() of it;
#   * approval_listen --once prints it (and --kind delegated only it), and
#     leaves it out under --workflow;
#   * two sessions calling delegate_for at once: both events chain, one
#     after the other (verify_audit() finds the chain of events without a
#     request intact), because the second waits for the first's lock.
use strict;
use warnings;

use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $listen = $ENV{APPROVAL_LISTEN} // 'approval_listen';
my $timeout = $PostgreSQL::Test::Utils::timeout_default;

my $node = PostgreSQL::Test::Cluster->new('admin_events');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'approval'");
$node->start;

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION approval;
	CREATE ROLE e_root LOGIN IN ROLE approval_admin;
	CREATE ROLE e_bob LOGIN IN ROLE approval_user;
	CREATE ROLE e_gw LOGIN IN ROLE approval_gateway;
	INSERT INTO approval.principal (id, pg_role) VALUES
	    ('root', 'e_root'), ('bob', 'e_bob'), ('old', NULL), ('carol', NULL);
	SELECT approval.define_workflow('{"name": "wa", "stages": [{"name": "one", "approvers": ["user:old"]}]}');
});

# --- the notification, at commit ---

my $script = q{
LISTEN approval;
SET ROLE e_root;
SELECT approval.delegate_for('old', 'bob', reason => 'old is on leave') AS d1 \gset
RESET ROLE;
\echo @@ minimal
SET approval.notify_payload = minimal;
SET ROLE e_root;
SELECT approval.delegate_for('old', 'carol', workflow => 'wa', reason => 'and carol') AS d2 \gset
RESET ROLE;
\echo @@ end
};
my ($out, $err);
my $ret = $node->psql('postgres', $script, stdout => \$out, stderr => \$err);
is($ret, 0, 'the listening session ran') or diag($err);
my @notes;
my $phase = 'full';
foreach my $line (split /\n/, $out . "\n" . $err)
{
	$phase = $1 if $line =~ /^@@ (\S+)$/;
	push @notes, [ $phase, decode_json($1) ]
	  if $line =~ /^Asynchronous notification "approval" with payload "(.*)" received/;
}
is(scalar @notes, 2, 'one notification per delegate_for');
my ($full, $minimal) = map { $_->[1] } @notes;
is_deeply(
	{ map { $_ => $full->{$_} } qw(kind request workflow state stage actor targets) },
	{
		kind => 'delegated',
		request => undef,
		workflow => undef,
		state => undef,
		stage => undef,
		actor => 'root',
		targets => ['user:bob']
	},
	'the full notification: kind delegated, request and workflow null, the admin, the delegate');
is_deeply([ sort keys %$minimal ], [qw(kind request seq)], 'the minimal notification: seq, kind, request');
ok(exists $minimal->{request} && !defined $minimal->{request}, 'its request is null');

# --- events_after, event_json, by who is asking ---

my $sql = q{SELECT count(*) FROM approval.events_after(0) WHERE request_id IS NULL};
is($node->safe_psql('postgres', $sql, extra_params => [ '-U', 'e_root' ]),
	'2', 'events_after() returns them to an admin');
is($node->safe_psql('postgres', $sql, extra_params => [ '-U', 'e_gw' ]),
	'2', 'and to a gateway acting for no one');
is($node->safe_psql('postgres', $sql, extra_params => [ '-U', 'e_bob' ]),
	'0', 'not to a user, even the delegate');
is( $node->safe_psql(
		'postgres',
		q{SELECT string_agg(approval.event_json(e)::jsonb->>'kind' || ' ' ||
		                    coalesce(approval.event_json(e)::jsonb->>'request', 'null'), ',' ORDER BY seq)
		    FROM approval.events_after(0) e WHERE request_id IS NULL},
		extra_params => [ '-U', 'e_root' ]),
	'delegated null,delegated null',
	'event_json() of each: request null');

# --- approval_listen ---

SKIP:
{
	skip "$listen not in PATH", 4
	  unless eval { IPC::Run::run([ $listen, '--version' ], '>', \my $v, '2>', \my $e); 1 };
	my $conn = $node->connstr('postgres') . ' user=e_gw';
	$node->safe_psql('postgres', 'GRANT approval_admin TO e_gw');
	my ($lo, $le) = ('', '');
	IPC::Run::run([ $listen, '--once', '-s', 'all', $conn ], '<', '/dev/null', '>', \$lo, '2>', \$le,
		IPC::Run::timeout($timeout));
	is($? >> 8, 0, 'approval_listen --once exits 0') or diag($le);
	my @kinds = map { my $j = decode_json($_); $j->{kind} . ' ' . ($j->{request} // 'null') }
	  grep { /\S/ } split /\n/, $lo;
	is_deeply(\@kinds, [ 'delegated null', 'delegated null' ], 'it prints both events, request null');
	($lo, $le) = ('', '');
	IPC::Run::run([ $listen, '--once', '-s', 'kind', '--kind', 'delegated', $conn ],
		'<', '/dev/null', '>', \$lo, '2>', \$le, IPC::Run::timeout($timeout));
	is(scalar(grep { /\S/ } split /\n/, $lo), 2, '--kind delegated is a known kind and prints them')
	  or diag($le);
	($lo, $le) = ('', '');
	IPC::Run::run([ $listen, '--once', '-s', 'wf', '--workflow', 'wa', $conn ],
		'<', '/dev/null', '>', \$lo, '2>', \$le, IPC::Run::timeout($timeout));
	is($lo, '', '--workflow leaves them out (they belong to no workflow)') or diag($le);
}

# --- two writers at once: the second waits for the first's lock ---

my $s1 = $node->background_psql('postgres', extra_params => [ '-U', 'e_root' ]);
$s1->query_safe(q{BEGIN; SELECT approval.delegate_for('carol', 'bob', reason => 'first')});
my $s2 = $node->background_psql('postgres', extra_params => [ '-U', 'e_root' ]);
$s2->query_until(qr/started/, q{\echo started
SELECT approval.delegate_for('carol', 'old', reason => 'second');
});
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) > 0 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		   WHERE NOT l.granted AND a.query LIKE '%delegate_for(''carol'', ''old''%'}),
	'the second delegate_for waits for the first');
$s1->query_safe('COMMIT');
$s1->quit;
$s2->quit;
is($node->safe_psql('postgres', q{SELECT count(*) FROM approval.event WHERE request_id IS NULL}),
	'4', 'both are written');
is( $node->safe_psql(
		'postgres', q{SELECT ok::text || ' ' || events FROM approval.verify_audit() WHERE request_id IS NULL AND checkpoint IS NULL},
		extra_params => [ '-U', 'e_root' ]),
	'true 4',
	'verify_audit(): the chain of events without a request is intact');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM approval.verify_audit() WHERE request_id IS NULL},
		extra_params => [ '-U', 'e_bob' ]),
	'0',
	'a user does not verify (or see) that chain');

$node->stop;
done_testing();
