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
#include "utils/datetime.h"
#include "utils/syscache.h"
#include "utils/memutils.h"
#include "utils/inval.h"
#include "utils/hsearch.h"
#include "commands/trigger.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "access/xact.h"

/* the principal mapped to a PostgreSQL role */
static ApprovalPlan principal_by_role = {
	"SELECT id, active FROM approval.principal WHERE pg_role = $1",
	1, {NAMEOID}
};

/* a principal by id: whether it is active, its role (if any) and role name */
static ApprovalPlan principal_by_id = {
	"SELECT p.active, r.oid, p.pg_role::text FROM approval.principal p"
	"  LEFT JOIN pg_catalog.pg_roles r ON r.rolname = p.pg_role"
	" WHERE p.id = $1",
	1, {TEXTOID}
};

/*
 * Every target an actor answers for, with the principal it answers as: the
 * actor itself (delegated = false) and each principal with an active
 * delegation to it (delegated = true), with the workflow the delegation is
 * limited to (scope; NULL for all).  Role membership is real
 * membership through pg_auth_members, so a superuser is not "a member of
 * every role" here.
 */
static ApprovalPlan targets_plan = {
	"WITH RECURSIVE who(pid, roleid, delegated, scope) AS ("
	"  SELECT $1::text, $2::oid, false, NULL::text"
	"  UNION ALL"
	"  SELECT d.delegator, r.oid, true, d.workflow"
	"    FROM approval.delegation d"
	"    LEFT JOIN approval.principal p ON p.id = d.delegator"
	"    LEFT JOIN pg_catalog.pg_roles r ON r.rolname = p.pg_role"
	"   WHERE d.delegate = $1 AND d.revoked_at IS NULL AND p.active IS NOT FALSE"
	"     AND d.starts <= pg_catalog.now()"
	"     AND (d.ends IS NULL OR d.ends > pg_catalog.now())"
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
	2, {TEXTOID, OIDOID}
};

static Oid
role_oid_or_invalid(const char *rolname)
{
	return get_role_oid(rolname, true);
}

/* ---------- the actor cache ----------
 *
 * Who a role or an approval.actor value is, and every capacity it can act
 * in, is asked on every vote but changes rarely.  It is cached per backend,
 * keyed by (calling role, approval.actor), and dropped when
 *  - approval.principal, approver_group, group_member or delegation change:
 *    their statement triggers send a relcache invalidation of
 *    approval.principal (approval.identity_changed()), delivered to every
 *    session at commit;
 *  - role membership or roles change (syscache callbacks);
 *  - a delegation of the actor starts or ends: each entry is good only
 *    until the next such moment.
 * Dropped memory is handed to the current transaction, as pointers into it
 * may be in use (an invalidation can arrive at any SPI call).
 */
#define ACTOR_KEY_LEN 256

typedef struct ActorEntry
{
	char		key[ACTOR_KEY_LEN]; /* "<outer role oid>/<approval.actor>" */
	char	   *id;
	Oid			roleid;
	bool		is_admin;
	bool		sees_all;
	bool		have_sets;
	List	   *sets;			/* every capacity, scoped ones included */
	TimestampTz sets_until;		/* the sets are good before this moment */
} ActorEntry;

static MemoryContext actor_cxt = NULL;
static HTAB *actor_hash = NULL;
static Oid	actor_cache_relid = InvalidOid; /* approval.principal */
static bool actor_callbacks = false;

static void
actor_cache_reset(void)
{
	approval_retire_context(&actor_cxt);
	actor_hash = NULL;
}

static void
actor_relcache_cb(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == actor_cache_relid)
		actor_cache_reset();
}

static void
actor_syscache_cb(Datum arg, int cacheid, uint32 hashvalue)
{
	actor_cache_reset();
}

