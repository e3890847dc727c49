/*-------------------------------------------------------------------------
 *
 * workflow.c
 *	  The per-backend cache of compiled workflow definitions, the list of
 *	  enabled workflows in routing order, and the map of names to their
 *	  latest version.
 *
 * Versions are immutable, so a cached version never goes stale; the cache
 * is still dropped on any invalidation of approval.workflow, which
 * define_workflow(), (en|dis)able_workflow() and the workflow_changed
 * trigger send so that every session sees the change at once, and when the
 * extension is dropped and created again.
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"

#define MAX_NAME_LEN APPROVAL_MAX_NAME_LEN

/* Tell every session (this one included) that definitions changed */
void
approval_definitions_changed(void)
{
	CacheInvalidateRelcacheByRelid(approval_relid("workflow"));
}

/*
 * workflow_changed(): statement trigger on approval.workflow, so that a
 * superuser's direct change (such as handing a dropped definer's callbacks
 * to another role) reaches every session's cache.
 */
PG_FUNCTION_INFO_V1(approval_workflow_changed);
Datum
approval_workflow_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("approval.workflow_changed() must be called as a trigger")));
	approval_definitions_changed();
	return PointerGetDatum(NULL);
}


/* ---------- the cache ---------- */

typedef struct WorkflowEntry
{
	int32		id;				/* hash key */
	WorkflowDef *def;
} WorkflowEntry;

static MemoryContext cache_cxt = NULL;
static HTAB *cache_hash = NULL;
static List *cache_enabled = NIL;	/* WorkflowDef *, in routing order */
static HTAB *cache_names = NULL;	/* name -> latest version */
static bool cache_enabled_valid = false;
static Oid	cache_relid = InvalidOid;	/* approval.workflow the cache is of */
static bool callback_registered = false;

/* Drop the cache (what is in use goes on living until the transaction ends) */
static void
cache_reset(void)
{
	approval_retire_context(&cache_cxt);
	cache_hash = NULL;
	cache_names = NULL;
	cache_enabled = NIL;
	cache_enabled_valid = false;
}

static void
cache_invalidate(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == cache_relid)
		cache_reset();
}

