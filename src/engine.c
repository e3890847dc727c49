/*-------------------------------------------------------------------------
 *
 * engine.c
 *	  The state machine of requests (DESIGN §4): stage activation and
 *	  skipping, quorum, reject policies, closing, recording votes, and
 *	  retries.
 *
 * Everything here changes a Req in memory and collects events; request.c
 * loads it under the row lock and saves it (see engine.h).  Who may vote
 * where is eligibility.c's.
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include "catalog/pg_type.h"

/* ---------- statements ---------- */

static ApprovalPlan insert_vote_plan = {
	"INSERT INTO approval.decision (request_id, stage, actor, on_behalf_of, decision, reason,"
	"  comment, denial_message, round)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
	" ON CONFLICT (request_id, stage, round, (COALESCE(on_behalf_of, actor)))"
	"  WHERE decision IN ('approve', 'reject') DO NOTHING"
	" RETURNING id",
	9, {INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID}
};

static ApprovalPlan existing_vote_plan = {
	"SELECT decision FROM approval.decision"
	" WHERE request_id = $1 AND stage = $2 AND round = $3"
	"   AND COALESCE(on_behalf_of, actor) = $4 AND decision IN ('approve', 'reject')",
	4, {INT8OID, TEXTOID, INT4OID, TEXTOID}
};

/* ---------- transitions ---------- */

Jsonb *
engine_stage_data(StageRow *s)
{
	ApprovalJson j;

	aj_init(&j);
	aj_str(&j, "stage", s->stage);
	aj_int(&j, "order", s->order);
	return aj_finish(&j);
}

/*
 * The request closes in state "state": every stage still waiting or active
 * is cancelled (DESIGN §4), so that an active stage is always one that can
 * be acted on.  Returns the names of the stages it cancelled.
 */
List *
engine_close(Req *r, RequestState state, ApprovalCallback callback)
{
	List	   *cancelled = NIL;

	r->state = state;
	r->decided_now = true;
	r->dirty = true;
	r->callbacks |= 1 << callback;
	/* a governed table's change held by a request that is not approved is dropped */
	if (state != REQUEST_APPROVED)
		govern_discard(r);
	for (int i = 0; i < r->nstages; i++)
	{
		StageRow   *s = &r->stages[i];

		if (s->state != STAGE_WAITING && s->state != STAGE_ACTIVE)
			continue;
		s->state = STAGE_CANCELLED;
		s->decided_now = true;
		s->dirty = true;
		cancelled = lappend(cancelled, s->stage);
	}
	return cancelled;
}

/*
 * The request is decided.  Approval makes the change of a governed table
 * the request holds (govern_apply.c), before the callbacks run; if the row
 * changed meanwhile the change is not made, and the request is rejected
 * instead, for the reason "conflict".
 */
void
engine_finish(Req *r, bool approved, const char *reason, const char *denial)
{
	ApprovalJson j;
	List	   *cancelled;
	bool		conflict = false;

	if (approved && !govern_apply(r))
	{
		approved = false;
		reason = "conflict";
		denial = NULL;
		conflict = true;
	}
	cancelled = engine_close(r, approved ? REQUEST_APPROVED : REQUEST_REJECTED,
						 approved ? CALLBACK_APPROVED : CALLBACK_REJECTED);
	aj_init(&j);
	if (r->override_reason != NULL)
	{
		/* an admin's override (engine_override) */
		aj_bool(&j, "override", true);
		aj_str(&j, "reason", r->override_reason);
		if (conflict)
			aj_bool(&j, "conflict", true);	/* its held change could not be made */
	}
	else if (!approved)
	{
		aj_str(&j, "reason", reason);
		aj_str(&j, "denial_message", denial);
	}
	if (cancelled != NIL)
		aj_list(&j, "cancelled_stages", cancelled);
	request_event(r, request_state_names[r->state], aj_finish(&j), NULL, NIL);
}

/*
 * A stage is approved: by its quorum (by NULL) or by its timeout.  The
 * caller moves the request on (engine_advance) once its votes are in.
 */
