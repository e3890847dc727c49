/*-------------------------------------------------------------------------
 *
 * engine.c
 *	  The state machine of requests: submit, votes, quorum, stage activation,
 *	  request-changes and resubmit, cancel and comment.
 *
 * Every operation follows the same shape:
 *
 *	1. lock the request row (FOR UPDATE) and read its stages;
 *	2. decide who acts and what they may do;
 *	3. change the request in memory, collecting events;
 *	4. write what changed, the events, and call on_approved/on_rejected.
 *
 * The row lock serializes everything that happens to one request, so
 * concurrent votes are counted once and a request is decided once.  All
 * statements are prepared once per backend (spi_util.c).
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

/* A stage of a request, as read from approval.request_stage */
typedef struct StageRow
{
	char	   *stage;
	int			idx;
	int			order;
	const char *state;
	List	   *targets;		/* C strings */
	int			required;
	int			approvals;
	int			rejections;
	int			reject_required;
	int			round;
	bool		dirty;
	bool		activated_now;
	bool		decided_now;
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
	const char *state;
	bool		has_order;
	int			current_order;
	Jsonb	   *payload;
	bool		payload_changed;
	Jsonb	   *vars;			/* condition variables, built when first needed */
	char	   *title;
	char	   *subject;
	int			nstages;
	StageRow   *stages;
	bool		dirty;
	bool		decided_now;
	int			callbacks;		/* 1 << ApprovalCallback, to call at the end */
	ApprovalActor actor;
	List	   *sets;			/* ApprovalTargetSet *, built when first needed */
	ApprovalEvents ev;
} Req;

/* ---------- statements ---------- */

static ApprovalPlan lock_request_plan = {
	"SELECT workflow_id, workflow, requester, state::text, current_order, last_hash"
	"  FROM approval.request WHERE id = $1 FOR UPDATE",
	1, {INT8OID}
};

static ApprovalPlan load_payload_plan = {
	"SELECT payload FROM approval.request WHERE id = $1",
	1, {INT8OID}
};

static ApprovalPlan load_stages_plan = {
	"SELECT stage, stage_idx, stage_order, state::text, targets, required, approvals,"
	"  rejections, reject_required, round"
	"  FROM approval.request_stage WHERE request_id = $1 ORDER BY stage_order, stage_idx",
	1, {INT8OID}
};

#define INSERT_REQUEST \
	"INSERT INTO approval.request (id, workflow_id, workflow, title, subject, payload, requester," \
	"  state, current_order, decided_at, last_hash)" \
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8::approval.request_state, $9," \
	"  CASE WHEN $10 THEN pg_catalog.now() END, $11)"
#define INSERT_REQUEST_TYPES \
	{INT8OID, INT4OID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, TEXTOID, TEXTOID, INT4OID, \
	BOOLOID, BYTEAOID}

/* with a subject: another open request for it wins (idempotent submit) */
static ApprovalPlan insert_request_plan = {
	INSERT_REQUEST
	" ON CONFLICT (workflow, subject)"
	"  WHERE subject IS NOT NULL AND state IN ('pending', 'changes_requested') DO NOTHING"
	" RETURNING id",
	11, INSERT_REQUEST_TYPES
};

/* without a subject nothing can conflict */
static ApprovalPlan insert_request_nosubject_plan = {
	INSERT_REQUEST,
	11, INSERT_REQUEST_TYPES
};

static ApprovalPlan save_request_plan = {
	"UPDATE approval.request SET state = $2::approval.request_state, current_order = $3,"
	"  payload = COALESCE($4, payload),"
	"  decided_at = CASE WHEN $5 THEN pg_catalog.now() ELSE decided_at END,"
	"  last_hash = $6, updated_at = pg_catalog.now()"
	" WHERE id = $1",
	6, {INT8OID, TEXTOID, INT4OID, JSONBOID, BOOLOID, BYTEAOID}
};

static ApprovalPlan insert_stage_plan = {
	"INSERT INTO approval.request_stage (request_id, stage, stage_idx, stage_order, state,"
	"  targets, required, reject_required, activated_at, decided_at)"
	" VALUES ($1, $2, $3, $4, $5::approval.stage_state, $6, $7, $8,"
	"  CASE WHEN $9 THEN pg_catalog.now() END, CASE WHEN $10 THEN pg_catalog.now() END)",
	10, {INT8OID, TEXTOID, INT4OID, INT4OID, TEXTOID, TEXTARRAYOID, INT4OID, INT4OID,
	BOOLOID, BOOLOID}
};

