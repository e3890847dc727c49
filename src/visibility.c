/*-------------------------------------------------------------------------
 *
 * visibility.c
 *	  Who may see a request (DESIGN §8): the one home of that rule.
 *
 * A request is visible to its requester; to whoever voted or commented on
 * it, or for whom a delegate did; to whoever's current target sets overlap
 * the targets of any of its stages, in any state (a delegation limited to
 * one workflow counts for that workflow's requests only); to approval_admin;
 * and to a gateway not acting for anyone.
 *
 * The engine keeps on each request its audience: every target of every
 * stage, and "voter:<id>" for whoever voted or commented (and for whom).  A
 * viewer is who is asking, worked out once: whether they see everything,
 * their id, and the keys they answer for (their targets and their
 * "voter:<id>"), with the delegations limited to one workflow apart.
 * Deciding for a request then reads no table: approval.sees() does it for
 * each row under row-level security and in the views, can_see() for one
 * request, and the engine for the request it holds, so that a hidden
 * request is AP001 everywhere and RLS and the functions never disagree.
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include "catalog/pg_type.h"

/* who is asking */
typedef struct Viewer
{
	bool		sees_all;
	char	   *actor;
	int			nkeys;
	text	  **keys;			/* targets for every workflow, and voter:<actor> */
	List	   *scoped;			/* ApprovalTargetSet * limited to one workflow */
} Viewer;

static Viewer *
viewer_make(const ApprovalActor *actor, List *sets)
{
	Viewer	   *v = palloc0(sizeof(Viewer));
	ArrayType  *flat = approval_flatten_targets(sets);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	ListCell   *lc;

	v->sees_all = actor->sees_all;
	v->actor = pstrdup(actor->id);
	deconstruct_array(flat, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	v->keys = palloc(sizeof(text *) * (n + 1));
	for (int i = 0; i < n; i++)
		v->keys[v->nkeys++] = DatumGetTextPP(elems[i]);
	v->keys[v->nkeys++] = cstring_to_text(psprintf("voter:%s", actor->id));
	foreach(lc, sets)
	{
		ApprovalTargetSet *set = lfirst(lc);

		if (set->scope != NULL)
			v->scoped = lappend(v->scoped, set);
	}
	return v;
}

static bool
text_eq(text *a, text *b)
{
	return VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0;
}

static bool
text_is(text *a, const char *s)
{
	size_t		len = strlen(s);

	return VARSIZE_ANY_EXHDR(a) == len && memcmp(VARDATA_ANY(a), s, len) == 0;
}

/* The rule, for one request: its requester, workflow and audience */
static bool
viewer_sees(Viewer *v, text *requester, text *workflow, ArrayType *audience)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	ListCell   *lc;

	if (v->sees_all)
		return true;
	if (requester != NULL && text_is(requester, v->actor))
		return true;
	if (audience == NULL)
		return false;
	deconstruct_array(audience, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		text	   *member;

		if (nulls[i])
			continue;
		member = DatumGetTextPP(elems[i]);
		for (int k = 0; k < v->nkeys; k++)
			if (text_eq(member, v->keys[k]))
				return true;
		foreach(lc, v->scoped)
		{
			ApprovalTargetSet *set = lfirst(lc);
			ListCell   *lt;

			if (workflow == NULL || !text_is(workflow, set->scope))
				continue;
			foreach(lt, set->targets)
				if (text_is(member, lfirst(lt)))
				return true;
		}
	}
	return false;
}

/* AP001 unless the actor may see the request the engine holds */
void
request_require_visible(Req *r)
{
	ArrayType  *audience = approval_text_array(r->audience);
	Viewer	   *v;

	if (r->actor.sees_all)
		return;
	v = viewer_make(&r->actor, approval_actor_target_sets(&r->actor, NULL));
	if (!viewer_sees(v, cstring_to_text(r->requester), cstring_to_text(r->workflow), audience))
		approval_not_found(r->id);
}

static ApprovalPlan audience_plan = {
	"SELECT requester, workflow, audience FROM approval.request WHERE id OPERATOR(pg_catalog.=) $1",
	1, {INT8OID}
};

/* May the actor see another request than the one it holds?  Needs SPI. */
bool
approval_actor_sees_request(const ApprovalActor *actor, int64 request_id)
{
	Datum		arg = Int64GetDatum(request_id);
	bool		isnull;
	Viewer	   *v;

	if (actor->sees_all)
		return true;
	if (approval_exec(&audience_plan, &arg, NULL, false, 1) != 1)
		return false;
	{
		text	   *requester = DatumGetTextPP(approval_copy_datum(0, 1, &isnull));
		text	   *workflow = DatumGetTextPP(approval_copy_datum(0, 2, &isnull));
		ArrayType  *audience = DatumGetArrayTypeP(approval_copy_datum(0, 3, &isnull));

		v = viewer_make(actor, approval_actor_target_sets(actor, NULL));
		return viewer_sees(v, requester, workflow, audience);
	}
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

/* Who is asking, worked out once per query and kept in fn_extra */
static Viewer *
query_viewer(FunctionCallInfo fcinfo)
{
	Viewer	   *v = (Viewer *) fcinfo->flinfo->fn_extra;

	if (v == NULL)
	{
		ApprovalActor actor;
		List	   *sets;
		MemoryContext old;

		approval_spi_connect();
		approval_get_actor(&actor);
		sets = approval_actor_target_sets(&actor, NULL);
		old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		v = viewer_make(&actor, sets);
		/* the scoped sets may live in the actor cache: copy them */
		{
			List	   *copy = NIL;
			ListCell   *lc;

			foreach(lc, v->scoped)
			{
				ApprovalTargetSet *src = lfirst(lc);
				ApprovalTargetSet *dst = palloc0(sizeof(ApprovalTargetSet));
				ListCell   *lt;

				dst->principal = pstrdup(src->principal);
				dst->scope = pstrdup(src->scope);
				foreach(lt, src->targets)
					dst->targets = lappend(dst->targets, pstrdup(lfirst(lt)));
				copy = lappend(copy, dst);
			}
			v->scoped = copy;
		}
		MemoryContextSwitchTo(old);
		approval_spi_finish();
		fcinfo->flinfo->fn_extra = v;
	}
	return v;
}

/*
 * sees(requester text, workflow text, audience text[]) → boolean: the row
 * level security policy of approval.request, and the views' filter.
 */
PG_FUNCTION_INFO_V1(approval_sees);
Datum
approval_sees(PG_FUNCTION_ARGS)
{
	Viewer	   *v = query_viewer(fcinfo);

	PG_RETURN_BOOL(viewer_sees(v,
							   PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
							   PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1),
							   PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2)));
}

/* can_see(request) → boolean: the same rule for one request by id */
PG_FUNCTION_INFO_V1(approval_can_see);
Datum
approval_can_see(PG_FUNCTION_ARGS)
{
	Viewer	   *v = query_viewer(fcinfo);
	Datum		arg = PG_GETARG_DATUM(0);
	bool		result = false;

	approval_spi_connect();
	if (approval_exec(&audience_plan, &arg, NULL, true, 1) == 1)
	{
		bool		isnull;
		Datum		audience = approval_getdatum(0, 3, &isnull);

		result = viewer_sees(v,
							 DatumGetTextPP(approval_getdatum(0, 1, &isnull)),
							 DatumGetTextPP(approval_getdatum(0, 2, &isnull)),
							 DatumGetArrayTypeP(audience));
	}
	approval_spi_finish();
	PG_RETURN_BOOL(result);
}