void
engine_stage_approved(Req *r, StageRow *s, const char *by)
{
	ApprovalJson j;

	s->state = STAGE_APPROVED;
	s->decided_now = true;
	s->dirty = true;
	aj_init(&j);
	aj_str(&j, "stage", s->stage);
	aj_int(&j, "order", s->order);
	if (by != NULL)
		aj_str(&j, "by", by);
	request_event(r, "stage_approved", aj_finish(&j), s->stage, NIL);
}

/*
 * Quorum (DESIGN §4): once a stage's approvals reach what it requires, it
 * is approved at once (event quorum_satisfied).  Returns whether it was.
 * The caller moves the request on.
 */
static bool
quorum_check(Req *r, StageRow *s)
{
	ApprovalJson j;

	if (s->approvals < s->required)
		return false;
	aj_init(&j);
	aj_str(&j, "stage", s->stage);
	aj_int(&j, "approvals", s->approvals);
	aj_int(&j, "required", s->required);
	request_event(r, "quorum_satisfied", aj_finish(&j), s->stage, NIL);
	engine_stage_approved(r, s, NULL);
	return true;
}

/* A stage is rejected (by votes, or by its timeout): so is the request */
void
engine_stage_rejected(Req *r, StageRow *s, const char *reason, const char *denial)
{
	ApprovalJson j;

	s->state = STAGE_REJECTED;
	s->decided_now = true;
	s->dirty = true;
	aj_init(&j);
	aj_str(&j, "stage", s->stage);
	aj_str(&j, "reason", reason);
	aj_str(&j, "denial_message", denial);
	request_event(r, "stage_rejected", aj_finish(&j), s->stage, NIL);
	engine_finish(r, false, reason, denial);
}

/*
 * The request expires: at its expiry (s NULL), or because stage s timed out
 * with on_timeout "expire" (that stage is expired, the others cancelled).
 */
void
engine_expire(Req *r, StageRow *s, const char *reason)
{
	ApprovalJson j;
	List	   *cancelled;

	if (s != NULL)
	{
		s->state = STAGE_EXPIRED;
		s->decided_now = true;
		s->dirty = true;
	}
	cancelled = engine_close(r, REQUEST_EXPIRED, CALLBACK_EXPIRED);
	aj_init(&j);
	aj_str(&j, "reason", reason);
	if (s != NULL)
		aj_str(&j, "stage", s->stage);
	if (cancelled != NIL)
		aj_list(&j, "cancelled_stages", cancelled);
	request_event(r, "expired", aj_finish(&j), s ? s->stage : NULL, NIL);
}

/* A stage's targets but those escalations added */
static List *
own_targets(StageRow *s)
{
	List	   *own = NIL;
	ListCell   *lc;

	foreach(lc, s->targets)
		if (!approval_list_has(s->added_targets, lfirst(lc)))
			own = lappend(own, lfirst(lc));
	return own;
}

void
engine_activate_stage(Req *r, StageRow *s)
{
	ApprovalJson j;

	s->state = STAGE_ACTIVE;
	s->activated_now = true;
	s->dirty = true;
	s->approvals = 0;
	s->rejections = 0;
	/* "all": everyone the stage's own targets stand for, not escalations' */
	if (s->def != NULL && s->def->min_approvals == 0)
		s->required = Max(approval_count_principals(own_targets(s)), 1);
	aj_init(&j);
	aj_str(&j, "stage", s->stage);
	aj_int(&j, "order", s->order);
	aj_int(&j, "round", s->round);
	aj_list(&j, "targets", s->targets);
	aj_int(&j, "required", s->required);
	request_event(r, "stage_activated", aj_finish(&j), s->stage, s->targets);
}

/*
 * Move the request on: while every stage of the current order is done,
 * activate the next order (skipping stages whose "when" is false); after the
 * last order the request is approved.
 */
