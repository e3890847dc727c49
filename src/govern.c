/*-------------------------------------------------------------------------
 *
 * govern.c
 *	  Governed tables (DESIGN §10): approval.govern(), approval.ungovern()
 *	  and the trigger that holds a change as a request.
 *
 * govern() registers a table in approval.governed and installs a BEFORE ROW
 * trigger (approval_governed) on it.  The trigger turns each row change of
 * the governed operations into a request of the table's workflow, through
 * the same path as approval.submit() (submit.c), with the payload
 *
 *	{"table": "schema.table", "operation": "INSERT|UPDATE|DELETE",
 *	 "old": row or null, "new": row or null, "key": {primary key}}
 *
 * as the actor who made the change, and stores the change with the request
 * (approval.held_change).  It returns NULL, so the row is not changed, but
 * when the workflow approves at once: then the change proceeds in the
 * user's own statement.  The subject names the table and the key, so that
 * a second change of a row that is held is AP013 and a repeat of the same
 * change by the same requester a no-op.  Approval applies it
 * (govern_apply.c).
 *
 * The trigger function is not SECURITY DEFINER: it runs as whoever makes
 * the change, so that the change can be tried as them first
 * (gov_check_as_requester), and takes the extension owner's identity, with
 * a pinned search_path, for the rest.
 *
 *-------------------------------------------------------------------------
 */
#include "govern.h"

#include "access/relation.h"
#include "catalog/catalog.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

/* ---------- acting as the extension's owner ---------- */

typedef struct AsOwner
{
	Oid			save_user;
	int			save_sec;
	int			nest;
} AsOwner;

static void
as_owner_begin(AsOwner *st, Oid owner)
{
	GetUserIdAndSecContext(&st->save_user, &st->save_sec);
	st->nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	SetUserIdAndSecContext(owner, st->save_sec | SECURITY_LOCAL_USERID_CHANGE);
}

static void
as_owner_end(AsOwner *st)
{
	SetUserIdAndSecContext(st->save_user, st->save_sec);
	AtEOXact_GUC(false, st->nest);
}

/* ---------- govern(), ungovern() ---------- */

static ApprovalPlan is_governed_plan = {
	"SELECT 1 FROM approval.governed WHERE tbl = $1",
	1, {REGCLASSOID}
};

static ApprovalPlan register_plan = {
	"INSERT INTO approval.governed (tbl, workflow, operations, key_columns, governed_by)"
	" VALUES ($1, $2, $3, $4, $5)",
	5, {REGCLASSOID, TEXTOID, TEXTARRAYOID, TEXTARRAYOID, TEXTOID}
};

static ApprovalPlan unregister_plan = {
	"DELETE FROM approval.governed WHERE tbl = $1",
	1, {REGCLASSOID}
};

/*
 * The table of govern()/ungovern(), opened and checked: an ordinary or
 * partitioned table (42809), not the extension's own nor a system catalog,
 * not temporary (0A000), and the caller (the outer user: the functions are
 * SECURITY DEFINER) has the privileges of its owner or of approval_admin
 * (42501).
 */
static Relation
open_governable(Oid relid, const char *verb)
{
	Relation	rel = relation_open(relid, ShareRowExclusiveLock);
	char	   *name = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												  RelationGetRelationName(rel));
	Oid			outer = GetOuterUserId();
	Oid			admin = get_role_oid(APPROVAL_ADMIN_ROLE, true);

	if (rel->rd_rel->relkind != RELKIND_RELATION &&
		rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot %s %s: it is not a table", verb, name),
				 errdetail("Only the rows of an ordinary or partitioned table can be held for approval."),
				 errhint("Govern the table the view or the sequence belongs to.")));
	if (RelationGetNamespace(rel) == get_namespace_oid("approval", false) ||
		IsCatalogRelation(rel))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot %s %s: it is %s", verb, name,
						IsCatalogRelation(rel) ? "a system catalog" : "a table of the approval extension"),
				 errhint("Govern a table of your own.")));
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot %s %s: it is a temporary table", verb, name),
				 errdetail("Its changes could not be applied by another session, nor after this one ends."),
				 errhint("Govern a permanent table.")));
	if (!has_privs_of_role(outer, rel->rd_rel->relowner) &&
		!(OidIsValid(admin) && has_privs_of_role(outer, admin)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" may not %s table %s", GetUserNameFromId(outer, false), verb, name),
				 errdetail("Only its owner (or a role with the owner's privileges) and approval_admin may."),
				 errhint("Ask the owner, role \"%s\", or an approval_admin.",
						 GetUserNameFromId(rel->rd_rel->relowner, false))));
	return rel;
}

