/*-------------------------------------------------------------------------
 *
 * admin.c
 *	  The admin tools for requests that are stuck (DESIGN §10): reassign,
 *	  override, delegate_for and transfer.
 *
 * Each is for approval_admin only: EXECUTE is granted to that role alone,
 * and the actor (for a gateway, the principal it acts for) must have its
 * privileges too.  Each needs a reason and is recorded as an event with
 * the admin as its actor.  Those on a request open it through request.c
 * (row lock first), change it through the transitions of engine.c, and
 * save it through request.c, like a vote; delegate_for makes its
 * delegation with the code of approval.delegate() (actor.c) and records an
 * event that belongs to no request (event.c).
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include "catalog/pg_type.h"
#include "parser/scansup.h"
#include "utils/datetime.h"
#include "utils/json.h"

/* A text argument that must be there (22004 otherwise) */
static const char *
required_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name)));
	return text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/* The request argument, which must be there (22004 otherwise) */
static int64
required_id(FunctionCallInfo fcinfo, int n)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("request must not be NULL")));
	return PG_GETARG_INT64(n);
}

/* The reason of an admin's act: required, and not blank (22023) */
static const char *
admin_reason(FunctionCallInfo fcinfo, int n, const char *what)
{
	const char *reason = PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
	const char *c;

	for (c = reason; c != NULL && *c != '\0'; c++)
		if (!scanner_isspace(*c))
			return reason;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("approval.%s needs a reason", what),
			 errdetail("An admin's act is recorded in the event log with its reason."),
			 errhint("Say why, e.g. 'the approver left the company'.")));
}

/*
 * Connect to SPI and establish the actor, who must have the privileges of
 * approval_admin (a gateway: the principal it acts for must), 42501
 * otherwise.
 */
static void
admin_actor(ApprovalActor *actor, const char *what)
{
	approval_spi_connect();
	approval_get_actor(actor);
	if (!actor->is_admin)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only an approval_admin may call approval.%s", what),
				 errdetail("%s does not have the privileges of %s.", actor->id,
						   APPROVAL_ADMIN_ROLE)));
}

/* Lock an open request (AP001, AP002 otherwise) for the admin */
static Req *
admin_open(int64 id, const ApprovalActor *actor)
{
	Req		   *r = request_open_as(id, actor);

	if (!request_is_open(r->state))
		request_require_pending(r);
	return r;
}

static StageRow *
find_stage(Req *r, const char *name)
{
	StringInfoData names;

	for (int i = 0; i < r->nstages; i++)
		if (strcmp(r->stages[i].stage, name) == 0)
			return &r->stages[i];
	initStringInfo(&names);
	for (int i = 0; i < r->nstages; i++)
		appendStringInfo(&names, "%s\"%s\"", i > 0 ? ", " : "", r->stages[i].stage);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("request %lld has no stage \"%s\"", (long long) r->id, name),
			 r->nstages > 0 ? errdetail("Its stages are %s.", names.data) :
			 errdetail("It has no stages.")));
}

static char *
target_list(List *targets)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, targets)
		appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "", (char *) lfirst(lc));
	return buf.data;
}

/*
 * reassign(request, stage, from_target, to_target, reason): target
 * from_target of a waiting or active stage of an open request becomes
 * to_target, resolved as submit resolves a stage's targets.
 */
PG_FUNCTION_INFO_V1(approval_reassign);
Datum
approval_reassign(PG_FUNCTION_ARGS)
{
	ApprovalActor actor;
	int64		id;
	const char *stage;
	const char *from;
	const char *to;
	const char *reason;
	Req		   *r;
	StageRow   *s;
	StageDef	def = {0};
	List	   *resolved;

	admin_actor(&actor, "reassign");
	reason = admin_reason(fcinfo, 4, "reassign");
	id = required_id(fcinfo, 0);
	stage = required_arg(fcinfo, 1, "stage");
	from = required_arg(fcinfo, 2, "from_target");
	to = required_arg(fcinfo, 3, "to_target");

	r = admin_open(id, &actor);
	s = find_stage(r, stage);
	if (s->state != STAGE_WAITING && s->state != STAGE_ACTIVE)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("stage \"%s\" of request %lld is %s", stage, (long long) id,
						stage_state_names[s->state]),
				 errdetail("Only a waiting or active stage can change its approvers."),
				 errhint("Reassign a stage that is still to be decided, or use approval.override() to decide the request.")));
	if (!approval_list_has(s->targets, from))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a target of stage \"%s\" of request %lld",
						from, stage, (long long) id),
				 errdetail("The stage's targets are %s.", target_list(s->targets))));
	if (!approval_target_valid(to))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not an approver target", to),
				 errhint("A target is user:<id>, group:<name>, role:<pg role> or manager.")));

	/* as submit resolves them: "manager" is the requester's, unknowns AP011 */
	def.name = s->stage;
	def.approvers = list_make1(pstrdup(to));
	resolved = approval_resolve_targets(r->requester, &def);
	to = linitial(resolved);
	if (strcmp(to, from) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is already the target being replaced", to)));

	engine_reassign(r, s, from, to, reason);
	PG_RETURN_DATUM(request_done(r));
}