void
engine_advance(Req *r)
{
	for (;;)
	{
		bool		found = false;
		int			next = 0;

		if (r->has_order)
		{
			for (int i = 0; i < r->nstages; i++)
			{
				StageRow   *s = &r->stages[i];

				if (s->order == r->current_order &&
					s->state != STAGE_APPROVED && s->state != STAGE_SKIPPED)
					return;		/* still waiting for this order */
			}
		}

		for (int i = 0; i < r->nstages; i++)
		{
			StageRow   *s = &r->stages[i];

			if (s->state == STAGE_WAITING &&
				(!r->has_order || s->order > r->current_order) &&
				(!found || s->order < next))
			{
				next = s->order;
				found = true;
			}
		}
		if (!found)
		{
			engine_finish(r, true, NULL, NULL);
			return;
		}

		r->has_order = true;
		r->current_order = next;
		r->dirty = true;
		for (int i = 0; i < r->nstages; i++)
		{
			StageRow   *s = &r->stages[i];

			if (s->order != next || s->state != STAGE_WAITING)
				continue;
			if (s->def != NULL && !request_condition(r, s->def->when))
			{
				s->state = STAGE_SKIPPED;
				s->decided_now = true;
				s->dirty = true;
				request_event(r, "stage_skipped", engine_stage_data(s), s->stage, NIL);
			}
			else
				engine_activate_stage(r, s);
		}
	}
}

/* Nothing to vote on: AP001, AP007 or AP003 */
void
engine_no_eligible_stage(Req *r, bool self_blocked, const char *verb)
{
	request_require_visible(r);
	if (self_blocked && streq(r->actor.id, r->requester))
		ereport(ERROR,
				(errcode(ERRCODE_AP_SELF_APPROVAL),
				 errmsg("%s may not %s their own request %lld", r->requester, verb, (long long) r->id),
				 errdetail("Workflow \"%s\" does not allow self-approval.", r->workflow),
				 errhint("Another approver of the stage must decide; the requester may cancel it.")));
	if (self_blocked)
		ereport(ERROR,
				(errcode(ERRCODE_AP_SELF_APPROVAL),
				 errmsg("%s may not %s request %lld for its requester %s",
						r->actor.id, verb, (long long) r->id, r->requester),
				 errdetail("Workflow \"%s\" does not allow self-approval, through a delegate either.",
						   r->workflow),
				 errhint("Another approver of the stage must decide.")));
	ereport(ERROR,
			(errcode(ERRCODE_AP_NOT_AN_APPROVER),
			 errmsg("%s is not an approver at an active stage of request %lld",
					r->actor.id, (long long) r->id),
			 errhint("approval.request_status shows whom the request is waiting on.")));
}

static ApprovalPlan last_vote_plan = {
	"SELECT decision FROM approval.decision"
	" WHERE request_id = $1 AND actor = $2"
	"   AND decision IN ('approve', 'reject', 'request_changes')"
	" ORDER BY id DESC LIMIT 1",
	2, {INT8OID, TEXTOID}
};

/*
 * Is this call the repetition of the actor's last vote on the request?  An
 * application that lost the reply to its COMMIT retries; the vote is
 * recorded, so the answer is the request's current state, whatever happened
 * since (the stage moved on, the request closed).  Asked only when the call
 * could not record anything.
 */
bool
engine_repeats_last_vote(Req *r, const char *decision)
{
	Datum		args[2];

	args[0] = Int64GetDatum(r->id);
	args[1] = CStringGetTextDatum(r->actor.id);
	return approval_exec(&last_vote_plan, args, NULL, false, 1) == 1 &&
		strcmp(approval_gettext(0, 1), decision) == 0;
}

/* Whoever votes or comments (and for whom) may see the request from now on */
static void
voter_hears(Req *r, const char *on_behalf)
{
	request_add_audience(r, psprintf("voter:%s", r->actor.id));
	if (on_behalf != NULL)
		request_add_audience(r, psprintf("voter:%s", on_behalf));
}

/*
 * Record one vote at one stage, in the capacity eligibility.c chose.
 * Returns false when the same vote was already there (a no-op); raises
 * AP004 for a contradicting one.
 */