/* The operations of govern(), as a set of 1 << GovOp; 22023 for others */
static int
parse_operations(ArrayType *arr)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			ops = 0;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *name;
		int			found = -1;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the operations to govern may not contain NULL"),
					 errhint("Name some of INSERT, UPDATE and DELETE.")));
		name = TextDatumGetCString(elems[i]);
		for (int k = 0; k < GOV_OP_COUNT; k++)
			if (pg_strcasecmp(name, gov_op_names[k]) == 0)
				found = k;
		if (found < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"%s\" is not an operation that can be governed", name),
					 pg_strcasecmp(name, "TRUNCATE") == 0 ?
					 errdetail("TRUNCATE removes every row at once, without row triggers.") : 0,
					 errhint("Name some of INSERT, UPDATE and DELETE.")));
		ops |= 1 << found;
	}
	if (ops == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no operation to govern"),
				 errhint("Name some of INSERT, UPDATE and DELETE.")));
	return ops;
}

static List *
operation_names(int ops)
{
	List	   *names = NIL;

	for (int k = 0; k < GOV_OP_COUNT; k++)
		if (ops & (1 << k))
			names = lappend(names, (char *) gov_op_names[k]);
	return names;
}

static void
require_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name)));
}

PG_FUNCTION_INFO_V1(approval_govern);
Datum
approval_govern(PG_FUNCTION_ARGS)
{
	Relation	rel;
	GovTable   *t;
	char	   *workflow;
	WorkflowDef *wf;
	int			ops;
	List	   *keys = NIL;
	StringInfoData sql;
	Datum		v[5];
	const char *sep = "";

	require_arg(fcinfo, 0, "tbl");
	require_arg(fcinfo, 1, "workflow");
	require_arg(fcinfo, 2, "operations");
	workflow = text_to_cstring(PG_GETARG_TEXT_PP(1));

	rel = open_governable(PG_GETARG_OID(0), "govern");
	t = gov_table_load(rel);
	ops = parse_operations(PG_GETARG_ARRAYTYPE_P(2));

	approval_spi_connect();
	wf = approval_workflow_by_name(workflow);
	if (wf->require_ack != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("workflow \"%s\" needs an acknowledgment, which a change of a table cannot give",
						wf->name),
				 errhint("Govern the table with a workflow without require_ack.")));
	v[0] = ObjectIdGetDatum(t->relid);
	if (approval_exec(&is_governed_plan, v, NULL, false, 1) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("table %s is already governed", t->qname),
				 errhint("approval.ungovern('%s') first to govern it otherwise.", t->qname)));

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TRIGGER %s BEFORE ", GOVERN_TRIGGER_NAME);
	for (int k = 0; k < GOV_OP_COUNT; k++)
		if (ops & (1 << k))
		{
			appendStringInfo(&sql, "%s%s", sep, gov_op_names[k]);
			sep = " OR ";
		}
	appendStringInfo(&sql, " ON %s FOR EACH ROW EXECUTE FUNCTION approval.governed_change()",
					 t->qname);
	if (SPI_execute(sql.data, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "approval: could not create the trigger of %s", t->qname);

	for (int i = 0; i < t->nkeys; i++)
		keys = lappend(keys, t->keys[i]);
	v[1] = CStringGetTextDatum(wf->name);
	v[2] = PointerGetDatum(approval_text_array(operation_names(ops)));
	v[3] = PointerGetDatum(approval_text_array(keys));
	v[4] = CStringGetTextDatum(GetUserNameFromId(GetOuterUserId(), false));
	approval_exec(&register_plan, v, NULL, false, 0);
	approval_spi_finish();
	relation_close(rel, NoLock);
	PG_RETURN_VOID();
}

