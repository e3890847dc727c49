# Randomized model-based test of requests, decisions and delegation
# (DESIGN §2, §4, §5, §9; doc/approval.md "Requests", "Delegation", "Errors").
#
# A small reference model of the engine, written from the contract, runs
# next to the real extension.  A random population (people with and without
# managers, overlapping approver groups, one admin, inactive people) and
# random workflows (stages in order and in parallel, min_approvals 1-3 or
# "all", reject policies any/quorum, "when" conditions, allow_self_approval,
# distinct_approvers, reapprove_on_change stage/all, and a workflow with no
# stages) are set up; then thousands of random operations by random people
# (submit with and without subject, approve, reject, request_changes,
# resubmit, cancel, comment, delegate, revoke_delegation, repeated calls;
# and, through plain SQL as an admin would, people made inactive and active
# again and people joining and leaving groups) go to both.  After each operation
# the outcome (SQLSTATE, or success and the returned value) is compared, and
# so are the request's state, each stage's state, targets, counters
# (approvals/required, rejections/reject_required) and round, and every
# decision row (stage, actor, on_behalf_of, decision, round); every few
# hundred operations all requests and delegations are compared.
#
# The database is driven the way a web gateway drives it: one DBD::Pg
# connection as a LOGIN role that is a member of approval_gateway, acting for
# each person with set_config('approval.actor', $1, true) inside each
# transaction.  A second connection, as the superuser, reads the state
# tables and changes the reference tables.
#
#   APPROVAL_MODEL_SEED   the seed (default: a fixed one; "random": from the clock)
#   APPROVAL_MODEL_OPS    how many operations (default 2500)
#   APPROVAL_MODEL_TRACE  1: print every operation and its outcome
#
# The seed is printed first.  On the first divergence the test prints the
# seed, the operation's number, the operation, both outcomes and both views
# of the request, writes an SQL script that replays the run up to that
# operation (into tmp_check; tools/run-tests.sh --keep keeps it), fails one
# assertion and stops.  Otherwise it prints how often each outcome (SQLSTATE)
# and each rule of the model occurred, asserts that every request's event
# chain verifies, and - at the default seed and size, or from 20,000
# operations on - that every outcome and rule it is meant to reach was
# reached.  "make model" runs it long.
use strict;
use warnings;

use DBI;
use FindBin;
use lib $FindBin::RealBin;
use JSON::PP;
use Digest::MD5 qw(md5_hex);
use Storable qw(dclone);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use ApprovalRandom qw(seed_and_size rint pick chance wpick);

my $DEFAULT_SEED = 7301;
my $DEFAULT_OPS = 2500;

my ($seed, $nops, $trace) = seed_and_size('APPROVAL_MODEL', $DEFAULT_SEED, $DEFAULT_OPS, 'approval model');

# ---------------------------------------------------------------------------
# List helpers (the random ones: test/t/ApprovalRandom.pm)
# ---------------------------------------------------------------------------
sub uniq
{
	my %seen;
	return grep { !$seen{$_}++ } @_;
}

sub overlap
{
	my ($x, $y) = @_;
	my %in = map { $_ => 1 } @$x;
	return scalar grep { $in{$_} } @$y;
}

# ---------------------------------------------------------------------------
# The random population and workflows (the model's reference data)
# ---------------------------------------------------------------------------
my %P;    # id => { manager, active, admin }
my %G;    # group => [ members ]
my %W;    # workflow => { name, allow_self, distinct, reapprove_all, stages => [ ... ] }
my @people;
my @groups;
my @wfnames;

{
	my @names = qw(ann ben cal dan eve fay gus hal ivy jon kim lou);
	my $n = 8 + rint(5);
	@people = sort('adm', @names[ 0 .. $n - 2 ]);
	my $nomgr = pick(grep { $_ ne 'adm' } @people);
	for my $p (@people)
	{
		my $m;
		if ($p ne $nomgr && chance(0.9))
		{
			$m = pick(grep { $_ ne $p } @people);
		}
		$P{$p} = { manager => $m, active => 1, admin => ($p eq 'adm' ? 1 : 0) };
	}
	$P{ pick(grep { $_ ne 'adm' && $_ ne $nomgr } @people) }{active} = 0;

	@groups = (qw(fin ops sec))[ 0 .. 1 + rint(2) ];
	for my $g (@groups)
	{
		my %m;
		$m{ pick(@people) } = 1 for 1 .. 2 + rint(4);
		$G{$g} = [ sort keys %m ];
	}
	# overlapping membership: someone of the first group is in the second too
	my $both = $G{ $groups[0] }[0];
	$G{ $groups[1] } = [ sort(uniq(@{ $G{ $groups[1] } }, $both)) ];
}

sub random_target
{
	return wpick(
		'user:' . pick(@people) => 4,
		'group:' . pick(@groups) => 4,
		'manager' => 2);
}

# one workflow: its model and its JSON definition
sub gen_workflow
{
	my ($name, $nst) = @_;
	my $w = {
		name => $name,
		allow_self => chance(0.25) ? 1 : 0,
		distinct => chance(0.3) ? 1 : 0,
		reapprove_all => chance(0.35) ? 1 : 0,
		stages => [],
	};
	for my $i (0 .. $nst - 1)
	{
		my $s = {
			name => "s$i",
			idx => $i,
			order => chance(0.5) ? rint($nst) : $i,
			explicit_order => 0,
			approvers => [ uniq(map { random_target() } 1 .. 1 + rint(3)) ],
			min => wpick(1 => 5, 2 => 2, 3 => 1, all => 2),
			reject_quorum => chance(0.3) ? 1 + rint(3) : undef,
			when => chance(0.25) ? pick('$.amount > 100', '$.amount < 200') : undef,
		};
		$s->{explicit_order} = 1 if $s->{order} != $i || chance(0.3);
		push @{ $w->{stages} }, $s;
	}
	return $w;
}

{
	my $nwf = 4 + rint(3);
	for my $i (0 .. $nwf - 1)
	{
		my $name = 'w' . chr(ord('a') + $i);
		$W{$name} = gen_workflow($name, 1 + rint(4));
	}
	# every rule the test is meant to reach has a workflow that can reach it
	my $wa = $W{wa} = gen_workflow('wa', 2 + rint(2));    # distinct approvers, in parallel
	$wa->{distinct} = 1;
	$wa->{allow_self} = 0;
	$_->{order} = 0, $_->{explicit_order} = 1, $_->{when} = undef for @{ $wa->{stages} }[ 0, 1 ];
	$wa->{stages}[$_]{approvers} = [ 'group:' . $groups[0], 'user:' . $G{ $groups[0] }[0] ] for 0, 1;
	$wa->{stages}[$_]{min} = 1 for 0, 1;
	my $wb = $W{wb} = gen_workflow('wb', 2);              # self-approval, reject quorum, in order
	$wb->{allow_self} = 1;
	$wb->{distinct} = 0;
	$wb->{stages}[0] = { %{ $wb->{stages}[0] }, order => 0, explicit_order => 0, when => undef,
		reject_quorum => 2, approvers => [ 'group:' . $groups[1], 'manager' ], min => 2 };
	$wb->{stages}[1]{order} = 1;
	my $wc = $W{wc} = gen_workflow('wc', 2 + rint(2));    # reapprove all, "all", a condition
	$wc->{reapprove_all} = 1;
	$wc->{stages}[0] = { %{ $wc->{stages}[0] }, order => 0, explicit_order => 0,
		min => 'all', approvers => [ 'group:' . pick(@groups) ], when => undef };
	$wc->{stages}[1]{when} = '$.amount > 100';
	$wc->{stages}[1]{order} = 1 if $wc->{stages}[1]{order} == 0;
	my $wd = $W{wd} = gen_workflow('wd', 1 + rint(3));    # reapprove stage, "all"
	$wd->{reapprove_all} = 0;
	$wd->{stages}[0]{min} = 'all';
	$wd->{stages}[0]{approvers} = [ 'group:' . pick(@groups), random_target() ];
	$W{wz} = { name => 'wz', allow_self => 0, distinct => 0, reapprove_all => 0, stages => [] };
	@wfnames = sort keys %W;

	# stages in (order, index) order, as the engine keeps them
	for my $w (values %W)
	{
		$w->{stages} = [ sort { $a->{order} <=> $b->{order} || $a->{idx} <=> $b->{idx} } @{ $w->{stages} } ];
	}
}