static ApprovalPlan save_stage_plan = {
	"UPDATE approval.request_stage SET state = $3::approval.stage_state, targets = $4,"
	"  required = $5, approvals = $6, rejections = $7, round = $8,"
	"  activated_at = CASE WHEN $9 THEN pg_catalog.now() ELSE activated_at END,"
	"  decided_at = CASE WHEN $10 THEN pg_catalog.now()"
	"                    WHEN $3 IN ('waiting', 'active') THEN NULL ELSE decided_at END"
	" WHERE request_id = $1 AND stage = $2",
	10, {INT8OID, TEXTOID, TEXTOID, TEXTARRAYOID, INT4OID, INT4OID, INT4OID, INT4OID,
	BOOLOID, BOOLOID}
};

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

static ApprovalPlan other_stage_approval_plan = {
	"SELECT d.stage FROM approval.decision d"
	"  JOIN approval.request_stage s"
	"    ON s.request_id = d.request_id AND s.stage = d.stage AND s.round = d.round"
	" WHERE d.request_id = $1 AND d.stage <> $2 AND d.decision = 'approve'"
	"   AND COALESCE(d.on_behalf_of, d.actor) = $3"
	" LIMIT 1",
	3, {INT8OID, TEXTOID, TEXTOID}
};

static ApprovalPlan open_subject_plan = {
	"SELECT id, requester, payload = $3 FROM approval.request"
	" WHERE workflow = $1 AND subject = $2 AND state IN ('pending', 'changes_requested')",
	3, {TEXTOID, TEXTOID, JSONBOID}
};

static ApprovalPlan manager_plan = {
	"SELECT manager_id FROM approval.principal WHERE id = $1",
	1, {TEXTOID}
};

static ApprovalPlan principal_exists_plan = {
	"SELECT 1 FROM approval.principal WHERE id = $1",
	1, {TEXTOID}
};

static ApprovalPlan group_exists_plan = {
	"SELECT 1 FROM approval.approver_group WHERE name = $1",
	1, {TEXTOID}
};

/*
 * How many distinct people the targets stand for: users, explicit group
 * members, and the roles (with LOGIN, or mapped to a principal) that are
 * members of a target role or of a group's role.  An inactive principal is
 * no approver and is not counted.
 */
static ApprovalPlan count_principals_plan = {
	"WITH RECURSIVE t(target) AS (SELECT pg_catalog.unnest($1::text[])),"
	" roles(roleid) AS ("
	"   SELECT r.oid FROM t JOIN pg_catalog.pg_roles r ON t.target = 'role:' || r.rolname"
	"   UNION"
	"   SELECT r.oid FROM t JOIN approval.approver_group g ON t.target = 'group:' || g.name"
	"     JOIN pg_catalog.pg_roles r ON r.rolname = g.pg_role"
	"   UNION"
	"   SELECT a.member FROM roles JOIN pg_catalog.pg_auth_members a ON a.roleid = roles.roleid"
	" )"
	" SELECT pg_catalog.count(DISTINCT who)::integer FROM ("
	"   SELECT pg_catalog.substr(target, 6) AS who FROM t WHERE target LIKE 'user:%'"
	"   UNION"
	"   SELECT m.principal_id FROM t JOIN approval.group_member m ON t.target = 'group:' || m.group_name"
	"   UNION"
	"   SELECT COALESCE(p.id, r.rolname) FROM roles JOIN pg_catalog.pg_roles r ON r.oid = roles.roleid"
	"     LEFT JOIN approval.principal p ON p.pg_role = r.rolname"
	"    WHERE p.id IS NOT NULL OR r.rolcanlogin"
	" ) x"
	" WHERE NOT EXISTS (SELECT 1 FROM approval.principal q WHERE q.id = x.who AND NOT q.active)",
	1, {TEXTARRAYOID}
};

/* ---------- small helpers ---------- */