static void
cache_check(void)
{
	Oid			relid = approval_relid("workflow");

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(cache_invalidate, (Datum) 0);
		callback_registered = true;
	}
	if (relid != cache_relid)
	{
		/* first use, or the extension was dropped and created again */
		cache_reset();
		cache_relid = relid;
	}
	if (cache_cxt == NULL)
		cache_cxt = AllocSetContextCreate(CacheMemoryContext, "approval workflow cache",
										  ALLOCSET_SMALL_SIZES);
	if (cache_hash == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(int32);
		ctl.entrysize = sizeof(WorkflowEntry);
		ctl.hcxt = cache_cxt;
		cache_hash = hash_create("approval workflows", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
}

static ApprovalPlan load_workflow_plan = {
	"SELECT name, version, priority, enabled, description, match, auto_approve, require_ack,"
	"  allow_self_approval, distinct_approvers, reapprove_on_change, sla, sla_warning, calendar,"
	"  escalate_after, escalate_every, escalate_to, expires_after, on_approved, on_rejected, created_by,"
	"  on_submitted, on_cancelled, on_expired, search_path, sla_pause, escalate_max"
	" FROM approval.workflow WHERE id = $1",
	1, {INT4OID}
};

static ApprovalPlan load_stages_plan = {
	"SELECT idx, name, stage_order, approvers, min_approvals, reject_policy, reject_quorum,"
	"  when_cond, denial_message, timeout, on_timeout"
	" FROM approval.workflow_stage WHERE workflow_id = $1 ORDER BY idx",
	1, {INT4OID}
};

/* column readers that copy into CurrentMemoryContext (the cache) */
static char *
col_text(int row, int col)
{
	bool		isnull;
	Datum		d = approval_getdatum(row, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

static void *
col_copy(int row, int col)
{
	bool		isnull;
	Datum		d = approval_getdatum(row, col, &isnull);
	Form_pg_attribute att = TupleDescAttr(SPI_tuptable->tupdesc, col - 1);

	if (isnull)
		return NULL;
	return DatumGetPointer(datumCopy(d, att->attbyval, att->attlen));
}

static WorkflowDef *
load_definition(int32 id, MemoryContext cxt)
{
	Datum		arg = Int32GetDatum(id);
	WorkflowDef *wf;
	MemoryContext old;
	bool		isnull;
	int			n;

	if (approval_exec(&load_workflow_plan, &arg, NULL, false, 1) != 1)
		return NULL;

	old = MemoryContextSwitchTo(cxt);
	wf = palloc0(sizeof(WorkflowDef));
	wf->id = id;
	wf->name = col_text(0, 1);
	wf->version = approval_getint32(0, 2);
	wf->priority = approval_getint32(0, 3);
	wf->enabled = approval_getbool(0, 4);
	wf->description = col_text(0, 5);
	wf->match = col_copy(0, 6);
	wf->match_uses_workflow = approval_condition_uses_workflow(wf->match);
	wf->auto_approve = col_copy(0, 7);
	wf->require_ack = col_text(0, 8);
	wf->allow_self_approval = approval_getbool(0, 9);
	wf->distinct_approvers = approval_getbool(0, 10);
	wf->reapprove_all = strcmp(col_text(0, 11), "all") == 0;
	wf->sla = col_copy(0, 12);
	wf->sla_warning = DatumGetFloat8(approval_getdatum(0, 13, &isnull));
	if (isnull)
		wf->sla_warning = 0;
	wf->calendar = col_text(0, 14);
	wf->escalate_after = col_copy(0, 15);
	wf->escalate_every = col_copy(0, 16);
	wf->escalate_to = col_text(0, 17);
	wf->expires_after = col_copy(0, 18);
	wf->callbacks[CALLBACK_APPROVED] = col_text(0, 19);
	wf->callbacks[CALLBACK_REJECTED] = col_text(0, 20);
	wf->created_by = DatumGetObjectId(approval_getdatum(0, 21, &isnull));
	wf->callbacks[CALLBACK_SUBMITTED] = col_text(0, 22);
	wf->callbacks[CALLBACK_CANCELLED] = col_text(0, 23);
	wf->callbacks[CALLBACK_EXPIRED] = col_text(0, 24);
	wf->search_path = col_text(0, 25);
	wf->sla_pauses = strcmp(col_text(0, 26), "never") != 0;
	{
		Datum		d = approval_getdatum(0, 27, &isnull);

		wf->escalate_max = isnull ? 0 : DatumGetInt32(d);
	}
	MemoryContextSwitchTo(old);

	n = approval_exec(&load_stages_plan, &arg, NULL, false, 0);
	old = MemoryContextSwitchTo(cxt);
	wf->nstages = n;
	wf->stages = palloc0(sizeof(StageDef) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		StageDef   *st = &wf->stages[i];
		char	   *policy;

		st->idx = approval_getint32(i, 1);
		st->name = col_text(i, 2);
		st->order = approval_getint32(i, 3);
		st->approvers = approval_array_to_list(DatumGetArrayTypeP(approval_getdatum(i, 4, &isnull)));
		st->min_approvals = approval_getint32(i, 5);	/* NULL ("all") reads as 0 */
		policy = col_text(i, 6);
		st->reject_by_quorum = strcmp(policy, "quorum") == 0;
		st->reject_quorum = approval_getint32(i, 7);
		st->when = col_copy(i, 8);
		st->denial_message = col_text(i, 9);
		st->timeout = col_copy(i, 10);
		st->on_timeout = col_text(i, 11);
	}
	MemoryContextSwitchTo(old);
	return wf;
}

/*
 * A compiled workflow version, from the cache; NULL if there is none.
 * Needs SPI.
 */
WorkflowDef *
approval_workflow_get(int32 id)
{
	WorkflowEntry *e;
	bool		found;
	WorkflowDef *wf;
	MemoryContext cxt;

	cache_check();
	e = hash_search(cache_hash, &id, HASH_FIND, &found);
	if (found)
		return e->def;
	cxt = cache_cxt;
	wf = load_definition(id, cxt);
	/*
	 * Keep it only if no invalidation came while it was read; otherwise it
	 * lives (in the retired context) until the end of this transaction.
	 */
	if (wf != NULL && cxt == cache_cxt)
	{
		e = hash_search(cache_hash, &id, HASH_ENTER, &found);
		e->def = wf;
	}
	return wf;
}

static ApprovalPlan enabled_plan = {
	"SELECT id FROM ("
	"  SELECT DISTINCT ON (name) id, name, priority, enabled FROM approval.workflow"
	"   ORDER BY name, version DESC) latest"
	" WHERE enabled ORDER BY priority, name",
	0, {InvalidOid}
};

/*
 * The latest version of every enabled workflow, in routing order (priority,
 * then name).  Cached until a definition changes.  Needs SPI.
 */
List *
approval_enabled_workflows(void)
{
	int			n;
	int32	   *ids;
	List	   *result = NIL;
	MemoryContext cxt;

	/*
	 * Unlike a lookup by id (versions never change), this list changes with
	 * every definition: take in the invalidations committed since this
	 * transaction's last lock, so that each statement routes with what was
	 * committed before it began.
	 */
	AcceptInvalidationMessages();
	cache_check();
	if (cache_enabled_valid)
		return cache_enabled;
	cxt = cache_cxt;

	n = approval_exec(&enabled_plan, NULL, NULL, false, 0);
	ids = palloc(sizeof(int32) * Max(n, 1));
	for (int i = 0; i < n; i++)
		ids[i] = approval_getint32(i, 1);

	for (int i = 0; i < n; i++)
	{
		WorkflowDef *wf = approval_workflow_get(ids[i]);
		MemoryContext old;

		if (wf == NULL)
			continue;
		old = MemoryContextSwitchTo(cxt);
		result = lappend(result, wf);
		MemoryContextSwitchTo(old);
	}
	/* as above: an invalidation meanwhile makes this list good for now only */
	if (cxt == cache_cxt)
	{
		cache_enabled = result;
		cache_enabled_valid = true;
	}
	return result;
}

typedef struct NameEntry
{
	char		name[MAX_NAME_LEN + 1]; /* hash key */
	int32		id;				/* latest version */
	bool		enabled;
} NameEntry;

static ApprovalPlan latest_versions_plan = {
	"SELECT DISTINCT ON (name) name, id, enabled FROM approval.workflow"
	" ORDER BY name, version DESC",
	0, {InvalidOid}
};

/*
 * The id of the latest version of a workflow, and whether it is enabled; 0
 * if there is none.  Like the routing list, the map of names is current as
 * of each statement (definitions send invalidations).  Needs SPI.
 */
int32
approval_latest_version(const char *name, bool *enabled)
{
	NameEntry  *e;
	bool		found;

	if (strlen(name) > MAX_NAME_LEN)
		return 0;
	AcceptInvalidationMessages();
	cache_check();
	if (cache_names == NULL)
	{
		HASHCTL		ctl;
		HTAB	   *names;
		MemoryContext cxt = cache_cxt;
		int			n;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = MAX_NAME_LEN + 1;
		ctl.entrysize = sizeof(NameEntry);
		ctl.hcxt = cxt;
		names = hash_create("approval workflow names", 64, &ctl,
							HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
		n = approval_exec(&latest_versions_plan, NULL, NULL, false, 0);
		for (int i = 0; i < n; i++)
		{
			bool		isnull;
			text	   *t = DatumGetTextPP(approval_getdatum(i, 1, &isnull));
			char		key[MAX_NAME_LEN + 1];

			text_to_cstring_buffer(t, key, sizeof(key));
			e = hash_search(names, key, HASH_ENTER, &found);
			e->id = approval_getint32(i, 2);
			e->enabled = approval_getbool(i, 3);
		}
		/* keep it only if no invalidation came meanwhile */
		if (cxt == cache_cxt)
			cache_names = names;
		e = hash_search(names, name, HASH_FIND, &found);
	}
	else
		e = hash_search(cache_names, name, HASH_FIND, &found);

	if (!found)
		return 0;
	*enabled = e->enabled;
	return e->id;
}


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