sub wf_json
{
	my ($w) = @_;
	my %d = (name => $w->{name}, stages => []);
	$d{allow_self_approval} = $w->{allow_self} ? JSON::PP::true : JSON::PP::false
	  if $w->{allow_self} || chance(0.5);
	$d{distinct_approvers} = JSON::PP::true if $w->{distinct};
	$d{reapprove_on_change} = $w->{reapprove_all} ? 'all' : 'stage'
	  if $w->{reapprove_all} || chance(0.5);
	for my $s (sort { $a->{idx} <=> $b->{idx} } @{ $w->{stages} })
	{
		my %sd = (name => $s->{name}, approvers => $s->{approvers});
		$sd{order} = $s->{order} + 0 if $s->{explicit_order};
		$sd{min_approvals} = $s->{min} eq 'all' ? 'all' : $s->{min} + 0
		  if $s->{min} ne '1' || chance(0.5);
		if (defined $s->{reject_quorum})
		{
			$sd{reject_policy} = 'quorum';
			$sd{reject_quorum} = $s->{reject_quorum} + 0;
		}
		elsif (chance(0.3))
		{
			$sd{reject_policy} = 'any';
		}
		$sd{when} = $s->{when} if defined $s->{when};
		push @{ $d{stages} }, \%sd;
	}
	return JSON::PP->new->canonical->encode(\%d);
}

# ---------------------------------------------------------------------------
# The node and the two connections
# ---------------------------------------------------------------------------
my $node = PostgreSQL::Test::Cluster->new('model');
$node->init(extra => ['--locale=C']);
# (thousands of statements: the log keeps only errors)
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'approval'\nlog_statement = none\nlog_min_error_statement = panic\n");
$node->start;

my @script;    # the SQL that replays the run (for a failing seed)

sub sql_literal
{
	my ($v) = @_;
	return 'NULL' unless defined $v;
	$v =~ s/'/''/g;
	return "'$v'";
}

my $setup = "CREATE EXTENSION approval;\n"
  . "CREATE ROLE model_gw LOGIN;\nGRANT approval_gateway TO model_gw;\n"
  . "CREATE ROLE model_admin NOLOGIN;\nGRANT approval_admin TO model_admin;\n";