static Datum
text_or_null(const char *s, char *null)
{
	*null = s ? ' ' : 'n';
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

static bool
streq(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

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

/* The approval.request_state value of a label */
static Datum
request_state_datum(const char *label)
{
	Oid			nsp = get_namespace_oid("approval", false);
	Oid			typoid = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
										 CStringGetDatum("request_state"),
										 ObjectIdGetDatum(nsp));

	return DirectFunctionCall2(enum_in, CStringGetDatum(label), ObjectIdGetDatum(typoid));
}

static bool
state_is_open(const char *state)
{
	return strcmp(state, "pending") == 0 || strcmp(state, "changes_requested") == 0;
}

static Jsonb *
req_payload(Req *r)
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

static bool
req_condition(Req *r, JsonPath *cond)
{
	if (cond == NULL)
		return true;
	if (r->vars == NULL)
		r->vars = approval_make_vars(approval_requester_json(r->requester), r->workflow);
	return approval_condition_holds(cond, req_payload(r), r->vars);
}

static List *
req_sets(Req *r)
{
	if (r->sets == NIL)
		r->sets = approval_actor_target_sets(&r->actor, r->workflow);
	return r->sets;
}

/* ---------- loading ---------- */

/*
 * Lock a request and read it with its stages.  AP001 if there is none.
 */
static Req *
open_request(int64 id)
{
	Req		   *r = palloc0(sizeof(Req));
	Datum		arg = Int64GetDatum(id);
	bool		isnull;
	bytea	   *last_hash;
	Datum		d;
	int			n;
	int32		wfid;

	approval_get_actor(&r->actor);

	if (approval_exec(&lock_request_plan, &arg, NULL, false, 1) != 1)
		approval_not_found(id);
	r->id = id;
	wfid = approval_getint32(0, 1);
	r->workflow = approval_gettext(0, 2);
	r->requester = approval_gettext(0, 3);
	r->state = approval_gettext(0, 4);
	d = approval_getdatum(0, 5, &isnull);
	r->has_order = !isnull;
	r->current_order = isnull ? 0 : DatumGetInt32(d);
	d = approval_copy_datum(0, 6, &isnull);
	last_hash = isnull ? NULL : DatumGetByteaP(d);
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
		s->state = approval_gettext(i, 4);
		s->targets = approval_array_to_list(DatumGetArrayTypeP(approval_getdatum(i, 5, &isnull)));
		s->required = approval_getint32(i, 6);
		s->approvals = approval_getint32(i, 7);
		s->rejections = approval_getint32(i, 8);
		s->reject_required = approval_getint32(i, 9);
		s->round = approval_getint32(i, 10);
		s->def = (s->idx < r->wf->nstages) ? &r->wf->stages[s->idx] : NULL;
	}
	return r;
}

/* AP001 unless the actor may see the request (visibility.c has the rule) */
static void
require_visible(Req *r)
{
	if (!approval_request_visible(&r->actor, req_sets(r), r->id))
		approval_not_found(r->id);
}

static void
require_pending(Req *r)
{
	if (strcmp(r->state, "pending") == 0)
		return;
	require_visible(r);
	if (strcmp(r->state, "changes_requested") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_AP_REQUEST_CLOSED),
				 errmsg("request %lld is waiting for changes", (long long) r->id),
				 errdetail("Changes were requested; nothing can be decided until the requester resubmits."),
				 errhint("The requester calls approval.resubmit(%lld, ...).", (long long) r->id)));
	ereport(ERROR,
			(errcode(ERRCODE_AP_REQUEST_CLOSED),
			 errmsg("request %lld is closed", (long long) r->id),
			 errdetail("Its state is %s.", r->state),
			 errhint("Submit a new request to ask again.")));
}

/* Connect, lock the request and check that the actor may see it */
static Req *
open_visible_request(int64 id)
{
	Req		   *r;

	approval_spi_connect();
	r = open_request(id);
	require_visible(r);
	return r;
}

/* ---------- writing ---------- */

static void
save_stage(Req *r, StageRow *s)
{
	Datum		v[10];
	char		n[10];

	memset(n, ' ', sizeof(n));
	v[0] = Int64GetDatum(r->id);
	v[1] = CStringGetTextDatum(s->stage);
	v[2] = CStringGetTextDatum(s->state);
	v[3] = PointerGetDatum(approval_text_array(s->targets));
	v[4] = Int32GetDatum(s->required);
	if (r->is_new)
	{
		v[5] = Int32GetDatum(s->reject_required);
		v[6] = BoolGetDatum(s->activated_now);
		v[7] = BoolGetDatum(s->decided_now);
		{
			Datum		iv[10];

			iv[0] = v[0];
			iv[1] = v[1];
			iv[2] = Int32GetDatum(s->idx);
			iv[3] = Int32GetDatum(s->order);
			iv[4] = v[2];
			iv[5] = v[3];
			iv[6] = v[4];
			iv[7] = v[5];
			iv[8] = v[6];
			iv[9] = v[7];
			approval_exec(&insert_stage_plan, iv, n, false, 0);
		}
		return;
	}
	v[5] = Int32GetDatum(s->approvals);
	v[6] = Int32GetDatum(s->rejections);
	v[7] = Int32GetDatum(s->round);
	v[8] = BoolGetDatum(s->activated_now);
	v[9] = BoolGetDatum(s->decided_now);
	approval_exec(&save_stage_plan, v, n, false, 0);
}

/*
 * Write everything that changed: the request row (with the new head of its
 * event chain), the stages, the events; then the callbacks.  Returns false
 * for a new request whose (workflow, subject) another open request took
 * first: then nothing was written.
 */
