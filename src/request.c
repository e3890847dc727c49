/*-------------------------------------------------------------------------
 *
 * request.c
 *	  Load, lock and save a request: the one path every change of a request
 *	  takes (see engine.h).
 *
 * request_open() locks the request's row first and reads everything else
 * after that, with a fresh snapshot per statement (spi_util.c), so what it
 * reads is what the lock protects.  request_save() writes only what changed
 * — the request row with its audience, its stages, and approval.pending_vote
 * for the stages that start or stop taking votes (or whose targets or
 * requester changed) — then the events (one
 * hash chain per request, event.c), then calls the callbacks, all in the
 * caller's transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "utils/syscache.h"

const char *const request_state_names[REQUEST_STATE_COUNT] = {
	"pending", "changes_requested", "approved", "rejected", "expired", "cancelled"
};

const char *const stage_state_names[STAGE_STATE_COUNT] = {
	"waiting", "active", "approved", "rejected", "skipped", "expired", "cancelled"
};

const char *const sla_state_names[] = {NULL, "on_track", "warning", "breached"};

static int
state_from_name(const char *const *names, int count, const char *name, const char *type)
{
	for (int i = 0; i < count; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("unknown %s \"%s\"", type, name)));
}

static RequestState
request_state_from_name(const char *name)
{
	return (RequestState) state_from_name(request_state_names, REQUEST_STATE_COUNT, name,
										   "approval.request_state");
}

static StageState
stage_state_from_name(const char *name)
{
	return (StageState) state_from_name(stage_state_names, STAGE_STATE_COUNT, name,
										"approval.stage_state");
}

/* ---------- statements ---------- */

#define REQUEST_COLUMNS \
	"SELECT workflow_id, workflow, requester, state::text, current_order, last_hash," \
	"  audience, created_at, due_at, warn_at, escalate_at, expires_at, paused_at, next_due," \
	"  sla_state, escalations, timer_failures, timer_error, subject IS NOT NULL" \
	"  FROM approval.request"

static ApprovalPlan lock_request_plan = {
	REQUEST_COLUMNS " WHERE id = $1 FOR UPDATE",
	1, {INT8OID}
};

/*
 * The timer's: only while something is due, and never waiting for a voter
 * (or another tick) that holds the row.  The lock is the subtransaction's
 * that then writes the row (tick.c), so no MultiXact is needed.
 */
static ApprovalPlan lock_due_request_plan = {
	REQUEST_COLUMNS " WHERE id = $1 AND next_due <= $2 FOR UPDATE SKIP LOCKED",
	2, {INT8OID, TIMESTAMPTZOID}
};

static ApprovalPlan load_payload_plan = {
	"SELECT payload FROM approval.request WHERE id = $1",
	1, {INT8OID}
};

static ApprovalPlan load_stages_plan = {
	"SELECT stage, stage_idx, stage_order, state::text, targets, required, approvals,"
	"  rejections, reject_required, round, timeout_at, added_targets"
	"  FROM approval.request_stage WHERE request_id = $1 ORDER BY stage_order, stage_idx",
	1, {INT8OID}
};

#define INSERT_REQUEST \
	"INSERT INTO approval.request (id, workflow_id, workflow, title, subject, payload, requester," \
	"  state, current_order, decided_at, last_hash, audience, created_at, due_at, warn_at," \
	"  escalate_at, expires_at, next_due, sla_state)" \
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8::approval.request_state, $9, $10, $11, $12, $13," \
	"  $14, $15, $16, $17, $18, $19)"
#define INSERT_REQUEST_TYPES \
	{INT8OID, INT4OID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, TEXTOID, TEXTOID, INT4OID, \
	TIMESTAMPTZOID, BYTEAOID, TEXTARRAYOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID, \
	TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID}

/* with a subject: another open request for it wins (idempotent submit) */
static ApprovalPlan insert_request_plan = {
	INSERT_REQUEST
	" ON CONFLICT (workflow, subject)"
	"  WHERE subject IS NOT NULL AND state IN ('pending', 'changes_requested') DO NOTHING"
	" RETURNING id",
	19, INSERT_REQUEST_TYPES
};

