/*-------------------------------------------------------------------------
 *
 * timer.c
 *	  Deadlines (DESIGN §6): SLA warning and breach, escalation, stage
 *	  timeouts and expiry — when each is due, and what firing it does.
 *	  The one home of these rules.
 *
 * timer_plan() runs in request_save() after every change, whoever made it:
 * it sets the deadlines a change starts (a submit, a stage activated), stops
 * (a request closed, a stage decided) or moves (the SLA clock pausing while
 * the request waits on its requester, and resuming at resubmit), and keeps
 * next_due, the earliest deadline that can fire, which approval.tick()
 * looks for through an index (tick.c).  timer_fire_next() fires the
 * earliest deadline due at the Req's time, through the transitions of
 * engine.c, and timer_defer() puts off one whose firing failed; the caller
 * saves the Req like any other change.
 *
 * The clocks: "sla", "escalate_after"/"escalate_every" and stage
 * "timeout" run on the workflow's business calendar when it names one
 * (calendar.c), else on the wall clock; "expires_after" always on the wall
 * clock.  While a request is changes_requested, the SLA clock stops (unless
 * "sla_pause" is "never") and so does escalation — nobody but the requester
 * can act — and stage timeouts wait: resubmit restarts the stage and its
 * timeout.  Expiry never waits.
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include "utils/datetime.h"

/* ---------- the clocks ---------- */

/* timestamptz + interval, as in SQL */
static TimestampTz
wall_add(TimestampTz start, const Interval *amount)
{
	return DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
												   TimestampTzGetDatum(start),
												   IntervalPGetDatum(amount)));
}

static TimestampTz
clock_add(Req *r, TimestampTz start, const Interval *amount)
{
	Interval	rest;

	if (r->wf->calendar == NULL)
		return wall_add(start, amount);
	if (amount->month != 0)
	{
		/*
		 * Months have no business meaning; 0.4.0 refuses them on a calendar,
		 * but a version stored before may have them: calendar months first,
		 * then the rest in business time.
		 */
		Interval	months = {0};

		months.month = amount->month;
		start = wall_add(start, &months);
		rest = *amount;
		rest.month = 0;
		amount = &rest;
	}
	return approval_business_add(r->wf->calendar, start, amount);
}

/* Business (or wall-clock) microseconds in [since, until) */
static int64
clock_elapsed(Req *r, TimestampTz since, TimestampTz until)
{
	if (r->wf->calendar != NULL)
		return approval_business_elapsed(r->wf->calendar, since, until);
	return until - since;
}

/* clock_add of a number of microseconds of (business) time */
static TimestampTz
clock_add_us(Req *r, TimestampTz start, int64 us)
{
	Interval	iv = {0};

	iv.time = Max(us, 0);
	return clock_add(r, start, &iv);
}

/*
 * A deadline set before a pause of the clock, moved by the (business) time
 * the pause lasted: what was left of it at the pause is left from now.
 */
static TimestampTz
clock_resume(Req *r, TimestampTz deadline, TimestampTz paused_at)
{
	if (deadline == NO_DEADLINE)
		return deadline;
	return clock_add_us(r, r->now, clock_elapsed(r, paused_at, deadline));
}

/* ---------- what is due when ---------- */

static bool
sla_running(Req *r)
{
	return r->state == REQUEST_PENDING ||
		(r->state == REQUEST_CHANGES_REQUESTED && !r->wf->sla_pauses);
}

/* When a deadline of the request can fire (NO_DEADLINE: it cannot) */
static TimestampTz
due_time(Req *r, DueKind kind, StageRow *s)
{
	switch (kind)
	{
		case DUE_WARNING:
			if (sla_running(r) && r->t.sla_state == SLA_ON_TRACK)
				return r->t.warn_at;
			break;
		case DUE_BREACH:
			if (sla_running(r) && (r->t.sla_state == SLA_ON_TRACK ||
								   r->t.sla_state == SLA_WARNING))
				return r->t.due_at;
			break;
		case DUE_ESCALATION:
			if (r->state == REQUEST_PENDING)
				return r->t.escalate_at;
			break;
		case DUE_EXPIRY:
			if (request_is_open(r->state))
				return r->t.expires_at;
			break;
		case DUE_TIMEOUT:
			if (r->state == REQUEST_PENDING && s->state == STAGE_ACTIVE)
				return s->timeout_at;
			break;
		case DUE_NONE:
			break;
	}
	return NO_DEADLINE;
}

/* The earliest deadline that can fire; *kind and *stage say which */
static TimestampTz
earliest(Req *r, DueKind *kind, StageRow **stage)
{
	static const DueKind request_kinds[] = {DUE_WARNING, DUE_BREACH, DUE_ESCALATION, DUE_EXPIRY};
	TimestampTz best = NO_DEADLINE;

	*kind = DUE_NONE;
	*stage = NULL;
	/* in this order at equal times: a warning before its breach */
	for (int k = 0; k < (int) lengthof(request_kinds); k++)
	{
		TimestampTz t = due_time(r, request_kinds[k], NULL);

		if (t < best)
		{
			best = t;
			*kind = request_kinds[k];
		}
	}
	for (int i = 0; i < r->nstages; i++)
	{
		TimestampTz t = due_time(r, DUE_TIMEOUT, &r->stages[i]);

		if (t < best)
		{
			best = t;
			*kind = DUE_TIMEOUT;
			*stage = &r->stages[i];
		}
	}
	return best;
}

