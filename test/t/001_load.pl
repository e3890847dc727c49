# Loading the extension with and without shared_preload_libraries.
#
# The library must work both ways: preloaded (where it defines its settings at
# server start and reserves the "approval." prefix) and loaded on first use by
# CREATE EXTENSION.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $preloaded = PostgreSQL::Test::Cluster->new('preloaded');
$preloaded->init;
$preloaded->append_conf('postgresql.conf', "shared_preload_libraries = 'approval'");
$preloaded->start;

my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;

my ($ret, $out, $err);

# --- settings, before CREATE EXTENSION ---

is($preloaded->safe_psql('postgres', 'SHOW approval.notify_channel'),
	'approval', 'preloaded: approval.notify_channel is defined before CREATE EXTENSION');

($ret, $out, $err) = $preloaded->psql('postgres', 'SET approval.nosuch = 1');
isnt($ret, 0, 'preloaded: setting a misspelt approval.* parameter fails');
like($err, qr/invalid configuration parameter name "approval\.nosuch"/,
	'preloaded: the error names the misspelt parameter');
like($err, qr/"approval" is a reserved prefix/,
	'preloaded: the error says approval. is a reserved prefix');

($ret, $out, $err) = $plain->psql('postgres', 'SHOW approval.notify_channel');
isnt($ret, 0, 'not preloaded: approval.notify_channel is unknown before the library is loaded');

# --- CREATE EXTENSION and current_actor() on both nodes ---

foreach my $node ($preloaded, $plain)
{
	my $name = $node->name;

	$node->safe_psql('postgres', 'CREATE EXTENSION approval');
	is( $node->safe_psql('postgres',
			'SELECT approval.current_actor() = current_user'),
		't', "$name: current_actor() of an unmapped superuser is its role name");
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM pg_roles WHERE rolname IN "
			  . "('approval_admin', 'approval_user', 'approval_gateway')"),
		'3', "$name: CREATE EXTENSION made the three roles");
}

# once loaded, the settings exist on the plain node too
is( $plain->safe_psql(
		'postgres', "LOAD 'approval'; SHOW approval.notify_channel"),
	'approval', 'not preloaded: approval.notify_channel is defined once the library is loaded');

# --- DROP and CREATE again in one session (kept plans must not go stale) ---

foreach my $node ($preloaded, $plain)
{
	my $name = $node->name;

	($ret, $out, $err) = $node->psql(
		'postgres', q{
		INSERT INTO approval.principal (id, pg_role) VALUES ('root', current_user);
		SELECT approval.current_actor();
		DROP EXTENSION approval;
		CREATE EXTENSION approval;
		SELECT approval.current_actor() = current_user;
		INSERT INTO approval.principal (id, pg_role) VALUES ('again', current_user);
		SELECT approval.current_actor();
	});
	is($ret, 0, "$name: DROP EXTENSION then CREATE EXTENSION in one session works")
	  or diag($err);
	is($out, "root\nt\nagain",
		"$name: current_actor() follows the new tables after re-creation");
}

$preloaded->stop;
$plain->stop;

done_testing();