static void
actor_cache_check(void)
{
	Oid			relid = approval_relid("principal");

	if (!actor_callbacks)
	{
		CacheRegisterRelcacheCallback(actor_relcache_cb, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, actor_syscache_cb, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHOID, actor_syscache_cb, (Datum) 0);
		actor_callbacks = true;
	}
	if (relid != actor_cache_relid)
	{
		actor_cache_reset();
		actor_cache_relid = relid;
	}
	if (actor_hash == NULL)
	{
		HASHCTL		ctl;

		actor_cxt = AllocSetContextCreate(CacheMemoryContext, "approval actor cache",
										  ALLOCSET_SMALL_SIZES);
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = ACTOR_KEY_LEN;
		ctl.entrysize = sizeof(ActorEntry);
		ctl.hcxt = actor_cxt;
		actor_hash = hash_create("approval actors", 64, &ctl,
								 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
}

/* identity_changed(): statement trigger of the identity tables */
PG_FUNCTION_INFO_V1(approval_identity_changed);
Datum
approval_identity_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("approval.identity_changed() must be called as a trigger")));
	CacheInvalidateRelcacheByRelid(approval_relid("principal"));
	return PointerGetDatum(NULL);
}

/* Whom a caller acts for, and how to say where that name came from */
typedef struct ActingFor
{
	const char *id;				/* principal id */
	const char *source;			/* "approval.actor names", ... */
	const char *hint;			/* how to fix a name that is no principal */
} ActingFor;

static void
unknown_principal(const char *id, const char *detail, const char *hint) pg_attribute_noreturn();

static void
unknown_principal(const char *id, const char *detail, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_AP_UNKNOWN_PRINCIPAL),
			 errmsg("\"%s\" cannot act as a principal", id),
			 errdetail("%s", detail),
			 errhint("%s", hint)));
}

/*
 * Who the actor is, from the database (DESIGN §2):
 *  - a gateway's approval.actor must be an active principal;
 *  - a role acts as the principal whose pg_role it is, which must be active;
 *  - a role mapped to no principal acts under its own name, but only when no
 *    principal has that id: nobody takes a person's name by creating a role.
 * Anything else is AP012.
 */
static void
lookup_actor(ApprovalActor *actor, Oid outer, const ActingFor *as)
{
	Oid			admin_role;
	bool		acting_for = (as != NULL);

	if (acting_for)
	{
		Datum		arg;
		bool		isnull;
		Datum		d;

		actor->id = pstrdup(as->id);
		arg = CStringGetTextDatum(actor->id);
		if (approval_exec(&principal_by_id, &arg, NULL, false, 1) == 0)
			unknown_principal(actor->id,
							  psprintf("%s \"%s\", and there is no such principal.",
									   as->source, actor->id),
							  as->hint);
		if (!approval_getbool(0, 1))
			unknown_principal(actor->id,
							  psprintf("Principal \"%s\" is not active.", actor->id),
							  "An approval_admin can set approval.principal.active = true again.");
		d = approval_getdatum(0, 2, &isnull);
		actor->roleid = isnull ? InvalidOid : DatumGetObjectId(d);
	}
	else
	{
		char	   *rolname = GetUserNameFromId(outer, false);
		Datum		arg = DirectFunctionCall1(namein, CStringGetDatum(rolname));

		if (approval_exec(&principal_by_role, &arg, NULL, false, 1) == 1)
		{
			actor->id = approval_gettext(0, 1);
			if (!approval_getbool(0, 2))
				unknown_principal(actor->id,
								  psprintf("Principal \"%s\" (role \"%s\") is not active.",
										   actor->id, rolname),
								  "An approval_admin can set approval.principal.active = true again.");
		}
		else
		{
			/* unmapped: its own name, unless that is someone else's id */
			arg = CStringGetTextDatum(rolname);
			if (approval_exec(&principal_by_id, &arg, NULL, false, 1) == 1)
			{
				char	   *mapped = approval_gettext(0, 3);

				unknown_principal(rolname,
								  mapped ?
								  psprintf("Role \"%s\" is mapped to no principal, and principal \"%s\" belongs to role \"%s\".",
										   rolname, rolname, mapped) :
								  psprintf("Role \"%s\" is mapped to no principal, and principal \"%s\" is mapped to no role.",
										   rolname, rolname),
								  psprintf("To act as \"%s\", an approval_admin sets approval.principal.pg_role = '%s' for it.",
										   rolname, rolname));
			}
			actor->id = pstrdup(rolname);
		}
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
	if (!actor->sees_all && !acting_for)
	{
		Oid			gateway = role_oid_or_invalid(APPROVAL_GATEWAY_ROLE);

		actor->sees_all = OidIsValid(gateway) && is_member_of_role(outer, gateway);
	}
}

/*
 * The actor for "as" (NULL: the calling role itself), through the cache.
 * The caller has checked that the caller may act for it.
 *
 * Inside a security-restricted operation nobody is acting: the code that
 * runs there is someone else's, run as them on the outer role's behalf (a
 * governed table's owner's triggers while approval applies a held change,
 * govern_apply.c; an index expression during maintenance), and the outer
 * role, the one an actor is made of, never called it.  Acting as that role
 * from there would let the owner's trigger approve, submit or read as
 * whoever approved the change (42501).
 */
static void
get_actor(ApprovalActor *actor, Oid outer, const ActingFor *as)
{
	char		key[ACTOR_KEY_LEN];
	ActorEntry *e;
	bool		found;
	MemoryContext old;

	if (InSecurityRestrictedOperation())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the approval functions cannot be used inside a security-restricted operation"),
				 errdetail("The code running there (such as a governed table's trigger while an approved change "
						   "is applied) runs on behalf of role \"%s\", who did not call it.",
						   GetUserNameFromId(outer, false)),
				 errhint("Make the table's triggers leave the approval functions alone "
						 "when they run as the table's owner.")));
	memset(actor, 0, sizeof(*actor));
	if (snprintf(key, sizeof(key), "%u/%s", outer, as ? as->id : "")
		>= (int) sizeof(key))
	{
		lookup_actor(actor, outer, as);	/* too long to cache */
		return;
	}

	actor_cache_check();
	e = hash_search(actor_hash, key, HASH_FIND, &found);
	if (!found)
	{
		MemoryContext cxt = actor_cxt;

		lookup_actor(actor, outer, as);
		if (cxt != actor_cxt)
			return;				/* invalidated meanwhile: do not keep it */
		e = hash_search(actor_hash, key, HASH_ENTER, &found);
		old = MemoryContextSwitchTo(actor_cxt);
		e->id = pstrdup(actor->id);
		MemoryContextSwitchTo(old);
		e->roleid = actor->roleid;
		e->is_admin = actor->is_admin;
		e->sees_all = actor->sees_all;
		e->have_sets = false;
		e->sets = NIL;
	}
	actor->id = e->id;
	actor->roleid = e->roleid;
	actor->is_admin = e->is_admin;
	actor->sees_all = e->sees_all;
	actor->cache_key = e->key;
}