/*
 * ungovern(): the trigger and the registration go.  Changes already held
 * stay what they are: each is complete in approval.held_change, and is
 * applied if its request is approved, discarded otherwise.  A governed
 * table that was dropped leaves its registration behind: an admin removes
 * it with ungovern(the old OID).
 */
PG_FUNCTION_INFO_V1(approval_ungovern);
Datum
approval_ungovern(PG_FUNCTION_ARGS)
{
	Relation	rel;
	char	   *name;
	Datum		v[1];

	require_arg(fcinfo, 0, "tbl");
	v[0] = PG_GETARG_DATUM(0);
	rel = try_relation_open(PG_GETARG_OID(0), AccessShareLock);
	if (rel == NULL)
	{
		/* a governed table dropped: an admin removes its registration */
		Oid			admin = get_role_oid(APPROVAL_ADMIN_ROLE, true);

		if (!(OidIsValid(admin) && has_privs_of_role(GetOuterUserId(), admin)))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only approval_admin may ungovern a table that no longer exists")));
		name = psprintf("with OID %u", PG_GETARG_OID(0));
	}
	else
	{
		relation_close(rel, AccessShareLock);
		rel = open_governable(PG_GETARG_OID(0), "ungovern");
		name = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
										  RelationGetRelationName(rel));
	}
	approval_spi_connect();
	if (approval_exec(&unregister_plan, v, NULL, false, 0) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("table %s is not governed", name),
				 errhint("approval.governed lists the governed tables.")));
	if (rel != NULL &&
		SPI_execute(psprintf("DROP TRIGGER IF EXISTS %s ON %s", GOVERN_TRIGGER_NAME, name),
					false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "approval: could not drop the trigger of %s", name);
	approval_spi_finish();
	if (rel != NULL)
		relation_close(rel, NoLock);
	PG_RETURN_VOID();
}

/* ---------- the trigger ---------- */

static ApprovalPlan registration_plan = {
	"SELECT g.tbl::pg_catalog.oid, g.workflow, g.operations"
	"  FROM pg_catalog.unnest($1::pg_catalog.oid[]) WITH ORDINALITY u(relid, i)"
	"  JOIN approval.governed g ON g.tbl::pg_catalog.oid = u.relid"
	" ORDER BY u.i LIMIT 1",
	1, {OIDARRAYOID}
};

/*
 * The images of a change and what is made of them: $1 old and $2 new row
 * (the relation's row type), $3 the key columns, $4 the generated columns
 * (not yet computed in a BEFORE trigger: left out of "new"), $5 the table,
 * $6 the operation.  Returns the payload, old, new, key, the key as text
 * for the title, and the columns the change changes.  It runs as whoever
 * makes the change, never as the extension's owner: to_jsonb() calls the
 * casts to json of the columns' types, which the table's owner may have
 * written.  The search_path is pinned (IS DISTINCT FROM resolves "=").
 */
static const char *const images_sql =
"SELECT pg_catalog.jsonb_build_object('table', $5, 'operation', $6, 'old', o, 'new', n, 'key', k),"
"       o, n, k, kt,"
"       ARRAY(SELECT e.key FROM pg_catalog.jsonb_each(n) e"
"              WHERE o IS NULL OR e.value IS DISTINCT FROM o OPERATOR(pg_catalog.->) e.key)"
"  FROM (SELECT o, n,"
"               (SELECT pg_catalog.jsonb_object_agg(c, COALESCE(o, n) OPERATOR(pg_catalog.->) c)"
"                  FROM pg_catalog.unnest($3) c) AS k,"
"               (SELECT pg_catalog.string_agg(c OPERATOR(pg_catalog.||) '=' OPERATOR(pg_catalog.||)"
"                                             COALESCE(COALESCE(o, n) OPERATOR(pg_catalog.->>) c, 'NULL'),"
"                                             ', ' ORDER BY i)"
"                  FROM pg_catalog.unnest($3) WITH ORDINALITY u(c, i)) AS kt"
"          FROM (SELECT pg_catalog.to_jsonb($1) AS o,"
"                       pg_catalog.to_jsonb($2) OPERATOR(pg_catalog.-) $4 AS n) s) s";