/* without a subject nothing can conflict */
static ApprovalPlan insert_request_nosubject_plan = {
	INSERT_REQUEST,
	19, INSERT_REQUEST_TYPES
};

static ApprovalPlan save_request_plan = {
	"UPDATE approval.request SET state = $2::approval.request_state, current_order = $3,"
	"  payload = COALESCE($4, payload), decided_at = COALESCE($5, decided_at),"
	"  last_hash = $6, updated_at = pg_catalog.now(), audience = COALESCE($7, audience),"
	"  due_at = $8, warn_at = $9, escalate_at = $10, expires_at = $11, paused_at = $12,"
	"  next_due = $13, sla_state = $14, escalations = $15, timer_failures = $16,"
	"  timer_error = $17"
	" WHERE id = $1",
	17, {INT8OID, TEXTOID, INT4OID, JSONBOID, TIMESTAMPTZOID, BYTEAOID, TEXTARRAYOID,
		TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	TIMESTAMPTZOID, TEXTOID, INT4OID, INT4OID, TEXTOID}
};

static ApprovalPlan insert_stage_plan = {
	"INSERT INTO approval.request_stage (request_id, stage, stage_idx, stage_order, state,"
	"  targets, required, reject_required, activated_at, decided_at, timeout_at)"
	" VALUES ($1, $2, $3, $4, $5::approval.stage_state, $6, $7, $8, $9, $10, $11)",
	11, {INT8OID, TEXTOID, INT4OID, INT4OID, TEXTOID, TEXTARRAYOID, INT4OID, INT4OID,
	TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID}
};

static ApprovalPlan save_stage_plan = {
	"UPDATE approval.request_stage SET state = $3::approval.stage_state, targets = $4,"
	"  required = $5, approvals = $6, rejections = $7, round = $8,"
	"  activated_at = COALESCE($9, activated_at),"
	"  decided_at = CASE WHEN $10 IS NOT NULL THEN $10"
	"                    WHEN $3 IN ('waiting', 'active') THEN NULL ELSE decided_at END,"
	"  timeout_at = $11, added_targets = $12"
	" WHERE request_id = $1 AND stage = $2",
	12, {INT8OID, TEXTOID, TEXTOID, TEXTARRAYOID, INT4OID, INT4OID, INT4OID, INT4OID,
	TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTARRAYOID}
};

/* a transferred request (admin.c): its new requester */
static ApprovalPlan save_requester_plan = {
	"UPDATE approval.request SET requester = $2 WHERE id = $1",
	2, {INT8OID, TEXTOID}
};

/* the stages no longer open to votes, or restarted, lose their rows */
static ApprovalPlan delete_votable_plan = {
	"DELETE FROM approval.pending_vote WHERE request_id = $1 AND stage = ANY ($2)",
	2, {INT8OID, TEXTARRAYOID}
};

/* a stage open to votes: one row per target */
static ApprovalPlan insert_votable_plan = {
	"INSERT INTO approval.pending_vote (request_id, stage, target, round, submitted_at,"
	"  requester, workflow, allow_self_approval, distinct_approvers, targets)"
	" SELECT $1, $2, t, $3, $4, $5, $6, $7, $8, $9 FROM pg_catalog.unnest($9) t",
	9, {INT8OID, TEXTOID, INT4OID, TIMESTAMPTZOID, TEXTOID, TEXTOID, BOOLOID, BOOLOID, TEXTARRAYOID}
};

/* The approval.request_state value of a state */
Datum
request_state_datum(RequestState state)
{
	Oid			nsp = get_namespace_oid("approval", false);
	Oid			typoid = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
										 CStringGetDatum("request_state"),
										 ObjectIdGetDatum(nsp));

	return DirectFunctionCall2(enum_in, CStringGetDatum(request_state_names[state]),
							   ObjectIdGetDatum(typoid));
}

/* The payload, read when first needed */
Jsonb *
request_payload(Req *r)
{
	if (r->payload == NULL)
	{
		Datum		arg = Int64GetDatum(r->id);
		bool		isnull;

		approval_exec(&load_payload_plan, &arg, NULL, false, 1);
		r->payload = DatumGetJsonbP(approval_copy_datum(0, 1, &isnull));
	}
	return r->payload;
}

