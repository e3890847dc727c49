/*-------------------------------------------------------------------------
 *
 * eligibility.c
 *	  Who may vote where (DESIGN §4, §5): the one home of that rule.
 *
 * A vote is cast at a spot, the active stage of a pending request, in a
 * capacity: the actor's own, or a delegator's for that workflow.  A capacity
 * is eligible when its targets overlap the stage's; unless the workflow
 * allows self-approval, neither the requester nor anyone in the requester's
 * name votes; one person casts one vote per stage (and round), whatever
 * their capacities; and under distinct_approvers an approval at another
 * stage that involved the person or the principal counted rules the stage
 * out for approvals.
 *
 * approve(), reject() and request_changes() ask eligibility_capacity() at
 * each active stage (engine_eligible_at()), and approval.my_pending asks it
 * through approval.vote_capacity() for each pending_vote row it walks: a
 * (request, stage) is listed exactly where approve() would record a vote.
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"

/* the votes cast at a stage in a round: whom each counts for, who cast it */
static ApprovalPlan stage_votes_plan = {
	"SELECT COALESCE(on_behalf_of, actor), actor FROM approval.decision"
	" WHERE request_id = $1 AND stage = $2 AND round = $3 AND decision IN ('approve', 'reject')"
	" ORDER BY id",
	3, {INT8OID, TEXTOID, INT4OID}
};

/*
 * An approval at another stage (in its current round) that involved the
 * principal counted ($3) or the person acting ($4), either as the one
 * counted or as the one who cast it.
 */
static ApprovalPlan other_stage_approval_plan = {
	"SELECT d.stage FROM approval.decision d"
	"  JOIN approval.request_stage s"
	"    ON s.request_id = d.request_id AND s.stage = d.stage AND s.round = d.round"
	" WHERE d.request_id = $1 AND d.stage <> $2 AND d.decision = 'approve'"
	"   AND (COALESCE(d.on_behalf_of, d.actor) IN ($3, $4) OR d.actor IN ($3, $4))"
	" LIMIT 1",
	4, {INT8OID, TEXTOID, TEXTOID, TEXTOID}
};

static bool
lists_overlap(List *a, List *b)
{
	ListCell   *ca,
			   *cb;

	foreach(ca, a)
		foreach(cb, b)
			if (strcmp(lfirst(ca), lfirst(cb)) == 0)
				return true;
	return false;
}

/*
 * The capacity in which the actor may vote at the spot, and *why:
 *	VOTE_OPEN		a new vote would be recorded in the capacity returned;
 *	VOTE_CAST		the actor (or that capacity) has voted there: the same
 *					vote again is a no-op, another one AP004;
 *	VOTE_DISTINCT	an approval is ruled out by distinct_approvers
 *					(*elsewhere: the stage that rules it out);
 *	VOTE_SELF		only capacities of or for the requester would do;
 *	VOTE_NOT_TARGET	no capacity answers for the stage.
 * "sets" are the actor's capacities (approval_actor_target_sets).  Needs SPI.
 */
ApprovalTargetSet *
eligibility_capacity(const ApprovalActor *actor, List *sets, const VoteSpot *spot,
					 bool approval, VoteWhy *why, char **elsewhere)
{
	List	   *candidates = NIL;
	bool		self = false;
	ListCell   *lc;
	Datum		args[4];
	int			n;
	ApprovalTargetSet *chosen = NULL;

	foreach(lc, sets)
	{
		ApprovalTargetSet *set = lfirst(lc);

		if (set->scope != NULL && !streq(set->scope, spot->workflow))
			continue;
		if (!lists_overlap(set->targets, spot->targets))
			continue;
		if (!spot->allow_self_approval &&
			(streq(actor->id, spot->requester) || streq(set->principal, spot->requester)))
		{
			self = true;
			continue;
		}
		candidates = lappend(candidates, set);
	}
	if (candidates == NIL)
	{
		*why = self ? VOTE_SELF : VOTE_NOT_TARGET;
		return NULL;
	}

	/*
	 * One person, one vote per stage: the actor's own earlier vote here
	 * decides, even when the capacity it was cast in no longer answers for
	 * the stage (a delegation ended, a group was left).
	 */
	args[0] = Int64GetDatum(spot->request_id);
	args[1] = CStringGetTextDatum(spot->stage);
	args[2] = Int32GetDatum(spot->round);
	n = approval_exec(&stage_votes_plan, args, NULL, false, 0);
	for (int i = 0; i < n && chosen == NULL; i++)
		if (strcmp(approval_gettext(i, 2), actor->id) == 0)
		{
			char	   *counted = approval_gettext(i, 1);

			foreach(lc, candidates)
				if (streq(((ApprovalTargetSet *) lfirst(lc))->principal, counted))
					chosen = lfirst(lc);
			if (chosen == NULL)
			{
				chosen = palloc0(sizeof(ApprovalTargetSet));
				chosen->principal = counted;
				chosen->delegated = !streq(counted, actor->id);
			}
		}
	*why = VOTE_CAST;
	/* else the first capacity (own first) whose principal has not voted */
	if (chosen == NULL)
		foreach(lc, candidates)
		{
			ApprovalTargetSet *set = lfirst(lc);
			bool		voted = false;

			for (int i = 0; i < n && !voted; i++)
				voted = strcmp(approval_gettext(i, 1), set->principal) == 0;
			if (!voted)
			{
				chosen = set;
				*why = VOTE_OPEN;
				break;
			}
		}
	if (chosen == NULL)
		chosen = linitial(candidates);

	/* distinct_approvers rules an approval out first, a repeat included */
	if (approval && spot->distinct_approvers)
	{
		args[2] = CStringGetTextDatum(chosen->principal);
		args[3] = CStringGetTextDatum(actor->id);
		if (approval_exec(&other_stage_approval_plan, args, NULL, false, 1) == 1)
		{
			if (elsewhere != NULL)
				*elsewhere = approval_gettext(0, 1);
			*why = VOTE_DISTINCT;
			return NULL;
		}
	}
	return chosen;
}

