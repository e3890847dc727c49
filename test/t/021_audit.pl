# Checkpoints over the whole event log, and an audit a superuser cannot
# rewrite quietly (issue 12 part 3; doc "Retention and audit").
#
# A checkpoint chains a digest of the committed events since the one before,
# in cursor order.  This test makes them by approval.checkpoint() and by the
# background worker, keeps digests outside the database as a witness would,
# and then tampers as a superuser can: it deletes a whole request with its
# events (verify_audit() reports the checkpoint that covered them), rewrites
# a request's history and recomputes its hash chain (the chain verifies; the
# checkpoints do not), and then rewrites the checkpoints too (only the
# witness's digest tells).  A purge leaves the log verifiable, the witness's
# digest included.  Concurrent writers that commit out of order or roll back,
# with checkpoints made meanwhile, leave every checkpoint verifiable (a
# checkpoint covers only seqs no transaction can still add to).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('audit');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'approval'\napproval.checkpoint_interval = 0\napproval.tick_interval = 200");
$node->start;

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION approval;
	INSERT INTO approval.principal (id) VALUES ('boss');
	INSERT INTO approval.principal (id, manager_id) SELECT 'p' || i, 'boss' FROM generate_series(1, 8) i;
	SELECT approval.define_workflow('{"name": "audit", "stages": [
	    {"name": "manager", "approvers": ["manager"]}]}');
	CREATE ROLE a_admin LOGIN;
	GRANT approval_admin TO a_admin;
	CREATE ROLE a_witness LOGIN;
	GRANT approval_gateway TO a_witness;
	INSERT INTO approval.principal (id, pg_role) VALUES ('root', 'a_admin');
});

# a request of $who, approved by its manager when $approve; returns its id
sub request
{
	my ($who, $approve) = @_;
	my $id = $node->safe_psql('postgres',
		"SET approval.actor = '$who'; SELECT approval.submit('audit', '{\"n\": 1}')");
	$node->safe_psql('postgres', "SET approval.actor = 'boss'; SELECT approval.approve($id)")
	  if $approve;
	return $id;
}

sub admin { return $node->safe_psql('postgres', $_[0], extra_params => [ '-U', 'a_admin' ]); }

sub problems
{
	my ($witness) = @_;
	my $arg = defined $witness ? "since_checkpoint => '$witness'" : '';
	return admin("SELECT coalesce(string_agg(coalesce(request_id::text, '-') || ': ' || problem, E'\\n'"
		  . " ORDER BY request_id NULLS LAST, checkpoint), 'none') FROM approval.verify_audit($arg) WHERE NOT ok");
}

my @ids = map { request("p$_", $_ % 2) } 1 .. 6;

# ---------------------------------------------------------------------------
# approval.checkpoint() and the witness's digests
# ---------------------------------------------------------------------------
my $events = $node->safe_psql('postgres', 'SELECT count(*) FROM approval.event');
my $maxseq = $node->safe_psql('postgres', 'SELECT max(seq) FROM approval.event');
is(admin('SELECT k, upto_seq, events, octet_length(digest) FROM approval.checkpoint()'),
	"1|$maxseq|$events|32", 'checkpoint() makes checkpoint 1 over every committed event, a sha256 digest');
is(admin('SELECT k FROM approval.checkpoint()'), '1', 'a second checkpoint() with no new event returns checkpoint 1');
my $d1 = $node->safe_psql('postgres', 'SELECT digest FROM approval.checkpoints WHERE k = 1',
	extra_params => [ '-U', 'a_witness' ]);
like($d1, qr/^\\x[0-9a-f]{64}$/, 'a gateway (the witness) reads the digest of checkpoint 1');

# a gateway acting for no one sees the whole log: it checks the checkpoints
# too, which reads the tombstones' hashes
is( $node->safe_psql(
		'postgres', "SELECT ok, checkpoint FROM approval.verify_audit() WHERE request_id IS NULL",
		extra_params => [ '-U', 'a_witness' ]),
	't|1',
	'a gateway acting for no one (the witness) checks the log against the checkpoints');