/* Does a condition hold for the request (true when there is none)? */
bool
request_condition(Req *r, JsonPath *cond)
{
	if (cond == NULL)
		return true;
	if (r->vars == NULL)
		r->vars = approval_make_vars(approval_requester_json(r->requester), r->workflow);
	return approval_condition_holds(cond, request_payload(r), r->vars);
}

/* The actor's capacities for this request's workflow */
List *
request_sets(Req *r)
{
	if (r->sets == NIL)
		r->sets = approval_actor_target_sets(&r->actor, r->workflow);
	return r->sets;
}

/* ---------- loading ---------- */

/* A deadline column: NO_DEADLINE when NULL */
static TimestampTz
get_time(int row, int col)
{
	bool		isnull;
	Datum		d = approval_getdatum(row, col, &isnull);

	return isnull ? NO_DEADLINE : DatumGetTimestampTz(d);
}

static SlaState
get_sla_state(int row, int col)
{
	bool		isnull;
	char	   *name;

	(void) approval_getdatum(row, col, &isnull);
	if (isnull)
		return SLA_NONE;
	name = approval_gettext(row, col);
	for (int i = SLA_ON_TRACK; i <= SLA_BREACHED; i++)
		if (strcmp(sla_state_names[i], name) == 0)
			return (SlaState) i;
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("unknown SLA state \"%s\"", name)));
}

/*
 * Lock a request and read it with its stages, for the actor, or (actor
 * NULL) for the timer, which reads it only when something is due at "now"
 * and nobody holds it (else NULL).  AP001 if there is none.
 */
static Req *
request_load(int64 id, ApprovalActor *actor, TimestampTz now)
{
	Req		   *r;
	Datum		arg = Int64GetDatum(id);
	bool		isnull;
	bytea	   *last_hash;
	Datum		d;
	int			n;
	int32		wfid;

	if (actor == NULL)
	{
		Datum		args[2];

		args[0] = arg;
		args[1] = TimestampTzGetDatum(now);
		if (approval_exec(&lock_due_request_plan, args, NULL, false, 1) != 1)
			return NULL;
	}
	else if (approval_exec(&lock_request_plan, &arg, NULL, false, 1) != 1)
		approval_not_found(id);

	r = palloc0(sizeof(Req));
	if (actor != NULL)
		r->actor = *actor;
	r->now = now;
	r->id = id;
	wfid = approval_getint32(0, 1);
	r->workflow = approval_gettext(0, 2);
	r->requester = approval_gettext(0, 3);
	r->state = request_state_from_name(approval_gettext(0, 4));
	d = approval_getdatum(0, 5, &isnull);
	r->has_order = !isnull;
	r->current_order = isnull ? 0 : DatumGetInt32(d);
	d = approval_copy_datum(0, 6, &isnull);
	last_hash = isnull ? NULL : DatumGetByteaP(d);
	r->audience = approval_array_to_list(DatumGetArrayTypeP(approval_getdatum(0, 7, &isnull)));
	r->submitted_at = DatumGetTimestampTz(approval_getdatum(0, 8, &isnull));
	r->t.due_at = get_time(0, 9);
	r->t.warn_at = get_time(0, 10);
	r->t.escalate_at = get_time(0, 11);
	r->t.expires_at = get_time(0, 12);
	r->t.paused_at = get_time(0, 13);
	r->t.next_due = get_time(0, 14);
	r->t.sla_state = get_sla_state(0, 15);
	r->t.escalations = approval_getint32(0, 16);
	r->t.failures = approval_getint32(0, 17);
	(void) approval_getdatum(0, 18, &isnull);
	r->t.error = isnull ? NULL : approval_gettext(0, 18);
	r->has_subject = approval_getbool(0, 19);
	r->loaded_state = r->state;
	approval_events_init(&r->ev, id, r->workflow, last_hash);
	/* (this runs statements of its own: read the row above first) */
	r->wf = approval_workflow_get(wfid);

	n = approval_exec(&load_stages_plan, &arg, NULL, false, 0);
	r->nstages = n;
	r->stages = palloc0(sizeof(StageRow) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		StageRow   *s = &r->stages[i];

		s->stage = approval_gettext(i, 1);
		s->idx = approval_getint32(i, 2);
		s->order = approval_getint32(i, 3);
		s->state = stage_state_from_name(approval_gettext(i, 4));
		s->targets = approval_array_to_list(DatumGetArrayTypeP(approval_getdatum(i, 5, &isnull)));
		s->required = approval_getint32(i, 6);
		s->approvals = approval_getint32(i, 7);
		s->rejections = approval_getint32(i, 8);
		s->reject_required = approval_getint32(i, 9);
		s->round = approval_getint32(i, 10);
		s->timeout_at = get_time(i, 11);
		s->added_targets = approval_array_to_list(DatumGetArrayTypeP(approval_getdatum(i, 12, &isnull)));
		s->loaded_state = s->state;
		s->loaded_round = s->round;
		s->def = (s->idx < r->wf->nstages) ? &r->wf->stages[s->idx] : NULL;
	}
	return r;
}