/* ---------- keeping the deadlines ---------- */

static void
plan_new(Req *r)
{
	WorkflowDef *wf = r->wf;
	TimestampTz start = r->submitted_at;

	r->t.due_at = r->t.warn_at = r->t.escalate_at = r->t.expires_at = NO_DEADLINE;
	r->t.paused_at = r->t.next_due = NO_DEADLINE;
	r->t.sla_state = SLA_NONE;
	r->t.started = true;
	if (wf->sla != NULL)
	{
		r->t.sla_state = SLA_ON_TRACK;
		r->t.due_at = clock_add(r, start, wf->sla);
		/* the warning comes at that fraction of the SLA's (business) time */
		if (wf->sla_warning > 0)
			r->t.warn_at = clock_add_us(r, start,
										(int64) (clock_elapsed(r, start, r->t.due_at) *
												 wf->sla_warning));
	}
	/* (a version stored before 0.4.0 may lack escalate_to: no escalation) */
	if (wf->escalate_after != NULL && wf->escalate_to != NULL)
		r->t.escalate_at = clock_add(r, start, wf->escalate_after);
	if (wf->expires_after != NULL)
		r->t.expires_at = wall_add(start, wf->expires_after);
}

/*
 * Bring the deadlines up to date with the changes made to the Req, and
 * compute next_due.  Called by request_save() (and by timer_fire_next()
 * before it fires); doing it twice at the same time changes nothing.
 */
void
timer_plan(Req *r)
{
	DueKind		kind;
	StageRow   *stage;
	TimestampTz next;

	if (r->is_new && !r->t.started)
		plan_new(r);

	/* the clocks stop while the request waits on its requester ... */
	if (r->state == REQUEST_CHANGES_REQUESTED && r->t.paused_at == NO_DEADLINE)
		r->t.paused_at = r->now;
	/* ... and go on at resubmit with what was left */
	if (r->state == REQUEST_PENDING && r->t.paused_at != NO_DEADLINE)
	{
		if (r->wf->sla_pauses)
		{
			if (r->t.sla_state == SLA_ON_TRACK)
				r->t.warn_at = clock_resume(r, r->t.warn_at, r->t.paused_at);
			if (r->t.sla_state == SLA_ON_TRACK || r->t.sla_state == SLA_WARNING)
				r->t.due_at = clock_resume(r, r->t.due_at, r->t.paused_at);
		}
		r->t.escalate_at = clock_resume(r, r->t.escalate_at, r->t.paused_at);
		r->t.paused_at = NO_DEADLINE;
	}
	/* escalate_max counts every escalation, by timeouts too */
	if (r->wf->escalate_max > 0 && r->t.escalations >= r->wf->escalate_max)
		r->t.escalate_at = NO_DEADLINE;
	if (!request_is_open(r->state))
	{
		/* closed: nothing more fires; due_at and sla_state stay for reports */
		r->t.warn_at = r->t.escalate_at = r->t.expires_at = r->t.paused_at = NO_DEADLINE;
	}

	/* a stage's timeout runs from its activation while it is active */
	for (int i = 0; i < r->nstages; i++)
	{
		StageRow   *s = &r->stages[i];
		TimestampTz t = s->timeout_at;

		if (s->state != STAGE_ACTIVE)
			t = NO_DEADLINE;
		else if (s->activated_now && !s->timeout_planned)
		{
			t = (s->def != NULL && s->def->timeout != NULL)
				? clock_add(r, r->now, s->def->timeout) : NO_DEADLINE;
			s->timeout_planned = true;
		}
		if (t != s->timeout_at)
		{
			s->timeout_at = t;
			s->dirty = true;
		}
	}

	next = earliest(r, &kind, &stage);
	if (next != r->t.next_due)
	{
		r->t.next_due = next;
		r->dirty = true;
		if (next != NO_DEADLINE)
			approval_worker_hint(next);
	}
}

/* ---------- firing ---------- */

static char *
time_text(TimestampTz t)
{
	return DatumGetCString(DirectFunctionCall1(timestamptz_out, TimestampTzGetDatum(t)));
}

/*
 * Escalate: the workflow's escalate_to target joins the targets of the
 * active stage "only" (a stage timeout) or of every active stage.
 */
