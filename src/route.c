/*-------------------------------------------------------------------------
 *
 * route.c
 *	  Deciding by data, without writing anything: route() names the workflow
 *	  a payload would go to, preview() shows the stages a request would run,
 *	  and simulate() replays a draft definition against past requests.
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

/* the requester argument, or the current actor when it is NULL */
static char *
requester_arg(FunctionCallInfo fcinfo, int n)
{
	ApprovalActor actor;

	if (!PG_ARGISNULL(n))
		return text_to_cstring(PG_GETARG_TEXT_PP(n));
	approval_get_actor(&actor);
	return actor.id;
}

static void
require_object(Jsonb *payload)
{
	if (!JB_ROOT_IS_OBJECT(payload))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the payload of a request must be a JSON object")));
}

static text *
upper_text(const char *s)
{
	size_t		len = strlen(s);
	text	   *t = (text *) SPI_palloc(VARHDRSZ + len);

	SET_VARSIZE(t, VARHDRSZ + len);
	memcpy(VARDATA(t), s, len);
	return t;
}

/*
 * route(payload, requester DEFAULT NULL) → text: the workflow submit(NULL,
 * payload) would use, or NULL.
 */
/*
 * The routed workflow for a payload and requester: the enabled workflow with
 * the lowest priority (ties: name) whose "match" holds; NULL if none.
 */
WorkflowDef *
approval_route(Jsonb *payload, const char *requester)
{
	ListCell   *lc;
	Jsonb	   *who = NULL;
	Jsonb	   *shared = NULL;	/* the variables of conditions without $workflow */

	foreach(lc, approval_enabled_workflows())
	{
		WorkflowDef *wf = lfirst(lc);
		Jsonb	   *vars;

		if (wf->match == NULL)
			return wf;
		if (who == NULL)
		{
			who = approval_requester_json(requester);
			shared = approval_make_vars(who, "");
		}
		vars = wf->match_uses_workflow ? approval_make_vars(who, wf->name) : shared;
		if (approval_condition_holds(wf->match, payload, vars))
			return wf;
	}
	return NULL;
}


PG_FUNCTION_INFO_V1(approval_route_fn);
Datum
approval_route_fn(PG_FUNCTION_ARGS)
{
	Jsonb	   *payload;
	WorkflowDef *wf;
	text	   *result = NULL;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	payload = PG_GETARG_JSONB_P(0);
	require_object(payload);

	approval_spi_connect();
	wf = approval_route(payload, requester_arg(fcinfo, 1));
	if (wf != NULL)
		result = upper_text(wf->name);
	approval_spi_finish();
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(result);
}

/*
 * preview(workflow, payload, requester DEFAULT NULL) → the stages a request
 * would have, in order, with their resolved targets, required votes,
 * whether they would run, and the acknowledgment submit will ask for.  Unresolvable targets fail as submit would (AP011).
 * Writes nothing.
 */
PG_FUNCTION_INFO_V1(approval_preview);
Datum
approval_preview(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Tuplestorestate *ts = approval_srf_init(fcinfo, &desc);
	MemoryContext upper = CurrentMemoryContext;
	Jsonb	   *payload;
	char	   *requester;
	WorkflowDef *wf;
	Jsonb	   *vars;
	bool		auto_approved;
	int		   *order;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("preview needs a payload")));
	payload = PG_GETARG_JSONB_P(1);
	require_object(payload);

	approval_spi_connect();
	requester = requester_arg(fcinfo, 2);
	if (PG_ARGISNULL(0))
	{
		wf = approval_route(payload, requester);
		if (wf == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_AP_NO_WORKFLOW_MATCHES),
					 errmsg("no workflow matches this request"),
					 errhint("Name the workflow, or check the conditions with approval.route(payload).")));
	}
	else
		wf = approval_workflow_by_name(text_to_cstring(PG_GETARG_TEXT_PP(0)));

	vars = approval_make_vars(approval_requester_json(requester), wf->name);
	auto_approved = wf->auto_approve != NULL &&
		approval_condition_holds(wf->auto_approve, payload, vars);

	/* stages in (order, index) order */
	order = palloc(sizeof(int) * Max(wf->nstages, 1));
	for (int i = 0; i < wf->nstages; i++)
	{
		int			j = i;

		while (j > 0 && wf->stages[order[j - 1]].order > wf->stages[i].order)
		{
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
	}

	for (int k = 0; k < wf->nstages; k++)
	{
		StageDef   *st = &wf->stages[order[k]];
		List	   *targets = approval_resolve_targets(requester, st);
		int			required = st->min_approvals;
		bool		runs = !auto_approved && approval_condition_holds(st->when, payload, vars);
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};
		MemoryContext old;

		if (required == 0)
			required = Max(approval_count_principals(targets), 1);
		old = MemoryContextSwitchTo(upper);
		values[0] = Int32GetDatum(st->order);
		values[1] = CStringGetTextDatum(st->name);
		values[2] = PointerGetDatum(approval_text_array(targets));
		values[3] = Int32GetDatum(required);
		values[4] = BoolGetDatum(runs);
		values[5] = wf->require_ack ? CStringGetTextDatum(wf->require_ack) : (Datum) 0;
		nulls[5] = wf->require_ack == NULL;
		tuplestore_putvalues(ts, desc, values, nulls);
		MemoryContextSwitchTo(old);
	}
	approval_spi_finish();
	return (Datum) 0;
}