bool
engine_record_vote(Req *r, Eligible *e, const char *decision, const char *reason,
			const char *comment)
{
	StageRow   *s = e->stage;
	const char *voter = e->set->principal;
	const char *on_behalf = e->set->delegated ? e->set->principal : NULL;
	bool		approve = strcmp(decision, "approve") == 0;
	const char *denial = (!approve && s->def) ? s->def->denial_message : NULL;
	Datum		v[9];
	char		n[9];
	ApprovalJson j;

	memset(n, ' ', sizeof(n));
	v[0] = Int64GetDatum(r->id);
	v[1] = CStringGetTextDatum(s->stage);
	v[2] = CStringGetTextDatum(r->actor.id);
	v[3] = text_or_null(on_behalf, &n[3]);
	v[4] = CStringGetTextDatum(decision);
	v[5] = text_or_null(reason, &n[5]);
	v[6] = text_or_null(comment, &n[6]);
	v[7] = text_or_null(denial, &n[7]);
	v[8] = Int32GetDatum(s->round);
	if (approval_exec(&insert_vote_plan, v, n, false, 0) == 0)
	{
		/* this principal already voted at this stage in this round */
		Datum		q[4];
		char	   *before;

		q[0] = v[0];
		q[1] = v[1];
		q[2] = v[8];
		q[3] = CStringGetTextDatum(voter);
		if (approval_exec(&existing_vote_plan, q, NULL, false, 1) != 1)
			elog(ERROR, "the vote of %s at stage \"%s\" of request %lld conflicted but cannot be found",
				 voter, s->stage, (long long) r->id);
		before = approval_gettext(0, 1);
		if (strcmp(before, decision) == 0)
			return false;
		ereport(ERROR,
				(errcode(ERRCODE_AP_ALREADY_DECIDED),
				 errmsg("%s already voted %s at stage \"%s\" of request %lld",
						voter, before, s->stage, (long long) r->id),
				 errdetail("A vote cannot be changed."),
				 errhint("Add a comment with approval.comment() to explain a change of mind.")));
	}

	if (approve)
		s->approvals++;
	else
		s->rejections++;
	s->dirty = true;
	voter_hears(r, on_behalf);

	aj_init(&j);
	aj_str(&j, "stage", s->stage);
	aj_str(&j, "decision", decision);
	aj_str(&j, "on_behalf_of", on_behalf);
	aj_str(&j, "reason", reason);
	aj_int(&j, "approvals", s->approvals);
	aj_int(&j, "rejections", s->rejections);
	aj_int(&j, "required", s->required);
	if (r->token != NULL)
		aj_str(&j, "token", r->token);	/* cast by redeeming it (token.c) */
	request_event(r, "voted", aj_finish(&j), s->stage, NIL);

	if (approve)
		quorum_check(r, s);
	else if (s->rejections >= s->reject_required)
		engine_stage_rejected(r, s, reason, denial);
	return true;
}

/*
 * AP004 when the capacity already voted (approve or reject) at the stage in
 * this round: asking for changes after one's own vote contradicts it.
 */
void
engine_require_no_vote(Req *r, Eligible *e, const char *decision)
{
	Datum		q[4];
	char	   *before;

	q[0] = Int64GetDatum(r->id);
	q[1] = CStringGetTextDatum(e->stage->stage);
	q[2] = Int32GetDatum(e->stage->round);
	q[3] = CStringGetTextDatum(e->set->principal);
	if (approval_exec(&existing_vote_plan, q, NULL, false, 1) == 0)
		return;
	before = approval_gettext(0, 1);
	ereport(ERROR,
			(errcode(ERRCODE_AP_ALREADY_DECIDED),
			 errmsg("%s already voted %s at stage \"%s\" of request %lld",
					e->set->principal, before, e->stage->stage, (long long) r->id),
			 errdetail("A %s contradicts it; a vote cannot be changed.", decision),
			 errhint("Add a comment with approval.comment() to explain a change of mind.")));
}

static ApprovalPlan insert_note_plan = {
	"INSERT INTO approval.decision (request_id, stage, actor, on_behalf_of, decision, comment, round)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7)",
	7, {INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID}
};

void
engine_record_note(Req *r, StageRow *s, const char *on_behalf, const char *decision, const char *comment)
{
	Datum		v[7];
	char		n[7];

	memset(n, ' ', sizeof(n));
	v[0] = Int64GetDatum(r->id);
	v[1] = text_or_null(s ? s->stage : NULL, &n[1]);
	v[2] = CStringGetTextDatum(r->actor.id);
	v[3] = text_or_null(on_behalf, &n[3]);
	v[4] = CStringGetTextDatum(decision);
	v[5] = text_or_null(comment, &n[5]);
	v[6] = Int32GetDatum(s ? s->round : 1);
	approval_exec(&insert_note_plan, v, n, false, 0);
	voter_hears(r, on_behalf);
}


/* ---------- the admin tools (DESIGN §10; admin.c calls them) ---------- */

