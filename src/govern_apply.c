/*-------------------------------------------------------------------------
 *
 * govern_apply.c
 *	  The statements that make a held change of a governed table, and the
 *	  held changes' outcomes (DESIGN §10).
 *
 * A held change is stored with the request (approval.held_change): the
 * table, the operation, the row's old and new images (to_jsonb) and its
 * primary key.  What is applied is always that stored change, never the
 * request's payload.  On approval (engine_finish, engine.c) govern_apply()
 * makes it as the table's owner:
 *
 *	INSERT	the stored new row, ON CONFLICT DO NOTHING: no row inserted is
 *			a conflict;
 *	UPDATE	the current row, found by the key and locked (FOR UPDATE), must
 *			equal the stored old image, else it is a conflict; then the
 *			columns the change changed are set from the new image;
 *	DELETE	the same check, then the row is deleted by its key.
 *
 * Every statement names the table with its schema, its columns quoted, and
 * compares keys with the equality operators of the primary key's operator
 * classes, named with their schemas, so no search_path reaches them.  While
 * they run, a backend-local mark lets the governed trigger pass the change
 * (gov_applying); it is put back on error too.
 *
 *-------------------------------------------------------------------------
 */
#include "govern.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/stratnum.h"
#include "access/xact.h"
#include "catalog/partition.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"
#include "utils/syscache.h"

const char *const gov_op_names[GOV_OP_COUNT] = {"INSERT", "UPDATE", "DELETE"};

/* The table whose changes the extension is making itself, if any */
static Oid	applying_relid = InvalidOid;

/* Does the trigger on rel fire for a change the extension makes itself? */
bool
gov_applying(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);

	if (!OidIsValid(applying_relid))
		return false;
	if (relid == applying_relid)
		return true;
	/* a governed partitioned table's change reaches its partitions' triggers */
	return rel->rd_rel->relispartition &&
		list_member_oid(get_partition_ancestors(relid), applying_relid);
}

/* OPERATOR(schema.name) for an operator */
static char *
operator_sql(Oid opno)
{
	HeapTuple	tp = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));
	Form_pg_operator op;
	char	   *result;

	if (!HeapTupleIsValid(tp))
		elog(ERROR, "cache lookup failed for operator %u", opno);
	op = (Form_pg_operator) GETSTRUCT(tp);
	result = psprintf("OPERATOR(%s.%s)", quote_identifier(get_namespace_name(op->oprnamespace)),
					  NameStr(op->oprname));
	ReleaseSysCache(tp);
	return result;
}

/*
 * What the statements need of a table: its name, owner, columns, and its
 * primary key with the key columns' equality operators.  A table without a
 * primary key cannot be governed (55000).
 */
GovTable *
gov_table_load(Relation rel)
{
	GovTable   *t = palloc0(sizeof(GovTable));
	TupleDesc	desc = RelationGetDescr(rel);
	Oid			pk = RelationGetPrimaryKeyIndex(rel);
	Relation	idx;

	t->relid = RelationGetRelid(rel);
	t->owner = rel->rd_rel->relowner;
	t->qname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
										  RelationGetRelationName(rel));
	if (!OidIsValid(pk))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s has no primary key", t->qname),
				 errdetail("A held change finds its row again by the primary key."),
				 errhint("Add one (ALTER TABLE %s ADD PRIMARY KEY (...)), then govern the table.",
						 t->qname)));

	idx = index_open(pk, AccessShareLock);
	t->nkeys = idx->rd_index->indnkeyatts;
	t->keys = palloc(sizeof(char *) * t->nkeys);
	t->keyops = palloc(sizeof(char *) * t->nkeys);
	for (int i = 0; i < t->nkeys; i++)
	{
		AttrNumber	attnum = idx->rd_index->indkey.values[i];
		Oid			eq = get_opfamily_member(idx->rd_opfamily[i], idx->rd_opcintype[i],
											 idx->rd_opcintype[i], BTEqualStrategyNumber);

		if (attnum <= 0 || !OidIsValid(eq))
			elog(ERROR, "primary key of %s: column %d has no equality operator", t->qname, i + 1);
		t->keys[i] = pstrdup(NameStr(TupleDescAttr(desc, attnum - 1)->attname));
		t->keyops[i] = operator_sql(eq);
	}
	index_close(idx, AccessShareLock);

	t->cols = palloc(sizeof(char *) * Max(desc->natts, 1));
	t->generated = palloc0(sizeof(bool) * Max(desc->natts, 1));
	t->identity_always = palloc0(sizeof(bool) * Max(desc->natts, 1));
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		t->cols[t->ncols] = pstrdup(NameStr(att->attname));
		t->generated[t->ncols] = att->attgenerated != '\0';
		t->identity_always[t->ncols] = att->attidentity == ATTRIBUTE_IDENTITY_ALWAYS;
		t->has_identity_always |= t->identity_always[t->ncols];
		t->ncols++;
	}
	return t;
}