is( $node->safe_psql(
		'postgres',
		"SELECT ok FROM approval.verify_audit(since_checkpoint => '$d1') WHERE problem LIKE 'the digest kept%'",
		extra_params => [ '-U', 'a_witness' ]),
	't',
	'... and against the digest it kept');

push @ids, map { request("p$_", 1) } 7 .. 8;
is(admin('SELECT k FROM approval.checkpoint()'), '2', 'after new events, checkpoint 2');
my $d2 = admin('SELECT digest FROM approval.checkpoints WHERE k = 2');

is(problems(), 'none', 'verify_audit(): every request and both checkpoints verify');
is(admin("SELECT ok, checkpoint FROM approval.verify_audit() WHERE request_id IS NULL"),
	't|2', 'verify_audit() says the log gives the digests of its 2 checkpoints');
is(admin("SELECT ok, checkpoint, problem FROM approval.verify_audit(since_checkpoint => '$d1') WHERE request_id IS NULL AND problem LIKE 'the digest kept%'"),
	"t|1|the digest kept is that of checkpoint 1: the log up to seq $maxseq is as it was then",
	"the witness's first digest is checkpoint 1's");
is(admin("SELECT ok FROM approval.verify_audit(since_checkpoint => '\\x" . ('ab' x 32) . "') WHERE request_id IS NULL AND checkpoint IS NULL"),
	'f', 'a digest the log never had is not found');

# the same with the library that the worker uses: it makes checkpoints by itself
$node->append_conf('postgresql.conf', "approval.checkpoint_interval = 300");
$node->reload;
request('p1', 1);
ok( $node->poll_query_until('postgres',
		"SELECT max(upto_seq) >= (SELECT max(seq) FROM approval.event) FROM approval.checkpoints"),
	'the background worker makes a checkpoint of the new events by itself');
$node->append_conf('postgresql.conf', "approval.checkpoint_interval = 0");
$node->reload;
# let a round that started before the reload finish
sleep 1;
is(problems(), 'none', 'the worker\'s checkpoints verify');

# checkpoint() in a REPEATABLE READ transaction whose snapshot is older than
# the latest checkpoint, with no event since: it returns that checkpoint
my $rr = $node->background_psql('postgres', extra_params => [ '-U', 'a_admin' ]);
$rr->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$rr->query_safe('SELECT 1');
request('p2', 1);
my $latest = admin('SELECT k FROM approval.checkpoint()');
is($rr->query_safe('SELECT coalesce((approval.checkpoint()).k::text, \'null\')'), $latest,
	'checkpoint() under an older REPEATABLE READ snapshot, nothing new: the latest checkpoint, not NULL');
$rr->query_safe('COMMIT');
$rr->quit;

# ---------------------------------------------------------------------------
# Purge composes with checkpoints
# ---------------------------------------------------------------------------
my $purged = admin("SELECT approval.purge(now() + interval '1 hour')");
ok($purged > 0, "purge() removes the approved requests ($purged)");
is(problems(), 'none', 'after the purge every checkpoint still verifies (the tombstones keep the hashes)');
is(admin("SELECT ok FROM approval.verify_audit(since_checkpoint => '$d1') WHERE problem LIKE 'the digest kept%'"),
	't', "after the purge the witness's digest is still found");
my $after = admin('SELECT k FROM approval.checkpoint()');
is(problems(), 'none', "a checkpoint made after the purge verifies (checkpoint $after)");

# ---------------------------------------------------------------------------
# Tampering as a superuser
# ---------------------------------------------------------------------------
# a whole open request deleted with its events, which a checkpoint covered
my $victim = $node->safe_psql('postgres', "SELECT min(id) FROM approval.request WHERE state = 'pending'");
my $victim_k = admin("SELECT min(k) FROM approval.checkpoints WHERE upto_seq >= (SELECT max(seq) FROM approval.event WHERE request_id = $victim)");
$node->safe_psql(
	'postgres', qq{
	BEGIN;
	ALTER TABLE approval.event DISABLE TRIGGER event_no_update_delete;
	DELETE FROM approval.event WHERE request_id = $victim;
	ALTER TABLE approval.event ENABLE ALWAYS TRIGGER event_no_update_delete;
	DELETE FROM approval.request_stage WHERE request_id = $victim;
	DELETE FROM approval.pending_vote WHERE request_id = $victim;
	DELETE FROM approval.request WHERE id = $victim;
	COMMIT;
});
like(problems(), qr/^-: checkpoint $victim_k \(seqs \d+ to \d+\): the log no longer gives its digest/m,
	'a request deleted with its events: verify_audit() names the checkpoint that covered them');
