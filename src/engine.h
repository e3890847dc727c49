/*-------------------------------------------------------------------------
 *
 * engine.h
 *	  The engine's internal interface: a request being worked on, its
 *	  stages, their states, and the steps every change goes through.
 *
 * Every operation on a request takes the same path:
 *
 *	1. request_open(): lock the request row (FOR UPDATE) and read it with its
 *	   stages (request.c);
 *	2. decide who acts and what they may do (visibility.c: may they see
 *	   it; eligibility.c: where may they vote);
 *	3. change the Req in memory through the transitions of engine.c, which
 *	   collect events;
 *	4. request_save(): write what changed (with the request's audience and
 *	   its pending_vote rows), the events, then call the callbacks
 *	   (request.c).
 *
 * The row lock serializes everything that happens to one request, so
 * concurrent votes are counted once and a request is decided once.  The
 * SQL-callable operations are in decide.c (votes, changes, cancel, comment),
 * submit.c and admin.c (an admin's reassign, override and transfer); the
 * timer (timer.c, fired by tick.c) and a redeemed token (token.c) take this
 * path too.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APPROVAL_ENGINE_H
#define APPROVAL_ENGINE_H

#include "approval.h"

#include "utils/builtins.h"

/* States of a request: the labels of approval.request_state, in order */
typedef enum RequestState
{
	REQUEST_PENDING,
	REQUEST_CHANGES_REQUESTED,
	REQUEST_APPROVED,
	REQUEST_REJECTED,
	REQUEST_EXPIRED,
	REQUEST_CANCELLED,
	REQUEST_STATE_COUNT
} RequestState;

/* States of a stage: the labels of approval.stage_state, in order */
typedef enum StageState
{
	STAGE_WAITING,
	STAGE_ACTIVE,
	STAGE_APPROVED,
	STAGE_REJECTED,
	STAGE_SKIPPED,
	STAGE_EXPIRED,
	STAGE_CANCELLED,
	STAGE_STATE_COUNT
} StageState;

extern const char *const request_state_names[REQUEST_STATE_COUNT];
extern const char *const stage_state_names[STAGE_STATE_COUNT];

static inline bool
request_is_open(RequestState state)
{
	return state == REQUEST_PENDING || state == REQUEST_CHANGES_REQUESTED;
}

/* SLA state of a request (approval.request.sla_state; NULL without an SLA) */
typedef enum SlaState
{
	SLA_NONE,
	SLA_ON_TRACK,
	SLA_WARNING,
	SLA_BREACHED
} SlaState;

extern const char *const sla_state_names[];

/* A deadline that is not set (stored as NULL) */
#define NO_DEADLINE DT_NOEND

/* The deadlines of a request (timer.c keeps them) */
typedef struct ReqTimes
{
	TimestampTz due_at;			/* SLA breach */
	TimestampTz warn_at;		/* SLA warning */
	TimestampTz escalate_at;	/* next escalation */
	TimestampTz expires_at;
	TimestampTz paused_at;		/* waiting on the requester since */
	TimestampTz next_due;		/* the earliest that can fire (or a retry) */
	SlaState	sla_state;
	int			escalations;
	int			failures;		/* timer firings failed in a row */
	char	   *error;			/* the last one's error */
	bool		fired;			/* the timer fired something: failures are over */
	bool		started;		/* a new request's deadlines are set */
} ReqTimes;

/* A stage of a request, as read from approval.request_stage */
typedef struct StageRow
{
	char	   *stage;
	int			idx;
	int			order;
	StageState	state;
	List	   *targets;		/* C strings */
	int			required;
	int			approvals;
	int			rejections;
	int			reject_required;
	int			round;
	bool		dirty;
	bool		activated_now;
	bool		decided_now;
	StageState	loaded_state;	/* as read, to tell what changed */
	int			loaded_round;
	bool		targets_changed;	/* targets added while active (escalation) */
	List	   *added_targets;	/* those added by escalations: not counted by "all" */
	bool		timeout_planned;	/* its timeout was set at this activation */
	TimestampTz timeout_at;		/* while active: when its timeout fires */
	StageDef   *def;
} StageRow;

/* A request being worked on */
typedef struct Req
{
	int64		id;
	bool		is_new;
	WorkflowDef *wf;
	char	   *workflow;
	char	   *requester;
	RequestState state;
	RequestState loaded_state;	/* as read (a new request: its first state) */
	TimestampTz submitted_at;
	List	   *audience;		/* who may see it besides its requester (visibility.c) */
	bool		audience_changed;
	bool		has_order;
	int			current_order;
	Jsonb	   *payload;
	bool		payload_changed;
	Jsonb	   *vars;			/* condition variables, built when first needed */
	char	   *title;
	char	   *subject;
	bool		has_subject;	/* loaded: it has one (every governed change has) */
	int			nstages;
	StageRow   *stages;
	bool		dirty;
	bool		decided_now;
	int			callbacks;		/* 1 << ApprovalCallback, to call at the end */
	ApprovalActor actor;
	const char *token;			/* the token a vote is cast with (token.c), or NULL */
	List	   *sets;			/* ApprovalTargetSet *, built when first needed */
	ApprovalEvents ev;
	TimestampTz now;			/* the time of this change (tick(at) moves it) */
	ReqTimes	t;
	const char *override_reason;	/* closed by an admin's override (admin.c) */
	bool		requester_changed;	/* transferred: the row and pending_vote follow */
} Req;

