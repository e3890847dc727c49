/*-------------------------------------------------------------------------
 *
 * decide.c
 *	  The SQL-callable decisions: approve, reject, request_changes,
 *	  resubmit, cancel and comment.
 *
 * Each opens the request through request.c (row lock first), applies the
 * transitions of engine.c, and saves through request.c: none of them
 * changes a row by itself.
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

static const char *
arg_text(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/*
 * Record the actor's vote on the request r holds, at every active stage
 * where it may vote, and advance the request.  Returns DECIDE_DONE when the
 * vote was recorded or repeats the actor's last one (a no-op); r is then
 * ready for request_done().  When the request is closed, or the actor may
 * vote nowhere, it raises the errors of approve() and reject() (AP001,
 * AP002, AP003, AP007), or with "refusals" returns DECIDE_CLOSED or
 * DECIDE_INELIGIBLE instead, for the caller to say why (a redeemed token,
 * token.c).  A contradicting vote is AP004 either way.
 */
DecideResult
decide_vote(Req *r, bool approve, const char *reason, const char *comment, bool refusals)
{
	const char *decision = approve ? "approve" : "reject";
	bool		eligible = false;
	bool		changed = false;
	bool		self_blocked = false;
	char	   *blocked_by = NULL;

	if (r->state != REQUEST_PENDING)
	{
		if (engine_repeats_last_vote(r, decision))
			return DECIDE_DONE; /* a retry of the vote */
		if (refusals)
			return DECIDE_CLOSED;
		request_require_pending(r);
	}

	/*
	 * A vote at every active stage where the actor may vote, in stage order;
	 * each stage is asked in turn, after the votes before it, so that a
	 * distinct_approvers rule sees them.
	 */
	for (int i = 0; i < r->nstages && r->state == REQUEST_PENDING; i++)
	{
		StageRow   *s = &r->stages[i];
		VoteWhy		why;
		char	   *other = NULL;
		Eligible   *e;

		if (s->state != STAGE_ACTIVE)
			continue;
		e = engine_eligible_at(r, s, approve, &why, &other);
		if (e != NULL)
		{
			eligible = true;
			changed |= engine_record_vote(r, e, decision, reason, comment);
		}
		else if (why == VOTE_SELF)
			self_blocked = true;
		else if (why == VOTE_DISTINCT)
			blocked_by = other;
	}

	if (!changed && (!eligible || blocked_by != NULL) && engine_repeats_last_vote(r, decision))
		return DECIDE_DONE;		/* a retry of the vote */
	if (refusals && !changed && (!eligible || blocked_by != NULL))
		return DECIDE_INELIGIBLE;
	if (!eligible && blocked_by == NULL)
		engine_no_eligible_stage(r, self_blocked, decision);
	if (!changed && blocked_by != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_AP_SELF_APPROVAL),
				 errmsg("%s already approved stage \"%s\" of request %lld",
						r->actor.id, blocked_by, (long long) r->id),
				 errdetail("Workflow \"%s\" requires a different approver at each stage.", r->workflow),
				 errhint("Another approver of the stage must decide.")));

	if (approve && r->state == REQUEST_PENDING)
		engine_advance(r);
	return DECIDE_DONE;
}

/* approve() and reject(): the current actor's vote */
static Datum
vote(FunctionCallInfo fcinfo, bool approve)
{
	int64		id = PG_GETARG_INT64(0);
	const char *reason = approve ? NULL : arg_text(fcinfo, 1);
	const char *comment = arg_text(fcinfo, approve ? 1 : 2);
	Req		   *r;

	approval_spi_connect();
	r = request_open(id);
	decide_vote(r, approve, reason, comment, false);
	PG_RETURN_DATUM(request_done(r));
}

PG_FUNCTION_INFO_V1(approval_approve);
Datum
approval_approve(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	return vote(fcinfo, true);
}

PG_FUNCTION_INFO_V1(approval_reject);
Datum
approval_reject(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	return vote(fcinfo, false);
}

PG_FUNCTION_INFO_V1(approval_request_changes);
Datum
approval_request_changes(PG_FUNCTION_ARGS)
{
	int64		id;
	const char *comment = arg_text(fcinfo, 1);
	Req		   *r;
	Eligible   *e = NULL;
	VoteWhy		why = VOTE_NOT_TARGET;
	bool		self_blocked = false;
	ApprovalJson j;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	id = PG_GETARG_INT64(0);

	if (comment == NULL || comment[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("request_changes needs a comment"),
				 errhint("Say what the requester should change.")));

	approval_spi_connect();
	r = request_open(id);
	if (r->state != REQUEST_PENDING)
	{
		if (engine_repeats_last_vote(r, "request_changes"))
			PG_RETURN_DATUM(request_done(r));	/* a retry: changes were requested */
		request_require_pending(r);
	}
	/* at the first active stage where the actor may vote */
	for (int i = 0; i < r->nstages && e == NULL; i++)
	{
		if (r->stages[i].state != STAGE_ACTIVE)
			continue;
		e = engine_eligible_at(r, &r->stages[i], false, &why, NULL);
		self_blocked |= (why == VOTE_SELF);
	}
	if (e == NULL)
	{
		if (engine_repeats_last_vote(r, "request_changes"))
			PG_RETURN_DATUM(request_done(r));
		engine_no_eligible_stage(r, self_blocked, "request changes to");
	}
	if (why == VOTE_CAST)
		engine_require_no_vote(r, e, "request for changes");

	engine_record_note(r, e->stage, e->set->delegated ? e->set->principal : NULL, "request_changes", comment);
	r->state = REQUEST_CHANGES_REQUESTED;
	r->dirty = true;
	aj_init(&j);
	aj_str(&j, "stage", e->stage->stage);
	aj_str(&j, "comment", comment);
	request_event(r, "changes_requested", aj_finish(&j), e->stage->stage, list_make1(psprintf("user:%s", r->requester)));
	PG_RETURN_DATUM(request_done(r));
}

