# Upgrades (issue "Releases and upgrades"): a database upgraded with ALTER
# EXTENSION approval UPDATE has the same objects as a fresh install of the
# version it reaches, and its old data still works.
#
# The versions come from the scripts in sql/: install scripts
# approval--X.sql (released ones are frozen; the current one is built from
# sql/approval.sql, its version named by approval.control) and upgrade
# scripts approval--A--B.sql.  So a later release chains on by itself:
#
#   - step by step: one database is installed at the oldest version and
#     given that release's data in every state, as the release itself wrote
#     it (rows, event hashes, sequence positions: test/t/data/, made by
#     tools/freeze-upgrade-data.sh with the release's own library, since
#     the current library needs the current schema), and updated with
#     ALTER EXTENSION ... UPDATE TO each next version in turn; after each
#     step its schema is compared with a fresh install of that version, its
#     rows are all still there and verify_audit() finds every chain intact;
#   - directly: from every older version, ALTER EXTENSION approval UPDATE
#     (PostgreSQL picks the path) reaches the current version, with the
#     current version's schema.  Before that update, each function of the
#     old version is called once with the current library (as happens
#     between installing a release and ALTER EXTENSION UPDATE): an error is
#     fine, a crashed server is not;
#   - the upgraded data works: requests made by the oldest release are
#     approved, rejected and cancelled, its delegation is used, new requests
#     are submitted and decided (through a token too: the update made a
#     signing key), a workflow is defined, and verify_audit()
#     still finds every chain intact.
#
# The schema is compared as pg_dump -s --binary-upgrade prints it (that
# mode dumps every member object of the extension: tables, columns and their
# order, defaults, constraints, indexes, views, functions with body,
# volatility, SECURITY DEFINER and SET options, triggers with their enabled
# mode, policies, row-level security flags, enum labels in order, grants and
# the initial privileges, comments, extension membership), without the lines
# that only pin OIDs, relfilenodes, transaction ids or dropped columns, and
# with the objects sorted by their dump header, plus extconfig/extcondition
# by table name.  The comparison is itself checked on a deliberately
# changed database, so it cannot pass by comparing nothing.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use ApprovalFixture qw(load_frozen frozen_file);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $sqldir = "$FindBin::RealBin/../../sql";
my $control = "$FindBin::RealBin/../../approval.control";

# --- the versions and the upgrade scripts ---

sub vcmp
{
	my ($x, $y) = @_;
	my @x = split /\./, $x;
	my @y = split /\./, $y;
	while (@x || @y)
	{
		my $c = (shift(@x) // 0) <=> (shift(@y) // 0);
		return $c if $c;
	}
	return 0;
}

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'approval'");
# Old SQL runs here against the current library (as it does between
# installing a new release and ALTER EXTENSION UPDATE); should that crash a
# backend, the server comes back and the crash is one failed test, not the
# end of the run.
$node->append_conf('postgresql.conf', 'restart_after_crash = on');
$node->start;

my $tmp = PostgreSQL::Test::Utils::tempdir;

# the current version: the installed extension's default, which must be the
# one of this tree's approval.control (tools/run-tests.sh may run a copy of
# test/ and sql/ without it)
my $current = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'approval'");
SKIP:
{
	skip "no $control in this copy of the tree", 1 unless -f $control;
	my ($controlled) = slurp_file($control) =~ /^\s*default_version\s*=\s*'([^']+)'/m;
	is($current, $controlled // '(none)',
		"the installed approval's default version is approval.control's");
}

my (%install, %edges);
opendir(my $dh, $sqldir) or die "cannot read $sqldir: $!\n";
foreach my $f (readdir $dh)
{
	if ($f =~ /^approval--([0-9][0-9.]*)--([0-9][0-9.]*)\.sql$/)
	{
		push @{ $edges{$1} }, $2;
	}
	elsif ($f =~ /^approval--([0-9][0-9.]*)\.sql$/)
	{
		$install{$1} = 1;
	}
}
closedir $dh;
$install{$current} = 1;    # built from sql/approval.sql
my @versions = sort { vcmp($a, $b) } keys %install;
my @older = grep { vcmp($_, $current) < 0 } @versions;

