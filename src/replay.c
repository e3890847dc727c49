/*-------------------------------------------------------------------------
 *
 * replay.c
 *	  What a request's rows must say, from its events alone.
 *
 * verify_audit() (audit.c) checks the hash chain of each request's events,
 * but the chain covers the events only: the request, its stages and its
 * decisions are plain rows that a superuser can edit without breaking it.
 * This file folds a request's events, in seq order and using only what the
 * chain covers (kind, actor, at, data), into the rows the engine must have
 * written for them, and compares those with the rows there are: the
 * request's state, requester, workflow version, title, subject, created_at,
 * decided_at and escalations; that its stage rows are those of its workflow
 * version's definition (a stage no event names yet has only that); each stage's
 * state, round, targets, required count, approvals and rejections, and
 * when it was activated and decided; and one decision row for each vote,
 * request for changes and comment.  The events' unhashed columns (state)
 * are compared too.
 *
 * Times are compared for the changes an actor made, whose rows carry the
 * transaction's start like the events; a change of the timer carries the
 * tick's "at", which the events do not record.
 *
 * The rules mirror engine.c's transitions (stage activation, closing,
 * resubmission); a change to those is a change here.
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"
#include "replay.h"

#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#define MAX_PROBLEMS 5

/* ---------- reading event data ---------- */

static JsonbValue *
jget(Jsonb *data, const char *key)
{
	JsonbValue	k;

	if (data == NULL || !JB_ROOT_IS_OBJECT(data))
		return NULL;
	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(&data->root, JB_FOBJECT, &k);
}