static ApprovalPlan insert_override_plan = {
	"INSERT INTO approval.decision (request_id, stage, actor, decision, reason, round, override)"
	" VALUES ($1, NULL, $2, $3, $4, 1, true)",
	4, {INT8OID, TEXTOID, TEXTOID, TEXTOID}
};

/*
 * An admin decides the open request outright: a decision row of the admin
 * marked as an override, then the same close as a last vote's or a
 * rejection's (engine_finish), whose terminal event says it was an
 * override.
 */
void
engine_override(Req *r, bool approve, const char *reason)
{
	Datum		v[4];

	v[0] = Int64GetDatum(r->id);
	v[1] = CStringGetTextDatum(r->actor.id);
	v[2] = CStringGetTextDatum(approve ? "approve" : "reject");
	v[3] = CStringGetTextDatum(reason);
	approval_exec(&insert_override_plan, v, NULL, false, 0);
	voter_hears(r, NULL);
	r->override_reason = reason;
	engine_finish(r, approve, reason, NULL);
}

/* "strings" with "from" replaced by "to" (once, where "from" was) */
static List *
replace_target(List *strings, const char *from, const char *to)
{
	List	   *result = NIL;
	bool		has_to = approval_list_has(strings, to);
	ListCell   *lc;

	foreach(lc, strings)
	{
		char	   *t = lfirst(lc);

		if (strcmp(t, from) != 0)
			result = lappend(result, t);
		else if (!has_to)
			result = lappend(result, pstrdup(to));
	}
	return result;
}

/*
 * Target "from" of stage s (waiting or active) becomes "to" (resolved).
 * The votes cast stay; an active stage's voters are those of its new
 * targets (request.c rewrites its pending_vote rows), an "all" quorum
 * counts its new targets, and a quorum the votes already meet approves the
 * stage.  Whoever the new target stands for sees the request; the old
 * target keeps seeing it (it was a target).
 */
void
engine_reassign(Req *r, StageRow *s, const char *from, const char *to, const char *reason)
{
	bool		active = (s->state == STAGE_ACTIVE);
	bool		was_added = approval_list_has(s->added_targets, from);
	ApprovalJson j;

	s->targets = replace_target(s->targets, from, to);
	if (was_added)
		s->added_targets = replace_target(s->added_targets, from, to);
	else
	{
		/* "to" stands for an own target now, not an escalation's */
		List	   *kept = NIL;
		ListCell   *lc;

		foreach(lc, s->added_targets)
			if (strcmp(lfirst(lc), to) != 0)
				kept = lappend(kept, lfirst(lc));
		s->added_targets = kept;
	}
	s->dirty = true;
	request_add_audience(r, to);
	if (active)
	{
		s->targets_changed = true;
		if (s->def != NULL && s->def->min_approvals == 0)
			s->required = Max(approval_count_principals(own_targets(s)), 1);
	}

	aj_init(&j);
	aj_str(&j, "stage", s->stage);
	aj_str(&j, "from", from);
	aj_str(&j, "to", to);
	aj_str(&j, "reason", reason);
	if (active)
		aj_int(&j, "required", s->required);
	request_event(r, "reassigned", aj_finish(&j), s->stage,
				  active && r->state == REQUEST_PENDING ? list_make1(pstrdup(to)) : NIL);

	if (active && r->state == REQUEST_PENDING && quorum_check(r, s))
		engine_advance(r);
}

/*
 * The request is handed to requester "to".  The previous requester keeps
 * seeing it (they made it: "voter:<id>" in its audience); self-approval is
 * judged against the new one from now on (request.c rewrites the
 * pending_vote rows, which copy the requester).
 */
void
engine_transfer(Req *r, const char *to, const char *reason)
{
	const char *from = r->requester;
	ApprovalJson j;

	request_add_audience(r, psprintf("voter:%s", from));
	r->requester = pstrdup(to);
	r->requester_changed = true;
	r->vars = NULL;				/* $requester of conditions is the new one */
	r->dirty = true;

	aj_init(&j);
	aj_str(&j, "from", from);
	aj_str(&j, "to", to);
	aj_str(&j, "reason", reason);
	request_event(r, "transferred", aj_finish(&j), NULL, NIL);
}
