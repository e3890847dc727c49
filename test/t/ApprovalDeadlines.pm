# Deadlines for the TAP tests of who calls approval.tick() (011_worker,
# 012_pg_cron): a database with the extension and two workflows whose
# requests expire one second after they are submitted, and the queries that
# say whether a request has expired.
#
#   install($node, $db, [$have]) CREATE EXTENSION approval (unless $have:
#                                it is installed), a principal, the
#                                workflows "short" and "fragile"
#   deadline($node, $db, [$wf])  submit a request of $wf (default "short"),
#                                which expires in a second; returns its id
#   fired_sql($id)               SQL that is true once request $id has
#                                expired (its deadline fired)
#   fired($node, $db, $id)       that, now
#
# "fragile" calls public.on_expired_fragile(bigint) when a request expires;
# it raises while public.fragile.broken is true (set_broken($node, $db, $on)),
# so that the firing fails and the tick records it and backs off.
package ApprovalDeadlines;

use strict;
use warnings;

use Exporter 'import';

our @EXPORT_OK = qw(install uninstall deadline fired_sql fired set_broken);

sub install
{
	my ($node, $db, $have) = @_;
	$node->safe_psql($db,
		'BEGIN;' . ($have ? '' : ' CREATE EXTENSION approval;') . q{
		INSERT INTO approval.principal (id, display_name) VALUES ('erin', 'Erin');
		CREATE TABLE public.fragile (broken boolean NOT NULL);
		INSERT INTO public.fragile VALUES (false);
		CREATE FUNCTION public.on_expired_fragile(request bigint) RETURNS void
		    LANGUAGE plpgsql AS $$
		BEGIN
		    IF (SELECT broken FROM public.fragile) THEN
		        RAISE EXCEPTION 'on_expired_fragile is broken (request %)', request;
		    END IF;
		END $$;
		SELECT approval.define_workflow('{"name": "short", "expires_after": "1 second",
		    "stages": [{"name": "s", "approvers": ["user:erin"]}]}');
		SELECT approval.define_workflow('{"name": "fragile", "expires_after": "1 second",
		    "on_expired": "public.on_expired_fragile",
		    "stages": [{"name": "s", "approvers": ["user:erin"]}]}');
		COMMIT;
	});
	return;
}

sub uninstall
{
	my ($node, $db) = @_;
	$node->safe_psql($db,
		'BEGIN; DROP EXTENSION approval; DROP FUNCTION public.on_expired_fragile(bigint); '
		  . 'DROP TABLE public.fragile; COMMIT;');
	return;
}

sub deadline
{
	my ($node, $db, $workflow) = @_;
	$workflow //= 'short';
	return $node->safe_psql($db, "SELECT approval.submit('$workflow', '{}', 'expires in a second')");
}

sub fired_sql
{
	my ($id) = @_;
	return "SELECT state = 'expired' FROM approval.request WHERE id = $id";
}

sub fired
{
	my ($node, $db, $id) = @_;
	return $node->safe_psql($db, fired_sql($id)) eq 't';
}

sub set_broken
{
	my ($node, $db, $on) = @_;
	$node->safe_psql($db, 'UPDATE public.fragile SET broken = ' . ($on ? 'true' : 'false'));
	return;
}

1;