/* Lock a request and read it, for the current actor */
Req *
request_open(int64 id)
{
	ApprovalActor actor;

	approval_get_actor(&actor);
	return request_load(id, &actor, GetCurrentTransactionStartTimestamp());
}

/* Lock a request and read it, for an actor the caller has established */
Req *
request_open_as(int64 id, const ApprovalActor *actor)
{
	ApprovalActor copy = *actor;

	return request_load(id, &copy, GetCurrentTransactionStartTimestamp());
}

/*
 * Lock a request and read it for the timer, whose changes happen at "at"
 * and have no actor: NULL when nothing is due on it at "at" any more, or
 * when someone holds it (the next tick will see it).
 */
Req *
request_open_for_timer(int64 id, TimestampTz at)
{
	Req		   *r = request_load(id, NULL, at);

	if (r != NULL)
		r->actor.sees_all = true;
	return r;
}

/* AP002 (or AP001) unless the request is pending */
void
request_require_pending(Req *r)
{
	if (r->state == REQUEST_PENDING)
		return;
	request_require_visible(r);
	if (r->state == REQUEST_CHANGES_REQUESTED)
		ereport(ERROR,
				(errcode(ERRCODE_AP_REQUEST_CLOSED),
				 errmsg("request %lld is waiting for changes", (long long) r->id),
				 errdetail("Changes were requested; nothing can be decided until the requester resubmits."),
				 errhint("The requester calls approval.resubmit(%lld, ...).", (long long) r->id)));
	ereport(ERROR,
			(errcode(ERRCODE_AP_REQUEST_CLOSED),
			 errmsg("request %lld is closed", (long long) r->id),
			 errdetail("Its state is %s.", request_state_names[r->state]),
			 errhint("Submit a new request to ask again.")));
}

/* Connect, lock the request and check that the actor may see it */
Req *
request_open_visible(int64 id)
{
	Req		   *r;

	approval_spi_connect();
	r = request_open(id);
	request_require_visible(r);
	return r;
}

/* ---------- writing ---------- */

static void
save_stage(Req *r, StageRow *s)
{
	Datum		v[12];
	char		n[12];

	memset(n, ' ', sizeof(n));
	v[0] = Int64GetDatum(r->id);
	v[1] = CStringGetTextDatum(s->stage);
	v[2] = CStringGetTextDatum(stage_state_names[s->state]);
	v[3] = PointerGetDatum(approval_text_array(s->targets));
	v[4] = Int32GetDatum(s->required);
	v[8] = time_or_null(s->activated_now ? r->now : NO_DEADLINE, &n[8]);
	v[9] = time_or_null(s->decided_now ? r->now : NO_DEADLINE, &n[9]);
	v[10] = time_or_null(s->timeout_at, &n[10]);
	if (r->is_new)
	{
		Datum		iv[11];
		char		in[11];

		iv[0] = v[0];
		iv[1] = v[1];
		iv[2] = Int32GetDatum(s->idx);
		iv[3] = Int32GetDatum(s->order);
		iv[4] = v[2];
		iv[5] = v[3];
		iv[6] = v[4];
		iv[7] = Int32GetDatum(s->reject_required);
		memset(in, ' ', 8);
		for (int k = 8; k < 11; k++)
		{
			iv[k] = v[k];
			in[k] = n[k];
		}
		approval_exec(&insert_stage_plan, iv, in, false, 0);
		return;
	}
	v[5] = Int32GetDatum(s->approvals);
	v[6] = Int32GetDatum(s->rejections);
	v[7] = Int32GetDatum(s->round);
	v[11] = PointerGetDatum(approval_text_array(s->added_targets));
	approval_exec(&save_stage_plan, v, n, false, 0);
}