/* ---------- statements ---------- */

/* jsonb_populate_record(NULL::tbl, $n) alias */
static void
append_record(StringInfo buf, GovTable *t, int param, const char *alias)
{
	appendStringInfo(buf, "pg_catalog.jsonb_populate_record(NULL::%s, $%d) %s", t->qname, param, alias);
}

/* t.k1 = k.k1 AND ...: the row of table alias t whose key is record k */
static void
append_key_match(StringInfo buf, GovTable *t)
{
	for (int i = 0; i < t->nkeys; i++)
	{
		const char *k = quote_identifier(t->keys[i]);

		appendStringInfo(buf, "%st.%s %s k.%s", i > 0 ? " AND " : "", k, t->keyops[i], k);
	}
}

/*
 * INSERT of record $1 (every column but generated ones), ON CONFLICT DO
 * NOTHING when on_conflict
 */
static char *
insert_sql(GovTable *t, bool on_conflict)
{
	StringInfoData buf;
	StringInfoData vals;
	bool		first = true;

	initStringInfo(&buf);
	initStringInfo(&vals);
	appendStringInfo(&buf, "INSERT INTO %s (", t->qname);
	for (int i = 0; i < t->ncols; i++)
	{
		const char *c = quote_identifier(t->cols[i]);

		if (t->generated[i])
			continue;
		appendStringInfo(&buf, "%s%s", first ? "" : ", ", c);
		appendStringInfo(&vals, "%sn.%s", first ? "" : ", ", c);
		first = false;
	}
	appendStringInfo(&buf, ")%s SELECT %s FROM ",
					 t->has_identity_always ? " OVERRIDING SYSTEM VALUE" : "", vals.data);
	append_record(&buf, t, 1, "n");
	if (on_conflict)
		appendStringInfoString(&buf, " ON CONFLICT DO NOTHING");
	return buf.data;
}

/*
 * UPDATE of the row whose key is $1 from record $2: the columns of "changed"
 * that are neither generated nor identity ALWAYS (which an UPDATE cannot
 * set).  NULL when that leaves none.
 */
static char *
update_sql(GovTable *t, List *changed)
{
	StringInfoData buf;
	bool		first = true;

	initStringInfo(&buf);
	appendStringInfo(&buf, "UPDATE %s t SET ", t->qname);
	for (int i = 0; i < t->ncols; i++)
	{
		const char *c = quote_identifier(t->cols[i]);

		if (t->generated[i] || t->identity_always[i] || !approval_list_has(changed, t->cols[i]))
			continue;
		appendStringInfo(&buf, "%s%s = n.%s", first ? "" : ", ", c, c);
		first = false;
	}
	if (first)
		return NULL;
	appendStringInfoString(&buf, " FROM ");
	append_record(&buf, t, 2, "n");
	appendStringInfoString(&buf, ", ");
	append_record(&buf, t, 1, "k");
	appendStringInfoString(&buf, " WHERE ");
	append_key_match(&buf, t);
	return buf.data;
}

