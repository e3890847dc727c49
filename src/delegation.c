/*-------------------------------------------------------------------------
 *
 * delegation.c
 *	  Delegation (DESIGN §5): approval.delegate(), approval.revoke_delegation()
 *	  and the one way a delegation is made, which an admin's
 *	  approval.delegate_for() (admin.c) shares.
 *
 * What a delegation lets its delegate do is actor.c's (the delegator's
 * targets join the delegate's while it is active).
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

/* ---------- delegation (DESIGN §5) ---------- */


static ApprovalPlan insert_delegation_plan = {
	"INSERT INTO approval.delegation (delegator, delegate, starts, ends, workflow, created_by, reason)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
	7, {TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID}
};

static ApprovalPlan lock_delegation_plan = {
	"SELECT delegator, revoked_at IS NOT NULL, delegate FROM approval.delegation WHERE id = $1 FOR UPDATE",
	1, {INT8OID}
};

static ApprovalPlan revoke_delegation_plan = {
	"UPDATE approval.delegation SET revoked_at = pg_catalog.now() WHERE id = $1",
	1, {INT8OID}
};

static Datum
text_or_null_datum(const char *s, char *null)
{
	*null = s ? ' ' : 'n';
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/*
 * A delegation from "delegator" to "delegate" from starts (NULL: now) until
 * ends (NULL: open-ended), for one workflow or all (NULL), made by
 * "created_by" (with a reason, or NULL): refused when it is to oneself, to
 * no active principal, for a workflow that does not exist, or ends before
 * it starts.  Returns its id.  Needs SPI.  approval.delegate() and an
 * admin's approval.delegate_for() (admin.c) both make theirs here.
 */
int64
approval_delegation_create(const char *delegator, const char *delegate,
						   const TimestampTz *starts, const TimestampTz *ends,
						   const char *workflow, const char *created_by, const char *reason)
{
	Datum		args[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	ApprovalPrincipalState state;

	if (strcmp(delegate, delegator) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s cannot delegate to themselves", delegator)));

	state = approval_principal_state(delegate);
	if (state == PRINCIPAL_MISSING)
		ereport(ERROR,
				(errcode(ERRCODE_AP_TARGET_UNRESOLVABLE),
				 errmsg("there is no principal \"%s\" to delegate to", delegate),
				 errhint("Add it to approval.principal first.")));
	if (state == PRINCIPAL_INACTIVE)
		ereport(ERROR,
				(errcode(ERRCODE_AP_TARGET_UNRESOLVABLE),
				 errmsg("principal \"%s\" is not active", delegate)));

	if (workflow != NULL)
	{
		bool		enabled;

		if (approval_latest_version(workflow, &enabled) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_AP_NO_WORKFLOW_MATCHES),
					 errmsg("workflow \"%s\" does not exist", workflow),
					 errhint("SELECT name FROM approval.workflows lists the workflows.")));
	}

	if (starts != NULL && ends != NULL && *ends <= *starts)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a delegation must end after it starts")));

	args[0] = CStringGetTextDatum(delegator);
	args[1] = CStringGetTextDatum(delegate);
	args[2] = TimestampTzGetDatum(starts ? *starts : GetCurrentTransactionStartTimestamp());
	args[3] = ends ? TimestampTzGetDatum(*ends) : (Datum) 0;
	nulls[3] = ends ? ' ' : 'n';
	args[4] = text_or_null_datum(workflow, &nulls[4]);
	args[5] = text_or_null_datum(created_by, &nulls[5]);
	args[6] = text_or_null_datum(reason, &nulls[6]);
	approval_exec(&insert_delegation_plan, args, nulls, false, 0);
	return approval_getint64(0, 1);
}

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
	TimestampTz starts = 0;
	TimestampTz ends = 0;
	int64		id;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("delegate must not be NULL")));
	if (!PG_ARGISNULL(1))
		starts = PG_GETARG_TIMESTAMPTZ(1);
	if (!PG_ARGISNULL(2))
		ends = PG_GETARG_TIMESTAMPTZ(2);

	approval_spi_connect();
	approval_get_actor(&actor);
	id = approval_delegation_create(actor.id, text_to_cstring(PG_GETARG_TEXT_PP(0)),
									PG_ARGISNULL(1) ? NULL : &starts,
									PG_ARGISNULL(2) ? NULL : &ends,
									PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3)),
									actor.id, NULL);
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
	/* a delegation the caller may not see (DESIGN §8) does not exist for them */
	if (approval_exec(&lock_delegation_plan, &arg, NULL, false, 1) == 0 ||
		(!actor.is_admin && strcmp(approval_gettext(0, 1), actor.id) != 0 &&
		 strcmp(approval_gettext(0, 3), actor.id) != 0))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("delegation %lld does not exist", (long long) PG_GETARG_INT64(0)),
				 errhint("SELECT * FROM approval.delegation lists the delegations you made or were given.")));
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