/*
 * override(request, decision, reason): an admin approves or rejects an open
 * request outright.
 */
PG_FUNCTION_INFO_V1(approval_override);
Datum
approval_override(PG_FUNCTION_ARGS)
{
	ApprovalActor actor;
	int64		id;
	const char *decision;
	const char *reason;
	Req		   *r;

	admin_actor(&actor, "override");
	reason = admin_reason(fcinfo, 2, "override");
	id = required_id(fcinfo, 0);
	decision = PG_ARGISNULL(1) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (strcmp(decision, "approve") != 0 && strcmp(decision, "reject") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an override decides \"approve\" or \"reject\""),
				 errhint("To end the request without a decision, use approval.cancel().")));

	r = admin_open(id, &actor);
	engine_override(r, strcmp(decision, "approve") == 0, reason);
	PG_RETURN_DATUM(request_done(r));
}

/*
 * transfer(request, new_requester, reason): an open request gets another
 * requester, an active principal.
 */
PG_FUNCTION_INFO_V1(approval_transfer);
Datum
approval_transfer(PG_FUNCTION_ARGS)
{
	ApprovalActor actor;
	ApprovalActor to_actor;
	int64		id;
	const char *to;
	const char *reason;
	Req		   *r;

	admin_actor(&actor, "transfer");
	reason = admin_reason(fcinfo, 2, "transfer");
	id = required_id(fcinfo, 0);
	to = required_arg(fcinfo, 1, "new_requester");

	r = admin_open(id, &actor);
	if (strcmp(to, r->requester) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is already the requester of request %lld", to, (long long) id)));
	/* AP012 unless it is an active principal */
	approval_get_actor_as(&to_actor, to);

	engine_transfer(r, to_actor.id, reason);
	PG_RETURN_DATUM(request_done(r));
}

/* A timestamp as JSON's string of it */
static char *
json_time(TimestampTz t)
{
	char		buf[MAXDATELEN + 1];

	JsonEncodeDateTime(buf, TimestampTzGetDatum(t), TIMESTAMPTZOID, NULL);
	return pstrdup(buf);
}

/*
 * delegate_for(principal, delegate, starts, ends, workflow, reason): the
 * delegation "principal" would make with approval.delegate(), made by an
 * admin for someone who is absent.  Returns its id.
 */
PG_FUNCTION_INFO_V1(approval_delegate_for);
Datum
approval_delegate_for(PG_FUNCTION_ARGS)
{
	ApprovalActor actor;
	ApprovalActor principal;
	const char *delegate;
	const char *workflow = PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4));
	const char *reason;
	TimestampTz starts = PG_ARGISNULL(2) ? GetCurrentTransactionStartTimestamp()
		: PG_GETARG_TIMESTAMPTZ(2);
	TimestampTz ends = PG_ARGISNULL(3) ? 0 : PG_GETARG_TIMESTAMPTZ(3);
	int64		id;
	ApprovalJson j;

	admin_actor(&actor, "delegate_for");
	reason = admin_reason(fcinfo, 5, "delegate_for");
	(void) required_arg(fcinfo, 0, "principal");
	delegate = required_arg(fcinfo, 1, "delegate");

	/* AP012 unless the absent one is an active principal */
	approval_get_actor_as(&principal, text_to_cstring(PG_GETARG_TEXT_PP(0)));
	id = approval_delegation_create(principal.id, delegate, &starts,
									PG_ARGISNULL(3) ? NULL : &ends, workflow,
									actor.id, reason);

	aj_init(&j);
	aj_int(&j, "delegation", id);
	aj_str(&j, "principal", principal.id);
	aj_str(&j, "delegate", delegate);
	aj_str(&j, "starts", json_time(starts));
	aj_str(&j, "ends", PG_ARGISNULL(3) ? NULL : json_time(ends));
	aj_str(&j, "workflow", workflow);
	aj_str(&j, "reason", reason);
	approval_event_alone("delegated", actor.id, aj_finish(&j),
						 list_make1(psprintf("user:%s", delegate)));
	approval_spi_finish();
	PG_RETURN_INT64(id);
}