/* DELETE of the row whose key is $1 */
static char *
delete_sql(GovTable *t)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "DELETE FROM %s t USING ", t->qname);
	append_record(&buf, t, 1, "k");
	appendStringInfoString(&buf, " WHERE ");
	append_key_match(&buf, t);
	return buf.data;
}

/* Lock the row whose key is $1: does it equal the old image $2? */
static char *
lock_sql(GovTable *t)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "SELECT pg_catalog.to_jsonb(t) OPERATOR(pg_catalog.=) $2 FROM %s t, ",
					 t->qname);
	append_record(&buf, t, 1, "k");
	appendStringInfoString(&buf, " WHERE ");
	append_key_match(&buf, t);
	appendStringInfoString(&buf, " FOR UPDATE OF t");
	return buf.data;
}

/* Run one statement with jsonb parameters; returns SPI_processed */
static uint64
run(const char *sql, Jsonb *p1, Jsonb *p2)
{
	Oid			types[2] = {JSONBOID, JSONBOID};
	Datum		values[2];
	char		nulls[2];
	int			rc;

	values[0] = PointerGetDatum(p1);
	nulls[0] = p1 ? ' ' : 'n';
	values[1] = PointerGetDatum(p2);
	nulls[1] = p2 ? ' ' : 'n';
	rc = SPI_execute_with_args(sql, p2 ? 2 : 1, types, values, nulls, false, 0);
	if (rc < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("approval: statement failed: %s", SPI_result_code_string(rc)),
				 errdetail("Statement: %s", sql)));
	return SPI_processed;
}

/*
 * Make the change, with the mark that lets the governed trigger pass it.
 * as_check: the requester's trial of an INSERT or UPDATE (no conflict
 * handling: its errors are the requester's).  Returns false for a conflict.
 */
static bool
make_change(GovTable *t, GovOp op, Jsonb *key, Jsonb *oldrow, Jsonb *newrow, List *changed,
			bool as_check)
{
	Oid			prev = applying_relid;
	volatile bool ok = true;

	applying_relid = t->relid;
	PG_TRY();
	{
		char	   *sql;

		if (op == GOV_INSERT)
			ok = run(insert_sql(t, !as_check), newrow, NULL) > 0 || as_check;
		else
		{
			if (!as_check)
			{
				ok = run(lock_sql(t), key, oldrow) == 1 &&
					SPI_tuptable != NULL &&
					approval_getbool(0, 1);
			}
			if (ok && op == GOV_UPDATE && (sql = update_sql(t, changed)) != NULL)
				ok = run(sql, key, newrow) > 0 || as_check;
			else if (ok && op == GOV_DELETE)
				ok = run(delete_sql(t), key, NULL) > 0;
		}
	}
	PG_FINALLY();
	{
		applying_relid = prev;
	}
	PG_END_TRY();
	return ok;
}

/*
 * A BEFORE ROW trigger that returns NULL stops the change before row-level
 * security's WITH CHECK is applied, so a change is held only once the
 * requester could have made it: it is tried as the requester (the current
 * user), in a subtransaction that is always rolled back, with the trigger
 * passing it.  Its errors (a policy's WITH CHECK, a constraint) are the
 * requester's statement's.
 */
void
gov_check_as_requester(GovTable *t, GovOp op, Jsonb *key, Jsonb *newrow, ArrayType *changed)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	List	   *cols = approval_array_to_list(changed);

	if (op == GOV_DELETE)
		return;					/* no WITH CHECK; the trigger fired: USING passed */
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		(void) make_change(t, op, key, NULL, newrow, cols, true);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		ReThrowError(edata);
	}
	PG_END_TRY();
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
}

/* ---------- held changes ---------- */

static ApprovalPlan held_plan = {
	"SELECT tbl::pg_catalog.oid, operation, old_row, new_row, key,"
	"  ARRAY(SELECT e.key FROM pg_catalog.jsonb_each(new_row) e"
	"         WHERE old_row IS NULL OR e.value IS DISTINCT FROM old_row -> e.key)"
	"  FROM approval.held_change WHERE request_id = $1 AND outcome IS NULL FOR UPDATE",
	1, {INT8OID}
};