static bool
close_request(Req *r)
{
	bytea	   *head;
	bool		have_events;
	char		n[11];
	Datum		v[11];

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
		v[7] = CStringGetTextDatum(r->state);
		v[8] = Int32GetDatum(r->current_order);
		n[8] = r->has_order ? ' ' : 'n';
		v[9] = BoolGetDatum(r->decided_now);
		v[10] = PointerGetDatum(head);
		n[10] = head ? ' ' : 'n';
		if (approval_exec(r->subject ? &insert_request_plan : &insert_request_nosubject_plan,
						  v, n, false, 0) == 0)
			return false;
	}
	else if (have_events || r->dirty)
	{
		v[0] = Int64GetDatum(r->id);
		v[1] = CStringGetTextDatum(r->state);
		v[2] = Int32GetDatum(r->current_order);
		n[2] = r->has_order ? ' ' : 'n';
		v[3] = r->payload_changed ? JsonbPGetDatum(r->payload) : (Datum) 0;
		n[3] = r->payload_changed ? ' ' : 'n';
		v[4] = BoolGetDatum(r->decided_now);
		v[5] = PointerGetDatum(head);
		n[5] = head ? ' ' : 'n';
		approval_exec(&save_request_plan, v, n, false, 0);
	}

	for (int i = 0; i < r->nstages; i++)
		if (r->is_new || r->stages[i].dirty)
			save_stage(r, &r->stages[i]);

	approval_events_write(&r->ev);

	for (int c = 0; c < CALLBACK_COUNT; c++)
		if (r->callbacks & (1 << c))
			approval_run_callback(r->wf, (ApprovalCallback) c, r->id);
	return true;
}

/* ---------- the state machine ---------- */

static void
add_event(Req *r, const char *kind, Jsonb *data, const char *stage, List *targets)
{
	approval_event_add(&r->ev, kind, r->actor.id, data, r->state, stage, targets);
}

static Jsonb *
stage_data(StageRow *s)
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
static List *
close_as(Req *r, const char *state, ApprovalCallback callback)
{
	List	   *cancelled = NIL;

	r->state = state;
	r->decided_now = true;
	r->dirty = true;
	r->callbacks |= 1 << callback;
	for (int i = 0; i < r->nstages; i++)
	{
		StageRow   *s = &r->stages[i];

		if (strcmp(s->state, "waiting") != 0 && strcmp(s->state, "active") != 0)
			continue;
		s->state = "cancelled";
		s->decided_now = true;
		s->dirty = true;
		cancelled = lappend(cancelled, s->stage);
	}
	return cancelled;
}

static void
finish(Req *r, bool approved, const char *reason, const char *denial)
{
	ApprovalJson j;
	List	   *cancelled;

	cancelled = close_as(r, approved ? "approved" : "rejected",
						 approved ? CALLBACK_APPROVED : CALLBACK_REJECTED);
	aj_init(&j);
	if (!approved)
	{
		aj_str(&j, "reason", reason);
		aj_str(&j, "denial_message", denial);
	}
	if (cancelled != NIL)
		aj_list(&j, "cancelled_stages", cancelled);
	add_event(r, r->state, aj_finish(&j), NULL, NIL);
}

int
approval_count_principals(List *targets)
{
	Datum		arg = PointerGetDatum(approval_text_array(targets));

	approval_exec(&count_principals_plan, &arg, NULL, false, 1);
	return approval_getint32(0, 1);
}

static void
activate_stage(Req *r, StageRow *s)
{
	ApprovalJson j;

	s->state = "active";
	s->activated_now = true;
	s->dirty = true;
	s->approvals = 0;
	s->rejections = 0;
	if (s->def != NULL && s->def->min_approvals == 0)
		s->required = Max(approval_count_principals(s->targets), 1);
	aj_init(&j);
	aj_str(&j, "stage", s->stage);
	aj_int(&j, "order", s->order);
	aj_int(&j, "round", s->round);
	aj_list(&j, "targets", s->targets);
	aj_int(&j, "required", s->required);
	add_event(r, "stage_activated", aj_finish(&j), s->stage, s->targets);
}

/*
 * Move the request on: while every stage of the current order is done,
 * activate the next order (skipping stages whose "when" is false); after the
 * last order the request is approved.
 */
static void
advance(Req *r)
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
					strcmp(s->state, "approved") != 0 && strcmp(s->state, "skipped") != 0)
					return;		/* still waiting for this order */
			}
		}

		for (int i = 0; i < r->nstages; i++)
		{
			StageRow   *s = &r->stages[i];

			if (strcmp(s->state, "waiting") == 0 &&
				(!r->has_order || s->order > r->current_order) &&
				(!found || s->order < next))
			{
				next = s->order;
				found = true;
			}
		}
		if (!found)
		{
			finish(r, true, NULL, NULL);
			return;
		}

		r->has_order = true;
		r->current_order = next;
		r->dirty = true;
		for (int i = 0; i < r->nstages; i++)
		{
			StageRow   *s = &r->stages[i];

			if (s->order != next || strcmp(s->state, "waiting") != 0)
				continue;
			if (s->def != NULL && !req_condition(r, s->def->when))
			{
				s->state = "skipped";
				s->decided_now = true;
				s->dirty = true;
				add_event(r, "stage_skipped", stage_data(s), s->stage, NIL);
			}
			else
				activate_stage(r, s);
		}
	}
}