/*
 * Decide who is acting (DESIGN §2): the principal a gateway names in
 * approval.actor, else the one a gateway session's JWT claim names
 * (approval.actor_claim, claims.c), else the calling role's own.  The
 * caller must be connected to SPI.
 */
void
approval_get_actor(ApprovalActor *actor)
{
	Oid			outer = GetOuterUserId();
	ActingFor	as;

	if (approval_actor != NULL && approval_actor[0] != '\0')
	{
		Oid			gateway = role_oid_or_invalid(APPROVAL_GATEWAY_ROLE);

		if (!OidIsValid(gateway) || !is_member_of_role(outer, gateway))
			ereport(ERROR,
					(errcode(ERRCODE_AP_ACTOR_NOT_ALLOWED),
					 errmsg("role \"%s\" may not set approval.actor",
							GetUserNameFromId(outer, false)),
					 errdetail("Only members of the role %s may act for another principal.",
							   APPROVAL_GATEWAY_ROLE),
					 errhint("RESET approval.actor, or GRANT %s to the application's role.",
							 APPROVAL_GATEWAY_ROLE)));
		as.id = approval_actor;
		as.source = "approval.actor names";
		as.hint = "Set approval.actor to the id of a row of approval.principal.";
		get_actor(actor, outer, &as);
		return;
	}
	as.id = NULL;
	if (approval_actor_claim != NULL && approval_actor_claim[0] != '\0')
		as.id = approval_claimed_actor(role_oid_or_invalid(APPROVAL_GATEWAY_ROLE));
	if (as.id != NULL)
	{
		as.source = psprintf("The claim \"%s\" of request.jwt.claims names", approval_actor_claim);
		as.hint = "Give the user a row of approval.principal whose id is that claim.";
		get_actor(actor, outer, &as);
		return;
	}
	get_actor(actor, outer, NULL);
}