static ApprovalPlan outcome_plan = {
	"UPDATE approval.held_change SET outcome = $2, decided_at = $3 WHERE request_id = $1",
	3, {INT8OID, TEXTOID, TIMESTAMPTZOID}
};

static ApprovalPlan discard_plan = {
	"UPDATE approval.held_change SET outcome = 'discarded', decided_at = $2"
	" WHERE request_id = $1 AND outcome IS NULL",
	2, {INT8OID, TIMESTAMPTZOID}
};

static ApprovalPlan holds_plan = {
	"SELECT 1 FROM approval.held_change WHERE request_id = $1",
	1, {INT8OID}
};

static GovOp
op_from_name(const char *name)
{
	for (int i = 0; i < GOV_OP_COUNT; i++)
		if (strcmp(gov_op_names[i], name) == 0)
			return (GovOp) i;
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("unknown operation \"%s\" of a held change", name)));
}

static Jsonb *
jsonb_or_null(int col)
{
	bool		isnull;
	Datum		d = approval_copy_datum(0, col, &isnull);

	return isnull ? NULL : DatumGetJsonbP(d);
}

/*
 * The request is being approved: make its held change, if it has one, as
 * the table's owner (SECURITY_RESTRICTED_OPERATION, the owner's default
 * search_path; the statements need none).  Returns false when it
 * conflicts: the row is then untouched and the held change marked
 * "conflict".  A request that is not a governed change: true.
 */
bool
govern_apply(Req *r)
{
	Datum		arg = Int64GetDatum(r->id);
	Datum		v[3];
	bool		isnull;
	Oid			relid;
	GovOp		op;
	Jsonb	   *oldrow;
	Jsonb	   *newrow;
	Jsonb	   *key;
	List	   *changed;
	Relation	rel;
	GovTable   *t;
	Oid			save_user;
	int			save_sec;
	int			nest;
	volatile bool ok = false;

	if (r->is_new)
		return true;			/* approved at once: the trigger lets it through */
	if (approval_exec(&held_plan, &arg, NULL, false, 1) == 0)
		return true;
	relid = DatumGetObjectId(approval_getdatum(0, 1, &isnull));
	op = op_from_name(approval_gettext(0, 2));
	oldrow = jsonb_or_null(3);
	newrow = jsonb_or_null(4);
	key = jsonb_or_null(5);
	changed = approval_array_to_list(DatumGetArrayTypeP(approval_copy_datum(0, 6, &isnull)));

	rel = try_relation_open(relid, RowExclusiveLock);
	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the table of the change request %lld holds no longer exists", (long long) r->id),
				 errhint("Reject or cancel request %lld.", (long long) r->id)));
	t = gov_table_load(rel);

	GetUserIdAndSecContext(&save_user, &save_sec);
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "\"$user\", public, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	SetUserIdAndSecContext(t->owner,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		ok = make_change(t, op, key, oldrow, newrow, changed, false);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_user, save_sec);
	}
	PG_END_TRY();
	AtEOXact_GUC(false, nest);
	relation_close(rel, NoLock);

	v[0] = arg;
	v[1] = CStringGetTextDatum(ok ? "applied" : "conflict");
	v[2] = TimestampTzGetDatum(r->now);
	approval_exec(&outcome_plan, v, NULL, false, 0);
	return ok;
}

/* The request closes otherwise than approved: its held change is discarded */
void
govern_discard(Req *r)
{
	Datum		v[2];

	if (r->is_new)
		return;
	v[0] = Int64GetDatum(r->id);
	v[1] = TimestampTzGetDatum(r->now);
	approval_exec(&discard_plan, v, NULL, false, 0);
}

/* Is the request a governed table's held change? */
bool
govern_holds(int64 request_id)
{
	Datum		arg = Int64GetDatum(request_id);

	return approval_exec(&holds_plan, &arg, NULL, false, 1) > 0;
}