/*
 * Keep approval.pending_vote: a stage has rows while it is active and its
 * request pending.  Those that stop being so, or start a new round, lose
 * theirs; those that start get them (and those whose targets grew, new
 * ones).
 */
static void
save_votable(Req *r)
{
	List	   *gone = NIL;

	for (int i = 0; i < r->nstages; i++)
	{
		StageRow   *s = &r->stages[i];
		bool		before = !r->is_new && s->loaded_state == STAGE_ACTIVE &&
			r->loaded_state == REQUEST_PENDING;
		bool		after = s->state == STAGE_ACTIVE && r->state == REQUEST_PENDING;

		if (before && (!after || s->round != s->loaded_round || s->targets_changed ||
					   r->requester_changed))
			gone = lappend(gone, s->stage);
	}
	if (gone != NIL)
	{
		Datum		args[2];

		args[0] = Int64GetDatum(r->id);
		args[1] = PointerGetDatum(approval_text_array(gone));
		approval_exec(&delete_votable_plan, args, NULL, false, 0);
	}

	for (int i = 0; i < r->nstages; i++)
	{
		StageRow   *s = &r->stages[i];
		bool		before = !r->is_new && s->loaded_state == STAGE_ACTIVE &&
			r->loaded_state == REQUEST_PENDING;
		bool		after = s->state == STAGE_ACTIVE && r->state == REQUEST_PENDING;
		Datum		args[9];

		if (!after || (before && s->round == s->loaded_round && !s->targets_changed &&
					   !r->requester_changed))
			continue;
		args[0] = Int64GetDatum(r->id);
		args[1] = CStringGetTextDatum(s->stage);
		args[2] = Int32GetDatum(s->round);
		args[3] = TimestampTzGetDatum(r->submitted_at);
		args[4] = CStringGetTextDatum(r->requester);
		args[5] = CStringGetTextDatum(r->workflow);
		args[6] = BoolGetDatum(r->wf->allow_self_approval);
		args[7] = BoolGetDatum(r->wf->distinct_approvers);
		args[8] = PointerGetDatum(approval_text_array(s->targets));
		approval_exec(&insert_votable_plan, args, NULL, false, 0);
	}
}

/* Add a key to the request's audience (visibility.c), once */
void
request_add_audience(Req *r, const char *key)
{
	if (approval_list_has(r->audience, key))
		return;
	r->audience = lappend(r->audience, pstrdup(key));
	r->audience_changed = true;
}

/*
 * Write everything that changed: the request row (with the new head of its
 * event chain), the stages, the events; then the callbacks.  Returns false
 * for a new request whose (workflow, subject) another open request took
 * first: then nothing was written.
 */
