/*-------------------------------------------------------------------------
 *
 * actor.c
 *	  Who is acting, and which approver targets that person answers for.
 *
 * The acting principal is decided by the role outside any SECURITY DEFINER
 * switch (GetOuterUserId), never by the extension owner the engine runs as.
 * An application that connects as one role and acts for many people sets
 * approval.actor; that is honoured only for members of approval_gateway.
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "access/xact.h"

/* the principal mapped to a PostgreSQL role */
static ApprovalPlan principal_by_role = {
	"SELECT id FROM approval.principal WHERE pg_role = $1",
	1, {NAMEOID}
};

/* the role mapped to a principal */
static ApprovalPlan role_of_principal = {
	"SELECT r.oid FROM approval.principal p"
	"  JOIN pg_catalog.pg_roles r ON r.rolname = p.pg_role"
	" WHERE p.id = $1",
	1, {TEXTOID}
};

/*
 * Every target an actor answers for, with the principal it answers as: the
 * actor itself (delegated = false) and each principal with an active
 * delegation to it (delegated = true), with the workflow the delegation is
 * limited to (scope; NULL for all).  $3 keeps only the delegations that
 * cover that workflow (NULL: all of them).  Role membership is real
 * membership through pg_auth_members, so a superuser is not "a member of
 * every role" here.
 */
static ApprovalPlan targets_plan = {
	"WITH RECURSIVE who(pid, roleid, delegated, scope) AS ("
	"  SELECT $1::text, $2::oid, false, NULL::text"
	"  UNION ALL"
	"  SELECT d.delegator, r.oid, true, d.workflow"
	"    FROM approval.delegation d"
	"    LEFT JOIN approval.principal p ON p.id = d.delegator AND p.active"
	"    LEFT JOIN pg_catalog.pg_roles r ON r.rolname = p.pg_role"
	"   WHERE d.delegate = $1 AND d.revoked_at IS NULL"
	"     AND d.starts <= pg_catalog.now()"
	"     AND (d.ends IS NULL OR d.ends > pg_catalog.now())"
	"     AND ($3::text IS NULL OR d.workflow IS NULL OR d.workflow = $3)"
	"), mem(pid, delegated, scope, roleid) AS ("
	"  SELECT pid, delegated, scope, roleid FROM who WHERE roleid IS NOT NULL"
	"  UNION"
	"  SELECT mem.pid, mem.delegated, mem.scope, a.roleid FROM mem"
	"    JOIN pg_catalog.pg_auth_members a ON a.member = mem.roleid"
	"), t(pid, delegated, scope, target) AS ("
	"  SELECT pid, delegated, scope, 'user:' || pid FROM who"
	"  UNION"
	"  SELECT w.pid, w.delegated, w.scope, 'group:' || m.group_name FROM who w"
	"    JOIN approval.group_member m ON m.principal_id = w.pid"
	"  UNION"
	"  SELECT mem.pid, mem.delegated, mem.scope, 'group:' || g.name FROM mem"
	"    JOIN pg_catalog.pg_roles r ON r.oid = mem.roleid"
	"    JOIN approval.approver_group g ON g.pg_role = r.rolname"
	"  UNION"
	"  SELECT mem.pid, mem.delegated, mem.scope, 'role:' || r.rolname FROM mem"
	"    JOIN pg_catalog.pg_roles r ON r.oid = mem.roleid"
	")"
	" SELECT pid, delegated, scope, target FROM t"
	" ORDER BY delegated, pid, scope NULLS FIRST, target",
	3, {TEXTOID, OIDOID, TEXTOID}
};

static Oid
role_oid_or_invalid(const char *rolname)
{
	return get_role_oid(rolname, true);
}

/*
 * Decide who is acting.  The caller must be connected to SPI.
 */
