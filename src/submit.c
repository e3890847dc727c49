/*-------------------------------------------------------------------------
 *
 * submit.c
 *	  approval.submit(): a new request, its targets resolved, its first
 *	  stages activated or skipped, or approved at once; and the subject
 *	  rule (DESIGN §4): one open request per workflow and subject.
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include "catalog/pg_type.h"
#include "commands/sequence.h"

static ApprovalPlan open_subject_plan = {
	"SELECT id, requester, payload = $3 FROM approval.request"
	" WHERE workflow = $1 AND subject = $2 AND state IN ('pending', 'changes_requested')",
	3, {TEXTOID, TEXTOID, JSONBOID}
};

/*
 * The open request that holds the new request's (workflow, subject), if
 * any.  The requester's own, with the same payload, is the answer to a
 * retry: its id is returned.  Anything else is AP013, which names the other
 * request only to someone who may see it.  0 when the subject is free.
 */
static int64
subject_holder(Req *r)
{
	Datum		args[3];
	int64		id;
	char	   *holder;
	bool		same_payload;

	args[0] = CStringGetTextDatum(r->workflow);
	args[1] = CStringGetTextDatum(r->subject);
	args[2] = JsonbPGetDatum(r->payload);
	if (approval_exec(&open_subject_plan, args, NULL, false, 1) == 0)
		return 0;
	id = approval_getint64(0, 1);
	holder = approval_gettext(0, 2);
	same_payload = approval_getbool(0, 3);

	if (streq(holder, r->requester))
	{
		if (same_payload)
			return id;
		if (govern_holds(id))
			ereport(ERROR,
					(errcode(ERRCODE_AP_SUBJECT_UNDER_REVIEW),
					 errmsg("subject \"%s\" of workflow \"%s\" is already under review in request %lld",
							r->subject, r->workflow, (long long) id),
					 errdetail("Your open request %lld holds another change of this row.", (long long) id),
					 errhint("Wait for request %lld to be decided, or cancel it and make the change again.",
							 (long long) id)));
		ereport(ERROR,
				(errcode(ERRCODE_AP_SUBJECT_UNDER_REVIEW),
				 errmsg("subject \"%s\" of workflow \"%s\" is already under review in request %lld",
						r->subject, r->workflow, (long long) id),
				 errdetail("Your open request %lld for it has another payload.", (long long) id),
				 errhint("Wait for request %lld to be decided or cancel it; while changes are requested, "
						 "approval.resubmit(%lld, payload) changes its payload.",
						 (long long) id, (long long) id)));
	}
	if (approval_actor_sees_request(&r->actor, id))
		ereport(ERROR,
				(errcode(ERRCODE_AP_SUBJECT_UNDER_REVIEW),
				 errmsg("subject \"%s\" of workflow \"%s\" is already under review in request %lld",
						r->subject, r->workflow, (long long) id),
				 errdetail("Request %lld of %s holds it.", (long long) id, holder),
				 errhint("Wait for request %lld to be decided.", (long long) id)));
	ereport(ERROR,
			(errcode(ERRCODE_AP_SUBJECT_UNDER_REVIEW),
			 errmsg("subject \"%s\" of workflow \"%s\" is already under review",
					r->subject, r->workflow),
			 errdetail("Another requester's open request holds it."),
			 errhint("Wait for that request to be decided, or submit under another subject.")));
}

/*
 * Submit a request: what approval.submit() does, for C callers too (the
 * governed tables' trigger, govern.c).  workflow NULL routes it.  Returns
 * the request's id; *created says whether this call made it (false: the
 * requester's open request for the subject, the same payload, is the answer
 * to a retry) and *state is the state it is in.  The caller is connected to
 * SPI.
 */