bool
request_save(Req *r)
{
	bytea	   *head;
	bool		have_events;
	char		n[19];
	Datum		v[19];

	timer_plan(r);
	memset(n, ' ', sizeof(n));
	have_events = r->ev.pending != NIL;
	head = approval_events_seal(&r->ev);

	if (r->is_new)
	{
		v[0] = Int64GetDatum(r->id);
		v[1] = Int32GetDatum(r->wf->id);
		v[2] = CStringGetTextDatum(r->workflow);
		v[3] = text_or_null(r->title, &n[3]);
		v[4] = text_or_null(r->subject, &n[4]);
		v[5] = JsonbPGetDatum(r->payload);
		v[6] = CStringGetTextDatum(r->requester);
		v[7] = CStringGetTextDatum(request_state_names[r->state]);
		v[8] = Int32GetDatum(r->current_order);
		n[8] = r->has_order ? ' ' : 'n';
		v[9] = time_or_null(r->decided_now ? r->now : NO_DEADLINE, &n[9]);
		v[10] = PointerGetDatum(head);
		n[10] = head ? ' ' : 'n';
		v[11] = PointerGetDatum(approval_text_array(r->audience));
		v[12] = TimestampTzGetDatum(r->submitted_at);
		v[13] = time_or_null(r->t.due_at, &n[13]);
		v[14] = time_or_null(r->t.warn_at, &n[14]);
		v[15] = time_or_null(r->t.escalate_at, &n[15]);
		v[16] = time_or_null(r->t.expires_at, &n[16]);
		v[17] = time_or_null(r->t.next_due, &n[17]);
		v[18] = text_or_null(sla_state_names[r->t.sla_state], &n[18]);
		if (approval_exec(r->subject ? &insert_request_plan : &insert_request_nosubject_plan,
						  v, n, false, 0) == 0)
			return false;
	}
	else if (have_events || r->dirty)
	{
		v[0] = Int64GetDatum(r->id);
		v[1] = CStringGetTextDatum(request_state_names[r->state]);
		v[2] = Int32GetDatum(r->current_order);
		n[2] = r->has_order ? ' ' : 'n';
		v[3] = r->payload_changed ? JsonbPGetDatum(r->payload) : (Datum) 0;
		n[3] = r->payload_changed ? ' ' : 'n';
		v[4] = time_or_null(r->decided_now ? r->now : NO_DEADLINE, &n[4]);
		v[5] = PointerGetDatum(head);
		n[5] = head ? ' ' : 'n';
		v[6] = r->audience_changed ? PointerGetDatum(approval_text_array(r->audience)) : (Datum) 0;
		n[6] = r->audience_changed ? ' ' : 'n';
		v[7] = time_or_null(r->t.due_at, &n[7]);
		v[8] = time_or_null(r->t.warn_at, &n[8]);
		v[9] = time_or_null(r->t.escalate_at, &n[9]);
		v[10] = time_or_null(r->t.expires_at, &n[10]);
		v[11] = time_or_null(r->t.paused_at, &n[11]);
		v[12] = time_or_null(r->t.next_due, &n[12]);
		v[13] = text_or_null(sla_state_names[r->t.sla_state], &n[13]);
		v[14] = Int32GetDatum(r->t.escalations);
		/* a firing that worked, or the request closed: failures are over */
		if (r->t.fired || !request_is_open(r->state))
		{
			r->t.failures = 0;
			r->t.error = NULL;
		}
		v[15] = Int32GetDatum(r->t.failures);
		v[16] = text_or_null(r->t.error, &n[16]);
		approval_exec(&save_request_plan, v, n, false, 0);
		if (r->requester_changed)
		{
			v[1] = CStringGetTextDatum(r->requester);
			approval_exec(&save_requester_plan, v, NULL, false, 0);
		}
	}

	for (int i = 0; i < r->nstages; i++)
		if (r->is_new || r->stages[i].dirty)
			save_stage(r, &r->stages[i]);
	save_votable(r);

	approval_events_write(&r->ev);

	for (int c = 0; c < CALLBACK_COUNT; c++)
		if (r->callbacks & (1 << c))
			approval_run_callback(r->wf, (ApprovalCallback) c, r->id);
	return true;
}

/* Add an event to the request's chain (written by request_save) */
void
request_event(Req *r, const char *kind, Jsonb *data, const char *stage, List *targets)
{
	approval_event_add(&r->ev, kind, r->actor.id, data, request_state_names[r->state],
					   stage, targets);
}

/* Save the request, disconnect from SPI, and return its state as a Datum */
Datum
request_done(Req *r)
{
	Datum		result;

	request_save(r);
	result = request_state_datum(r->state);
	approval_spi_finish();
	return result;
}