static void
escalate(Req *r, StageRow *only, const char *by)
{
	StageDef	def = {0};
	char	   *target;
	List	   *stages = NIL;
	ApprovalJson j;

	if (r->wf->escalate_to == NULL)		/* a version stored before 0.4.0 */
		ereport(ERROR,
				(errcode(ERRCODE_AP_INVALID_DEFINITION),
				 errmsg("workflow \"%s\" version %d escalates but has no \"escalate_to\"",
						r->wf->name, r->wf->version),
				 errhint("Define a new version with \"escalate_to\"; requests keep the version they started with.")));
	def.name = only ? only->stage : "escalate_to";
	def.approvers = list_make1(r->wf->escalate_to);
	target = linitial(approval_resolve_targets(r->requester, &def));

	for (int i = 0; i < r->nstages; i++)
	{
		StageRow   *s = &r->stages[i];
		if (s->state != STAGE_ACTIVE || (only != NULL && s != only))
			continue;
		if (!approval_list_has(s->targets, target))
		{
			s->targets = lappend(s->targets, target);
			s->added_targets = lappend(s->added_targets, target);
			s->targets_changed = true;
			s->dirty = true;
		}
		stages = lappend(stages, s->stage);
	}
	request_add_audience(r, target);
	r->t.escalations++;

	aj_init(&j);
	aj_str(&j, "by", by);
	aj_int(&j, "escalations", r->t.escalations);
	aj_str(&j, "target", target);
	aj_list(&j, "stages", stages);
	request_event(r, "escalated", aj_finish(&j), only ? only->stage : NULL, list_make1(target));
}

/* The next escalation after one that was due at "was" (timer_plan caps them) */
static void
plan_next_escalation(Req *r, TimestampTz was)
{
	WorkflowDef *wf = r->wf;

	r->t.escalate_at = NO_DEADLINE;
	if (wf->escalate_every == NULL)
		return;
	r->t.escalate_at = clock_add(r, was, wf->escalate_every);
	/* a tick that comes late fires one escalation, not all it missed */
	if (r->t.escalate_at <= r->now)
		r->t.escalate_at = clock_add(r, r->now, wf->escalate_every);
}

static void
sla_event(Req *r, const char *kind)
{
	ApprovalJson j;

	aj_init(&j);
	aj_str(&j, "due_at", time_text(r->t.due_at));
	request_event(r, kind, aj_finish(&j), NULL, NIL);
}

static void
fire_timeout(Req *r, StageRow *s)
{
	const char *action = s->def ? s->def->on_timeout : "expire";

	s->timeout_at = NO_DEADLINE;
	s->dirty = true;
	if (strcmp(action, "approve") == 0)
	{
		engine_stage_approved(r, s, "timeout");
		engine_advance(r);
	}
	else if (strcmp(action, "reject") == 0)
		engine_stage_rejected(r, s, "timeout", s->def ? s->def->denial_message : NULL);
	else if (strcmp(action, "escalate") == 0)
		escalate(r, s, "timeout");
	else
		engine_expire(r, s, "timeout");
}

/*
 * Fire the earliest deadline of the request that is due at r->now, and say
 * which it was in *which (so that tick.c can put it off when firing it
 * fails).  False when nothing is due.
 */
bool
timer_fire_next(Req *r, TimerDue *which)
{
	StageRow   *s;
	TimestampTz due;

	timer_plan(r);
	due = earliest(r, &which->kind, &s);
	which->stage[0] = '\0';
	if (s != NULL)
		strlcpy(which->stage, s->stage, sizeof(which->stage));
	if (due == NO_DEADLINE || due > r->now)
		return false;
	switch (which->kind)
	{
		case DUE_WARNING:
			r->t.sla_state = SLA_WARNING;
			sla_event(r, "sla_warning");
			break;
		case DUE_BREACH:
			r->t.sla_state = SLA_BREACHED;
			sla_event(r, "sla_breached");
			break;
		case DUE_ESCALATION:
			escalate(r, NULL, "escalate_after");
			plan_next_escalation(r, due);
			break;
		case DUE_EXPIRY:
			engine_expire(r, NULL, "expires_after");
			break;
		case DUE_TIMEOUT:
			fire_timeout(r, s);
			break;
		case DUE_NONE:
			break;
	}
	r->dirty = true;
	r->t.fired = true;
	return true;
}

/*
 * Put off one deadline whose firing failed until "until", so that it is
 * tried again then and the request's other deadlines fire meanwhile.
 */
void
timer_defer(Req *r, const TimerDue *which, TimestampTz until)
{
	switch (which->kind)
	{
		case DUE_WARNING:
			r->t.warn_at = until;
			break;
		case DUE_BREACH:
			r->t.due_at = until;
			break;
		case DUE_ESCALATION:
			r->t.escalate_at = until;
			break;
		case DUE_EXPIRY:
			r->t.expires_at = until;
			break;
		case DUE_TIMEOUT:
			for (int i = 0; i < r->nstages; i++)
				if (strcmp(r->stages[i].stage, which->stage) == 0)
				{
					r->stages[i].timeout_at = until;
					r->stages[i].dirty = true;
				}
			break;
		case DUE_NONE:
			break;
	}
	r->dirty = true;
	timer_plan(r);
}