/* ---------- targets at submit ---------- */

static void
unresolvable(const char *stage, const char *target, const char *why, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_AP_TARGET_UNRESOLVABLE),
			 errmsg("approver target \"%s\" of stage \"%s\" cannot be resolved", target, stage),
			 errdetail("%s", why),
			 hint ? errhint("%s", hint) : 0));
}

/*
 * Resolve a stage's targets for a requester, as submit does: "manager"
 * becomes user:<id>; an unknown user, group or role, or a missing manager,
 * is AP011.  Needs SPI.
 */
List *
approval_resolve_targets(const char *requester, StageDef *st)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, st->approvers)
	{
		char	   *t = lfirst(lc);
		char	   *resolved = t;
		Datum		arg;

		if (strcmp(t, "manager") == 0)
		{
			bool		isnull = true;

			arg = CStringGetTextDatum(requester);
			if (approval_exec(&manager_plan, &arg, NULL, false, 1) == 1)
				(void) approval_getdatum(0, 1, &isnull);
			if (isnull)
				unresolvable(st->name, t,
							 psprintf("Requester \"%s\" has no manager.", requester),
							 "Set approval.principal.manager_id for the requester.");
			resolved = psprintf("user:%s", approval_gettext(0, 1));
		}
		else if (strncmp(t, "user:", 5) == 0)
		{
			arg = CStringGetTextDatum(t + 5);
			if (approval_exec(&principal_exists_plan, &arg, NULL, false, 1) == 0)
				unresolvable(st->name, t, psprintf("There is no principal \"%s\".", t + 5),
							 "Add it to approval.principal.");
		}
		else if (strncmp(t, "group:", 6) == 0)
		{
			arg = CStringGetTextDatum(t + 6);
			if (approval_exec(&group_exists_plan, &arg, NULL, false, 1) == 0)
				unresolvable(st->name, t, psprintf("There is no approver group \"%s\".", t + 6),
							 "Add it to approval.approver_group.");
		}
		else if (strncmp(t, "role:", 5) == 0)
		{
			if (!OidIsValid(get_role_oid(t + 5, true)))
				unresolvable(st->name, t, psprintf("There is no role \"%s\".", t + 5), NULL);
		}
		{
			bool		dup = false;
			ListCell   *lr;

			foreach(lr, result)
				dup |= strcmp((char *) lfirst(lr), resolved) == 0;
			if (!dup)
				result = lappend(result, resolved);
		}
	}
	return result;
}

/* ---------- submit ---------- */

/* The latest version of an enabled workflow; AP008 if none.  Needs SPI. */
WorkflowDef *
approval_workflow_by_name(const char *name)
{
	bool		enabled;
	int32		id = approval_latest_version(name, &enabled);

	if (id == 0)
		ereport(ERROR,
				(errcode(ERRCODE_AP_NO_WORKFLOW_MATCHES),
				 errmsg("workflow \"%s\" does not exist", name),
				 errhint("SELECT name FROM approval.workflows lists the workflows.")));
	if (!enabled)
		ereport(ERROR,
				(errcode(ERRCODE_AP_NO_WORKFLOW_MATCHES),
				 errmsg("workflow \"%s\" is disabled", name),
				 errhint("An admin can enable it with approval.enable_workflow('%s').", name)));
	return approval_workflow_get(id);
}

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
		ereport(ERROR,
				(errcode(ERRCODE_AP_SUBJECT_UNDER_REVIEW),
				 errmsg("subject \"%s\" of workflow \"%s\" is already under review in request %lld",
						r->subject, r->workflow, (long long) id),
				 errdetail("Your open request %lld for it has another payload.", (long long) id),
				 errhint("Wait for request %lld to be decided or cancel it; while changes are requested, "
						 "approval.resubmit(%lld, payload) changes its payload.",
						 (long long) id, (long long) id)));
	}
	if (approval_request_visible(&r->actor, approval_actor_target_sets(&r->actor, r->workflow), id))
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