static char *
jget_str(Jsonb *data, const char *key)
{
	JsonbValue *v = jget(data, key);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

static int
jget_int(Jsonb *data, const char *key, int dflt)
{
	JsonbValue *v = jget(data, key);

	if (v == NULL || v->type != jbvNumeric)
		return dflt;
	return DatumGetInt32(DirectFunctionCall1(numeric_int4, NumericGetDatum(v->val.numeric)));
}

/* A JSON array of strings as a List of C strings (NIL when absent) */
static List *
jget_list(Jsonb *data, const char *key)
{
	JsonbValue *v = jget(data, key);
	List	   *out = NIL;
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken tok;

	if (v == NULL || v->type != jbvBinary)
		return NIL;
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
		if (tok == WJB_ELEM && e.type == jbvString)
			out = lappend(out, pnstrdup(e.val.string.val, e.val.string.len));
	return out;
}

static bool
streq_null(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* ---------- problems ---------- */

static void
problem(Replay *rp, const char *fmt,...) pg_attribute_printf(2, 3);

static void
problem(Replay *rp, const char *fmt,...)
{
	va_list		ap;

	rp->nproblems++;
	if (rp->nproblems > MAX_PROBLEMS)
		return;
	if (rp->problems.len > 0)
		appendStringInfoString(&rp->problems, "; ");
	for (;;)
	{
		int			needed;

		va_start(ap, fmt);
		needed = appendStringInfoVA(&rp->problems, fmt, ap);
		va_end(ap);
		if (needed == 0)
			break;
		enlargeStringInfo(&rp->problems, needed);
	}
}

static const char *
time_str(TimestampTz t)
{
	return t == 0 ? "none" : timestamptz_to_str(t);
}

/* ---------- folding the events ---------- */

void
replay_begin(Replay *rp, int64 request_id)
{
	memset(rp, 0, sizeof(*rp));
	rp->request_id = request_id;
	rp->version = -1;
	initStringInfo(&rp->problems);
}

static ReplayStage *
stage_of(Replay *rp, const char *name)
{
	ListCell   *lc;
	ReplayStage *s;

	if (name == NULL)
		return NULL;
	foreach(lc, rp->stages)
	{
		s = lfirst(lc);
		if (strcmp(s->stage, name) == 0)
			return s;
	}
	/* a stage no event named yet waits, in the round resubmissions left it */
	s = palloc0(sizeof(ReplayStage));
	s->stage = pstrdup(name);
	s->state = "waiting";
	s->round = 1 + rp->restarts;
	s->required = -1;
	s->decided_known = true;
	if (rp->auto_approved)
	{
		/* approved at submit: every stage was skipped, without events */
		s->state = "skipped";
		s->decided_at = rp->auto_approved_at;
	}
	rp->stages = lappend(rp->stages, s);
	return s;
}

static void
stage_decided(ReplayStage *s, const char *state, const char *actor, TimestampTz at)
{
	s->state = state;
	s->decided_at = at;
	s->decided_known = (actor != NULL);
}

/* The request closes: the stages listed in "cancelled_stages" with it */
static void
request_closed(Replay *rp, const char *state, const char *actor, TimestampTz at, Jsonb *data)
{
	ListCell   *lc;

	rp->state = state;
	rp->decided_at = at;
	rp->decided_known = (actor != NULL);
	foreach(lc, jget_list(data, "cancelled_stages"))
		stage_decided(stage_of(rp, lfirst(lc)), "cancelled", actor, at);
}

/* A decision row the events call for */
static void
expect_decision(Replay *rp, const char *decision, const char *stage, int round,
				const char *actor, const char *on_behalf_of, bool override,
				const char *reason, const char *comment)
{
	rp->expected = lappend(rp->expected,
						   replay_decision_key(decision, stage, round, actor, on_behalf_of,
											   override, reason, comment));
}

static bool
jget_bool(Jsonb *data, const char *key)
{
	JsonbValue *v = jget(data, key);

	return v != NULL && v->type == jbvBool && v->val.boolean;
}

/* replace_target() of engine.c: "from" replaced by "to", once, where it was */
static List *
replaced(List *targets, const char *from, const char *to)
{
	List	   *out = NIL;
	ListCell   *lc;
	bool		done = false;

	foreach(lc, targets)
	{
		if (!done && strcmp(lfirst(lc), from) == 0)
		{
			if (!approval_list_has(out, to))
				out = lappend(out, pstrdup(to));
			done = true;
		}
		else if (!approval_list_has(out, lfirst(lc)))
			out = lappend(out, lfirst(lc));
	}
	return out;
}

/*
 * What identifies a decision row, as far as the events record it: a vote's
 * and an override's reason (not a vote's comment, which no event keeps), the
 * text of a comment and of a request for changes (not for whom a delegate
 * asked for changes).
 */
char *
replay_decision_key(const char *decision, const char *stage, int round,
					const char *actor, const char *on_behalf_of, bool override,
					const char *reason, const char *comment)
{
	StringInfoData buf;
	bool		note = (strcmp(decision, "comment") == 0 ||
						strcmp(decision, "request_changes") == 0);
	const char *text = note ? comment : reason;

	initStringInfo(&buf);
	if (override)
		appendStringInfo(&buf, "override %s by %s", decision, actor ? actor : "?");
	else if (strcmp(decision, "comment") == 0)
		appendStringInfo(&buf, "comment by %s", actor ? actor : "?");
	else if (strcmp(decision, "request_changes") == 0)
		appendStringInfo(&buf, "request_changes by %s at %s (round %d)", actor ? actor : "?",
						 stage ? stage : "?", round);
	else
		appendStringInfo(&buf, "%s by %s%s%s at %s (round %d)", decision, actor ? actor : "?",
						 on_behalf_of ? " for " : "", on_behalf_of ? on_behalf_of : "",
						 stage ? stage : "?", round);
	if (text != NULL)
	{
		appendStringInfo(&buf, " %s ", note ? "comment" : "reason");
		escape_json(&buf, text);
	}
	return buf.data;
}

void
replay_event(Replay *rp, int64 seq, const char *kind, const char *actor,
			 TimestampTz at, Jsonb *data, const char *stored_state)
{
	ReplayStage *s = stage_of(rp, jget_str(data, "stage"));

	rp->events++;
	if (rp->events == 1 && strcmp(kind, "submitted") != 0)
		problem(rp, "its first event (seq " INT64_FORMAT ") is %s, not submitted", seq, kind);

	if (strcmp(kind, "submitted") == 0)
	{
		rp->state = "pending";
		rp->requester = actor ? pstrdup(actor) : NULL;
		rp->workflow = jget_str(data, "workflow");
		rp->version = jget_int(data, "version", -1);
		rp->submitted_at = at;
		rp->has_title = jget(data, "title") != NULL;
		rp->title = jget_str(data, "title");
		rp->has_subject = jget(data, "subject") != NULL;
		rp->subject = jget_str(data, "subject");
	}
	else if (strcmp(kind, "stage_activated") == 0 && s != NULL)
	{
		s->state = "active";
		s->round = jget_int(data, "round", s->round);
		s->required = jget_int(data, "required", -1);
		s->targets = jget_list(data, "targets");
		s->approvals = 0;
		s->rejections = 0;
		s->activated_at = at;
		s->activated_known = (actor != NULL);
		s->decided_at = 0;
		s->decided_known = true;
	}
	else if (strcmp(kind, "stage_skipped") == 0 && s != NULL)
		stage_decided(s, "skipped", actor, at);
	else if (strcmp(kind, "voted") == 0 && s != NULL)
	{
		char	   *decision = jget_str(data, "decision");

		s->approvals = jget_int(data, "approvals", s->approvals);
		s->rejections = jget_int(data, "rejections", s->rejections);
		if (decision != NULL)
			expect_decision(rp, decision, s->stage, s->round, actor,
							jget_str(data, "on_behalf_of"), false,
							jget_str(data, "reason"), NULL);
	}
	else if (strcmp(kind, "stage_approved") == 0 && s != NULL)
		stage_decided(s, "approved", actor, at);
	else if (strcmp(kind, "stage_rejected") == 0 && s != NULL)
		stage_decided(s, "rejected", actor, at);
	else if (strcmp(kind, "approved") == 0 || strcmp(kind, "rejected") == 0 ||
			 strcmp(kind, "cancelled") == 0)
	{
		request_closed(rp, kind, actor, at, data);
		/* an admin's override: its decision row; approve even if it conflicted */
		if (jget_bool(data, "override"))
			expect_decision(rp, (strcmp(kind, "approved") == 0 || jget_bool(data, "conflict"))
							? "approve" : "reject", NULL, 0, actor, NULL, true,
							jget_str(data, "reason"), NULL);
	}
	else if (strcmp(kind, "reassigned") == 0 && s != NULL)
	{
		char	   *from = jget_str(data, "from");
		char	   *to = jget_str(data, "to");

		if (from != NULL && to != NULL)
			s->targets = replaced(s->targets, from, to);
		if (jget(data, "required") != NULL)
			s->required = jget_int(data, "required", -1);
	}
	else if (strcmp(kind, "transferred") == 0)
		rp->requester = jget_str(data, "to");
	else if (strcmp(kind, "expired") == 0)
	{
		if (s != NULL)
			stage_decided(s, "expired", actor, at);
		request_closed(rp, "expired", actor, at, data);
	}
	else if (strcmp(kind, "changes_requested") == 0)
	{
		rp->state = "changes_requested";
		expect_decision(rp, "request_changes", s ? s->stage : NULL, s ? s->round : 1, actor,
						NULL, false, NULL, jget_str(data, "comment"));
	}
	else if (strcmp(kind, "resubmitted") == 0)
	{
		char	   *reapprove = jget_str(data, "reapprove");
		ListCell   *lc;

		rp->state = "pending";
		/* "all": every stage waits again, in a new round (engine.c) */
		if (reapprove != NULL && strcmp(reapprove, "all") == 0)
		{
			rp->restarts++;
			foreach(lc, rp->stages)
			{
				ReplayStage *st = lfirst(lc);

				st->state = "waiting";
				st->round++;
				st->approvals = 0;
				st->rejections = 0;
				st->required = -1;
				st->decided_at = 0;
				st->decided_known = true;
			}
		}
	}
	else if (strcmp(kind, "commented") == 0)
		expect_decision(rp, "comment", NULL, 0, actor, NULL, false, NULL,
						jget_str(data, "comment"));
	else if (strcmp(kind, "escalated") == 0)
	{
		char	   *target = jget_str(data, "target");
		ListCell   *lc;

		rp->escalations++;
		foreach(lc, jget_list(data, "stages"))
		{
			ReplayStage *st = stage_of(rp, lfirst(lc));

			if (target != NULL && !approval_list_has(st->targets, target))
				st->targets = lappend(st->targets, target);
		}
	}
	else if (strcmp(kind, "auto_approved") == 0)
	{
		ListCell   *lc;

		rp->state = "approved";	/* the "approved" event follows */
		rp->auto_approved = true;
		rp->auto_approved_at = at;
		foreach(lc, rp->stages)
			stage_decided(lfirst(lc), "skipped", actor, at);
	}
	/* quorum_satisfied, sla_warning, sla_breached: no row of their own changes */

	if (stored_state != NULL && rp->state != NULL && strcmp(stored_state, rp->state) != 0)
		problem(rp, "event " INT64_FORMAT " (%s) says the request became %s, its events say %s",
				seq, kind, stored_state, rp->state);
}

/* ---------- comparing ---------- */

void
replay_check_request(Replay *rp, const ReplayRequestRow *row)
{
	if (rp->events == 0)
	{
		problem(rp, "it has no events: its log was removed");
		return;
	}
	if (!streq_null(row->state, rp->state))
		problem(rp, "its state is %s, its events say %s", row->state, rp->state);
	if (!streq_null(row->requester, rp->requester))
		problem(rp, "its requester is %s, its events say %s", row->requester,
				rp->requester ? rp->requester : "none");
	if (rp->workflow != NULL && !streq_null(row->workflow, rp->workflow))
		problem(rp, "its workflow is %s, its events say %s", row->workflow, rp->workflow);
	if (row->escalations != rp->escalations)
		problem(rp, "it counts %d escalations, its events %d", row->escalations, rp->escalations);
	if (rp->decided_at == 0 ? row->decided_at != 0 :
		(rp->decided_known && row->decided_at != rp->decided_at))
		problem(rp, "it was decided at %s, its events say %s",
				time_str(row->decided_at), time_str(rp->decided_at));
	if (rp->has_title && !streq_null(row->title, rp->title))
		problem(rp, "its title is %s, its events say %s", row->title ? row->title : "none",
				rp->title ? rp->title : "none");
	if (rp->has_subject && !streq_null(row->subject, rp->subject))
		problem(rp, "its subject is %s, its events say %s", row->subject ? row->subject : "none",
				rp->subject ? rp->subject : "none");
	if (rp->submitted_at != 0 && row->created_at != rp->submitted_at)
		problem(rp, "it was submitted at %s, its events say %s",
				time_str(row->created_at), time_str(rp->submitted_at));

	/* its workflow version, whose stages its stage rows must be */
	if (row->def_workflow == NULL)
	{
		problem(rp, "its workflow_id names no workflow version");
		return;
	}
	if (rp->version >= 0 && rp->workflow != NULL &&
		(strcmp(row->def_workflow, rp->workflow) != 0 || row->def_version != rp->version))
		problem(rp, "it is of workflow %s version %d, its events say %s version %d",
				row->def_workflow, row->def_version, rp->workflow, rp->version);
	rp->has_def = true;
	rp->def_workflow = row->def_workflow;
	rp->def_version = row->def_version;
	rp->def_names = row->def_names;
	rp->def_idx = row->def_idx;
	rp->def_orders = row->def_orders;
	rp->def_seen = NIL;
	for (int i = 0; i < list_length(rp->def_names); i++)
		rp->def_seen = lappend_int(rp->def_seen, 0);
}

static bool
same_targets(List *a, List *b)
{
	ListCell   *lc;

	if (list_length(a) != list_length(b))
		return false;
	foreach(lc, a)
		if (!approval_list_has(b, lfirst(lc)))
			return false;
	return true;
}

void
replay_check_stage(Replay *rp, const ReplayStageRow *row)
{
	ListCell   *lc;
	ReplayStage *s = NULL;

	foreach(lc, rp->stages)
		if (strcmp(((ReplayStage *) lfirst(lc))->stage, row->stage) == 0)
			s = lfirst(lc);
	if (s == NULL)
		s = stage_of(rp, row->stage);	/* one no event names */
	s->has_row = true;

	if (rp->has_def)
	{
		int			i = 0;
		bool		found = false;

		foreach(lc, rp->def_names)
		{
			if (strcmp(lfirst(lc), row->stage) == 0)
			{
				found = true;
				list_nth_cell(rp->def_seen, i)->int_value = 1;
				if (list_nth_int(rp->def_idx, i) != row->idx ||
					list_nth_int(rp->def_orders, i) != row->order)
					problem(rp, "stage %s is at index %d and order %d, its workflow says %d and %d",
							row->stage, row->idx, row->order, list_nth_int(rp->def_idx, i),
							list_nth_int(rp->def_orders, i));
				break;
			}
			i++;
		}
		if (!found)
			problem(rp, "stage %s is not a stage of workflow %s version %d",
					row->stage, rp->def_workflow, rp->def_version);
	}

	if (strcmp(row->state, s->state) != 0)
		problem(rp, "stage %s is %s, its events say %s", row->stage, row->state, s->state);
	if (row->round != s->round)
		problem(rp, "stage %s is in round %d, its events say %d", row->stage, row->round, s->round);
	if (row->approvals != s->approvals || row->rejections != s->rejections)
		problem(rp, "stage %s counts %d approvals and %d rejections, its events %d and %d",
				row->stage, row->approvals, row->rejections, s->approvals, s->rejections);
	if (s->required >= 0 && row->required != s->required)
		problem(rp, "stage %s requires %d approvals, its events say %d",
				row->stage, row->required, s->required);
	if (s->activated_at != 0 && !same_targets(row->targets, s->targets))
		problem(rp, "stage %s has other targets than its events say", row->stage);
	if (s->activated_known && s->activated_at != 0 && row->activated_at != s->activated_at)
		problem(rp, "stage %s was activated at %s, its events say %s", row->stage,
				time_str(row->activated_at), time_str(s->activated_at));
	if (s->decided_known && row->decided_at != s->decided_at)
		problem(rp, "stage %s was decided at %s, its events say %s", row->stage,
				time_str(row->decided_at), time_str(s->decided_at));
}

void
replay_check_decision(Replay *rp, const char *key)
{
	rp->actual = lappend(rp->actual, pstrdup(key));
}

static int
cmp_key(const ListCell *a, const ListCell *b)
{
	return strcmp(lfirst(a), lfirst(b));
}

/* After the rows: what the events call for that no row has, and back */
void
replay_end(Replay *rp)
{
	ListCell   *lc;
	int			i = 0,
				j = 0;

	foreach(lc, rp->stages)
	{
		ReplayStage *s = lfirst(lc);

		if (!s->has_row)
			problem(rp, "stage %s of its events has no row", s->stage);
	}
	if (rp->has_def)
	{
		int			i = 0;

		foreach(lc, rp->def_names)
		{
			ReplayStage *s = NULL;
			ListCell   *sc;

			foreach(sc, rp->stages)
				if (strcmp(((ReplayStage *) lfirst(sc))->stage, lfirst(lc)) == 0)
					s = lfirst(sc);
			/* (one its events name is reported above) */
			if (list_nth_int(rp->def_seen, i) == 0 && s == NULL)
				problem(rp, "stage %s of workflow %s version %d has no row",
						(char *) lfirst(lc), rp->def_workflow, rp->def_version);
			i++;
		}
	}

	list_sort(rp->expected, cmp_key);
	list_sort(rp->actual, cmp_key);
	while (i < list_length(rp->expected) || j < list_length(rp->actual))
	{
		char	   *e = i < list_length(rp->expected) ? list_nth(rp->expected, i) : NULL;
		char	   *a = j < list_length(rp->actual) ? list_nth(rp->actual, j) : NULL;
		int			c = (e == NULL) ? 1 : (a == NULL) ? -1 : strcmp(e, a);

		if (c == 0)
		{
			i++;
			j++;
		}
		else if (c < 0)
		{
			problem(rp, "no decision row for its event: %s", e);
			i++;
		}
		else
		{
			problem(rp, "a decision row no event records: %s", a);
			j++;
		}
	}
	if (rp->nproblems > MAX_PROBLEMS)
		appendStringInfo(&rp->problems, "; and %d more", rp->nproblems - MAX_PROBLEMS);
}
