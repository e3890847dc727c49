/*-------------------------------------------------------------------------
 *
 * target.c
 *	  Approver targets: resolving a stage's targets for a requester (as
 *	  submit does: "manager" becomes user:<id>, anything unknown and any
 *	  inactive person is AP011),
 *	  and counting the people they stand for ("all" quorums).
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"

#include "catalog/pg_type.h"
#include "utils/acl.h"
#include "utils/builtins.h"

/* the requester's manager, and whether that principal is active */
static ApprovalPlan manager_plan = {
	"SELECT p.manager_id, m.active FROM approval.principal p"
	"  LEFT JOIN approval.principal m ON m.id = p.manager_id"
	" WHERE p.id = $1",
	1, {TEXTOID}
};

static ApprovalPlan principal_active_plan = {
	"SELECT active FROM approval.principal WHERE id = $1",
	1, {TEXTOID}
};

/* Whether principal "id" exists, and is active */
ApprovalPrincipalState
approval_principal_state(const char *id)
{
	Datum		arg = CStringGetTextDatum(id);

	if (approval_exec(&principal_active_plan, &arg, NULL, false, 1) == 0)
		return PRINCIPAL_MISSING;
	return approval_getbool(0, 1) ? PRINCIPAL_ACTIVE : PRINCIPAL_INACTIVE;
}

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
			if (!approval_getbool(0, 2))
				unresolvable(st->name, t,
							 psprintf("The manager of \"%s\", \"%s\", is not active.",
									  requester, resolved + 5),
							 "Set approval.principal.manager_id of the requester to an active principal.");
		}
		else if (strncmp(t, "user:", 5) == 0)
		{
			ApprovalPrincipalState ps = approval_principal_state(t + 5);

			if (ps == PRINCIPAL_MISSING)
				unresolvable(st->name, t, psprintf("There is no principal \"%s\".", t + 5),
							 "Add it to approval.principal.");
			/* an inactive principal is no approver: the stage would wait for ever */
			if (ps == PRINCIPAL_INACTIVE)
				unresolvable(st->name, t, psprintf("Principal \"%s\" is not active.", t + 5),
							 "Name another approver, or set approval.principal.active = true.");
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

int
approval_count_principals(List *targets)
{
	Datum		arg = PointerGetDatum(approval_text_array(targets));

	approval_exec(&count_principals_plan, &arg, NULL, false, 1);
	return approval_getint32(0, 1);
}