PG_FUNCTION_INFO_V1(approval_submit);
Datum
approval_submit(PG_FUNCTION_ARGS)
{
	Req		   *r = palloc0(sizeof(Req));
	Jsonb	   *payload = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	char	   *ack = PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4));
	WorkflowDef *wf;
	ApprovalJson j;
	int64		id;

	approval_spi_connect();
	approval_get_actor(&r->actor);
	r->requester = r->actor.id;
	r->payload = payload ? payload : approval_jsonb_empty();
	r->title = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	r->subject = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));

	if (!JB_ROOT_IS_OBJECT(r->payload))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the payload of a request must be a JSON object")));

	if (PG_ARGISNULL(0))
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
		wf = approval_workflow_by_name(text_to_cstring(PG_GETARG_TEXT_PP(0)));
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
	{
		approval_spi_finish();
		PG_RETURN_INT64(id);
	}

	r->is_new = true;
	r->id = nextval_internal(approval_relid("request_id_seq"), false);
	r->state = "pending";
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
		s->state = "waiting";
		s->targets = approval_resolve_targets(r->requester, st);
		s->required = st->min_approvals;
		s->reject_required = st->reject_by_quorum ? st->reject_quorum : 1;
		s->round = 1;
	}

	aj_init(&j);
	aj_str(&j, "workflow", wf->name);
	aj_int(&j, "version", wf->version);
	aj_str(&j, "title", r->title);
	aj_str(&j, "subject", r->subject);
	if (wf->require_ack != NULL)
		aj_str(&j, "ack", ack);
	add_event(r, "submitted", aj_finish(&j), NULL, NIL);
	r->callbacks |= 1 << CALLBACK_SUBMITTED;

	if (wf->auto_approve != NULL && req_condition(r, wf->auto_approve))
	{
		for (int i = 0; i < r->nstages; i++)
		{
			r->stages[i].state = "skipped";
			r->stages[i].decided_now = true;
		}
		r->state = "approved";
		add_event(r, "auto_approved", NULL, NULL, NIL);
		finish(r, true, NULL, NULL);
	}
	else
		advance(r);

	if (!close_request(r))
	{
		/* another session opened a request for this subject meanwhile */
		id = subject_holder(r);
		if (id == 0)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not submit: a concurrent request for subject \"%s\" appeared and vanished",
							r->subject),
					 errhint("Retry the submit.")));
	}
	else
		id = r->id;

	approval_spi_finish();
	PG_RETURN_INT64(id);
}

/* ---------- votes ---------- */

/* The active stages where one of the actor's target sets is eligible */
typedef struct Eligible
{
	StageRow   *stage;
	ApprovalTargetSet *set;
} Eligible;

static ApprovalPlan stage_votes_plan = {
	"SELECT COALESCE(on_behalf_of, actor), actor FROM approval.decision"
	" WHERE request_id = $1 AND stage = $2 AND round = $3 AND decision IN ('approve', 'reject')",
	3, {INT8OID, TEXTOID, INT4OID}
};

/*
 * Of several capacities in which the actor may vote at a stage (its own, a
 * delegator's), the one to use: the one it already voted in, if any (so the
 * call is a repeat); else the first whose principal has not voted; else the
 * first.  One person casts one vote per stage, whatever their capacities.
 */
static ApprovalTargetSet *
choose_capacity(Req *r, StageRow *s, List *candidates)
{
	Datum		args[3];
	int			n;
	ListCell   *lc;

	if (list_length(candidates) == 1)
		return linitial(candidates);

	args[0] = Int64GetDatum(r->id);
	args[1] = CStringGetTextDatum(s->stage);
	args[2] = Int32GetDatum(s->round);
	n = approval_exec(&stage_votes_plan, args, NULL, false, 0);

	for (int i = 0; i < n; i++)
		if (strcmp(approval_gettext(i, 2), r->actor.id) == 0)
		{
			char	   *counted = approval_gettext(i, 1);

			foreach(lc, candidates)
				if (strcmp(((ApprovalTargetSet *) lfirst(lc))->principal, counted) == 0)
				return lfirst(lc);
			return linitial(candidates);
		}

	foreach(lc, candidates)
	{
		ApprovalTargetSet *set = lfirst(lc);
		bool		voted = false;

		for (int i = 0; i < n && !voted; i++)
			voted = strcmp(approval_gettext(i, 1), set->principal) == 0;
		if (!voted)
			return set;
	}
	return linitial(candidates);
}

/*
 * Find where the actor may vote: each active stage with the capacity to use
 * there.  Unless the workflow allows self-approval, a requester cannot vote
 * (approve, reject or request changes) on their own request in any
 * capacity, nor anyone for the requester as their delegate: such capacities
 * are left out, and *self_blocked tells that one was.
 */
static List *
eligible_stages(Req *r, bool *self_blocked)
{
	List	   *result = NIL;
	bool		actor_is_requester = streq(r->actor.id, r->requester);

	*self_blocked = false;
	for (int i = 0; i < r->nstages; i++)
	{
		StageRow   *s = &r->stages[i];
		ListCell   *lc;
		List	   *candidates = NIL;

		if (strcmp(s->state, "active") != 0)
			continue;
		foreach(lc, req_sets(r))
		{
			ApprovalTargetSet *set = lfirst(lc);

			if (!lists_overlap(set->targets, s->targets))
				continue;
			if (!r->wf->allow_self_approval &&
				(actor_is_requester || streq(set->principal, r->requester)))
			{
				*self_blocked = true;
				continue;
			}
			candidates = lappend(candidates, set);
		}
		if (candidates != NIL)
		{
			Eligible   *e = palloc(sizeof(Eligible));

			e->stage = s;
			e->set = choose_capacity(r, s, candidates);
			result = lappend(result, e);
		}
	}
	return result;
}