static ApprovalPlan insert_held_plan = {
	"INSERT INTO approval.held_change (request_id, tbl, operation, old_row, new_row, key, outcome,"
	"  decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
	8, {INT8OID, REGCLASSOID, TEXTOID, JSONBOID, JSONBOID, JSONBOID, TEXTOID, TIMESTAMPTZOID}
};

/* The registration of rel, or of the partitioned table it is a partition of */
static bool
find_registration(Relation rel, Oid *regoid, char **workflow, List **ops)
{
	List	   *rels = list_make1_oid(RelationGetRelid(rel));
	Datum	   *elems;
	int			n = 0;
	ListCell   *lc;
	Datum		arg;
	bool		isnull;

	if (rel->rd_rel->relispartition)
		rels = list_concat(rels, get_partition_ancestors(RelationGetRelid(rel)));
	elems = palloc(sizeof(Datum) * list_length(rels));
	foreach(lc, rels)
		elems[n++] = ObjectIdGetDatum(lfirst_oid(lc));
	arg = PointerGetDatum(construct_array(elems, n, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
	if (approval_exec(&registration_plan, &arg, NULL, false, 1) == 0)
		return false;
	*regoid = DatumGetObjectId(approval_getdatum(0, 1, &isnull));
	*workflow = approval_gettext(0, 2);
	*ops = approval_array_to_list(DatumGetArrayTypeP(approval_getdatum(0, 3, &isnull)));
	return true;
}

static Datum
row_or_null(HeapTuple tuple, TupleDesc desc, char *null)
{
	*null = tuple ? ' ' : 'n';
	return tuple ? heap_copy_tuple_as_datum(tuple, desc) : (Datum) 0;
}

static Jsonb *
copy_jsonb(int col)
{
	bool		isnull;
	Datum		d = approval_copy_datum(0, col, &isnull);

	return isnull ? NULL : DatumGetJsonbP(d);
}

/*
 * Hold one row change as a request.  Returns true when it may proceed:
 * the table's registration does not cover the operation, or the workflow
 * approved it at once.
 */
static bool
hold_change(FunctionCallInfo fcinfo, TriggerData *td, GovOp op)
{
	Relation	rel = td->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	tp;
	Oid			ext_owner;
	AsOwner		st;
	Oid			regoid;
	char	   *workflow;
	List	   *ops;
	Relation	regrel;
	GovTable   *t;
	List	   *generated = NIL;
	Oid			types[6];
	Datum		v[8];
	char		n[8];
	Jsonb	   *payload;
	Jsonb	   *oldrow;
	Jsonb	   *newrow;
	Jsonb	   *key;
	char	   *keytext;
	ArrayType  *changed;
	bool		isnull;
	bool		created;
	RequestState state;
	int64		id;

	/* the extension's owner owns its functions */
	tp = SearchSysCache1(PROCOID, ObjectIdGetDatum(fcinfo->flinfo->fn_oid));
	if (!HeapTupleIsValid(tp))
		elog(ERROR, "cache lookup failed for function %u", fcinfo->flinfo->fn_oid);
	ext_owner = ((Form_pg_proc) GETSTRUCT(tp))->proowner;
	ReleaseSysCache(tp);

	approval_spi_connect();
	as_owner_begin(&st, ext_owner);
	if (!find_registration(rel, &regoid, &workflow, &ops))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s has the trigger %s but is not governed",
						RelationGetRelationName(rel), GOVERN_TRIGGER_NAME),
				 errhint("Govern it with approval.govern(), or drop the trigger.")));
	if (!approval_list_has(ops, gov_op_names[op]))
	{
		as_owner_end(&st);
		approval_spi_finish();
		return true;
	}
	regrel = regoid == RelationGetRelid(rel) ? rel : relation_open(regoid, AccessShareLock);
	t = gov_table_load(regrel);
	if (regrel != rel)
		relation_close(regrel, NoLock);

	for (int i = 0; i < t->ncols; i++)
		if (t->generated[i])
			generated = lappend(generated, t->cols[i]);
	{
		List	   *keys = NIL;

		for (int i = 0; i < t->nkeys; i++)
			keys = lappend(keys, t->keys[i]);
		v[2] = PointerGetDatum(approval_text_array(keys));
	}
	as_owner_end(&st);

	/* the images, as the invoker (see images_sql) with the pinned search_path */
	as_owner_begin(&st, GetUserId());
	types[0] = types[1] = rel->rd_rel->reltype;
	types[2] = types[3] = TEXTARRAYOID;
	types[4] = types[5] = TEXTOID;
	memset(n, ' ', sizeof(n));
	v[0] = row_or_null(op == GOV_INSERT ? NULL : td->tg_trigtuple, desc, &n[0]);
	v[1] = row_or_null(op == GOV_INSERT ? td->tg_trigtuple :
					   op == GOV_UPDATE ? td->tg_newtuple : NULL, desc, &n[1]);
	v[3] = PointerGetDatum(approval_text_array(generated));
	v[4] = CStringGetTextDatum(t->qname);
	v[5] = CStringGetTextDatum(gov_op_names[op]);
	if (SPI_execute_with_args(images_sql, 6, types, v, n, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "approval: could not read the change of %s", t->qname);
	payload = copy_jsonb(1);
	oldrow = copy_jsonb(2);
	newrow = copy_jsonb(3);
	key = copy_jsonb(4);
	keytext = approval_gettext(0, 5);
	changed = DatumGetArrayTypeP(approval_copy_datum(0, 6, &isnull));
	as_owner_end(&st);

	/* an UPDATE that changes nothing has nothing to approve */
	if (op == GOV_UPDATE && ArrayGetNItems(ARR_NDIM(changed), ARR_DIMS(changed)) == 0)
	{
		approval_spi_finish();
		return true;
	}

	/* the requester could make this change (row-level security, constraints) */
	gov_check_as_requester(t, op, key, newrow, changed);

	as_owner_begin(&st, ext_owner);
	id = approval_submit_request(workflow, payload,
								 psprintf("%s %s (%s)", gov_op_names[op], t->qname, keytext),
								 psprintf("%s %s", t->qname,
										  JsonbToCString(NULL, &key->root, VARSIZE(key))),
								 NULL, &created, &state);
	if (created)
	{
		v[0] = Int64GetDatum(id);
		v[1] = ObjectIdGetDatum(regoid);
		v[2] = CStringGetTextDatum(gov_op_names[op]);
		v[3] = PointerGetDatum(oldrow);
		n[3] = oldrow ? ' ' : 'n';
		v[4] = PointerGetDatum(newrow);
		n[4] = newrow ? ' ' : 'n';
		v[5] = PointerGetDatum(key);
		n[5] = ' ';
		v[6] = CStringGetTextDatum("applied");
		n[6] = state == REQUEST_APPROVED ? ' ' : 'n';
		v[7] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
		n[7] = n[6];
		memset(n, ' ', 3);
		approval_exec(&insert_held_plan, v, n, false, 0);
	}
	as_owner_end(&st);
	approval_spi_finish();
	return created && state == REQUEST_APPROVED;
}

PG_FUNCTION_INFO_V1(approval_governed_change);
Datum
approval_governed_change(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	HeapTuple	pass;
	GovOp		op;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("approval.governed_change() must be called as a BEFORE ROW trigger"),
				 errhint("Install it with approval.govern().")));
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
	{
		op = GOV_INSERT;
		pass = td->tg_trigtuple;
	}
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		op = GOV_UPDATE;
		pass = td->tg_newtuple;
	}
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
	{
		op = GOV_DELETE;
		pass = td->tg_trigtuple;
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("approval.governed_change() governs INSERT, UPDATE and DELETE only")));

	if (gov_applying(td->tg_relation) || hold_change(fcinfo, td, op))
		return PointerGetDatum(pass);
	return PointerGetDatum(NULL);
}