/* Where the actor may vote: an active stage and the capacity to vote in */
typedef struct Eligible
{
	StageRow   *stage;
	ApprovalTargetSet *set;
} Eligible;

/* A place where a vote may be cast: an active stage of a pending request */
typedef struct VoteSpot
{
	int64		request_id;
	const char *stage;
	int			round;
	List	   *targets;		/* the stage's, C strings */
	const char *requester;
	const char *workflow;
	bool		allow_self_approval;
	bool		distinct_approvers;
} VoteSpot;

/* Why the actor may or may not vote at a spot (eligibility.c) */
typedef enum VoteWhy
{
	VOTE_NOT_TARGET,
	VOTE_SELF,
	VOTE_DISTINCT,
	VOTE_CAST,
	VOTE_OPEN
} VoteWhy;

/* ---- eligibility.c: who may vote where ---- */

extern ApprovalTargetSet *eligibility_capacity(const ApprovalActor *actor, List *sets,
											   const VoteSpot *spot, bool approval,
											   VoteWhy *why, char **elsewhere);
extern Eligible *engine_eligible_at(Req *r, StageRow *s, bool approval, VoteWhy *why,
									char **elsewhere);

/* ---- request.c: load, lock and save ---- */

extern Req *request_open(int64 id);
extern Req *request_open_as(int64 id, const ApprovalActor *actor);
extern Req *request_open_for_timer(int64 id, TimestampTz at);
extern Req *request_open_visible(int64 id);
extern void request_require_visible(Req *r);	/* visibility.c: AP001 unless seen */
extern void request_require_pending(Req *r);
extern Jsonb *request_payload(Req *r);
extern bool request_condition(Req *r, JsonPath *cond);
extern List *request_sets(Req *r);
extern void request_event(Req *r, const char *kind, Jsonb *data, const char *stage,
						  List *targets);
extern void request_add_audience(Req *r, const char *key);
extern bool request_save(Req *r);
extern Datum request_state_datum(RequestState state);
extern Datum request_done(Req *r);

/* ---- engine.c: the state machine ---- */

extern List *engine_close(Req *r, RequestState state, ApprovalCallback callback);
extern void engine_finish(Req *r, bool approved, const char *reason, const char *denial);
extern void engine_stage_approved(Req *r, StageRow *s, const char *by);
extern void engine_stage_rejected(Req *r, StageRow *s, const char *reason, const char *denial);
extern void engine_expire(Req *r, StageRow *s, const char *reason);
extern void engine_activate_stage(Req *r, StageRow *s);
extern void engine_advance(Req *r);
extern Jsonb *engine_stage_data(StageRow *s);
extern void engine_no_eligible_stage(Req *r, bool self_blocked, const char *verb)
			pg_attribute_noreturn();
extern bool engine_repeats_last_vote(Req *r, const char *decision);
extern bool engine_record_vote(Req *r, Eligible *e, const char *decision,
							   const char *reason, const char *comment);
extern void engine_require_no_vote(Req *r, Eligible *e, const char *decision);
extern void engine_record_note(Req *r, StageRow *s, const char *on_behalf,
							   const char *decision, const char *comment);

/* the admin tools' transitions (DESIGN §10; the SQL functions are admin.c's) */
extern void engine_override(Req *r, bool approve, const char *reason);
extern void engine_reassign(Req *r, StageRow *s, const char *from, const char *to,
							const char *reason);
extern void engine_transfer(Req *r, const char *to, const char *reason);

/* ---- decide.c: the decisions ---- */

/* What became of a vote (decide_vote) */
typedef enum DecideResult
{
	DECIDE_DONE,				/* recorded, or a repeat of the actor's last vote */
	DECIDE_CLOSED,				/* the request is not pending */
	DECIDE_INELIGIBLE			/* the actor may vote at no active stage */
} DecideResult;

extern DecideResult decide_vote(Req *r, bool approve, const char *reason,
								const char *comment, bool refusals);

/* ---- submit.c ---- */

extern int64 approval_submit_request(const char *workflow, Jsonb *payload, const char *title,
									 const char *subject, const char *ack, bool *created,
									 RequestState *state);

/* ---- govern_apply.c: held changes of governed tables (DESIGN §10) ---- */

extern bool govern_apply(Req *r);
extern void govern_discard(Req *r);
extern bool govern_holds(int64 request_id);

/* ---- timer.c: deadlines (DESIGN §6), the one home of their rules ---- */

/* The kinds of deadline */
typedef enum DueKind
{
	DUE_NONE,
	DUE_WARNING,
	DUE_BREACH,
	DUE_ESCALATION,
	DUE_EXPIRY,
	DUE_TIMEOUT
} DueKind;

/* Which deadline of a request: its kind, and the stage of a timeout */
typedef struct TimerDue
{
	DueKind		kind;
	char		stage[APPROVAL_MAX_NAME_LEN + 1];
} TimerDue;

extern void timer_plan(Req *r);
extern bool timer_fire_next(Req *r, TimerDue *which);
extern void timer_defer(Req *r, const TimerDue *which, TimestampTz until);

/* ---- small helpers ---- */

static inline bool
streq(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

static inline Datum
text_or_null(const char *s, char *null)
{
	*null = s ? ' ' : 'n';
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/* A deadline as a Datum: NULL when it is not set */
static inline Datum
time_or_null(TimestampTz t, char *null)
{
	*null = (t == NO_DEADLINE) ? 'n' : ' ';
	return TimestampTzGetDatum(t);
}

#endif							/* APPROVAL_ENGINE_H */