/* Nothing to vote on: AP001, AP007 or AP003 */
static void
no_eligible_stage(Req *r, bool self_blocked, const char *verb) pg_attribute_noreturn();

static void
no_eligible_stage(Req *r, bool self_blocked, const char *verb)
{
	require_visible(r);
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
static bool
repeats_last_vote(Req *r, const char *decision)
{
	Datum		args[2];

	args[0] = Int64GetDatum(r->id);
	args[1] = CStringGetTextDatum(r->actor.id);
	return approval_exec(&last_vote_plan, args, NULL, false, 1) == 1 &&
		strcmp(approval_gettext(0, 1), decision) == 0;
}

/*
 * Open a request for a vote ("approve", "reject", "request_changes") and
 * find where the actor may cast it.  NIL when the call repeats the actor's
 * last vote and nothing is left to do; otherwise raises AP001, AP002, AP003
 * or AP007 when there is nowhere to vote.
 */
static List *
open_for_vote(Req *r, const char *decision, const char *verb)
{
	List	   *eligible;
	bool		self_blocked;

	if (strcmp(r->state, "pending") != 0)
	{
		if (repeats_last_vote(r, decision))
			return NIL;
		require_pending(r);
	}
	eligible = eligible_stages(r, &self_blocked);
	if (eligible == NIL && !repeats_last_vote(r, decision))
		no_eligible_stage(r, self_blocked, verb);
	return eligible;
}

static const char *
arg_text(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

static Datum
finish_call(Req *r)
{
	Datum		result;

	close_request(r);
	result = request_state_datum(r->state);
	approval_spi_finish();
	return result;
}

/*
 * Record one vote at one stage.  Returns false when the same vote was
 * already there (a no-op); raises AP004 for a contradicting one.
 */
static bool
record_vote(Req *r, Eligible *e, const char *decision, const char *reason,
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
		approval_exec(&existing_vote_plan, q, NULL, false, 1);
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

	aj_init(&j);
	aj_str(&j, "stage", s->stage);
	aj_str(&j, "decision", decision);
	aj_str(&j, "on_behalf_of", on_behalf);
	aj_str(&j, "reason", reason);
	aj_int(&j, "approvals", s->approvals);
	aj_int(&j, "rejections", s->rejections);
	aj_int(&j, "required", s->required);
	add_event(r, "voted", aj_finish(&j), s->stage, NIL);

	if (approve && s->approvals >= s->required)
	{
		s->state = "approved";
		s->decided_now = true;
		aj_init(&j);
		aj_str(&j, "stage", s->stage);
		aj_int(&j, "approvals", s->approvals);
		aj_int(&j, "required", s->required);
		add_event(r, "quorum_satisfied", aj_finish(&j), s->stage, NIL);
		add_event(r, "stage_approved", stage_data(s), s->stage, NIL);
	}
	else if (!approve && s->rejections >= s->reject_required)
	{
		s->state = "rejected";
		s->decided_now = true;
		aj_init(&j);
		aj_str(&j, "stage", s->stage);
		aj_str(&j, "reason", reason);
		aj_str(&j, "denial_message", denial);
		add_event(r, "stage_rejected", aj_finish(&j), s->stage, NIL);
		finish(r, false, reason, denial);
	}
	return true;
}

/* distinct_approvers: has this principal approved another stage? */
static char *
approved_elsewhere(Req *r, StageRow *s, const char *voter)
{
	Datum		args[3];

	args[0] = Int64GetDatum(r->id);
	args[1] = CStringGetTextDatum(s->stage);
	args[2] = CStringGetTextDatum(voter);
	if (approval_exec(&other_stage_approval_plan, args, NULL, false, 1) == 1)
		return approval_gettext(0, 1);
	return NULL;
}

static Datum
vote(FunctionCallInfo fcinfo, bool approve)
{
	int64		id = PG_GETARG_INT64(0);
	const char *reason = approve ? NULL : arg_text(fcinfo, 1);
	const char *comment = arg_text(fcinfo, approve ? 1 : 2);
	Req		   *r;
	List	   *eligible;
	ListCell   *lc;
	bool		changed = false;
	char	   *blocked_by = NULL;

	approval_spi_connect();
	r = open_request(id);
	eligible = open_for_vote(r, approve ? "approve" : "reject", approve ? "approve" : "reject");
	if (eligible == NIL)
		PG_RETURN_DATUM(finish_call(r));	/* a retry of the vote */

	foreach(lc, eligible)
	{
		Eligible   *e = lfirst(lc);

		if (strcmp(r->state, "pending") != 0)
			break;				/* an earlier stage rejected the request */
		if (approve && r->wf->distinct_approvers)
		{
			char	   *other = approved_elsewhere(r, e->stage, e->set->principal);

			if (other != NULL)
			{
				blocked_by = other;
				continue;
			}
		}
		changed |= record_vote(r, e, approve ? "approve" : "reject", reason, comment);
	}

	if (!changed && blocked_by != NULL && !repeats_last_vote(r, "approve"))
		ereport(ERROR,
				(errcode(ERRCODE_AP_SELF_APPROVAL),
				 errmsg("%s already approved stage \"%s\" of request %lld",
						r->actor.id, blocked_by, (long long) id),
				 errdetail("Workflow \"%s\" requires a different approver at each stage.", r->workflow),
				 errhint("Another approver of the stage must decide.")));

	if (approve && strcmp(r->state, "pending") == 0)
		advance(r);
	PG_RETURN_DATUM(finish_call(r));
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

/* ---------- request changes, resubmit ---------- */

static ApprovalPlan insert_note_plan = {
	"INSERT INTO approval.decision (request_id, stage, actor, on_behalf_of, decision, comment, round)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7)",
	7, {INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID}
};

static void
record_note(Req *r, StageRow *s, const char *on_behalf, const char *decision, const char *comment)
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
}

PG_FUNCTION_INFO_V1(approval_request_changes);
Datum
approval_request_changes(PG_FUNCTION_ARGS)
{
	int64		id;
	const char *comment = arg_text(fcinfo, 1);
	Req		   *r;
	List	   *eligible;
	Eligible   *e;
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
	r = open_request(id);
	eligible = open_for_vote(r, "request_changes", "request changes to");
	if (eligible == NIL)
		PG_RETURN_DATUM(finish_call(r));	/* a retry: changes were requested */
	e = linitial(eligible);

	record_note(r, e->stage, e->set->delegated ? e->set->principal : NULL, "request_changes", comment);
	r->state = "changes_requested";
	r->dirty = true;
	aj_init(&j);
	aj_str(&j, "stage", e->stage->stage);
	aj_str(&j, "comment", comment);
	add_event(r, "changes_requested", aj_finish(&j), e->stage->stage, list_make1(psprintf("user:%s", r->requester)));
	PG_RETURN_DATUM(finish_call(r));
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

	r = open_visible_request(id);
	if (!streq(r->actor.id, r->requester))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only the requester may resubmit request %lld", (long long) id),
				 errdetail("The requester is %s.", r->requester)));
	if (strcmp(r->state, "changes_requested") != 0)
	{
		if (!state_is_open(r->state))
			require_pending(r);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("request %lld is not waiting for changes", (long long) id),
				 errdetail("Its state is %s; resubmit follows approval.request_changes().", r->state)));
	}
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

	r->state = "pending";
	r->dirty = true;
	aj_init(&j);
	aj_bool(&j, "payload_changed", payload != NULL);
	aj_str(&j, "comment", comment);
	aj_str(&j, "reapprove", r->wf->reapprove_all ? "all" : "stage");
	add_event(r, "resubmitted", aj_finish(&j), NULL, NIL);

	if (r->wf->reapprove_all)
	{
		/* start over: earlier approvals no longer count */
		for (int i = 0; i < r->nstages; i++)
		{
			StageRow   *s = &r->stages[i];

			s->state = "waiting";
			s->approvals = 0;
			s->rejections = 0;
			s->round++;
			s->dirty = true;
			if (s->def != NULL)
				s->required = s->def->min_approvals;
		}
		r->has_order = false;
		advance(r);
	}
	else
	{
		/* the active stages start again; their votes stay in history */
		for (int i = 0; i < r->nstages; i++)
		{
			StageRow   *s = &r->stages[i];

			if (strcmp(s->state, "active") != 0)
				continue;
			s->round++;
			activate_stage(r, s);
		}
		advance(r);
	}
	PG_RETURN_DATUM(finish_call(r));
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

	r = open_visible_request(id);
	if (!streq(r->actor.id, r->requester) && !r->actor.is_admin)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only the requester or an approval_admin may cancel request %lld", (long long) id),
				 errhint("Reject it instead, if you are an approver.")));
	if (!state_is_open(r->state))
		require_pending(r);

	cancelled = close_as(r, "cancelled", CALLBACK_CANCELLED);
	aj_init(&j);
	aj_str(&j, "comment", comment);
	if (cancelled != NIL)
		aj_list(&j, "cancelled_stages", cancelled);
	add_event(r, "cancelled", aj_finish(&j), NULL, NIL);
	PG_RETURN_DATUM(finish_call(r));
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

	r = open_visible_request(id);
	if (!state_is_open(r->state))
		require_pending(r);		/* AP002: a closed request takes no more comments */
	record_note(r, NULL, NULL, "comment", comment);
	aj_init(&j);
	aj_str(&j, "comment", comment);
	add_event(r, "commented", aj_finish(&j), NULL, NIL);
	close_request(r);
	approval_spi_finish();
	PG_RETURN_VOID();
}
