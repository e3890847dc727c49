# approval.notify, approval.notify_channel and approval.actor_claim are
# superuser-set, also when the library is not preloaded (DESIGN §2, §7, doc
# "Settings").
#
# Without shared_preload_libraries the settings are unknown until the library
# loads on a session's first call of the extension; before that, SET makes a
# placeholder, and the library, once loaded, takes the placeholder's value
# only if whoever set it could set the real setting.  So a user who sets
# approval.notify = off (by SET or by the connection's options) before the
# first call still notifies; a superuser who does so does not.  (With the
# library preloaded, test/pgtap/006_security checks the same by SET.)
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('plain');
$node->init;
$node->start;

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION approval;
	CREATE ROLE s_eve LOGIN;
	GRANT approval_user TO s_eve;
	INSERT INTO approval.principal (id, pg_role) VALUES ('eve', 's_eve');
});

my ($ret, $out, $err);
my $show = q{
	SELECT approval.current_actor();
	SHOW approval.notify;
	SHOW approval.notify_channel;
};

# a user's placeholders are dropped when the library loads
($ret, $out, $err) = $node->psql(
	'postgres', qq{
	SET approval.notify = off;
	SELECT set_config('approval.notify_channel', 'elsewhere', false) AS set;
	$show
}, extra_params => [ '-U', 's_eve' ]);
is($ret, 0, 'a user sets the placeholders before the library is loaded') or diag($err);
is($out, "elsewhere\neve\ncommit\napproval",
	'once the library is loaded, the user\'s session has the defaults: notify commit, channel approval');
like($err, qr/permission denied to set parameter "approval\.notify"/,
	'the user is warned that approval.notify was not set');

# the same through the connection's options
{
	local $ENV{PGOPTIONS} = '-c approval.notify=off -c approval.notify_channel=elsewhere';
	($ret, $out, $err) = $node->psql('postgres', $show, extra_params => [ '-U', 's_eve' ]);
}
is($ret, 0, 'a user connects with approval.notify=off in the options') or diag($err);
is($out, "eve\ncommit\napproval", 'options of a user\'s connection do not set them either');

# once loaded, SET is refused outright
($ret, $out, $err) = $node->psql(
	'postgres', qq{
	$show
	SET approval.notify = off;
}, extra_params => [ '-U', 's_eve' ]);
isnt($ret, 0, 'a user cannot SET approval.notify once the library is loaded');
like($err, qr/permission denied to set parameter "approval\.notify"/, '... permission denied');

# a superuser's placeholders are kept: the mechanism works
($ret, $out, $err) = $node->psql(
	'postgres', qq{
	SET approval.notify = off;
	SET approval.notify_channel = 'elsewhere';
	SELECT approval.current_actor() = current_user;
	SHOW approval.notify;
	SHOW approval.notify_channel;
});
is($ret, 0, 'a superuser sets the placeholders before the library is loaded') or diag($err);
is($out, "t\noff\nelsewhere", 'once the library is loaded, the superuser\'s values hold');

# and a superuser's ALTER ROLE ... SET applies to the user's sessions
$node->safe_psql('postgres', 'ALTER ROLE s_eve SET approval.notify = off');
($ret, $out, $err) = $node->psql('postgres', $show, extra_params => [ '-U', 's_eve' ]);
is($ret, 0, 'a user with a setting from ALTER ROLE connects') or diag($err);
is($out, "eve\noff\napproval", 'ALTER ROLE ... SET by a superuser sets approval.notify for the user');

# PostgREST's authenticator logs in with the setting a superuser gave it by
# ALTER ROLE, switches to the web role and passes the claims
$node->safe_psql(
	'postgres', q{
	CREATE ROLE s_authenticator LOGIN NOINHERIT;
	CREATE ROLE s_web_user;
	GRANT s_web_user TO s_authenticator;
	GRANT approval_gateway TO s_authenticator;
	GRANT approval_user TO s_web_user;
	INSERT INTO approval.principal (id) VALUES ('ivan');
	ALTER ROLE s_authenticator SET approval.actor_claim = 'sub';
});
my $postgrest = q{
	BEGIN;
	SELECT set_config('role', 's_web_user', true) IS NOT NULL AS role_set,
	       set_config('request.jwt.claims', '{"sub": "ivan", "role": "s_web_user"}', true) IS NOT NULL AS claims_set;
	SELECT approval.current_actor();
	COMMIT;
};
($ret, $out, $err) = $node->psql('postgres', $postgrest, extra_params => [ '-U', 's_authenticator' ]);
is($ret, 0, 'the authenticator acts with the claims') or diag($err);
is($out, "t|t
ivan", 'ALTER ROLE ... SET approval.actor_claim by a superuser names the actor by the claim');

# the authenticator cannot give itself the setting
$node->safe_psql('postgres', 'ALTER ROLE s_authenticator RESET approval.actor_claim');
{
	local $ENV{PGOPTIONS} = '-c approval.actor_claim=sub';
	($ret, $out, $err) = $node->psql('postgres', $postgrest, extra_params => [ '-U', 's_authenticator' ]);
}
is($ret, 0, 'the authenticator connects with approval.actor_claim in its options') or diag($err);
is($out, "t|t
s_web_user", '... which is dropped: the claims are ignored, the web role acts as itself');
like($err, qr/permission denied to set parameter "approval\.actor_claim"/, '... with a warning');

$node->stop;

done_testing();
