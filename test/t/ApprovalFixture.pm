# Test data for the TAP tests that move a database as a whole
# (003_dump_restore, 004_upgrade): requests in every state that can be
# reached without the clock (pending, changes_requested, approved, rejected,
# cancelled), with votes, a vote by a delegate, comments, a resubmission, two
# versions of a workflow, an active and a revoked delegation, an approver
# group and a subscriber cursor.  The SQL is in test/t/data/: roles.sql
# (cluster-wide roles) and requests.sql (the data, through the public API).
#
#   populate($node, $db)            makes the data with the installed library
#   load_frozen($node, $db, $ver)   loads the data as release $ver made it
#                                   (test/t/data/approval--$ver.data.sql,
#                                   written by tools/freeze-upgrade-data.sh)
#
# Both die on any error, and when the requests are not in every state.
package ApprovalFixture;

use strict;
use warnings;

use Exporter 'import';
use File::Basename qw(dirname);
use File::Spec;

our @EXPORT_OK = qw(populate load_frozen frozen_file @STATES);

# the request states the data reaches
our @STATES = qw(pending changes_requested approved rejected cancelled);

my $datadir = File::Spec->catdir(dirname(File::Spec->rel2abs(__FILE__)), 'data');

sub frozen_file
{
	my ($version) = @_;
	return "$datadir/approval--$version.data.sql";
}

sub run_file
{
	my ($node, $db, $file) = @_;
	my ($ret, $out, $err) = $node->psql($db, '',
		extra_params => [ '-v', 'ON_ERROR_STOP=1', '-f', $file ]);
	die "ApprovalFixture: $file failed in $db: $err\n" if $ret != 0;
	return;
}

sub check_states
{
	my ($node, $db) = @_;
	my $states = $node->safe_psql($db,
		"SELECT string_agg(DISTINCT state::text, ',' ORDER BY state::text) FROM approval.request");
	my $want = join ',', sort @STATES;
	die "ApprovalFixture: the requests in $db are in the states '$states', not $want\n"
	  unless $states eq $want;
	return;
}

sub populate
{
	my ($node, $db) = @_;
	run_file($node, $db, "$datadir/roles.sql");
	run_file($node, $db, "$datadir/requests.sql");
	check_states($node, $db);
	return;
}

sub load_frozen
{
	my ($node, $db, $version) = @_;
	my $file = frozen_file($version);
	die "ApprovalFixture: no $file (make it with tools/freeze-upgrade-data.sh)\n" unless -f $file;
	run_file($node, $db, "$datadir/roles.sql");
	run_file($node, $db, $file);
	check_states($node, $db);
	return;
}

1;