void
approval_get_actor(ApprovalActor *actor)
{
	Oid			outer = GetOuterUserId();
	Oid			admin_role;

	if (approval_actor != NULL && approval_actor[0] != '\0')
	{
		Oid			gateway = role_oid_or_invalid(APPROVAL_GATEWAY_ROLE);
		Datum		arg;

		if (!OidIsValid(gateway) || !is_member_of_role(outer, gateway))
			ereport(ERROR,
					(errcode(ERRCODE_AP_ACTOR_NOT_ALLOWED),
					 errmsg("role \"%s\" may not set approval.actor",
							GetUserNameFromId(outer, false)),
					 errdetail("Only members of the role %s may act for another principal.",
							   APPROVAL_GATEWAY_ROLE),
					 errhint("RESET approval.actor, or GRANT %s to the application's role.",
							 APPROVAL_GATEWAY_ROLE)));

		actor->id = pstrdup(approval_actor);
		arg = CStringGetTextDatum(actor->id);
		actor->roleid = InvalidOid;
		if (approval_exec(&role_of_principal, &arg, NULL, false, 1) == 1)
		{
			bool		isnull;
			Datum		d = approval_getdatum(0, 1, &isnull);

			if (!isnull)
				actor->roleid = DatumGetObjectId(d);
		}
	}
	else
	{
		char	   *rolname = GetUserNameFromId(outer, false);
		Datum		arg = DirectFunctionCall1(namein, CStringGetDatum(rolname));

		if (approval_exec(&principal_by_role, &arg, NULL, false, 1) == 1)
			actor->id = approval_gettext(0, 1);
		else
			actor->id = pstrdup(rolname);
		actor->roleid = outer;
	}

	admin_role = role_oid_or_invalid(APPROVAL_ADMIN_ROLE);
	actor->is_admin = OidIsValid(actor->roleid) && OidIsValid(admin_role) &&
		has_privs_of_role(actor->roleid, admin_role);

	/*
	 * A gateway that is not acting for anyone may read every request: it
	 * could act for anyone, and a listener service needs the whole log.
	 */
	actor->sees_all = actor->is_admin;
	if (!actor->sees_all && (approval_actor == NULL || approval_actor[0] == '\0'))
	{
		Oid			gateway = role_oid_or_invalid(APPROVAL_GATEWAY_ROLE);

		actor->sees_all = OidIsValid(gateway) && is_member_of_role(outer, gateway);
	}
}

/*
 * The target sets an actor answers for, one per principal it can vote as:
 * the actor itself first, then each delegator.  The caller must be connected
 * to SPI; the result lives in the caller's memory context.
 */
List *
approval_actor_target_sets(const ApprovalActor *actor, const char *workflow)
{
	Datum		args[3];
	char		nulls[3] = {' ', ' ', ' '};
	int			n;
	List	   *sets = NIL;
	ApprovalTargetSet *cur = NULL;

	args[0] = CStringGetTextDatum(actor->id);
	args[1] = ObjectIdGetDatum(actor->roleid);
	if (!OidIsValid(actor->roleid))
		nulls[1] = 'n';
	if (workflow != NULL)
		args[2] = CStringGetTextDatum(workflow);
	else
		nulls[2] = 'n';

	n = approval_exec(&targets_plan, args, nulls, false, 0);
	for (int i = 0; i < n; i++)
	{
		char	   *pid = approval_gettext(i, 1);
		char	   *scope = approval_gettext(i, 3);

		if (cur == NULL || strcmp(cur->principal, pid) != 0 ||
			(cur->scope == NULL) != (scope == NULL) ||
			(scope != NULL && strcmp(cur->scope, scope) != 0))
		{
			cur = palloc0(sizeof(ApprovalTargetSet));
			cur->principal = pid;
			cur->delegated = approval_getbool(i, 2);
			cur->scope = scope;
			sets = lappend(sets, cur);
		}
		cur->targets = lappend(cur->targets, approval_gettext(i, 4));
	}
	return sets;
}

/*
 * The targets of all sets that are not limited to one workflow, without
 * duplicates, sorted: what my_targets() shows.
 */
