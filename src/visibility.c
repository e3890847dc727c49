/*-------------------------------------------------------------------------
 *
 * visibility.c
 *	  Who may see a request (DESIGN §8): the one home of that rule.
 *
 * A request is visible to its requester; to whoever voted or commented on
 * it, or for whom a delegate did; to whoever's current target sets overlap
 * the targets of any of its stages, in any state (a delegation limited to
 * one workflow counts for that workflow's requests only); to approval_admin;
 * and to a gateway not acting for anyone.  Row-level security calls
 * approval.can_see() for each row; the engine asks the same question with
 * approval_request_visible() before it answers for a request, so that a
 * hidden request is AP001 everywhere and RLS and the functions never
 * disagree.
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

static ApprovalPlan can_see_plan = {
	"SELECT r.requester OPERATOR(pg_catalog.=) $2"
	"    OR EXISTS (SELECT 1 FROM approval.request_stage s"
	"                WHERE s.request_id OPERATOR(pg_catalog.=) r.id"
	"                  AND s.targets OPERATOR(pg_catalog.&&) $3)"
	"    OR EXISTS (SELECT 1 FROM approval.decision d"
	"                WHERE d.request_id OPERATOR(pg_catalog.=) r.id"
	"                  AND (d.actor OPERATOR(pg_catalog.=) $2"
	"                       OR d.on_behalf_of OPERATOR(pg_catalog.=) $2))"
	"  FROM approval.request r WHERE r.id OPERATOR(pg_catalog.=) $1",
	3, {INT8OID, TEXTOID, TEXTARRAYOID}
};

/* a request of this workflow with a stage these targets answer for */
static ApprovalPlan can_see_scoped_plan = {
	"SELECT EXISTS (SELECT 1 FROM approval.request r"
	"                 JOIN approval.request_stage s ON s.request_id OPERATOR(pg_catalog.=) r.id"
	"                WHERE r.id OPERATOR(pg_catalog.=) $1 AND r.workflow OPERATOR(pg_catalog.=) $2"
	"                  AND s.targets OPERATOR(pg_catalog.&&) $3)",
	3, {INT8OID, TEXTOID, TEXTARRAYOID}
};

/* who is asking, as statement parameters */
typedef struct Viewer
{
	bool		sees_all;
	Datum		actor;			/* text */
	Datum		targets;		/* text[]: the capacities for every workflow */
	int			nscoped;		/* delegations limited to one workflow */
	Datum	   *scoped_workflow;	/* text */
	Datum	   *scoped_targets; /* text[] */
} Viewer;

static Viewer *
viewer_make(const ApprovalActor *actor, List *sets)
{
	Viewer	   *v = palloc0(sizeof(Viewer));
	ListCell   *lc;

	v->sees_all = actor->sees_all;
	v->actor = CStringGetTextDatum(actor->id);
	v->targets = PointerGetDatum(approval_flatten_targets(sets));
	v->scoped_workflow = palloc(sizeof(Datum) * Max(list_length(sets), 1));
	v->scoped_targets = palloc(sizeof(Datum) * Max(list_length(sets), 1));
	foreach(lc, sets)
	{
		ApprovalTargetSet *set = lfirst(lc);

		if (set->scope == NULL)
			continue;
		v->scoped_workflow[v->nscoped] = CStringGetTextDatum(set->scope);
		v->scoped_targets[v->nscoped] = PointerGetDatum(approval_text_array(set->targets));
		v->nscoped++;
	}
	return v;
}

/*
 * read_only: reuse the caller's snapshot (a STABLE function reading rows for
 * RLS); the engine passes false to read what its row lock protects.
 */
static bool
viewer_sees(Viewer *v, Datum request_id, bool read_only)
{
	Datum		args[3];
	bool		result = false;

	if (v->sees_all)
		return true;
	args[0] = request_id;
	args[1] = v->actor;
	args[2] = v->targets;
	if (approval_exec(&can_see_plan, args, NULL, read_only, 1) == 1)
		result = approval_getbool(0, 1);
	for (int i = 0; i < v->nscoped && !result; i++)
	{
		args[1] = v->scoped_workflow[i];
		args[2] = v->scoped_targets[i];
		approval_exec(&can_see_scoped_plan, args, NULL, read_only, 1);
		result = approval_getbool(0, 1);
	}
	return result;
}

/*
 * May this actor, with these capacities (approval_actor_target_sets), see
 * the request?  Needs SPI.
 */
bool
approval_request_visible(const ApprovalActor *actor, List *sets, int64 request_id)
{
	if (actor->sees_all)
		return true;
	return viewer_sees(viewer_make(actor, sets), Int64GetDatum(request_id), false);
}

/* AP001, the same for a request that does not exist and one that is hidden */
void
approval_not_found(int64 request_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_AP_REQUEST_NOT_FOUND),
			 errmsg("request %lld not found", (long long) request_id),
			 errhint("approval.my_requests and approval.my_pending list the requests you can see.")));
}

/*
 * can_see(request) → boolean, for the row-level security policies.  Who is
 * asking is worked out once per query and kept in fn_extra.
 */
PG_FUNCTION_INFO_V1(approval_can_see);
Datum
approval_can_see(PG_FUNCTION_ARGS)
{
	Viewer	   *v;
	bool		result;

	approval_spi_connect();
	v = (Viewer *) fcinfo->flinfo->fn_extra;
	if (v == NULL)
	{
		ApprovalActor actor;
		List	   *sets;
		MemoryContext old;

		approval_get_actor(&actor);
		sets = approval_actor_target_sets(&actor, NULL);
		old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		v = viewer_make(&actor, sets);
		MemoryContextSwitchTo(old);
		fcinfo->flinfo->fn_extra = v;
	}
	result = viewer_sees(v, PG_GETARG_DATUM(0), true);
	approval_spi_finish();
	PG_RETURN_BOOL(result);
}