/*
 * Act as the principal "id", which must be an active principal: for a
 * caller that has already established that it may (a redeemed token is its
 * approver's word).  The caller must be connected to SPI.
 */
void
approval_get_actor_as(ApprovalActor *actor, const char *id)
{
	ActingFor	as;

	as.id = id;
	as.source = "The actor is";
	as.hint = "An approval_admin can add the principal to approval.principal.";
	get_actor(actor, GetOuterUserId(), &as);
}

static ApprovalPlan next_window_plan = {
	"SELECT pg_catalog.min(t) FROM ("
	"  SELECT starts FROM approval.delegation"
	"   WHERE delegate = $1 AND revoked_at IS NULL AND starts > pg_catalog.now()"
	"  UNION ALL"
	"  SELECT ends FROM approval.delegation"
	"   WHERE delegate = $1 AND revoked_at IS NULL AND ends > pg_catalog.now()) w(t)",
	1, {TEXTOID}
};

/* Every capacity of the actor, from the database, into cxt */
static List *
lookup_target_sets(const ApprovalActor *actor, MemoryContext cxt, TimestampTz *until)
{
	Datum		args[2];
	char		nulls[2] = {' ', ' '};
	int			n;
	List	   *sets = NIL;
	ApprovalTargetSet *cur = NULL;
	MemoryContext old;
	bool		isnull;
	Datum		d;

	args[0] = CStringGetTextDatum(actor->id);
	args[1] = ObjectIdGetDatum(actor->roleid);
	if (!OidIsValid(actor->roleid))
		nulls[1] = 'n';
	n = approval_exec(&targets_plan, args, nulls, false, 0);
	old = MemoryContextSwitchTo(cxt);
	for (int i = 0; i < n; i++)
	{
		bool		snull;
		char	   *pid = TextDatumGetCString(approval_getdatum(i, 1, &snull));
		Datum		sd = approval_getdatum(i, 3, &snull);
		char	   *scope = snull ? NULL : TextDatumGetCString(sd);

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
		cur->targets = lappend(cur->targets,
							   TextDatumGetCString(approval_getdatum(i, 4, &snull)));
	}
	MemoryContextSwitchTo(old);

	approval_exec(&next_window_plan, args, NULL, false, 1);
	d = approval_getdatum(0, 1, &isnull);
	*until = isnull ? DT_NOEND : DatumGetTimestampTz(d);
	return sets;
}

/*
 * The capacities an actor can act in, one target set each: the actor itself
 * first, then each delegator, limited to the delegations that cover
 * "workflow" (NULL: all of them, scoped ones included).  The caller must be
 * connected to SPI; the sets may live in the cache, valid until the end of
 * the transaction: do not change them.
 */
List *
approval_actor_target_sets(const ApprovalActor *actor, const char *workflow)
{
	ActorEntry *e = NULL;
	List	   *all;
	List	   *result = NIL;
	ListCell   *lc;
	TimestampTz now = GetCurrentTransactionStartTimestamp();

	if (actor->cache_key != NULL && actor_hash != NULL)
		e = hash_search(actor_hash, actor->cache_key, HASH_FIND, NULL);

	if (e != NULL && e->have_sets && now < e->sets_until)
		all = e->sets;
	else if (e != NULL)
	{
		MemoryContext cxt = actor_cxt;
		TimestampTz until;

		all = lookup_target_sets(actor, cxt, &until);
		if (cxt == actor_cxt)
		{
			e->sets = all;
			e->sets_until = until;
			e->have_sets = true;
		}
	}
	else
	{
		TimestampTz until;

		all = lookup_target_sets(actor, CurrentMemoryContext, &until);
	}

	if (workflow == NULL)
		return list_copy(all);
	foreach(lc, all)
	{
		ApprovalTargetSet *set = lfirst(lc);

		if (set->scope == NULL || strcmp(set->scope, workflow) == 0)
			result = lappend(result, set);
	}
	return result;
}

static int
cmp_cstring(const ListCell *a, const ListCell *b)
{
	return strcmp(lfirst(a), lfirst(b));
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

			if (!approval_list_has(all, t))
				all = lappend(all, t);
		}
	}
	list_sort(all, cmp_cstring);
	return approval_text_array(all);
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
