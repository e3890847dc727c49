# pg_dump and restore of a database that uses the extension (issue "pg_dump /
# restore breaks the engine").
#
# A database with requests in every state (test/t/ApprovalFixture.pm) is
# dumped in custom format and restored with pg_restore, and dumped in plain
# format and restored with psql, each into a fresh database of the same
# cluster (roles are cluster-wide).  In each restored database:
#
#   - every table and sequence of the extension is registered with
#     pg_extension_config_dump (checked in the source), so its rows and its
#     sequence position are in the dump;
#   - every table has the same rows as the source (count and content), every
#     sequence the same position, and approval.subscriber its cursors;
#   - verify_audit() finds every hash chain intact;
#   - the engine goes on: submit, approve, reject, comment, request_changes,
#     define_workflow, delegate and ack work, and the ids and event seqs they
#     make are greater than every restored one (a sequence left behind
#     raises a duplicate key instead);
#   - actionable tokens (DESIGN §10): the restore's CREATE EXTENSION makes a
#     signing key of its own, and the dumped key is loaded beside it (so
#     approval.token_key has one row more than the source), a token issued
#     before the dump redeems after the restore, once, and a new token is
#     signed with the new key and redeems too;
#   - a governed table (DESIGN §10) stays governed: its registration and its
#     held changes name the restored table, its trigger (dumped by pg_dump
#     with the table, not a member of the extension) is back, a held change
#     restored is applied on approval and a new change is held.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use ApprovalFixture qw(populate @STATES);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'approval'");
$node->start;

my $tmp = PostgreSQL::Test::Utils::tempdir;

$node->safe_psql('postgres', 'CREATE DATABASE source');
$node->safe_psql('source', 'CREATE EXTENSION approval');
populate($node, 'source');
# a calendar that a workflow names: its rows must come back before the
# workflow's, which refer to it
$node->safe_psql(
	'source', q{
	INSERT INTO approval.calendar (name, timezone, hours, holidays)
	VALUES ('fx-office', 'Europe/Berlin', '{"mon": ["09:00", "12:00", "13:00", "17:00"], "sat": null}',
	        '{2026-12-25,2026-12-26}');
	SELECT approval.define_workflow('{"name": "fx-calendar", "calendar": "fx-office", "match": "$.never == true",
	                                  "stages": [{"name": "s", "approvers": ["manager"]}]}');
});

# A token issued before the dump, for bob's vote on a request of its own.
$node->safe_psql('source',
	q{SET ROLE fx_alice; SELECT approval.submit('expense', '{"amount": 80}', 'token-target')});
my $token = $node->safe_psql('source',
	q{SELECT approval.issue_token(id, 'bob') FROM approval.request WHERE title = 'token-target'});
ok($token =~ /^[A-Za-z0-9_-]+$/, "source: a token for bob ($token)");
my $source_keys = $node->safe_psql('source',
	q{SELECT string_agg(id || ':' || encode(secret, 'hex'), ',' ORDER BY id) FROM approval.token_key});
ok($source_keys =~ /^-?\d+:[0-9a-f]{64}$/, 'source: one signing key');

# a governed table with a held UPDATE and a held DELETE
$node->safe_psql(
	'source', q{
	CREATE TABLE public.fx_licenses (id int PRIMARY KEY, seats int NOT NULL);
	INSERT INTO public.fx_licenses VALUES (1, 5), (2, 3), (3, 1);
	GRANT SELECT, INSERT, UPDATE, DELETE ON public.fx_licenses TO fx_alice;
	SELECT approval.define_workflow('{"name": "fx-gov", "match": "$.never == true",
	                                  "stages": [{"name": "s", "approvers": ["user:bob"]}]}');
	SELECT approval.govern('public.fx_licenses', 'fx-gov', '{UPDATE,DELETE}');
	SET ROLE fx_alice;
	UPDATE public.fx_licenses SET seats = 50 WHERE id = 1;
	DELETE FROM public.fx_licenses WHERE id = 2;
});
is($node->safe_psql('source', 'SELECT count(*) FROM approval.held_change WHERE outcome IS NULL'),
	'2', 'source: two changes of the governed table are held');

# The extension's tables and sequences (members of it), by name.
my $members_sql = q{
	SELECT c.relkind, c.oid::regclass::text
	  FROM pg_depend d
	  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'approval'
	  JOIN pg_class c ON c.oid = d.objid
	 WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_extension'::regclass
	   AND d.deptype = 'e' AND c.relkind IN ('r', 'p', 'S')
	 ORDER BY 2};