/* ---------- simulate ---------- */

static ApprovalPlan past_requests_plan = {
	"SELECT r.id, r.workflow, r.state::text, r.payload, r.requester,"
	"  ARRAY(SELECT s.stage FROM approval.request_stage s"
	"         WHERE s.request_id = r.id AND s.state NOT IN ('waiting', 'skipped')"
	"         ORDER BY s.stage_order, s.stage_idx),"
	"  EXISTS (SELECT 1 FROM approval.event e"
	"           WHERE e.request_id = r.id AND e.kind = 'auto_approved')"
	"  FROM approval.request r WHERE r.created_at >= $1 ORDER BY r.id",
	1, {TIMESTAMPTZOID}
};

typedef struct PastRequest
{
	int64		id;
	char	   *workflow;
	char	   *state;
	Jsonb	   *payload;
	char	   *requester;
	List	   *did_run;
	bool		was_auto;
} PastRequest;

static bool
same_list(List *a, List *b)
{
	ListCell   *ca,
			   *cb;

	if (list_length(a) != list_length(b))
		return false;
	forboth(ca, a, cb, b)
		if (strcmp(lfirst(ca), lfirst(cb)) != 0)
		return false;
	return true;
}

static char *
list_diff(List *a, List *b, const char *sign)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, a)
	{
		if (!approval_list_has(b, lfirst(lc)))
			appendStringInfo(&buf, "%s%s%s", buf.len ? ", " : "", sign, (char *) lfirst(lc));
	}
	return buf.data;
}

/*
 * simulate(definition, since) → per past request: whether the draft would
 * match it, auto-approve it, which stages would run, which did, and what
 * would change.  The draft is validated (AP005) but never stored.
 */
PG_FUNCTION_INFO_V1(approval_simulate);
Datum
approval_simulate(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Tuplestorestate *ts = approval_srf_init(fcinfo, &desc);
	MemoryContext upper = CurrentMemoryContext;
	WorkflowDef *wf;
	Datum		since = PG_GETARG_DATUM(1);
	PastRequest *past;
	int			n;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("simulate needs a definition and a start time")));

	approval_spi_connect();
	wf = approval_parse_definition(PG_GETARG_JSONB_P(0), NULL);

	n = approval_exec(&past_requests_plan, &since, NULL, true, 0);
	past = palloc(sizeof(PastRequest) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		bool		isnull;

		past[i].id = approval_getint64(i, 1);
		past[i].workflow = approval_gettext(i, 2);
		past[i].state = approval_gettext(i, 3);
		past[i].payload = DatumGetJsonbP(approval_copy_datum(i, 4, &isnull));
		past[i].requester = approval_gettext(i, 5);
		past[i].did_run = approval_array_to_list(DatumGetArrayTypeP(approval_getdatum(i, 6, &isnull)));
		past[i].was_auto = approval_getbool(i, 7);
	}

	for (int i = 0; i < n; i++)
	{
		PastRequest *p = &past[i];
		Jsonb	   *vars = approval_make_vars(approval_requester_json(p->requester), wf->name);
		bool		match = approval_condition_holds(wf->match, p->payload, vars);
		bool		is_auto = wf->auto_approve != NULL &&
			approval_condition_holds(wf->auto_approve, p->payload, vars);
		List	   *would_run = NIL;
		bool		same_workflow = strcmp(p->workflow, wf->name) == 0;
		char	   *change = NULL;
		Datum		values[9];
		bool		nulls[9] = {false};
		MemoryContext old;

		if (!is_auto)
			for (int k = 0; k < wf->nstages; k++)
				if (approval_condition_holds(wf->stages[k].when, p->payload, vars))
					would_run = lappend(would_run, wf->stages[k].name);

		if (same_workflow)
		{
			if (!match)
				change = "would no longer match";
			else if (is_auto && !p->was_auto)
				change = psprintf("would be approved at once (was %s)", p->state);
			else if (!is_auto && p->was_auto)
				change = "would need approval (was approved at once)";
			else if (!same_list(would_run, p->did_run))
			{
				char	   *plus = list_diff(would_run, p->did_run, "+");
				char	   *minus = list_diff(p->did_run, would_run, "-");

				change = psprintf("stages: %s%s%s", plus, (*plus && *minus) ? ", " : "", minus);
			}
		}
		else if (match)
			change = psprintf("would also match (went to %s)", p->workflow);

		old = MemoryContextSwitchTo(upper);
		values[0] = Int64GetDatum(p->id);
		values[1] = CStringGetTextDatum(p->workflow);
		values[2] = CStringGetTextDatum(p->state);
		values[3] = BoolGetDatum(match);
		values[4] = BoolGetDatum(is_auto);
		values[5] = PointerGetDatum(approval_text_array(would_run));
		values[6] = PointerGetDatum(approval_text_array(p->did_run));
		values[7] = BoolGetDatum(change != NULL);
		values[8] = change ? CStringGetTextDatum(change) : (Datum) 0;
		nulls[8] = (change == NULL);
		tuplestore_putvalues(ts, desc, values, nulls);
		MemoryContextSwitchTo(old);
	}
	approval_spi_finish();
	return (Datum) 0;
}