ArrayType *
approval_flatten_targets(List *sets)
{
	List	   *all = NIL;
	ListCell   *ls,
			   *lt;

	foreach(ls, sets)
	{
		ApprovalTargetSet *set = lfirst(ls);

		if (set->scope != NULL)
			continue;

		foreach(lt, set->targets)
		{
			char	   *t = lfirst(lt);
			bool		seen = false;
			ListCell   *la;

			foreach(la, all)
				if (strcmp(lfirst(la), t) == 0)
				{
					seen = true;
					break;
				}
			if (!seen)
				all = lappend(all, t);
		}
	}
	list_sort(all, approval_cmp_cstring);
	return approval_text_array(all);
}

int
approval_cmp_cstring(const ListCell *a, const ListCell *b)
{
	return strcmp(lfirst(a), lfirst(b));
}

PG_FUNCTION_INFO_V1(approval_current_actor);
Datum
approval_current_actor(PG_FUNCTION_ARGS)
{
	ApprovalActor actor;
	text	   *result;

	approval_spi_connect();
	approval_get_actor(&actor);
	result = (text *) SPI_palloc(VARHDRSZ + strlen(actor.id));
	SET_VARSIZE(result, VARHDRSZ + strlen(actor.id));
	memcpy(VARDATA(result), actor.id, strlen(actor.id));
	approval_spi_finish();
	PG_RETURN_TEXT_P(result);
}

PG_FUNCTION_INFO_V1(approval_my_targets);
Datum
approval_my_targets(PG_FUNCTION_ARGS)
{
	ApprovalActor actor;
	MemoryContext upper = CurrentMemoryContext;
	MemoryContext old;
	List	   *sets;
	ArrayType  *result;

	approval_spi_connect();
	approval_get_actor(&actor);
	sets = approval_actor_target_sets(&actor, NULL);
	old = MemoryContextSwitchTo(upper);
	result = approval_flatten_targets(sets);
	MemoryContextSwitchTo(old);
	approval_spi_finish();
	PG_RETURN_ARRAYTYPE_P(result);
}

/*
 * my_target_sets() → TABLE(principal, delegated, workflow, targets): one row
 * per capacity the actor can act in, the actor's own first; "workflow" is
 * the one workflow a delegation is limited to.
 */
PG_FUNCTION_INFO_V1(approval_my_target_sets);
Datum
approval_my_target_sets(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Tuplestorestate *ts = approval_srf_init(fcinfo, &desc);
	MemoryContext upper = CurrentMemoryContext;
	ApprovalActor actor;
	List	   *sets;
	ListCell   *lc;

	approval_spi_connect();
	approval_get_actor(&actor);
	sets = approval_actor_target_sets(&actor, NULL);
	foreach(lc, sets)
	{
		ApprovalTargetSet *set = lfirst(lc);
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		MemoryContext old = MemoryContextSwitchTo(upper);

		values[0] = CStringGetTextDatum(set->principal);
		values[1] = BoolGetDatum(set->delegated);
		values[2] = set->scope ? CStringGetTextDatum(set->scope) : (Datum) 0;
		nulls[2] = (set->scope == NULL);
		values[3] = PointerGetDatum(approval_text_array(set->targets));
		tuplestore_putvalues(ts, desc, values, nulls);
		MemoryContextSwitchTo(old);
	}
	approval_spi_finish();
	return (Datum) 0;
}

/* ---------- delegation (DESIGN §5) ---------- */

static ApprovalPlan delegate_principal_plan = {
	"SELECT active FROM approval.principal WHERE id = $1",
	1, {TEXTOID}
};

static ApprovalPlan delegate_workflow_plan = {
	"SELECT 1 FROM approval.workflow WHERE name = $1 LIMIT 1",
	1, {TEXTOID}
};

static ApprovalPlan insert_delegation_plan = {
	"INSERT INTO approval.delegation (delegator, delegate, starts, ends, workflow)"
	" VALUES ($1, $2, $3, $4, $5) RETURNING id",
	5, {TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID}
};