# the chain from the oldest version, one step at a time (to the next
# version that has an upgrade script)
my @chain = ($versions[0]);
while (vcmp($chain[-1], $current) < 0)
{
	my ($next) = sort { vcmp($a, $b) } grep { vcmp($_, $current) <= 0 } @{ $edges{ $chain[-1] } // [] };
	last unless defined $next;
	push @chain, $next;
}

note "versions: @versions; current: $current; chain: " . join(' -> ', @chain);
ok(@older > 0, "there is a version before $current to upgrade from (@older)");
is($chain[-1], $current, 'the upgrade scripts lead from ' . $versions[0] . " to $current");
foreach my $i (1 .. $#chain)
{
	ok($install{ $chain[$i] }, "version $chain[$i] has an install script to compare with");
}

is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(version, ' ' ORDER BY version) FROM pg_available_extension_versions"
		  . " WHERE name = 'approval' AND version IN ('" . join("', '", @versions) . "')"),
	join(' ', sort @versions),
	"every version is installed (@versions)");

# --- comparing schemas ---

# The normalized schema of the extension in $db: a hash of dump entries
# ("-- Name: ...; Type: ...; Schema: ...; Owner: ..." => its lines) and
# "extconfig" => the registered tables with their conditions.
sub schema_of
{
	my ($db) = @_;
	my ($out, $err);
	IPC::Run::run [ $node->installed_command('pg_dump'), '-s', '--binary-upgrade', '-d', $node->connstr($db) ],
	  '>', \$out, '2>', \$err
	  or die "pg_dump -s --binary-upgrade of $db failed: $err\n";

	my %entry;
	my $header = '(preamble)';
	my $data = 0;    # in a "SEQUENCE SET" entry: a sequence's position, data
	my $skip_to_semicolon = 0;
	foreach my $line (split /\n/, $out)
	{
		if ($skip_to_semicolon)
		{
			$skip_to_semicolon = 0 if $line =~ /;\s*$/;
			next;
		}
		if ($line =~ /^-- Name: /)
		{
			$header = $line;
			$data = $header =~ /; Type: SEQUENCE SET;/;
			$entry{$header} //= [] unless $data;
			next;
		}
		next if $data;
		next if $line =~ /^\s*$/ || $line =~ /^--/;
		next if $line =~ /^\\(un)?restrict /;    # random key of the dump
		next if $line =~ /^SELECT pg_catalog\.binary_upgrade_set_next_/;
		next if $line =~ /^SELECT pg_catalog\.binary_upgrade_set_missing_value\(/;
		# relfrozenxid/relminmxid, dropped columns' pg_attribute rows
		if ($line =~ /^UPDATE pg_catalog\.pg_(class|attribute)$/ || $line =~ /^UPDATE pg_catalog\.pg_(class|attribute)\s/)
		{
			$skip_to_semicolon = 1 unless $line =~ /;\s*$/;
			next;
		}
		next if $line =~ /pg\.dropped\.\d+/;
		# the extension itself: its config tables by OID are compared by name below
		$line =~ s/^(SELECT pg_catalog\.binary_upgrade_create_empty_extension\('approval', 'approval', \w+, '[^']*'), '\{[0-9,]*\}', '\{.*\}',/$1, <extconfig>, <extcondition>,/;
		push @{ $entry{$header} }, $line;
	}
	# a dropped column that was the last one leaves a comma before the ")"
	foreach my $lines (values %entry)
	{
		foreach my $i (0 .. $#$lines - 1)
		{
			$lines->[$i] =~ s/,$// if $lines->[ $i + 1 ] =~ /^\)/;
		}
	}
	$entry{'(extconfig)'} = [
		split /\n/,
		$node->safe_psql(
			$db, q{
		SELECT format('%s %L', u.c::regclass, u.cond)
		  FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(c, cond)
		 WHERE e.extname = 'approval'
		 ORDER BY u.c::regclass::text})
	];
	return \%entry;
}

sub schema_text
{
	my ($s) = @_;
	return join '', map { "$_\n" . join('', map { "    $_\n" } @{ $s->{$_} }) } sort keys %$s;
}

# The entries that differ between two schemas, and a unified diff.
sub schema_diff
{
	my ($x, $xn, $y, $yn) = @_;
	my @differ;
	my %all = map { $_ => 1 } keys %$x, keys %$y;
	foreach my $h (sort keys %all)
	{
		if (!exists $y->{$h})
		{
			push @differ, "only in $xn: $h";
		}
		elsif (!exists $x->{$h})
		{
			push @differ, "only in $yn: $h";
		}
		elsif (join("\n", @{ $x->{$h} }) ne join("\n", @{ $y->{$h} }))
		{
			push @differ, "differs: $h";
		}
	}
	return (\@differ, '') unless @differ;

	my ($fx, $fy) = ("$tmp/$xn.schema", "$tmp/$yn.schema");
	open my $fh, '>', $fx or die;
	print $fh schema_text($x);
	close $fh;
	open $fh, '>', $fy or die;
	print $fh schema_text($y);
	close $fh;
	my ($diff, $err);
	IPC::Run::run [ 'diff', '-u', $fy, $fx ], '>', \$diff, '2>', \$err;
	return (\@differ, $diff);
}

# compare_ok($db, $fresh_db, $name): the schema of $db is the fresh one's
my %fresh_schema;    # fresh installs do not change: dumped once
sub compare_ok
{
	my ($db, $fresh, $name) = @_;
	$fresh_schema{$fresh} //= schema_of($fresh);
	my ($differ, $diff) = schema_diff(schema_of($db), $db, $fresh_schema{$fresh}, $fresh);
	is(scalar @$differ, 0, $name)
	  or diag(join("\n", @$differ) . "\n\n(- $fresh, + $db)\n$diff");
	return;
}

my %fresh;
sub fresh_db
{
	my ($version) = @_;
	my $db = "fresh_$version" =~ s/\W/_/gr;
	unless ($fresh{$version})
	{
		$node->safe_psql('postgres', "CREATE DATABASE $db");
		$node->safe_psql($db, "CREATE EXTENSION approval VERSION '$version'");
		$fresh{$version} = $db;
	}
	return $db;
}

# per table of the extension: its row count (the rows survive every step)
sub row_counts
{
	my ($db) = @_;
	my @tables = split /\n/, $node->safe_psql(
		$db, q{
		SELECT c.oid::regclass::text
		  FROM pg_depend d
		  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'approval'
		  JOIN pg_class c ON c.oid = d.objid
		 WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_extension'::regclass
		   AND d.deptype = 'e' AND c.relkind IN ('r', 'p')
		 ORDER BY 1});
	my $counts = $node->safe_psql($db,
		join(' UNION ALL ', map { "SELECT '$_', count(*) FROM $_" } @tables));
	return { map { split /\|/ } split /\n/, $counts };
}

# --- step by step, with data ---

$node->safe_psql('postgres', 'CREATE DATABASE upgraded');
$node->safe_psql('upgraded', "CREATE EXTENSION approval VERSION '$chain[0]'");
my $populated = eval { load_frozen($node, 'upgraded', $chain[0]); 1 };
ok($populated, "the data of $chain[0] in every state, as $chain[0] made it, loads into an install of $chain[0]")
  or diag($@);
my $nrequests = $node->safe_psql('upgraded', 'SELECT count(*) FROM approval.request');
my $counts = row_counts('upgraded');

my $updated = 1;
foreach my $i (1 .. $#chain)
{
	my ($from, $to) = @chain[ $i - 1, $i ];
	my ($ret, $out, $err) = $node->psql('upgraded', "ALTER EXTENSION approval UPDATE TO '$to'");
	is($ret, 0, "ALTER EXTENSION approval UPDATE TO '$to' (from $from, with data)") or diag($err);
	$updated &&= $ret == 0;
	is($node->safe_psql('upgraded', "SELECT extversion FROM pg_extension WHERE extname = 'approval'"),
		$to, "the extension is at $to");
	compare_ok('upgraded', fresh_db($to), "$from -> $to: the schema equals a fresh install of $to");
	my $now = row_counts('upgraded');
	is_deeply({ map { $_ => $now->{$_} } keys %$counts }, $counts,
		"$from -> $to: every table kept its rows");
	SKIP:
	{
		skip 'no data was made', 1 unless $populated;
		is($node->safe_psql('upgraded', 'SELECT count(*) || bool_and(ok)::text FROM approval.verify_audit()'),
			"${nrequests}true", "$from -> $to: verify_audit() finds all $nrequests chains intact");
	}
}

# --- directly, from every older version ---

# probe_ok($db, $version): call every function of the extension in $db once
# (trigger functions aside) with sample arguments; errors are fine, a
# backend that dies is not.
sub probe_ok
{
	my ($db, $version) = @_;
	my %sample = (
		'jsonb'   => q{'{"name": "probe", "stages": [{"name": "s", "approvers": ["user:probe"]}]}'::jsonb},
		'text'    => q{'probe'},
		'bigint'  => '1',
		'integer' => '1',
		'timestamp with time zone' => 'now()');
	my $script = "\\set ON_ERROR_STOP 0\nSET client_min_messages = error;\n";
	foreach my $row (split /\n/, $node->safe_psql(
		$db, q{
		SELECT p.oid::regprocedure::text, p.oid::regproc::text,
		       array_to_string(ARRAY(SELECT format_type(t, NULL)
		                               FROM unnest(p.proargtypes) WITH ORDINALITY AS u(t, n) ORDER BY n), ',')
		  FROM pg_proc p
		  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
		   AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
		  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'approval'
		 WHERE p.prokind = 'f' AND p.prorettype <> 'trigger'::regtype
		 ORDER BY 1}))
	{
		my ($signature, $name, $types) = split /\|/, $row, 3;
		my @args = map { $sample{$_} // "NULL::$_" } grep { $_ ne '' } split /,/, $types;
		$script .= "\\echo calling $signature\nSELECT $name(" . join(', ', @args) . ");\n";
	}
	my ($ret, $out, $err) = $node->psql($db, $script);
	my ($last) = $out =~ /.*^calling (.*)$/ms;
	my @tail = split /\n/, $err;
	splice(@tail, 0, @tail - 6) if @tail > 6;
	ok($ret != 2 && $err !~ /server closed the connection|connection to server was lost/,
		"${version}'s functions with the current library: none crashes the server")
	  or diag("it died in " . ($last // '?') . ":\n" . join("\n", @tail));
	$node->poll_query_until('postgres', 'SELECT true');    # back after a crash, if any
	return;
}

foreach my $from (@older)
{
	my $db = "direct_$from" =~ s/\W/_/gr;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, "CREATE EXTENSION approval VERSION '$from'");
	probe_ok($db, $from);
	my ($ret, $out, $err) = $node->psql($db, 'ALTER EXTENSION approval UPDATE');
	is($ret, 0, "ALTER EXTENSION approval UPDATE from $from") or diag($err);
	is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = 'approval'"),
		$current, "from $from: the extension is at $current");
	compare_ok($db, fresh_db($current), "$from -> $current directly: the schema equals a fresh install");
}

# --- the upgraded data works ---

SKIP:
{
	skip 'the data or the update failed', 11 unless $populated && $updated;

	my %id = map { split /\|/ } split /\n/, $node->safe_psql('upgraded', 'SELECT title, id FROM approval.request');
	my $max_request = $node->safe_psql('upgraded', 'SELECT max(id) FROM approval.request');
	my $decide = sub {
		my ($role, $call) = @_;
		my ($ret, $out, $err) =
		  $node->psql('upgraded', "\\set ON_ERROR_STOP 1\nSET ROLE $role;\nSELECT approval.$call");
		return $ret == 0 ? $out : $err;
	};

	is($decide->('fx_carol', "approve($id{'pending-voted'})"), 'approved',
		"approve a request made under $chain[0] at its last stage: approved");
	is($decide->('fx_bob', "reject($id{'pending-v1'}, 'late')"), 'rejected',
		"reject a request made under $chain[0] on workflow version 1: rejected");
	is($decide->('fx_alice', "cancel($id{'changes'})"), 'cancelled',
		"cancel a request of $chain[0] waiting for changes: cancelled");
	is($decide->('fx_bob', "approve($id{'resubmitted'})"), 'pending',
		"approve the manager stage of a request resubmitted under $chain[0]: pending");
	is($decide->('fx_dave', "approve($id{'resubmitted'})"), 'approved',
		"a delegation made under $chain[0] still lets dave approve for carol: approved");

	my $new = $decide->('fx_alice', q{submit('expense', '{"amount": 80}', 'after-upgrade')});
	ok($new =~ /^\d+$/ && $new > $max_request, "submit after the upgrade makes a new request ($new)");
	is($decide->('fx_bob', "approve(" . ($new =~ /^\d+$/ ? $new : 0) . ")"), 'pending',
		'the new request runs: its manager approves, finance is next');
	# the update made a signing key: a token for finance works
	my ($tret, $token, $terr) = $node->psql('upgraded',
		"SELECT approval.issue_token(" . ($new =~ /^\d+$/ ? $new : 0) . ", 'carol')");
	ok($tret == 0 && $token =~ /^[A-Za-z0-9_-]+$/, 'issue_token after the upgrade') or diag($terr);
	($tret, my $tout, $terr) = $node->psql('upgraded', "SELECT approval.redeem_token('$token', 'approve')");
	is($tret == 0 ? $tout : $terr, 'approved', 'redeem_token after the upgrade: carol approves finance: approved');

	my ($ret, $out, $err) = $node->psql('upgraded',
		qq{\\set ON_ERROR_STOP 1
		SELECT approval.define_workflow('{"name": "expense",
		  "stages": [{"name": "manager", "approvers": ["manager"]}]}') AS w \\gset
		SELECT version FROM approval.workflow WHERE id = :w});
	is("$out" . ($ret ? $err : ''), '3', 'define_workflow after the upgrade: version 3 of expense');

	is($node->safe_psql('upgraded', 'SELECT count(*) || bool_and(ok)::text FROM approval.verify_audit()'),
		($nrequests + 1) . 'true', 'verify_audit() after the new decisions: every chain intact');
}

# --- a 0.1.0 database that was restored from its own pg_dump ---

# 0.1.0 did not register the identity sequences of workflow, decision and
# delegation for pg_dump, so a restored 0.1.0 database has them back at
# their start; the update to 0.2.0 moves each past the highest id in use.
$node->safe_psql('postgres', 'CREATE DATABASE restored010');
$node->safe_psql('restored010', "CREATE EXTENSION approval VERSION '0.1.0'");
load_frozen($node, 'restored010', '0.1.0');
$node->safe_psql('restored010', q{
	ALTER SEQUENCE approval.workflow_id_seq RESTART;
	ALTER SEQUENCE approval.decision_id_seq RESTART;
	ALTER SEQUENCE approval.delegation_id_seq RESTART;
});
$node->safe_psql('restored010', 'ALTER EXTENSION approval UPDATE');
foreach my $t (qw(workflow decision delegation))
{
	is($node->safe_psql('restored010',
			"SELECT nextval('approval.${t}_id_seq') > (SELECT max(id) FROM approval.$t)"),
		't', "a restored 0.1.0 database: after the update approval.${t}_id_seq is past every id");
}

# --- 0.1.0 in a schema someone made first ---

# 0.1.0 installed into a pre-made schema "approval"; the update refuses to
# run while its owner is no superuser or it holds an object that is not the
# extension's, and changes nothing.
$node->safe_psql('postgres', q{
	CREATE ROLE squatter LOGIN;
	CREATE DATABASE squatted;
	GRANT CREATE ON DATABASE squatted TO squatter;
});
$node->safe_psql('squatted', q{
	SET ROLE squatter;
	CREATE SCHEMA approval;
	CREATE FUNCTION approval.planted() RETURNS int LANGUAGE sql AS 'SELECT 1';
	RESET ROLE;
	CREATE EXTENSION approval VERSION '0.1.0';
});
my ($sq_ret, $sq_out, $sq_err) = $node->psql('squatted', 'ALTER EXTENSION approval UPDATE');
isnt($sq_ret, 0, 'the update refuses a schema owned by someone who is not a superuser');
like($sq_err, qr/schema "approval" is owned by role "squatter"/, '... and says so');
$node->safe_psql('squatted', 'ALTER SCHEMA approval OWNER TO CURRENT_USER');
($sq_ret, $sq_out, $sq_err) = $node->psql('squatted', 'ALTER EXTENSION approval UPDATE');
isnt($sq_ret, 0, 'the update refuses a schema that holds a function that is not the extension\'s');
like($sq_err, qr/holds function approval\.planted\(\)/, '... and names it');
is($node->safe_psql('squatted', "SELECT extversion FROM pg_extension WHERE extname = 'approval'"),
	'0.1.0', 'nothing was changed: the extension is still at 0.1.0');
$node->safe_psql('squatted', 'DROP FUNCTION approval.planted()');
($sq_ret, $sq_out, $sq_err) = $node->psql('squatted', 'ALTER EXTENSION approval UPDATE');
is($sq_ret, 0, 'once the schema is clean, the update runs') or diag($sq_err);

# --- workflows that named calendars before there were any ---

# Up to 0.3.0 a workflow could name any calendar.  The update to 0.4.0 makes
# each one that is missing, open around the clock in UTC, with one warning
# each, before workflow.calendar comes to refer to approval.calendar.
SKIP:
{
	skip 'no 0.3.0 to update from', 6 unless $install{'0.3.0'} && vcmp($current, '0.4.0') >= 0;
	$node->safe_psql('postgres', 'CREATE DATABASE calendars');
	$node->safe_psql('calendars', "CREATE EXTENSION approval VERSION '0.3.0'");
	$node->safe_psql('calendars', q{
		INSERT INTO approval.workflow (name, version, definition, created_by, calendar) VALUES
		    ('a', 1, '{}', 10, 'eu-office'), ('a', 2, '{}', 10, 'eu-office'),
		    ('b', 1, '{}', 10, 'us-office'), ('c', 1, '{}', 10, NULL);
	});
	my ($ret, $out, $err) = $node->psql('calendars', 'ALTER EXTENSION approval UPDATE');
	is($ret, 0, 'the update runs with workflows that name calendars') or diag($err);
	my @warnings = $err =~ /WARNING:\s+(.*)$/mg;
	is_deeply(
		\@warnings,
		[
			'calendar "eu-office", which workflows name, did not exist: it was made open around the clock in UTC',
			'calendar "us-office", which workflows name, did not exist: it was made open around the clock in UTC'
		],
		'one warning for each missing calendar');
	like($err, qr/HINT:\s+Give it its time zone, hours and holidays: UPDATE approval\.calendar .* WHERE name = 'eu-office';/,
		'... with a hint giving the statement that sets it up');
	is( $node->safe_psql(
			'calendars', q{
		SELECT string_agg(format('%s %s %s', name, timezone, hours), '; ' ORDER BY name) FROM approval.calendar}),
		'eu-office UTC {"fri": ["00:00", "24:00"], "mon": ["00:00", "24:00"], "sat": ["00:00", "24:00"], '
		  . '"sun": ["00:00", "24:00"], "thu": ["00:00", "24:00"], "tue": ["00:00", "24:00"], "wed": ["00:00", "24:00"]}; '
		  . 'us-office UTC {"fri": ["00:00", "24:00"], "mon": ["00:00", "24:00"], "sat": ["00:00", "24:00"], '
		  . '"sun": ["00:00", "24:00"], "thu": ["00:00", "24:00"], "tue": ["00:00", "24:00"], "wed": ["00:00", "24:00"]}',
		'the calendars were made: every day 00:00 to 24:00, in UTC');
	is( $node->safe_psql(
			'calendars', q{
		SELECT approval.business_elapsed('2026-03-06 12:00+00', '2026-03-09 12:00+00', 'eu-office')}),
		'72:00:00',
		'such a calendar counts plain time');
	my ($del_ret, $del_out, $del_err) = $node->psql('calendars', q{DELETE FROM approval.calendar WHERE name = 'us-office'});
	like($del_err, qr/violates foreign key constraint "workflow_calendar_fkey"/,
		'workflow.calendar refers to approval.calendar after the update');
}

# --- the comparison sees what it must ---

# A fresh install with one change of each kind the comparison promises to
# see; each must show as a differing entry.
my $current_fresh = fresh_db($current);
$node->safe_psql('postgres', 'CREATE DATABASE mutant');
$node->safe_psql(
	'mutant', q{
	CREATE EXTENSION approval;
	ALTER FUNCTION approval.graph(text, text) VOLATILE;
	ALTER FUNCTION approval.route(jsonb, text) SET search_path = public;
	ALTER FUNCTION approval.events_after(bigint, integer) SECURITY DEFINER;
	ALTER TABLE approval.event DISABLE TRIGGER event_no_truncate;
	ALTER TABLE approval.subscriber ENABLE ROW LEVEL SECURITY;
	GRANT SELECT ON approval.subscriber TO approval_user;
	COMMENT ON TABLE approval.subscriber IS 'changed';
	ALTER TYPE approval.request_state ADD VALUE 'on_hold' BEFORE 'approved';
	ALTER TABLE approval.request ALTER COLUMN escalations SET DEFAULT 1;
	ALTER TABLE approval.subscriber ADD COLUMN note text;
	ALTER TABLE approval.subscriber DROP COLUMN note;
	UPDATE pg_extension SET extconfig = extconfig[2:], extcondition = extcondition[2:]
	 WHERE extname = 'approval';
});
$fresh_schema{$current_fresh} //= schema_of($current_fresh);
my ($differ) = schema_diff(schema_of('mutant'), 'mutant', $fresh_schema{$current_fresh}, $current_fresh);
my $seen = join "\n", @$differ;
foreach my $want (
	[ qr/^differs: -- Name: graph\(text, text\); Type: FUNCTION/m,         'a function\'s volatility' ],
	[ qr/^differs: -- Name: route\(jsonb, text\); Type: FUNCTION/m,        'a function\'s SET option' ],
	[ qr/^differs: -- Name: events_after\(bigint, integer\); Type: FUNCTION/m, 'SECURITY DEFINER' ],
	[ qr/^differs: -- Name: event event_no_truncate; Type: TRIGGER/m,       'a trigger\'s enabled mode' ],
	[ qr/^only in mutant: -- Name: subscriber; Type: ROW SECURITY/m,        'row-level security' ],
	[ qr/^differs: -- Name: TABLE subscriber; Type: ACL/m,                  'a grant' ],
	[ qr/^only in mutant: -- Name: TABLE subscriber; Type: COMMENT/m,       'a comment' ],
	[ qr/^differs: -- Name: request_state; Type: TYPE/m,                    'the enum labels' ],
	[ qr/^differs: -- Name: request; Type: TABLE/m,                         'a column default' ],
	[ qr/^differs: \(extconfig\)/m,                                          'extconfig' ])
{
	like($seen, $want->[0], "the comparison sees a change of $want->[1]");
}
unlike($seen, qr/subscriber; Type: TABLE/,
	'the comparison ignores a dropped column (it leaves only a placeholder behind)');

$node->stop;
done_testing();