PG_FUNCTION_INFO_V1(approval_resubmit);
Datum
approval_resubmit(PG_FUNCTION_ARGS)
{
	int64		id;
	Jsonb	   *payload = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	const char *comment = arg_text(fcinfo, 2);
	Req		   *r;
	ApprovalJson j;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	id = PG_GETARG_INT64(0);

	r = request_open_visible(id);
	if (!streq(r->actor.id, r->requester))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only the requester may resubmit request %lld", (long long) id),
				 errdetail("The requester is %s.", r->requester)));
	if (r->state != REQUEST_CHANGES_REQUESTED)
	{
		if (!request_is_open(r->state))
			request_require_pending(r);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("request %lld is not waiting for changes", (long long) id),
				 errdetail("Its state is %s; resubmit follows approval.request_changes().", request_state_names[r->state])));
	}
	if (payload != NULL && govern_holds(id))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("request %lld holds a change of a governed table: its payload cannot change",
						(long long) id),
				 errdetail("What approval applies is the change that was held, not the payload."),
				 errhint("Cancel the request and make the change again, or resubmit without a payload.")));
	if (payload != NULL)
	{
		if (!JB_ROOT_IS_OBJECT(payload))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the payload of a request must be a JSON object")));
		r->payload = payload;
		r->payload_changed = true;
		r->vars = NULL;
	}

	r->state = REQUEST_PENDING;
	r->dirty = true;
	aj_init(&j);
	aj_bool(&j, "payload_changed", payload != NULL);
	aj_str(&j, "comment", comment);
	aj_str(&j, "reapprove", r->wf->reapprove_all ? "all" : "stage");
	request_event(r, "resubmitted", aj_finish(&j), NULL, NIL);

	if (r->wf->reapprove_all)
	{
		/* start over: earlier approvals no longer count */
		for (int i = 0; i < r->nstages; i++)
		{
			StageRow   *s = &r->stages[i];

			s->state = STAGE_WAITING;
			s->approvals = 0;
			s->rejections = 0;
			s->round++;
			s->dirty = true;
			if (s->def != NULL)
				s->required = s->def->min_approvals;
		}
		r->has_order = false;
		engine_advance(r);
	}
	else
	{
		/* the active stages start again; their votes stay in history */
		for (int i = 0; i < r->nstages; i++)
		{
			StageRow   *s = &r->stages[i];

			if (s->state != STAGE_ACTIVE)
				continue;
			s->round++;
			engine_activate_stage(r, s);
		}
		engine_advance(r);
	}
	PG_RETURN_DATUM(request_done(r));
}

/* ---------- cancel, comment ---------- */

PG_FUNCTION_INFO_V1(approval_cancel);
Datum
approval_cancel(PG_FUNCTION_ARGS)
{
	int64		id;
	const char *comment = arg_text(fcinfo, 1);
	Req		   *r;
	ApprovalJson j;
	List	   *cancelled;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	id = PG_GETARG_INT64(0);

	r = request_open_visible(id);
	if (!streq(r->actor.id, r->requester) && !r->actor.is_admin)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only the requester or an approval_admin may cancel request %lld", (long long) id),
				 errhint("Reject it instead, if you are an approver.")));
	if (!request_is_open(r->state))
		request_require_pending(r);

	cancelled = engine_close(r, REQUEST_CANCELLED, CALLBACK_CANCELLED);
	aj_init(&j);
	aj_str(&j, "comment", comment);
	if (cancelled != NIL)
		aj_list(&j, "cancelled_stages", cancelled);
	request_event(r, "cancelled", aj_finish(&j), NULL, NIL);
	PG_RETURN_DATUM(request_done(r));
}

PG_FUNCTION_INFO_V1(approval_comment);
Datum
approval_comment(PG_FUNCTION_ARGS)
{
	int64		id;
	const char *comment = arg_text(fcinfo, 1);
	Req		   *r;
	ApprovalJson j;

	if (PG_ARGISNULL(0))
		PG_RETURN_VOID();
	id = PG_GETARG_INT64(0);
	if (comment == NULL || comment[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a comment must not be empty")));

	r = request_open_visible(id);
	if (!request_is_open(r->state))
		request_require_pending(r);		/* AP002: a closed request takes no more comments */
	engine_record_note(r, NULL, NULL, "comment", comment);
	aj_init(&j);
	aj_str(&j, "comment", comment);
	request_event(r, "commented", aj_finish(&j), NULL, NIL);
	request_save(r);
	approval_spi_finish();
	PG_RETURN_VOID();
}