static ApprovalPlan lock_delegation_plan = {
	"SELECT delegator, revoked_at IS NOT NULL FROM approval.delegation WHERE id = $1 FOR UPDATE",
	1, {INT8OID}
};

static ApprovalPlan revoke_delegation_plan = {
	"UPDATE approval.delegation SET revoked_at = pg_catalog.now() WHERE id = $1",
	1, {INT8OID}
};

/*
 * delegate(delegate, starts, ends, workflow): the current actor lets
 * "delegate" vote in its place from starts until ends (open-ended when
 * NULL), for one workflow or all.  Returns the delegation's id.
 */
PG_FUNCTION_INFO_V1(approval_delegate);
Datum
approval_delegate(PG_FUNCTION_ARGS)
{
	ApprovalActor actor;
	char	   *delegate;
	Datum		args[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	int64		id;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("delegate must not be NULL")));
	delegate = text_to_cstring(PG_GETARG_TEXT_PP(0));

	approval_spi_connect();
	approval_get_actor(&actor);

	if (strcmp(delegate, actor.id) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s cannot delegate to themselves", actor.id)));

	args[0] = PG_GETARG_DATUM(0);
	if (approval_exec(&delegate_principal_plan, args, NULL, false, 1) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_AP_TARGET_UNRESOLVABLE),
				 errmsg("there is no principal \"%s\" to delegate to", delegate),
				 errhint("Add it to approval.principal first.")));
	if (!approval_getbool(0, 1))
		ereport(ERROR,
				(errcode(ERRCODE_AP_TARGET_UNRESOLVABLE),
				 errmsg("principal \"%s\" is not active", delegate)));

	if (!PG_ARGISNULL(3))
	{
		args[0] = PG_GETARG_DATUM(3);
		if (approval_exec(&delegate_workflow_plan, args, NULL, false, 1) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_AP_NO_WORKFLOW_MATCHES),
					 errmsg("workflow \"%s\" does not exist", text_to_cstring(PG_GETARG_TEXT_PP(3))),
					 errhint("SELECT name FROM approval.workflows lists the workflows.")));
	}

	if (!PG_ARGISNULL(1) && !PG_ARGISNULL(2) &&
		PG_GETARG_TIMESTAMPTZ(2) <= PG_GETARG_TIMESTAMPTZ(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a delegation must end after it starts")));

	args[0] = CStringGetTextDatum(actor.id);
	args[1] = PG_GETARG_DATUM(0);
	args[2] = PG_ARGISNULL(1) ? TimestampTzGetDatum(GetCurrentTransactionStartTimestamp())
		: PG_GETARG_DATUM(1);
	args[3] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	nulls[3] = PG_ARGISNULL(2) ? 'n' : ' ';
	args[4] = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
	nulls[4] = PG_ARGISNULL(3) ? 'n' : ' ';
	approval_exec(&insert_delegation_plan, args, nulls, false, 1);
	id = approval_getint64(0, 1);
	approval_spi_finish();
	PG_RETURN_INT64(id);
}

PG_FUNCTION_INFO_V1(approval_revoke_delegation);
Datum
approval_revoke_delegation(PG_FUNCTION_ARGS)
{
	ApprovalActor actor;
	Datum		arg = PG_GETARG_DATUM(0);
	char	   *delegator;

	approval_spi_connect();
	approval_get_actor(&actor);
	if (approval_exec(&lock_delegation_plan, &arg, NULL, false, 1) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("delegation %lld does not exist", (long long) PG_GETARG_INT64(0))));
	delegator = approval_gettext(0, 1);
	if (strcmp(delegator, actor.id) != 0 && !actor.is_admin)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only %s or an approval_admin may revoke delegation %lld",
						delegator, (long long) PG_GETARG_INT64(0))));
	if (!approval_getbool(0, 2))
		approval_exec(&revoke_delegation_plan, &arg, NULL, false, 0);
	approval_spi_finish();
	PG_RETURN_VOID();
}