unlike(problems(), qr/^$victim:/m, '... which no per-request check could see');

# the attacker recomputes hashes as event.c does: first check that this model
# of the hash reproduces the stored chains
$node->safe_psql(
	'postgres', q{
	CREATE FUNCTION public.rehash(rid bigint) RETURNS integer LANGUAGE plpgsql AS $$
	DECLARE
	    e record; prev bytea; h bytea; changed integer := 0;
	BEGIN
	    FOR e IN SELECT * FROM approval.event WHERE request_id = rid ORDER BY seq LOOP
	        h := sha256(coalesce(prev, '') || int8send(e.seq) || int8send(e.request_id)
	                    || int8send((extract(epoch FROM e.at) * 1000000)::bigint - 946684800000000)
	                    || convert_to(e.kind, 'UTF8') || '\x00'::bytea
	                    || coalesce(convert_to(e.actor, 'UTF8'), '') || '\x00'::bytea
	                    || convert_to(e.data::text, 'UTF8'));
	        IF h <> e.hash THEN
	            UPDATE approval.event SET hash = h WHERE seq = e.seq;
	            changed := changed + 1;
	        END IF;
	        prev := h;
	    END LOOP;
	    UPDATE approval.request SET last_hash = prev WHERE id = rid;
	    RETURN changed;
	END $$;
});
my $target = $node->safe_psql('postgres', "SELECT min(id) FROM approval.request WHERE state = 'rejected' OR state = 'pending'");
is($node->safe_psql('postgres',
		"ALTER TABLE approval.event DISABLE TRIGGER event_no_update_delete; SELECT public.rehash($target)"),
	'0', 'the attacker\'s model of the hash reproduces the stored chain');

# rewrite its history: the submitted payload's title, then recompute the chain
$node->safe_psql(
	'postgres', qq{
	ALTER TABLE approval.event DISABLE TRIGGER event_no_update_delete;
	UPDATE approval.event SET data = data || '{"title": "rewritten"}'
	 WHERE request_id = $target AND kind = 'submitted';
	SELECT public.rehash($target);
	UPDATE approval.request SET title = 'rewritten' WHERE id = $target;
	ALTER TABLE approval.event ENABLE ALWAYS TRIGGER event_no_update_delete;
});
is(admin("SELECT ok FROM approval.verify_audit($target)"), 't',
	'a rewritten and re-hashed history passes the per-request chain');
my $target_k = admin("SELECT min(k) FROM approval.checkpoints WHERE upto_seq >= (SELECT min(seq) FROM approval.event WHERE request_id = $target)");
like(problems(), qr/^-: checkpoint $target_k \(/m, '... but not the checkpoints');

# now the checkpoints too: removed and made again over the log as it is
$node->safe_psql(
	'postgres', q{
	ALTER TABLE approval.checkpoints DISABLE TRIGGER checkpoints_no_update_delete;
	DELETE FROM approval.checkpoints;
	ALTER TABLE approval.checkpoints ENABLE ALWAYS TRIGGER checkpoints_no_update_delete;
});
admin('SELECT approval.checkpoint()');
is(problems(), 'none', 'with the checkpoints rewritten too, the database alone finds nothing');
like(problems($d1), qr/^-: no checkpoint of the log as it is now has the digest kept/m,
	'but the digest the witness kept is no longer in the log: the rewrite is detected');
like(problems($d2), qr/no checkpoint of the log as it is now has the digest kept/,
	'... and so is the later one');

# a tombstone forged with a seq but no hash, in a range no checkpoint covers
# yet: checkpoint() refuses to cover it (and the worker would only warn)
request('p3', 1);
my $forged_seq = $node->safe_psql('postgres', 'SELECT max(seq) FROM approval.event');
$node->safe_psql('postgres',
	"INSERT INTO approval.purged (request_id, workflow, state, first_seq, last_seq, event_seqs, event_hashes, purged_at, purged_by)"
	  . " VALUES (999999, 'x', 'approved', $forged_seq, $forged_seq, '{$forged_seq}', '{}', now(), 'root')");
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT approval.checkpoint()',
	extra_params => [ '-U', 'a_admin' ]);