for my $p (@people)
{
	$setup .= sprintf("INSERT INTO approval.principal (id, display_name, pg_role, active) VALUES (%s, %s, %s, %s);\n",
		sql_literal($p), sql_literal(ucfirst $p), $P{$p}{admin} ? "'model_admin'" : 'NULL',
		$P{$p}{active} ? 'true' : 'false');
}
for my $p (@people)
{
	$setup .= sprintf("UPDATE approval.principal SET manager_id = %s WHERE id = %s;\n",
		sql_literal($P{$p}{manager}), sql_literal($p))
	  if defined $P{$p}{manager};
}
for my $g (@groups)
{
	$setup .= "INSERT INTO approval.approver_group (name) VALUES ('$g');\n";
	$setup .= "INSERT INTO approval.group_member (group_name, principal_id) VALUES ('$g', '$_');\n"
	  for @{ $G{$g} };
}
for my $w (@wfnames)
{
	my $json = wf_json($W{$w});
	note("workflow $json");
	$setup .= 'SELECT approval.define_workflow(' . sql_literal($json) . ");\n";
}
note("$_: manager " . ($P{$_}{manager} // '-') . ($P{$_}{active} ? '' : ', inactive')) for @people;
note("group $_: @{ $G{$_} }") for @groups;
$node->safe_psql('postgres', $setup);
push @script, "-- approval model test, seed $seed\n\\set ON_ERROR_STOP 0\n$setup", "SET ROLE model_gw;\n";

my $dsn = 'dbi:Pg:dbname=postgres;host=' . $node->host . ';port=' . $node->port;
my %dbi_opts = (AutoCommit => 1, RaiseError => 1, PrintError => 0, PrintWarn => 0);
my $su = DBI->connect($dsn, undef, undef, \%dbi_opts) or die $DBI::errstr;
my $gw = DBI->connect($dsn, 'model_gw', undef, \%dbi_opts) or die $DBI::errstr;
$_->do('SET client_min_messages = warning') for $su, $gw;

is($gw->selectrow_array('SELECT pg_has_role(current_user, \'approval_gateway\', \'MEMBER\')'),
	1, 'the driver connection is a member of approval_gateway');

my $set_actor = $gw->prepare(q{SELECT set_config('approval.actor', $1, true)});
my %gw_sth;

# One operation through the gateway: ['ok', value] or ['err', sqlstate, message]
sub db_call
{
	my ($actor, $sql, @args) = @_;
	my $sth = $gw_sth{$sql} //= $gw->prepare($sql);
	my ($val, $ok);
	eval {
		$gw->begin_work;
		$set_actor->execute($actor);
		$set_actor->finish;
		$sth->execute(@args);
		($val) = $sth->fetchrow_array;
		$sth->finish;
		$gw->commit;
		$ok = 1;
	};
	return [ 'ok', defined $val ? ($val eq '' ? 'void' : $val) : 'NULL' ] if $ok;
	my ($state, $msg) = ($gw->state, $gw->errstr);
	eval { $gw->rollback; };
	return [ 'err', $state, $msg ];
}

# ---------------------------------------------------------------------------
# Views: the same text from the model and from the database
# ---------------------------------------------------------------------------
my $view_sql = q{
	SELECT r.id,
	       format('request %s %s by %s subject %s payload %s', r.id, r.workflow, r.requester,
	              coalesce(r.subject, '-'), r.payload)
	       || E'\nstate ' || r.state
	       || coalesce(E'\n' || (SELECT string_agg(format('stage %s o%s %s a%s/%s r%s/%s round%s [%s]',
	                     s.stage, s.stage_order, s.state, s.approvals, s.required, s.rejections,
	                     s.reject_required, s.round, array_to_string(s.targets, ',')),
	                     E'\n' ORDER BY s.stage_order, s.stage_idx)
	                  FROM approval.request_stage s WHERE s.request_id = r.id), '')
	       || coalesce(E'\n' || (SELECT string_agg(format('decision %s %s %s %s round%s',
	                     coalesce(d.stage, '-'), d.actor, coalesce(d.on_behalf_of, '-'), d.decision, d.round),
	                     E'\n' ORDER BY d.id)
	                  FROM approval.decision d WHERE d.request_id = r.id), '')
	  FROM approval.request r
};
my $db_view_sth = $su->prepare($view_sql . ' WHERE r.id = $1');
my $db_all_views_sth = $su->prepare($view_sql . ' ORDER BY r.id');
my $db_digest_sth = $su->prepare(
	"SELECT md5(coalesce(string_agg(v.view, E'\\n' ORDER BY v.id), '')) FROM ($view_sql) v(id, view)");
my $db_count_sth = $su->prepare('SELECT count(*), coalesce(max(id), 0) FROM approval.request');
my $db_delegations_sth = $su->prepare(q{
	SELECT coalesce(string_agg(format('delegation %s %s->%s %s %s %s', id, delegator, delegate,
	           coalesce(workflow, '*'),
	           CASE WHEN starts > now() THEN 'future' WHEN ends <= now() THEN 'expired' ELSE 'active' END,
	           CASE WHEN revoked_at IS NULL THEN 'live' ELSE 'revoked' END), E'\n' ORDER BY id), '')
	  FROM approval.delegation
});

sub db_view
{
	my ($id) = @_;
	$db_view_sth->execute($id);
	my (undef, $v) = $db_view_sth->fetchrow_array;
	$db_view_sth->finish;
	return $v // "(no request $id)";
}

my %R;          # the model's requests: id => request
my @rids;       # their ids, in order
my %open;       # the ids of the open ones
my %mview;      # id => m_view() of the request
my @D;          # the model's delegations
my %tag;        # rule => how often the model took that path
my @op_tags;    # the paths of the operation under way: kept if it succeeds

sub open_requests { return map { $R{$_} } sort { $a <=> $b } keys %open; }

sub tag { push @op_tags, $_[0]; }
sub refusal_tag { $tag{ $_[0] }++; }    # the path to an error, kept

sub m_view
{
	my ($r) = @_;
	my @l = (
		sprintf('request %s %s by %s subject %s payload %s',
			$r->{id}, $r->{wf}, $r->{requester}, $r->{subject} // '-', $r->{payload}),
		"state $r->{state}");
	for my $s (@{ $r->{stages} })
	{
		push @l, sprintf('stage %s o%d %s a%d/%d r%d/%d round%d [%s]',
			$s->{name}, $s->{order}, $s->{state}, $s->{approvals}, $s->{required},
			$s->{rejections}, $s->{reject_required}, $s->{round}, join(',', @{ $s->{targets} }));
	}
	for my $d (@{ $r->{decisions} })
	{
		push @l, sprintf('decision %s %s %s %s round%d',
			$d->{stage} // '-', $d->{actor}, $d->{obo} // '-', $d->{decision}, $d->{round});
	}
	return join("\n", @l);
}

sub m_delegations
{
	return join("\n",
		map { sprintf('delegation %s %s->%s %s %s %s', $_->{id}, $_->{delegator}, $_->{delegate},
				$_->{scope} // '*', $_->{window}, $_->{revoked} ? 'revoked' : 'live') } @D);
}

# ---------------------------------------------------------------------------
# The model (DESIGN §2, §4, §5)
# ---------------------------------------------------------------------------
sub fail_with { die { code => $_[0] }; }

sub is_open { return $_[0]{state} eq 'pending' || $_[0]{state} eq 'changes_requested'; }

# the actor must be an active principal (AP012)
sub actor_ok
{
	my ($me) = @_;
	fail_with('AP012') unless $P{$me} && $P{$me}{active};
}

sub targets_of
{
	my ($p) = @_;
	return [ "user:$p", map { "group:$_" } grep { my $g = $_; grep { $_ eq $p } @{ $G{$g} } } @groups ];
}

# every capacity of an actor for a workflow: its own first, then each active
# delegator (by id, the delegation for all workflows before a scoped one)
my %caps_cache;    # "actor/workflow" => capacities; emptied when people, groups or delegations change

sub caps
{
	my ($me, $wf) = @_;
	my $cached = $caps_cache{"$me/$wf"};
	return @$cached if $cached;
	my @c = ({ principal => $me, delegated => 0, targets => targets_of($me) });
	my %seen;
	for my $d (sort { $a->{delegator} cmp $b->{delegator} || (defined $a->{scope} <=> defined $b->{scope})
				|| ($a->{scope} // '') cmp ($b->{scope} // '') } @D)
	{
		next unless $d->{delegate} eq $me && !$d->{revoked} && $d->{window} eq 'active';
		next unless $P{ $d->{delegator} }{active};
		next if defined $d->{scope} && $d->{scope} ne $wf;
		next if $seen{ $d->{delegator} . "\0" . ($d->{scope} // '') }++;
		push @c, { principal => $d->{delegator}, delegated => 1, targets => targets_of($d->{delegator}) };
	}
	$caps_cache{"$me/$wf"} = \@c;
	return @c;
}

sub visible
{
	my ($r, $me) = @_;
	return 1 if $P{$me}{admin};
	return 1 if $r->{requester} eq $me;
	return 1 if grep { $_->{actor} eq $me || (defined $_->{obo} && $_->{obo} eq $me) } @{ $r->{decisions} };
	for my $c (caps($me, $r->{wf}))
	{
		return 1 if grep { overlap($c->{targets}, $_->{targets}) } @{ $r->{stages} };
	}
	return 0;
}

# distinct active principals the targets stand for
sub count_all
{
	my ($targets) = @_;
	my %who;
	for my $t (@$targets)
	{
		if ($t =~ /^user:(.*)$/) { $who{$1} = 1; }
		elsif ($t =~ /^group:(.*)$/) { $who{$_} = 1 for @{ $G{$1} }; }
	}
	return scalar grep { $P{$_}{active} } keys %who;
}

sub when_holds
{
	my ($cond, $payload) = @_;
	return 1 unless defined $cond;
	my $p = decode_json($payload);
	return 0 unless defined $p->{amount};
	return $cond eq '$.amount > 100' ? $p->{amount} > 100 : $p->{amount} < 200;
}

sub activate
{
	my ($r, $s) = @_;
	$s->{state} = 'active';
	$s->{approvals} = 0;
	$s->{rejections} = 0;
	if ($s->{def}{min} eq 'all')
	{
		my $n = count_all($s->{targets});
		$s->{required} = $n > 1 ? $n : 1;
		tag('stage activated with min_approvals "all"');
	}
}

# move on: next order(s) while the current one is done; after the last, approved
sub advance
{
	my ($r) = @_;
	for (;;)
	{
		if ($r->{has_order})
		{
			return if grep { $_->{order} == $r->{cur} && $_->{state} ne 'approved' && $_->{state} ne 'skipped' }
			  @{ $r->{stages} };
		}
		my ($next) = sort { $a <=> $b } map { $_->{order} }
		  grep { $_->{state} eq 'waiting' && (!$r->{has_order} || $_->{order} > $r->{cur}) } @{ $r->{stages} };
		if (!defined $next)
		{
			$r->{state} = 'approved';
			tag('request approved');
			return;
		}
		$r->{has_order} = 1;
		$r->{cur} = $next;
		my $active = 0;
		for my $s (grep { $_->{order} == $next && $_->{state} eq 'waiting' } @{ $r->{stages} })
		{
			if (when_holds($s->{def}{when}, $r->{payload}))
			{
				activate($r, $s);
				$active++;
			}
			else
			{
				$s->{state} = 'skipped';
				tag('stage skipped by its condition');
			}
		}
		tag('stages active in parallel') if $active > 1;
	}
}

# a request closes: what is still waiting or active is cancelled
sub close_as
{
	my ($r, $state) = @_;
	$r->{state} = $state;
	for my $s (@{ $r->{stages} })
	{
		next unless $s->{state} eq 'waiting' || $s->{state} eq 'active';
		$s->{state} = 'cancelled';
		tag('stage cancelled when the request closed');
	}
}

# the capacity to vote in at a stage: one person casts one vote per stage,
# whatever their capacities (DESIGN §4, doc "One vote per person per stage"),
# so the one already used there (even if it is no longer eligible: then the
# call repeats or contradicts that vote), else the first whose principal has
# not voted there, else the first
sub choose
{
	my ($r, $s, $me, $cand) = @_;
	my @votes = grep { defined $_->{stage} && $_->{stage} eq $s->{name} && $_->{round} == $s->{round}
		  && ($_->{decision} eq 'approve' || $_->{decision} eq 'reject') } @{ $r->{decisions} };
	for my $v (@votes)
	{
		next unless $v->{actor} eq $me;
		my $counted = $v->{obo} // $v->{actor};
		my ($c) = grep { $_->{principal} eq $counted } @$cand;
		tag('capacity: the one already voted in') if $c && $c != $cand->[0];
		return $c if $c;
		tag('capacity: the one already voted in is no longer eligible');
		return { principal => $counted, delegated => defined $v->{obo} ? 1 : 0, targets => [] };
	}
	return $cand->[0] if @$cand == 1;
	for my $c (@$cand)
	{
		next if grep { ($_->{obo} // $_->{actor}) eq $c->{principal} } @votes;
		tag('capacity: the first is taken, the next one votes') if $c != $cand->[0];
		return $c;
	}
	return $cand->[0];
}

# the active stages where the actor may act, with the capacity for each;
# and whether a capacity was left out only because of self-approval
sub eligible
{
	my ($r, $me) = @_;
	my $wf = $W{ $r->{wf} };
	my @caps = caps($me, $r->{wf});
	my (@res, $blocked);
	for my $s (@{ $r->{stages} })
	{
		next unless $s->{state} eq 'active';
		my @cand;
		for my $c (@caps)
		{
			next unless overlap($c->{targets}, $s->{targets});
			if (!$wf->{allow_self} && ($me eq $r->{requester} || $c->{principal} eq $r->{requester}))
			{
				$blocked = 1;
				next;
			}
			push @cand, $c;
		}
		push @res, [ $s, choose($r, $s, $me, \@cand) ] if @cand;
	}
	return (\@res, $blocked);
}

# approve/reject/request_changes that cannot record anything: when the
# actor's latest approve/reject/request_changes on the request (as actor, in
# any capacity) is of this kind, the call is a retry of a recorded decision
# and returns the request's state ("whatever happened since", DESIGN §4)
sub repeats_last
{
	my ($r, $me, $kind, $instead) = @_;
	my @mine = grep { $_->{actor} eq $me && $_->{decision} =~ /^(approve|reject|request_changes)$/ }
	  @{ $r->{decisions} };
	return 0 unless @mine && $mine[-1]{decision} eq $kind;
	tag("retried $kind returned the state (instead of $instead)");
	return 1;
}

# distinct_approvers: an approval at another stage (in its current round)
# that involved the principal counted or the person acting, as the one
# counted or as the one who cast it
sub approved_elsewhere
{
	my ($r, $s, $principal, $me) = @_;
	my %round = map { $_->{name} => $_->{round} } @{ $r->{stages} };
	my %who = ($principal => 1, $me => 1);
	return scalar grep { defined $_->{stage} && $_->{stage} ne $s->{name} && $_->{decision} eq 'approve'
		  && ($who{ $_->{obo} // $_->{actor} } || $who{ $_->{actor} }) && $_->{round} == $round{ $_->{stage} } }
	  @{ $r->{decisions} };
}

sub record_vote
{
	my ($r, $s, $c, $me, $kind) = @_;
	my ($prev) = grep { defined $_->{stage} && $_->{stage} eq $s->{name} && $_->{round} == $s->{round}
		  && ($_->{decision} eq 'approve' || $_->{decision} eq 'reject')
		  && ($_->{obo} // $_->{actor}) eq $c->{principal} } @{ $r->{decisions} };
	if ($prev)
	{
		if ($prev->{decision} eq $kind)
		{
			tag('repeated vote is a no-op');
			return 0;
		}
		fail_with('AP004');
	}
	push @{ $r->{decisions} }, { stage => $s->{name}, actor => $me,
		obo => $c->{delegated} ? $c->{principal} : undef, decision => $kind, round => $s->{round} };
	tag('vote cast by a delegate') if $c->{delegated};
	if ($kind eq 'approve')
	{
		if (++$s->{approvals} >= $s->{required})
		{
			$s->{state} = 'approved';
			tag('stage approved');
			tag('stage approved by a quorum of 2 or more') if $s->{required} > 1;
		}
	}
	elsif (++$s->{rejections} >= $s->{reject_required})
	{
		$s->{state} = 'rejected';
		tag('stage rejected by a quorum of 2 or more') if $s->{reject_required} > 1;
		close_as($r, 'rejected');
		tag('request rejected');
	}
	return 1;
}

sub existing_request
{
	my ($id) = @_;
	fail_with('AP001') unless $R{$id};
	return dclone($R{$id});
}

# Each model operation returns (value, changed request or undef) or dies
# with { code => SQLSTATE }.  It works on a copy: nothing is kept on error.

sub m_vote
{
	my ($op) = @_;
	my ($me, $kind) = ($op->{actor}, $op->{kind});
	fail_with('22023') if $kind eq 'request_changes' && (!defined $op->{comment} || $op->{comment} eq '');
	actor_ok($me);
	my $r = existing_request($op->{rid});
	my $wf = $W{ $r->{wf} };
	if ($r->{state} ne 'pending')
	{
		return ($r->{state}, undef) if repeats_last($r, $me, $kind, 'AP002');
		fail_with('AP001') unless visible($r, $me);
		fail_with('AP002');
	}
	my ($elig, $blocked) = eligible($r, $me);
	if (!@$elig)
	{
		return ($r->{state}, undef) if repeats_last($r, $me, $kind, $blocked ? 'AP007' : 'AP003');
		fail_with('AP001') unless visible($r, $me);
		if ($blocked)
		{
			refusal_tag("$kind refused: self-approval");
			fail_with('AP007');
		}
		fail_with('AP003');
	}
	if ($kind eq 'request_changes')
	{
		my ($s, $c) = @{ $elig->[0] };
		# after one's own vote at the stage it contradicts that vote
		if (grep { defined $_->{stage} && $_->{stage} eq $s->{name} && $_->{round} == $s->{round}
				&& ($_->{decision} eq 'approve' || $_->{decision} eq 'reject')
				&& ($_->{obo} // $_->{actor}) eq $c->{principal} } @{ $r->{decisions} })
		{
			refusal_tag('request_changes after a vote at the stage');
			fail_with('AP004');
		}
		push @{ $r->{decisions} }, { stage => $s->{name}, actor => $me,
			obo => $c->{delegated} ? $c->{principal} : undef, decision => 'request_changes', round => $s->{round} };
		$r->{state} = 'changes_requested';
		return ($r->{state}, $r);
	}
	my ($changed, $blocked_by) = (0, 0);
	for my $e (@$elig)
	{
		last if $r->{state} ne 'pending';
		my ($s, $c) = @$e;
		if ($kind eq 'approve' && $wf->{distinct} && approved_elsewhere($r, $s, $c->{principal}, $me))
		{
			$blocked_by = 1;
			tag('approve skipped at a stage: distinct approvers');
			next;
		}
		$changed |= record_vote($r, $s, $c, $me, $kind);
	}
	if (!$changed && $blocked_by)
	{
		return ($r->{state}, undef) if repeats_last($r, $me, $kind, 'AP007');
		refusal_tag('approve refused: distinct approvers');
		fail_with('AP007');
	}
	advance($r) if $kind eq 'approve' && $r->{state} eq 'pending';
	return ($r->{state}, $r);
}

sub m_resubmit
{
	my ($op) = @_;
	my $me = $op->{actor};
	actor_ok($me);
	my $r = existing_request($op->{rid});
	fail_with('AP001') unless visible($r, $me);
	fail_with('42501') unless $r->{requester} eq $me;
	fail_with('AP002') unless is_open($r);
	fail_with('55000') if $r->{state} eq 'pending';
	$r->{payload} = $op->{payload} if defined $op->{payload};
	$r->{state} = 'pending';
	if ($W{ $r->{wf} }{reapprove_all})
	{
		tag('resubmit restarts the whole workflow');
		for my $s (@{ $r->{stages} })
		{
			$s->{state} = 'waiting';
			$s->{approvals} = $s->{rejections} = 0;
			$s->{round}++;
			$s->{required} = $s->{def}{min} eq 'all' ? 0 : $s->{def}{min};
		}
		$r->{has_order} = 0;
	}
	else
	{
		tag('resubmit restarts the active stages');
		for my $s (grep { $_->{state} eq 'active' } @{ $r->{stages} })
		{
			my $before = $s->{required};
			$s->{round}++;
			activate($r, $s);
			tag('resubmit: "all" counts other people now') if $s->{required} != $before;
		}
	}
	advance($r);
	return ($r->{state}, $r);
}

sub m_cancel
{
	my ($op) = @_;
	my $me = $op->{actor};
	actor_ok($me);
	my $r = existing_request($op->{rid});
	fail_with('AP001') unless visible($r, $me);
	fail_with('42501') unless $r->{requester} eq $me || $P{$me}{admin};
	fail_with('AP002') unless is_open($r);
	tag('cancelled by an admin') if $r->{requester} ne $me;
	close_as($r, 'cancelled');
	return ($r->{state}, $r);
}

sub m_comment
{
	my ($op) = @_;
	my $me = $op->{actor};
	fail_with('22023') if !defined $op->{comment} || $op->{comment} eq '';
	actor_ok($me);
	my $r = existing_request($op->{rid});
	fail_with('AP001') unless visible($r, $me);
	fail_with('AP002') unless is_open($r);
	push @{ $r->{decisions} }, { stage => undef, actor => $me, obo => undef, decision => 'comment', round => 1 };
	return ('void', $r);
}

sub m_submit
{
	my ($op) = @_;
	my $me = $op->{actor};
	actor_ok($me);
	my $w = $W{ $op->{wf} };
	if (defined $op->{subject})
	{
		my ($holder) = grep { $_->{wf} eq $w->{name} && defined $_->{subject} && $_->{subject} eq $op->{subject}
			  && is_open($_) } open_requests();
		if ($holder)
		{
			if ($holder->{requester} eq $me && $holder->{payload} eq $op->{payload})
			{
				tag('submit of an open subject again returns its id');
				return ($holder->{id}, undef);
			}
			refusal_tag($holder->{requester} eq $me ? 'submit refused: own open subject, other payload'
				: 'submit refused: subject held by another requester');
			fail_with('AP013');
		}
	}
	my $r = { id => undef, wf => $w->{name}, requester => $me, subject => $op->{subject},
		payload => $op->{payload}, state => 'pending', has_order => 0, cur => undef,
		stages => [], decisions => [] };
	for my $d (@{ $w->{stages} })
	{
		my @t;
		for my $t (@{ $d->{approvers} })
		{
			# no manager, or an inactive user or manager: no one could decide
			my $user = $t eq 'manager' ? $P{$me}{manager} : $t =~ /^user:(.*)$/ ? $1 : undef;
			if ($t eq 'manager' || defined $user)
			{
				refusal_tag('submit refused: an inactive approver') if defined $user && !$P{$user}{active};
				fail_with('AP011') unless defined $user && $P{$user}{active};
				push @t, "user:$user";
			}
			else
			{
				push @t, $t;
			}
		}
		push @{ $r->{stages} }, { name => $d->{name}, order => $d->{order}, def => $d, state => 'waiting',
			targets => [ uniq(@t) ], required => ($d->{min} eq 'all' ? 0 : $d->{min}),
			approvals => 0, rejections => 0, reject_required => $d->{reject_quorum} // 1, round => 1 };
	}
	advance($r);
	return ('new', $r);
}

sub m_delegate
{
	my ($op) = @_;
	my $me = $op->{actor};
	actor_ok($me);
	fail_with('22023') if $op->{delegate} eq $me;
	fail_with('AP011') unless $P{ $op->{delegate} } && $P{ $op->{delegate} }{active};
	fail_with('AP008') if defined $op->{scope} && !$W{ $op->{scope} };
	fail_with('22023') if $op->{window} eq 'backwards';
	return ('newdelegation', undef);
}

sub m_revoke
{
	my ($op) = @_;
	my $me = $op->{actor};
	actor_ok($me);
	my ($d) = grep { $_->{id} == $op->{did} } @D;
	# a delegation is seen by its delegator, its delegate and admins (DESIGN §8):
	# to anyone else it does not exist
	fail_with('42704') unless $d && ($d->{delegator} eq $me || $d->{delegate} eq $me || $P{$me}{admin});
	fail_with('42501') unless $d->{delegator} eq $me || $P{$me}{admin};
	return ('void', undef);
}

# ---------------------------------------------------------------------------
# Random operations, biased towards people who can act
# ---------------------------------------------------------------------------
my @subjects = map { "app:$_" } 1 .. 4;
my @history;    # successful decisions, to repeat
my $unknown = 'zed';    # a name that is no principal

sub random_payload
{
	my $amount = chance(0.1) ? undef : pick(0, 50, 150, 500);
	my $note = chance(0.3) ? pick('v1', 'v2', 'v3') : undef;
	my @kv;
	push @kv, qq("note": "$note") if defined $note;    # jsonb's own key order: shorter first
	push @kv, qq("amount": $amount) if defined $amount;
	return '{' . join(', ', @kv) . '}';
}

sub anyone { return chance(0.05) ? $unknown : pick(@people); }
sub active_person { return pick(grep { $P{$_}{active} } @people); }

# people with a capacity at an active stage of the request
sub can_act
{
	my ($r) = @_;
	my @active = grep { $_->{state} eq 'active' } @{ $r->{stages} };
	return grep {
		my $p = $_;
		$P{$p}{active} && grep { my $c = $_; grep { overlap($c->{targets}, $_->{targets}) } @active } caps($p, $r->{wf})
	} @people;
}

# does the person have two capacities at one active stage of the request?
sub several_capacities
{
	my ($r, $p) = @_;
	my @caps = caps($p, $r->{wf});
	return 0 if @caps < 2;
	for my $s (grep { $_->{state} eq 'active' } @{ $r->{stages} })
	{
		return 1 if 1 < grep { overlap($_->{targets}, $s->{targets}) } @caps;
	}
	return 0;
}

sub pick_request
{
	my ($want) = @_;
	return undef unless @rids;
	my @pref = map { $_->{id} } grep { $want->($_) } open_requests();
	return chance(0.03) ? 999999 : (@pref && chance(0.8)) ? pick(@pref) : pick(@rids);
}

sub gen_op
{
	my $nopen = keys %open;
	my $kind = wpick(
		submit => ($nopen > 40 ? 4 : $nopen < 8 ? 30 : 13),
		approve => 30, reject => 8, request_changes => 6, resubmit => 7, cancel => 5,
		comment => 5, delegate => 5, revoke => 2, toggle => 1.5, membership => 1.5, retry => 7);
	$kind = 'submit' unless %R;
	$kind = 'approve' if $kind eq 'retry' && !@history;
	$kind = 'delegate' if $kind eq 'revoke' && !@D;

	if ($kind eq 'retry')
	{
		my %op = %{ pick(@history) };
		$op{retry} = 1;
		return \%op;
	}
	if ($kind eq 'submit')
	{
		my %op = (kind => 'submit', wf => pick(grep { $_ ne 'wz' || chance(0.3) } @wfnames),
			actor => chance(0.9) ? active_person() : anyone(), payload => random_payload(), subject => undef);
		if (chance(0.55))
		{
			my @held = grep { defined $_->{subject} } open_requests();
			if (@held && chance(0.6))
			{
				my $h = pick(@held);
				$op{wf} = $h->{wf};
				$op{subject} = $h->{subject};
				my $how = wpick(same => 4, other_payload => 3, other_person => 3);
				$op{actor} = $h->{requester} unless $how eq 'other_person';
				$op{payload} = $h->{payload} unless $how eq 'other_payload' && chance(0.9);
			}
			else
			{
				$op{subject} = pick(@subjects);
			}
		}
		return \%op;
	}
	if ($kind eq 'delegate')
	{
		my $from = chance(0.9) ? active_person() : anyone();
		# often someone of the same group, so that both can act at one stage
		my @peers = grep { my $p = $_; $p ne $from && $P{$from} && overlap(targets_of($from), targets_of($p)) } @people;
		my $to = chance(0.08) ? $from : (@peers && chance(0.5)) ? pick(@peers) : anyone();
		return { kind => 'delegate', actor => $from, delegate => $to,
			window => wpick(open => 5, bounded => 3, future => 2, expired => 1, backwards => 1),
			scope => chance(0.4) ? (chance(0.05) ? 'nosuch' : pick(@wfnames)) : undef };
	}
	if ($kind eq 'revoke')
	{
		my $d = pick(@D);
		return { kind => 'revoke', did => chance(0.05) ? 999999 : $d->{id},
			actor => wpick($d->{delegator} => 7, $d->{delegate} => 1, adm => 1, anyone() => 2) };
	}
	if ($kind eq 'toggle')
	{
		my @inactive = grep { !$P{$_}{active} } @people;
		my $p = @inactive >= 3 ? pick(@inactive) : pick(grep { $_ ne 'adm' } @people);
		return { kind => 'toggle', person => $p, active => $P{$p}{active} ? 0 : 1 };
	}
	if ($kind eq 'membership')
	{
		my ($g, $p) = (pick(@groups), pick(@people));
		my @open = open_requests();
		my $how = wpick(random => 2, all => 1, voter => 1);
		if ($how eq 'all')
		{
			# someone joins or leaves the group of an "all" stage under way
			my @g = map { /^group:(.*)$/ ? $1 : () } map { @{ $_->{targets} } }
			  grep { $_->{state} eq 'active' && $_->{def}{min} eq 'all' } map { @{ $_->{stages} } } @open;
			$g = pick(@g) if @g;
		}
		elsif ($how eq 'voter')
		{
			# someone who acted on a request leaves a group that made them see it
			my @pairs;
			for my $r (@open)
			{
				my %t = map { $_ => 1 } map { @{ $_->{targets} } } @{ $r->{stages} };
				for my $d (@{ $r->{decisions} })
				{
					push @pairs, map { [ $_, $d->{actor} ] }
					  grep { $t{"group:$_"} && grep { $_ eq $d->{actor} } @{ $G{$_} } } @groups;
				}
			}
			($g, $p) = @{ pick(@pairs) } if @pairs;
		}
		return { kind => 'membership', group => $g, person => $p,
			add => (grep { $_ eq $p } @{ $G{$g} }) ? 0 : 1 };
	}

	# operations on a request
	my $rid;
	if ($kind eq 'resubmit')
	{
		$rid = pick_request(sub { $_[0]{state} eq 'changes_requested' });
	}
	elsif ($kind eq 'reject' && chance(0.5))
	{
		# where a reject quorum is under way
		$rid = pick_request(sub {
				$_[0]{state} eq 'pending'
				  && grep { $_->{state} eq 'active' && $_->{reject_required} > 1 } @{ $_[0]{stages} } });
	}
	else
	{
		$rid = pick_request(\&is_open);
	}
	my $r = $R{$rid};
	my $actor;
	if ($kind eq 'resubmit' || $kind eq 'cancel')
	{
		$actor = ($r && chance(0.75)) ? $r->{requester} : $kind eq 'cancel' && chance(0.3) ? 'adm' : anyone();
	}
	else
	{
		my @can = $r ? can_act($r) : ();
		my @several = $r ? grep { several_capacities($r, $_) } @can : ();
		$actor = (@several && chance(0.3)) ? pick(@several)
		  : (@can && chance(0.8)) ? pick(@can)
		  : ($r && chance(0.1)) ? $r->{requester}
		  : anyone();
	}
	my %op = (kind => $kind, rid => $rid, actor => $actor);
	my $valid_actor = $P{$actor} && $P{$actor}{active} && $R{$rid};
	if ($kind eq 'approve')
	{
		$op{comment} = pick(undef, 'fine');
	}
	elsif ($kind eq 'reject')
	{
		$op{reason} = pick(undef, 'over_budget');
		$op{comment} = pick(undef, 'no');
	}
	elsif ($kind eq 'request_changes' || $kind eq 'comment')
	{
		# (an empty comment only from a valid actor on a request that exists,
		# where the contract says which check comes first)
		$op{comment} = ($valid_actor && chance(0.08)) ? pick('', undef) : 'please look';
	}
	elsif ($kind eq 'resubmit')
	{
		$op{payload} = chance(0.5) ? random_payload() : undef;
	}
	return \%op;
}

sub op_text
{
	my ($op) = @_;
	my $k = $op->{kind};
	my $t = ($op->{retry} ? 'again: ' : '') . "$k";
	$t .= " #$op->{rid}" if defined $op->{rid};
	$t .= " $op->{wf}" if $k eq 'submit';
	$t .= " subject $op->{subject}" if defined $op->{subject};
	$t .= " payload $op->{payload}" if defined $op->{payload};
	$t .= " comment " . (defined $op->{comment} ? "'$op->{comment}'" : 'NULL')
	  if $k eq 'request_changes' || $k eq 'comment';
	$t .= " to $op->{delegate} ($op->{window}, " . ($op->{scope} // 'all workflows') . ')' if $k eq 'delegate';
	$t .= " delegation $op->{did}" if $k eq 'revoke';
	$t .= " $op->{person} active=$op->{active}" if $k eq 'toggle';
	$t .= ($op->{add} ? ' add ' : ' remove ') . "$op->{person} to group $op->{group}" if $k eq 'membership';
	$t .= " by $op->{actor}" if defined $op->{actor};
	return $t;
}

my %window_sql = (
	open => 'now(), NULL',
	bounded => "now() - interval '1 day', now() + interval '1 day'",
	future => "now() + interval '1 day', NULL",
	expired => "now() - interval '2 days', now() - interval '1 day'",
	backwards => "now(), now() - interval '1 hour'",
);

# the SQL of an operation: (statement, arguments)
sub op_sql
{
	my ($op) = @_;
	my $k = $op->{kind};
	return ('SELECT approval.submit($1, $2::jsonb, $3, $4)', $op->{wf}, $op->{payload}, 'title', $op->{subject})
	  if $k eq 'submit';
	return ('SELECT approval.approve($1, $2)', $op->{rid}, $op->{comment}) if $k eq 'approve';
	return ('SELECT approval.reject($1, $2, $3)', $op->{rid}, $op->{reason}, $op->{comment}) if $k eq 'reject';
	return ('SELECT approval.request_changes($1, $2)', $op->{rid}, $op->{comment}) if $k eq 'request_changes';
	return ('SELECT approval.resubmit($1, $2::jsonb, NULL)', $op->{rid}, $op->{payload}) if $k eq 'resubmit';
	return ('SELECT approval.cancel($1, NULL)', $op->{rid}) if $k eq 'cancel';
	return ('SELECT approval.comment($1, $2)', $op->{rid}, $op->{comment}) if $k eq 'comment';
	return ("SELECT approval.delegate(\$1, $window_sql{$op->{window}}, \$2)", $op->{delegate}, $op->{scope})
	  if $k eq 'delegate';
	return ('SELECT approval.revoke_delegation($1)', $op->{did}) if $k eq 'revoke';
	die "no SQL for $k";
}

sub script_line
{
	my ($op, $sql, @args) = @_;
	$sql =~ s/\$(\d+)/sql_literal($args[$1 - 1])/ge;
	return "BEGIN; SELECT set_config('approval.actor', " . sql_literal($op->{actor}) . ", true); $sql; COMMIT;\n";
}

# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------
my %outcome;    # "kind SQLSTATE" / "kind ok" => count
my $divergence;
my $agreed = 0;
my $started = time();

sub diverge
{
	my ($i, $op, $what, $model, $db) = @_;
	$divergence = "seed $seed, operation $i of $nops: " . op_text($op) . "\n$what\n"
	  . "--- model:\n$model\n--- database:\n$db\n";
}

sub check_count
{
	my ($i, $op) = @_;
	$db_count_sth->execute;
	my ($n) = $db_count_sth->fetchrow_array;
	$db_count_sth->finish;
	return diverge($i, $op, 'the number of requests differs', scalar(keys %R), $n) if $n != keys %R;
	return;
}

sub check_delegations
{
	my ($i, $op) = @_;
	$db_delegations_sth->execute;
	my ($dd) = $db_delegations_sth->fetchrow_array;
	$db_delegations_sth->finish;
	my $md = m_delegations();
	return diverge($i, $op, 'the delegations differ', $md, $dd) if $md ne $dd;
	return;
}

my $full_checks = 0;

# every request: first a digest of all views, computed by the server; the
# views one by one only when the digests differ
sub full_check
{
	my ($i, $op) = @_;
	$db_digest_sth->execute;
	my ($digest) = $db_digest_sth->fetchrow_array;
	$db_digest_sth->finish;
	if ($digest eq md5_hex(join("\n", map { $mview{$_} } @rids)))
	{
		$full_checks++;
		check_delegations($i, $op);
		return;
	}
	my %db = map { $_->[0] => $_->[1] } @{ $su->selectall_arrayref($db_all_views_sth) };
	for my $id (uniq(@rids, sort { $a <=> $b } keys %db))
	{
		my ($m, $d) = ($R{$id} ? m_view($R{$id}) : "(no request $id)", $db{$id} // "(no request $id)");
		return diverge($i, $op, "request $id differs (comparison of all requests)", $m, $d) if $m ne $d;
	}
	check_delegations($i, $op);
	return;
}

for my $i (1 .. $nops)
{
	my $op = gen_op();
	my $k = $op->{kind};

	# reference data, written by an admin with plain SQL
	if ($k eq 'toggle' || $k eq 'membership')
	{
		my $sql;
		if ($k eq 'toggle')
		{
			$sql = 'UPDATE approval.principal SET active = ' . ($op->{active} ? 'true' : 'false')
			  . ' WHERE id = ' . sql_literal($op->{person});
			$P{ $op->{person} }{active} = $op->{active};
		}
		elsif ($op->{add})
		{
			$sql = 'INSERT INTO approval.group_member (group_name, principal_id) VALUES ('
			  . sql_literal($op->{group}) . ', ' . sql_literal($op->{person}) . ')';
			$G{ $op->{group} } = [ sort(@{ $G{ $op->{group} } }, $op->{person}) ];
		}
		else
		{
			$sql = 'DELETE FROM approval.group_member WHERE group_name = ' . sql_literal($op->{group})
			  . ' AND principal_id = ' . sql_literal($op->{person});
			$G{ $op->{group} } = [ grep { $_ ne $op->{person} } @{ $G{ $op->{group} } } ];
		}
		$su->do($sql);
		%caps_cache = ();
		push @script, "-- $i: " . op_text($op) . "\nRESET ROLE; $sql; SET ROLE model_gw;\n";
		diag("$i: " . op_text($op)) if $trace;
		$outcome{"$k ok"}++;
		$agreed++;
		next;
	}

	# the model
	my ($mval, $mreq, $mcode);
	@op_tags = ();
	{
		my @res = eval {
			  $k eq 'submit' ? m_submit($op)
			: $k eq 'resubmit' ? m_resubmit($op)
			: $k eq 'cancel' ? m_cancel($op)
			: $k eq 'comment' ? m_comment($op)
			: $k eq 'delegate' ? m_delegate($op)
			: $k eq 'revoke' ? m_revoke($op)
			: m_vote($op);
		};
		if (!@res)
		{
			die $@ unless ref $@ eq 'HASH';
			$mcode = $@->{code};
		}
		else
		{
			($mval, $mreq) = @res;
		}
	}

	# the database
	my ($sql, @args) = op_sql($op);
	push @script, "-- $i: " . op_text($op) . "\n" . script_line($op, $sql, @args);
	my $res = db_call($op->{actor}, $sql, @args);

	my $mtext = defined $mcode ? "error $mcode" : "ok $mval";
	my $dtext = $res->[0] eq 'ok' ? "ok $res->[1]" : "error $res->[1] ($res->[2])";
	diag("$i: " . op_text($op) . " => model $mtext, database $dtext") if $trace;
	$outcome{ "$k " . ($res->[0] eq 'ok' ? 'ok' : $res->[1]) }++;

	# compare the outcomes
	my $same;
	if (defined $mcode)
	{
		$same = $res->[0] eq 'err' && $res->[1] eq $mcode;
	}
	elsif ($res->[0] ne 'ok')
	{
		$same = 0;
	}
	elsif ($mval eq 'new' || $mval eq 'newdelegation')
	{
		my $id = $res->[1];
		$same = $id =~ /^\d+$/
		  && ($mval eq 'new' ? !$R{$id} : !grep { $_->{id} == $id } @D);
		$mtext = 'ok (a new id)';
		if ($same && $mval eq 'new')
		{
			$mreq->{id} = $id;
		}
		elsif ($same)
		{
			push @D, { id => $id, delegator => $op->{actor}, delegate => $op->{delegate}, scope => $op->{scope},
				window => ($op->{window} eq 'future' ? 'future' : $op->{window} eq 'expired' ? 'expired' : 'active'),
				revoked => 0 };
		}
	}
	else
	{
		$same = $res->[1] eq $mval;
	}
	my $rid = $k eq 'submit' ? ($mreq ? $mreq->{id} : $res->[0] eq 'ok' ? $res->[1] : undef) : $op->{rid};
	if (!$same)
	{
		diverge($i, $op, "outcome: model $mtext, database $dtext",
			defined $rid && $R{$rid} ? m_view($R{$rid}) : '(no request)',
			defined $rid ? db_view($rid) : '(no request)');
		last;
	}

	# keep the model's change
	if (!defined $mcode)
	{
		$tag{$_}++ for @op_tags;
	}
	if ($mreq)
	{
		push @rids, $mreq->{id} unless $R{ $mreq->{id} };
		$R{ $mreq->{id} } = $mreq;
		$mview{ $mreq->{id} } = m_view($mreq);
		if (is_open($mreq)) { $open{ $mreq->{id} } = 1; } else { delete $open{ $mreq->{id} }; }
	}
	%caps_cache = () if ($k eq 'delegate' || $k eq 'revoke') && !defined $mcode;
	if ($k eq 'revoke' && !defined $mcode)
	{
		$_->{revoked} = 1 for grep { $_->{id} == $op->{did} } @D;
	}
	if (!defined $mcode && $k =~ /^(approve|reject|request_changes)$/ && !$op->{retry})
	{
		push @history, { %$op };
		shift @history if @history > 40;
	}

	# compare the request
	if (defined $rid && ($R{$rid} || $k ne 'submit'))
	{
		my ($m, $d) = ($R{$rid} ? m_view($R{$rid}) : "(no request $rid)", db_view($rid));
		if ($m ne $d)
		{
			diverge($i, $op, "outcome: both $dtext; request $rid differs", $m, $d);
			last;
		}
	}
	check_count($i, $op) if $k eq 'submit';
	check_delegations($i, $op) if $k eq 'delegate' || $k eq 'revoke';
	full_check($i, $op) if !$divergence && $i % 250 == 0;
	last if $divergence;
	$agreed++;
}

full_check($nops, { kind => 'final comparison' }) unless $divergence;
my $elapsed = time() - $started;
if ($divergence)
{
	my $file = "$PostgreSQL::Test::Utils::tmp_check/010_model_seed$seed.sql";
	if (open my $fh, '>', $file)
	{
		print $fh @script;
		close $fh;
		$divergence .= "SQL replaying the run up to this operation: $file\n"
		  . "(psql -f it on a fresh database with approval in shared_preload_libraries; "
		  . "tools/run-tests.sh --keep keeps it)\n";
	}
}
ok(!$divergence, "$agreed of $nops random operations agreed with the model (seed $seed, ${elapsed}s)")
  or diag($divergence);

note('outcomes (operation, SQLSTATE or ok: how often):');
note(sprintf('  %-28s %6d', $_, $outcome{$_})) for sort keys %outcome;
note('rules the model went through:');
note(sprintf('  %-62s %6d', $_, $tag{$_})) for sort keys %tag;

my $nreq = keys %R;
my %final;
$final{ $_->{state} }++ for values %R;
note("comparisons of all requests (by digest): $full_checks");
note("requests: $nreq; " . join(', ', map { "$_ $final{$_}" } sort keys %final));

# After all that, every request's event chain is whole
my ($broken, $chains) = $su->selectrow_array(
	'SELECT count(*) FILTER (WHERE NOT ok), count(*) FILTER (WHERE request_id IS NOT NULL) FROM approval.verify_audit()');
is("$broken of $chains", "0 of $nreq", 'verify_audit(): no request\'s event chain is broken');

# Every rule is reached: at the default seed and size (so in CI), and with
# any seed from 20,000 operations on
SKIP:
{
	skip 'coverage is asserted at the default seed and size, or from 20000 operations on', 2
	  if $divergence || $nops < $DEFAULT_OPS || ($seed != $DEFAULT_SEED && $nops < 20000);
	my @outcomes = (
		'submit ok', 'submit AP011', 'submit AP012', 'submit AP013',
		'approve ok', 'approve AP001', 'approve AP002', 'approve AP003', 'approve AP004', 'approve AP007',
		'approve AP012',
		'reject ok', 'reject AP002', 'reject AP003', 'reject AP004', 'reject AP007',
		'request_changes ok', 'request_changes 22023', 'request_changes AP002', 'request_changes AP003',
		'request_changes AP004', 'request_changes AP007',
		'resubmit ok', 'resubmit 42501', 'resubmit 55000', 'resubmit AP002',
		'cancel ok', 'cancel 42501', 'cancel AP002',
		'comment ok', 'comment 22023', 'comment AP001', 'comment AP002',
		'delegate ok', 'delegate 22023', 'delegate AP011', 'revoke ok', 'revoke 42501', 'revoke 42704');
	my @missing = grep { !$outcome{$_} } @outcomes;
	is(join(', ', @missing), '', 'every outcome occurred at least once')
	  or diag("operations never seen with these outcomes: @missing");
	my @rules = (
		'stage approved', 'stage approved by a quorum of 2 or more', 'request approved', 'request rejected',
		'stage rejected by a quorum of 2 or more', 'stage activated with min_approvals "all"',
		'stage skipped by its condition', 'stages active in parallel', 'stage cancelled when the request closed',
		'vote cast by a delegate', 'repeated vote is a no-op',
		'retried approve returned the state (instead of AP002)',
		'retried approve returned the state (instead of AP003)',
		'retried approve returned the state (instead of AP007)',
		'retried reject returned the state (instead of AP002)',
		'retried request_changes returned the state (instead of AP002)',
		'approve refused: self-approval', 'reject refused: self-approval', 'request_changes refused: self-approval',
		'approve refused: distinct approvers', 'approve skipped at a stage: distinct approvers',
		'submit of an open subject again returns its id', 'submit refused: own open subject, other payload',
		'submit refused: subject held by another requester',
		'resubmit restarts the whole workflow', 'resubmit restarts the active stages', 'cancelled by an admin',
		'capacity: the first is taken, the next one votes', 'submit refused: an inactive approver',
		'request_changes after a vote at the stage', 'resubmit: "all" counts other people now');
	my @unreached = grep { !$tag{$_} } @rules;
	is(join(', ', @unreached), '', 'every rule was reached at least once')
	  or diag("rules never reached: " . join('; ', @unreached));
}

$su->disconnect;
$gw->disconnect;
$node->stop;
done_testing();
