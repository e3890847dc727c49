# What the randomized tests share (test/t/010_model.pl, 013_timer_random.pl):
# the seed and the size of a run, from the environment and printed first so
# that the run can be repeated, and random choices that depend on the seed
# only.
#
#   my ($seed, $nops, $trace) = seed_and_size($prefix, $default_seed, $default_ops, $label)
#       reads ${prefix}_SEED (a number; "random": from the clock; unset or
#       empty: $default_seed), ${prefix}_OPS (a positive number; unset:
#       $default_ops) and ${prefix}_TRACE, dies on a bad value, prints the
#       seed and the size (diag), and seeds rand()
#   rint($n)                      a whole number in [0, $n)
#   pick(@list)                   one element
#   chance($p)                    true with probability $p
#   wpick($value => $weight, ...) one value, by weight
#
# (Pick from sorted lists: the order of a hash's keys differs between runs.)
package ApprovalRandom;

use strict;
use warnings;

use Exporter 'import';
use Test::More ();

our @EXPORT_OK = qw(seed_and_size rint pick chance wpick);

sub seed_and_size
{
	my ($prefix, $default_seed, $default_ops, $label) = @_;
	my $seed = $ENV{"${prefix}_SEED"};
	$seed = $default_seed if !defined $seed || $seed eq '';
	$seed = (time() ^ ($$ << 15)) % 1_000_000_000 if $seed eq 'random';
	die "${prefix}_SEED must be a number or \"random\", not \"$seed\"\n"
	  unless $seed =~ /^\d+$/;
	my $nops = $ENV{"${prefix}_OPS"};
	$nops = $default_ops if !defined $nops || $nops eq '';
	die "${prefix}_OPS must be a positive number\n" unless $nops =~ /^\d+$/ && $nops > 0;
	my $trace = $ENV{"${prefix}_TRACE"} // 0;

	Test::More::diag("$label: seed $seed, $nops operations "
		  . "(${prefix}_SEED=$seed ${prefix}_OPS=$nops reproduces this run)");
	srand($seed);
	return ($seed, $nops, $trace);
}

sub rint { return int(rand($_[0])); }
sub pick { return $_[ rint(scalar @_) ]; }
sub chance { return rand() < $_[0]; }

sub wpick
{
	my @pairs = @_;    # (value, weight, value, weight, ...)
	my $total = 0;
	for (my $i = 1; $i < @pairs; $i += 2) { $total += $pairs[$i]; }
	my $x = rand($total);
	for (my $i = 0; $i < @pairs; $i += 2)
	{
		return $pairs[$i] if ($x -= $pairs[ $i + 1 ]) < 0;
	}
	return $pairs[-2];
}

1;