/*
 * The engine's question at a stage of a request it holds: where the actor
 * may vote there (see eligibility_capacity); NULL unless VOTE_OPEN or
 * VOTE_CAST.
 */
Eligible *
engine_eligible_at(Req *r, StageRow *s, bool approval, VoteWhy *why, char **elsewhere)
{
	VoteSpot	spot;
	ApprovalTargetSet *set;
	Eligible   *e;

	spot.request_id = r->id;
	spot.stage = s->stage;
	spot.round = s->round;
	spot.targets = s->targets;
	spot.requester = r->requester;
	spot.workflow = r->workflow;
	spot.allow_self_approval = r->wf->allow_self_approval;
	spot.distinct_approvers = r->wf->distinct_approvers;
	set = eligibility_capacity(&r->actor, request_sets(r), &spot, approval, why, elsewhere);
	if (set == NULL)
		return NULL;
	e = palloc(sizeof(Eligible));
	e->stage = s;
	e->set = set;
	return e;
}

static Datum
row_attr(HeapTupleHeader row, const char *name, bool *isnull)
{
	Datum		d = GetAttributeByName(row, name, isnull);

	if (*isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("approval.vote_capacity() needs a pending_vote row with %s", name)));
	return d;
}

/*
 * vote_capacity(spot approval.pending_vote) → text: the principal a new
 * approval by the current actor would count for at that spot, or NULL.
 */
PG_FUNCTION_INFO_V1(approval_vote_capacity);
Datum
approval_vote_capacity(PG_FUNCTION_ARGS)
{
	HeapTupleHeader row = PG_GETARG_HEAPTUPLEHEADER(0);
	ApprovalActor actor;
	VoteSpot	spot;
	VoteWhy		why;
	ApprovalTargetSet *set;
	bool		isnull;
	text	   *result = NULL;

	spot.request_id = DatumGetInt64(row_attr(row, "request_id", &isnull));
	spot.stage = TextDatumGetCString(row_attr(row, "stage", &isnull));
	spot.round = DatumGetInt32(row_attr(row, "round", &isnull));
	spot.requester = TextDatumGetCString(row_attr(row, "requester", &isnull));
	spot.workflow = TextDatumGetCString(row_attr(row, "workflow", &isnull));
	spot.allow_self_approval = DatumGetBool(row_attr(row, "allow_self_approval", &isnull));
	spot.distinct_approvers = DatumGetBool(row_attr(row, "distinct_approvers", &isnull));
	spot.targets = approval_array_to_list(DatumGetArrayTypeP(row_attr(row, "targets", &isnull)));

	approval_spi_connect();
	approval_get_actor(&actor);
	set = eligibility_capacity(&actor, approval_actor_target_sets(&actor, spot.workflow), &spot,
							   true, &why, NULL);
	if (set != NULL && why == VOTE_OPEN)
		result = (text *) SPI_palloc(VARHDRSZ + strlen(set->principal));
	if (result != NULL)
	{
		SET_VARSIZE(result, VARHDRSZ + strlen(set->principal));
		memcpy(VARDATA(result), set->principal, strlen(set->principal));
	}
	approval_spi_finish();
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(result);
}
