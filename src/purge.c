/*-------------------------------------------------------------------------
 *
 * purge.c
 *	  Retention: approval.purge() removes closed requests and leaves a
 *	  tombstone for each.
 *
 * The event log is append-only: its guard trigger (event.c) refuses every
 * UPDATE, DELETE and TRUNCATE, except the DELETE of the events of the
 * requests purge() is removing, while it runs (a list of this backend's
 * that no SQL can set).  Each purged
 * request leaves one row in approval.purged: its id, workflow, final
 * state, decided_at and last hash, who purged it and when, and the seq and
 * hash of each of its events, so that the checkpoints over the whole log
 * (checkpoint.c) still verify and a purge is told from a deletion.
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"

/* while purge() deletes: the ids of the requests it purges, sorted */
static int64 *purging = NULL;
static int	npurging = 0;

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/* Whether purge() is removing the events of this request now */
bool
approval_purge_allows(int64 request_id)
{
	return purging != NULL &&
		bsearch(&request_id, purging, npurging, sizeof(int64), cmp_int64) != NULL;
}

/*
 * The closed requests decided before $1 (of workflow $2 if not NULL), locked,
 * into tombstones; returns their ids.
 */
static ApprovalPlan tombstones_plan = {
	"WITH doomed AS ("
	"  SELECT r.id, r.workflow, r.state, r.decided_at, r.last_hash FROM approval.request r"
	"   WHERE r.state OPERATOR(pg_catalog.=) ANY ('{approved,rejected,cancelled,expired}'::approval.request_state[])"
	"     AND r.decided_at OPERATOR(pg_catalog.<) $1"
	"     AND ($2::pg_catalog.text IS NULL OR r.workflow OPERATOR(pg_catalog.=) $2)"
	"   FOR UPDATE OF r)"
	" INSERT INTO approval.purged (request_id, workflow, state, decided_at, last_hash,"
	"   first_seq, last_seq, event_seqs, event_hashes, purged_at, purged_by)"
	" SELECT d.id, d.workflow, d.state, d.decided_at, d.last_hash,"
	"   pg_catalog.min(e.seq), pg_catalog.max(e.seq),"
	"   COALESCE(pg_catalog.array_agg(e.seq ORDER BY e.seq) FILTER (WHERE e.seq IS NOT NULL), '{}'),"
	"   COALESCE(pg_catalog.array_agg(e.hash ORDER BY e.seq) FILTER (WHERE e.seq IS NOT NULL), '{}'),"
	"   pg_catalog.now(), $3"
	"  FROM doomed d LEFT JOIN approval.event e ON e.request_id OPERATOR(pg_catalog.=) d.id"
	" GROUP BY d.id, d.workflow, d.state, d.decided_at, d.last_hash"
	" RETURNING request_id",
	3, {TIMESTAMPTZOID, TEXTOID, TEXTOID}
};

/* then everything of theirs, children first */
static ApprovalPlan delete_plans[] = {
	{"DELETE FROM approval.token WHERE request_id OPERATOR(pg_catalog.=) ANY ($1)", 1, {INT8ARRAYOID}},
	{"DELETE FROM approval.held_change WHERE request_id OPERATOR(pg_catalog.=) ANY ($1)", 1, {INT8ARRAYOID}},
	{"DELETE FROM approval.event WHERE request_id OPERATOR(pg_catalog.=) ANY ($1)", 1, {INT8ARRAYOID}},
	{"DELETE FROM approval.decision WHERE request_id OPERATOR(pg_catalog.=) ANY ($1)", 1, {INT8ARRAYOID}},
	{"DELETE FROM approval.pending_vote WHERE request_id OPERATOR(pg_catalog.=) ANY ($1)", 1, {INT8ARRAYOID}},
	{"DELETE FROM approval.request_stage WHERE request_id OPERATOR(pg_catalog.=) ANY ($1)", 1, {INT8ARRAYOID}},
	{"DELETE FROM approval.request WHERE id OPERATOR(pg_catalog.=) ANY ($1)", 1, {INT8ARRAYOID}},
};

/*
 * approval.purge(before, workflow DEFAULT NULL): remove the closed requests
 * decided before "before" (of one workflow, if named) with their stages,
 * decisions, events, tokens and held changes; returns how many.
 */
PG_FUNCTION_INFO_V1(approval_purge);
Datum
approval_purge(PG_FUNCTION_ARGS)
{
	ApprovalActor actor;
	Datum		args[3];
	char		nulls[3] = {' ', ' ', ' '};
	int			n;
	Datum	   *ids;
	ArrayType  *idarr;
	int64	   *sorted;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("purge needs a time: the requests decided before it are removed"),
				 errhint("approval.purge(now() - interval '2 years')")));

	approval_spi_connect();
	approval_get_actor(&actor);
	if (!actor.is_admin)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only an approval_admin may purge requests")));

	args[0] = PG_GETARG_DATUM(0);
	args[1] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	nulls[1] = PG_ARGISNULL(1) ? 'n' : ' ';
	args[2] = CStringGetTextDatum(actor.id);
	n = approval_exec(&tombstones_plan, args, nulls, false, 0);
	if (n == 0)
	{
		approval_spi_finish();
		PG_RETURN_INT64(0);
	}
	ids = palloc(sizeof(Datum) * n);
	sorted = palloc(sizeof(int64) * n);
	for (int i = 0; i < n; i++)
	{
		bool		isnull;

		ids[i] = approval_getdatum(i, 1, &isnull);
		sorted[i] = DatumGetInt64(ids[i]);
	}
	qsort(sorted, n, sizeof(int64), cmp_int64);
	idarr = construct_array(ids, n, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
	args[0] = PointerGetDatum(idarr);

	purging = sorted;
	npurging = n;
	PG_TRY();
	{
		for (size_t i = 0; i < lengthof(delete_plans); i++)
			approval_exec(&delete_plans[i], args, NULL, false, 0);
	}
	PG_FINALLY();
	{
		purging = NULL;
		npurging = 0;
	}
	PG_END_TRY();

	approval_spi_finish();
	PG_RETURN_INT64(n);
}