int64
approval_submit_request(const char *workflow, Jsonb *payload, const char *title,
						const char *subject, const char *ack, bool *created,
						RequestState *state)
{
	Req		   *r = palloc0(sizeof(Req));
	WorkflowDef *wf;
	ApprovalJson j;
	int64		id;
	ListCell   *lc;

	*created = false;
	*state = REQUEST_PENDING;
	approval_get_actor(&r->actor);
	r->requester = r->actor.id;
	r->payload = payload ? payload : approval_jsonb_empty();
	r->title = title ? pstrdup(title) : NULL;
	r->subject = subject ? pstrdup(subject) : NULL;

	if (!JB_ROOT_IS_OBJECT(r->payload))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the payload of a request must be a JSON object")));

	if (workflow == NULL)
	{
		wf = approval_route(r->payload, r->requester);
		if (wf == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_AP_NO_WORKFLOW_MATCHES),
					 errmsg("no workflow matches this request"),
					 errdetail("No enabled workflow's \"match\" condition holds for the payload."),
					 errhint("Name the workflow, or check the conditions with approval.route(payload).")));
	}
	else
		wf = approval_workflow_by_name(workflow);
	r->wf = wf;
	r->workflow = wf->name;

	if (wf->require_ack != NULL && ack == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_AP_ACK_MISSING),
				 errmsg("workflow \"%s\" needs an acknowledgment", wf->name),
				 errdetail("Pass this exact text as ack: %s", wf->require_ack),
				 errhint("approval.submit(..., ack => '%s')", wf->require_ack)));
	if (wf->require_ack != NULL && strcmp(ack, wf->require_ack) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_AP_ACK_MISSING),
				 errmsg("the acknowledgment does not match the text workflow \"%s\" asks for", wf->name),
				 errdetail("Expected exactly: %s", wf->require_ack),
				 errhint("The text is in the require_ack column of approval.workflows and of approval.preview().")));

	/* idempotent retries: the requester's open request for the subject is the answer */
	if (r->subject != NULL && (id = subject_holder(r)) != 0)
		return id;

	r->is_new = true;
	r->id = nextval_internal(approval_relid("request_id_seq"), false);
	r->state = REQUEST_PENDING;
	r->loaded_state = REQUEST_PENDING;
	r->submitted_at = GetCurrentTransactionStartTimestamp();
	r->now = r->submitted_at;
	approval_events_init(&r->ev, r->id, r->workflow, NULL);

	/* every stage's targets are resolved now, so a bad one fails the submit */
	r->nstages = wf->nstages;
	r->stages = palloc0(sizeof(StageRow) * Max(wf->nstages, 1));
	for (int i = 0; i < wf->nstages; i++)
	{
		StageRow   *s = &r->stages[i];
		StageDef   *st = &wf->stages[i];

		s->def = st;
		s->stage = st->name;
		s->idx = st->idx;
		s->order = st->order;
		s->state = STAGE_WAITING;
		s->targets = approval_resolve_targets(r->requester, st);
		s->required = st->min_approvals;
		s->reject_required = st->reject_by_quorum ? st->reject_quorum : 1;
		s->round = 1;
		/* whoever a stage names may see the request (visibility.c) */
		foreach(lc, s->targets)
			request_add_audience(r, lfirst(lc));
	}

	aj_init(&j);
	aj_str(&j, "workflow", wf->name);
	aj_int(&j, "version", wf->version);
	aj_str(&j, "title", r->title);
	aj_str(&j, "subject", r->subject);
	if (wf->require_ack != NULL)
		aj_str(&j, "ack", ack);
	request_event(r, "submitted", aj_finish(&j), NULL, NIL);
	r->callbacks |= 1 << CALLBACK_SUBMITTED;

	if (wf->auto_approve != NULL && request_condition(r, wf->auto_approve))
	{
		for (int i = 0; i < r->nstages; i++)
		{
			r->stages[i].state = STAGE_SKIPPED;
			r->stages[i].decided_now = true;
		}
		r->state = REQUEST_APPROVED;
		request_event(r, "auto_approved", NULL, NULL, NIL);
		engine_finish(r, true, NULL, NULL);
	}
	else
		engine_advance(r);

	if (!request_save(r))
	{
		/* another session opened a request for this subject meanwhile */
		id = subject_holder(r);
		if (id == 0)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not submit: a concurrent request for subject \"%s\" appeared and vanished",
							r->subject),
					 errhint("Retry the submit.")));
		return id;
	}
	*created = true;
	*state = r->state;
	return r->id;
}

PG_FUNCTION_INFO_V1(approval_submit);
Datum
approval_submit(PG_FUNCTION_ARGS)
{
	const char *workflow = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	Jsonb	   *payload = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	const char *title = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	const char *subject = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	const char *ack = PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4));
	bool		created;
	RequestState state;
	int64		id;

	approval_spi_connect();
	id = approval_submit_request(workflow, payload, title, subject, ack, &created, &state);
	approval_spi_finish();
	PG_RETURN_INT64(id);
}