my (@tables, @sequences);
foreach my $row (split /\n/, $node->safe_psql('source', $members_sql))
{
	my ($kind, $name) = split /\|/, $row;
	push @{ $kind eq 'S' ? \@sequences : \@tables }, $name;
}
ok(scalar(grep { $_ eq 'approval.request' } @tables) && scalar(grep { $_ eq 'approval.event_seq' } @sequences),
	'the extension\'s tables and sequences are found (' . scalar(@tables) . ' tables, '
	  . scalar(@sequences) . ' sequences)');

# Every one of them holds user data (or numbers it), so every one must be in
# extconfig.  A member that holds none would have to be named here:
# approval.event_chain_lock (its one row, the lock of the events without a
# request, is made by CREATE EXTENSION and holds no data).
is( $node->safe_psql(
		'source', q{
	SELECT string_agg(c.oid::regclass::text, ', ' ORDER BY c.oid::regclass::text)
	  FROM pg_depend d
	  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'approval'
	  JOIN pg_class c ON c.oid = d.objid
	 WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_extension'::regclass
	   AND d.deptype = 'e' AND c.relkind IN ('r', 'p', 'S')
	   AND c.oid <> ALL (e.extconfig)
	   AND c.oid <> 'approval.event_chain_lock'::regclass}),
	'',
	'every table and sequence of the extension is registered with pg_extension_config_dump');

# What a restore must reproduce: per table its row count and an md5 of its
# rows in a fixed order; per sequence its position.
sub snapshot
{
	my ($db) = @_;
	my @parts = (
		(map {
				"SELECT '$_', count(*) || ' rows, md5 '"
				  . " || md5(COALESCE(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM $_ t"
		} @tables),
		(map {
				"SELECT '$_', 'last_value ' || last_value"
				  . " || CASE WHEN is_called THEN ' (called)' ELSE '' END FROM $_"
		} @sequences));
	my $rows = $node->safe_psql($db, join("\nUNION ALL ", @parts));
	return { map { split /\|/, $_, 2 } split /\n/, $rows };
}

my $source = snapshot('source');
my %max = map { $_->[0] => $node->safe_psql('source', $_->[1]) } (
	[ request    => 'SELECT max(id) FROM approval.request' ],
	[ decision   => 'SELECT max(id) FROM approval.decision' ],
	[ workflow   => 'SELECT max(id) FROM approval.workflow' ],
	[ delegation => 'SELECT max(id) FROM approval.delegation' ],
	[ event      => 'SELECT max(seq) FROM approval.event' ]);
my $nrequests = $node->safe_psql('source', 'SELECT count(*) FROM approval.request');
is($node->safe_psql('source', 'SELECT count(*) || bool_and(ok)::text FROM approval.verify_audit()'),
	"${nrequests}true", "source: verify_audit() checks all $nrequests requests and finds them intact");
my $source_subscriber = $node->safe_psql('source', q{SELECT name || ' ' || last_seq FROM approval.subscriber});
ok($source_subscriber =~ /^fx-listener \d+$/, "source: the subscriber cursor is there ($source_subscriber)");

# --- dump ---

$node->command_ok([ $node->installed_command('pg_dump'), '-Fc', '-f', "$tmp/source.dump", '-d', $node->connstr('source') ],
	'pg_dump, custom format');
$node->command_ok([ $node->installed_command('pg_dump'), '-Fp', '-f', "$tmp/source.sql", '-d', $node->connstr('source') ],
	'pg_dump, plain format');

# --- restore ---

$node->safe_psql('postgres', 'CREATE DATABASE restored_custom');
$node->command_ok(
	[ $node->installed_command('pg_restore'), '--exit-on-error', '-d', $node->connstr('restored_custom'), "$tmp/source.dump" ],
	'pg_restore of the custom-format dump into a fresh database');

