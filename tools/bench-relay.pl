#!/usr/bin/env perl
# The delay from a decision's commit to the delivery of its notification,
# for tools/bench.sh (doc/performance.md, "Notifications").
#
#   bench-relay.pl DSN_LISTENER DSN_WRITER SAMPLES
#
# A listener LISTENs on "approval"; a writer submits one request at a time
# in autocommit (approval.notify is whatever the writer's role has: bench.sh
# sets commit or relay), and the delay of each sample is from the moment the
# submit returned (its commit done) to the moment the listener received the
# first notification of that request.  Between samples it waits 5-25 ms.
# Other notifications (of a load running meanwhile) are read and skipped.
# Prints one line: "median_ms p99_ms max_ms samples".
use strict;
use warnings;

use DBI;
use IO::Select;
use Time::HiRes qw(time sleep);

my ($dsn_l, $dsn_w, $samples) = @ARGV;
die "usage: $0 DSN_LISTENER DSN_WRITER SAMPLES\n" unless $samples;

my %opts = (AutoCommit => 1, RaiseError => 1, PrintError => 0);
my $l = DBI->connect($dsn_l, undef, undef, \%opts) or die $DBI::errstr;
my $w = DBI->connect($dsn_w, undef, undef, \%opts) or die $DBI::errstr;
$l->do('LISTEN approval');
my $sel = IO::Select->new($l->{pg_socket});
my $submit = $w->prepare(q{SELECT approval.submit('bench', jsonb_build_object('amount', 1), 'latency')});

my @delays;
for my $i (1 .. $samples)
{
	$submit->execute;
	my ($id) = $submit->fetchrow_array;
	my $t0 = time;
	my $t1;
	while (!defined $t1)
	{
		die "no notification of request $id within 30 s\n" if time - $t0 > 30;
		$sel->can_read(1);
		while (my $n = $l->pg_notifies)
		{
			if (!defined $t1 && $n->[2] =~ /"request":$id[,}]/)
			{
				$t1 = time;
			}
		}
	}
	push @delays, ($t1 - $t0) * 1000;
	sleep(0.005 + rand(0.02));
}

my @s = sort { $a <=> $b } @delays;
my $median = @s % 2 ? $s[$#s / 2] : ($s[@s / 2 - 1] + $s[@s / 2]) / 2;
my $p99 = $s[int(0.99 * (@s - 1) + 0.5)];
printf "%.2f %.2f %.2f %d\n", $median, $p99, $s[-1], scalar @s;