like($err, qr/cannot make a checkpoint: the tombstone of seq $forged_seq has no hash/,
	'checkpoint() over a tombstone with a seq but no hash: an error, not a crash');
$node->safe_psql(
	'postgres', q{
	ALTER TABLE approval.purged DISABLE TRIGGER purged_no_update_delete;
	DELETE FROM approval.purged WHERE request_id = 999999;
	ALTER TABLE approval.purged ENABLE ALWAYS TRIGGER purged_no_update_delete;
});

# ---------------------------------------------------------------------------
# Concurrent writers that commit out of order or roll back, with checkpoints
# made meanwhile
# ---------------------------------------------------------------------------
my $fresh = PostgreSQL::Test::Cluster->new('audit_load');
$fresh->init;
$fresh->append_conf('postgresql.conf',
	"shared_preload_libraries = 'approval'\napproval.checkpoint_interval = 50\napproval.tick_interval = 50\nmax_connections = 40");
$fresh->start;
$fresh->safe_psql(
	'postgres', q{
	CREATE EXTENSION approval;
	INSERT INTO approval.principal (id) VALUES ('boss');
	INSERT INTO approval.principal (id, manager_id) SELECT 'p' || i, 'boss' FROM generate_series(1, 8) i;
	SELECT approval.define_workflow('{"name": "audit", "stages": [
	    {"name": "manager", "approvers": ["manager"]}]}');
});
my $dir = PostgreSQL::Test::Utils::tempdir;
open my $fh, '>', "$dir/write.sql" or die;
print $fh q{
\set who random(1, 8)
\set pause random(0, 20)
\set keep random(0, 3)
BEGIN;
SELECT set_config('approval.actor', 'p' || :who, true);
SELECT approval.submit('audit', '{}') AS id \gset
SELECT pg_sleep(:pause / 1000.0);
SELECT set_config('approval.actor', 'boss', true);
SELECT approval.approve(:id);
SELECT CASE WHEN :keep = 0 THEN 'rollback' ELSE 'commit' END AS ending \gset
:ending;
};
close $fh;
open $fh, '>', "$dir/checkpoint.sql" or die;
print $fh "SELECT approval.checkpoint();\n";
close $fh;
$fresh->command_ok(
	[
		'pgbench', '-n', '-c', '6', '-j', '2', '-T', '8',
		'-f', "$dir/write.sql\@6", '-f', "$dir/checkpoint.sql\@1",
		'-h', $fresh->host, '-p', $fresh->port, 'postgres'
	],
	'pgbench: writers that commit out of order or roll back, and checkpoints meanwhile');
$fresh->safe_psql('postgres', 'SELECT approval.checkpoint()');
my $made = $fresh->safe_psql('postgres', 'SELECT count(*) FROM approval.checkpoints');
ok($made > 5, "checkpoints were made during the run ($made)");
is( $fresh->safe_psql(
		'postgres',
		"SELECT coalesce(string_agg(problem, E'\\n'), 'none') FROM approval.verify_audit() WHERE NOT ok"),
	'none',
	'every request and every checkpoint verifies: no event appeared in a range already checkpointed');
is( $fresh->safe_psql(
		'postgres',
		"SELECT (SELECT events FROM approval.verify_audit() WHERE request_id IS NULL AND checkpoint IS NOT NULL)"
		  . " = (SELECT count(*) FROM approval.event WHERE seq <= (SELECT max(upto_seq) FROM approval.checkpoints))"),
	't', 'the checkpoints cover every committed event up to the last of them, once');
$fresh->stop;

$node->stop;
done_testing();