$node->safe_psql('postgres', 'CREATE DATABASE restored_plain');
$node->command_ok(
	[ $node->installed_command('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('restored_plain'), '-f', "$tmp/source.sql" ],
	'psql -f of the plain-format dump into a fresh database');

# run SQL in a database; returns (stdout, error text or '')
sub run
{
	my ($db, $sql) = @_;
	my ($ret, $out, $err) = $node->psql($db, "\\set ON_ERROR_STOP 1\n$sql");
	return ($out, $ret == 0 ? '' : ($err || "psql exited with $ret"));
}

# an id made after the restore: a number greater than every restored one
sub is_new_id
{
	my ($got, $err, $restored_max, $name) = @_;
	ok($err eq '' && $got =~ /^\d+$/ && $got > $restored_max, "$name ($got > $restored_max)")
	  or diag($err);
}

foreach my $db (qw(restored_custom restored_plain))
{
	my ($out, $err);

	# --- the data came back ---

	my $restored = snapshot($db);
	foreach my $name (@tables, @sequences)
	{
		next if $name eq 'approval.token_key';    # below
		my ($what) = $source->{$name} =~ /^(\d+ rows|last_value \d+)/;
		is($restored->{$name}, $source->{$name}, "$db: $name as in the source ($what)");
	}
	is( $node->safe_psql(
			$db, qq{SELECT count(*) || ' keys, ' || count(*) FILTER (
			            WHERE id || ':' || encode(secret, 'hex') = ANY (string_to_array('$source_keys', ',')))
			          || ' of the source' FROM approval.token_key}),
		'2 keys, 1 of the source',
		"$db: approval.token_key holds the source's key and the one the restore's CREATE EXTENSION made");
	is($node->safe_psql($db, q{SELECT name || ' ' || last_seq FROM approval.subscriber}),
		$source_subscriber, "$db: approval.subscriber keeps its cursor");
	is( $node->safe_psql(
			$db, 'SELECT string_agg(DISTINCT state::text, \',\' ORDER BY state::text) FROM approval.request'),
		join(',', sort @STATES),
		"$db: requests in every state");
	is($node->safe_psql($db, 'SELECT count(*) || bool_and(ok)::text FROM approval.verify_audit()'),
		"${nrequests}true", "$db: verify_audit() finds all $nrequests hash chains intact");
	is( $node->safe_psql(
			$db, q{SELECT approval.business_elapsed('2026-03-02 08:00+00', '2026-03-09 08:00+00', 'fx-office')}),
		'07:00:00', "$db: the restored calendar works");

	# --- the engine goes on ---

	my %id = map { split /\|/ } split /\n/,
	  $node->safe_psql($db, 'SELECT title, id FROM approval.request');

	($out, $err) = run($db, q{SET ROLE fx_alice;
		SELECT approval.submit('expense', '{"amount": 70}', 'after-restore')});
	is_new_id($out, $err, $max{request}, "$db: submit makes a new request");
	my $new = $out;

	($out, $err) = run($db, "SET ROLE fx_carol; SELECT approval.approve($id{'pending-voted'}, 'ok')");
	is("$out$err", 'approved', "$db: approve a restored pending request (last stage): approved");

	($out, $err) = run($db, "SET ROLE fx_bob; SELECT approval.reject($id{'pending-v1'}, 'late')");
	is("$out$err", 'rejected', "$db: reject a restored request on workflow version 1: rejected");

	($out, $err) = run($db, "SET ROLE fx_alice; SELECT approval.comment($new, 'for the team')");
	is($err, '', "$db: comment on the new request");

	($out, $err) = run($db, "SET ROLE fx_bob; SELECT approval.request_changes($new, 'which team?')");
	is("$out$err", 'changes_requested', "$db: request_changes on the new request: changes_requested");

	($out, $err) = run($db, "SET ROLE fx_bob; SELECT approval.approve($id{'resubmitted'})");
	is("$out$err", 'pending', "$db: approve the restored resubmitted request's manager stage: pending");
	($out, $err) = run($db, "SET ROLE fx_dave; SELECT approval.approve($id{'resubmitted'})");
	is("$out$err", 'approved', "$db: the restored delegation lets dave approve for carol: approved");
	is( $node->safe_psql($db, "SELECT on_behalf_of FROM approval.decision WHERE actor = 'dave' ORDER BY id DESC LIMIT 1"),
		'carol', "$db: dave's vote is recorded on behalf of carol");

	is( $node->safe_psql(
			$db, "SELECT count(*) || ' ' || min(id) FROM approval.decision WHERE id > $max{decision}"),
		'6 ' . ($max{decision} + 1),
		"$db: the six decisions got ids after the restored ones");

	($out, $err) = run($db, q{SELECT approval.define_workflow('{"name": "expense", "description": "version 3",
		"stages": [{"name": "manager", "approvers": ["manager"]}]}')});
	is_new_id($out, $err, $max{workflow}, "$db: define_workflow makes a new workflow");
	is($node->safe_psql($db, "SELECT version FROM approval.workflow WHERE id = " . ($out =~ /^\d+$/ ? $out : 0)),
		'3', "$db: the new workflow is version 3 of expense");

	($out, $err) = run($db, "SET ROLE fx_erin; SELECT approval.delegate('dave')");
	is_new_id($out, $err, $max{delegation}, "$db: delegate makes a new delegation");

	($out, $err) = run($db, 'SELECT min(seq) FROM approval.event WHERE request_id = ' . ($new =~ /^\d+$/ ? $new : 0));
	is_new_id($out, $err, $max{event}, "$db: the new request's events come after the restored ones");

	($out, $err) = run($db, "SELECT approval.ack('fx-listener', $max{event}) \\gset\n"
		  . "SELECT last_seq FROM approval.subscriber WHERE name = 'fx-listener'");
	is("$out$err", $max{event}, "$db: ack moves the restored cursor");

	# --- a token issued before the dump ---

	($out, $err) = run($db, "SELECT approval.redeem_token('$token', 'approve', 'from an email sent before the dump')");
	is("$out$err", 'pending', "$db: a token issued before the dump redeems after the restore (bob's stage): pending");
	is( $node->safe_psql(
			$db, "SELECT d.actor || ' ' || d.decision || ' ' || (e.data->>'token' = t.id)"
			  . "  FROM approval.decision d, approval.event e, approval.token t"
			  . " WHERE d.request_id = $id{'token-target'} AND e.request_id = d.request_id AND e.kind = 'voted'"
			  . "   AND t.request_id = d.request_id"),
		'bob approve true', "$db: the vote is bob's, and its event names the restored token");
	($out, $err) = run($db, "SELECT approval.redeem_token('$token', 'approve')");
	like($err, qr/token already used/, "$db: the restored token redeems once");

	($out, $err) = run($db, "SELECT approval.issue_token($id{'token-target'}, 'carol')");
	ok($err eq '' && $out =~ /^[A-Za-z0-9_-]+$/, "$db: a new token for carol") or diag($err);
	my $new_token = $out;
	is( $node->safe_psql(
			$db, qq{SELECT key_id || ':' || encode(k.secret, 'hex') = ANY (string_to_array('$source_keys', ','))
			          FROM approval.token t JOIN approval.token_key k ON k.id = t.key_id
			         WHERE t.request_id = $id{'token-target'} AND t.approver = 'carol'}),
		'f', "$db: the new token is signed with the restore's own key");
	($out, $err) = run($db, "SELECT approval.redeem_token('$new_token', 'approve')");
	is("$out$err", 'approved', "$db: the new token redeems (finance): approved");

	is( $node->safe_psql($db, 'SELECT count(*) || bool_and(ok)::text FROM approval.verify_audit()'),
		($nrequests + 1) . 'true',
		"$db: verify_audit() after the new decisions: every chain intact");

	# --- the governed table ---

	is( $node->safe_psql($db, q{SELECT tbl::text || ' ' || operations::text FROM approval.governed}),
		'fx_licenses {UPDATE,DELETE}', "$db: the registration names the restored table");
	is( $node->safe_psql(
			$db, q{SELECT count(*) FROM pg_trigger
			        WHERE tgrelid = 'public.fx_licenses'::regclass AND tgname = 'approval_governed'
			          AND tgfoid = 'approval.governed_change()'::regprocedure}),
		'1', "$db: the governed table's trigger is restored");
	is( $node->safe_psql(
			$db, q{SELECT count(*) FROM approval.held_change
			        WHERE tbl = 'public.fx_licenses'::regclass AND outcome IS NULL}),
		'2', "$db: the held changes name the restored table");
	($out, $err) = run($db, "SET ROLE fx_bob; SELECT approval.approve($id{'UPDATE public.fx_licenses (id=1)'})");
	is("$out$err", 'approved', "$db: approve a restored held change: approved");
	is($node->safe_psql($db, 'SELECT seats FROM public.fx_licenses WHERE id = 1'),
		'50', "$db: the restored held change is applied");
	($out, $err) = run($db, "SET ROLE fx_bob; SELECT approval.reject($id{'DELETE public.fx_licenses (id=2)'})");
	is("$out$err", 'rejected', "$db: reject a restored held DELETE: rejected");
	is( $node->safe_psql(
			$db, q{SELECT count(*) || ' ' || string_agg(outcome, ',' ORDER BY outcome) FROM approval.held_change}),
		'2 applied,discarded', "$db: the held changes are applied and discarded");
	($out, $err) = run($db, "SET ROLE fx_alice; UPDATE public.fx_licenses SET seats = 9 WHERE id = 3");
	is($err, '', "$db: a new change of the governed table");
	is( $node->safe_psql(
			$db, q{SELECT (SELECT seats FROM public.fx_licenses WHERE id = 3) || ' '
			              || (SELECT count(*) FROM approval.held_change WHERE outcome IS NULL)}),
		'1 1', "$db: the new change is held, not made");
}

$node->stop;
done_testing();
