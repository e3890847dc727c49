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
 *			a conflict, and so is a column of it that the table no longer
 *			has (renamed, dropped); a column added since gets its default;
 *	UPDATE	the current row, found by the key and locked (FOR UPDATE), must
 *			equal the stored old image, else it is a conflict; then the
 *			columns the change changed are set from the new image;
 *	DELETE	the same check, then the row is deleted by its key.
 *
 * Every statement names the table with its schema, its columns quoted, and
 * compares keys with the equality operators of the primary key's operator
 * classes, named with their schemas, so no search_path reaches them.  While
 * they run, a backend-local mark lets the governed trigger pass the change
 * they make, as the role they make it as (gov_applying); it is put back on
 * error too.
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

/*
 * The table whose changes the extension is making itself, if any, and the
 * role it makes them as (the table's owner applying, the requester trying)
 */
static Oid	applying_relid = InvalidOid;
static Oid	applying_user = InvalidOid;

/*
 * Does the trigger on rel fire for a change the extension makes itself?
 * Only as the role that makes it: other roles' code that the change sets
 * off (a trigger of a table a foreign key cascades to runs as that table's
 * owner) does not pass, or it could change the governed table unheld.
 */
bool
gov_applying(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);

	if (!OidIsValid(applying_relid) || GetUserId() != applying_user)
		return false;
	if (relid == applying_relid)
		return true;
	/* a governed partitioned table's change reaches its partitions' triggers */
	return rel->rd_rel->relispartition &&
		list_member_oid(get_partition_ancestors(relid), applying_relid);
}

/*
 * The settings that decide how to_jsonb() writes a value and how
 * jsonb_populate_record() reads it back, pinned (in the caller's GUC nest
 * level) wherever a held change's images are made, tried, compared or
 * applied: the requester's and the approver's sessions may differ (a
 * timestamptz is written with the session's offset, a float with
 * extra_float_digits, an interval in IntervalStyle, a bytea in
 * bytea_output, money in lc_monetary), and the same row must give the same
 * image, every value read back exactly.
 */
static const char *const pinned_settings[][2] = {
	{"DateStyle", "ISO, YMD"},
	{"IntervalStyle", "postgres"},
	{"TimeZone", "UTC"},
	{"extra_float_digits", "1"},
	{"bytea_output", "hex"},
	{"lc_monetary", "C"},
};

void
gov_pin_settings(void)
{
	for (size_t i = 0; i < lengthof(pinned_settings); i++)
		(void) set_config_option(pinned_settings[i][0], pinned_settings[i][1], PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
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
 * INSERT of record $1: the columns the new row has (every column but
 * generated ones when it was held; a column added since gets its default),
 * ON CONFLICT DO NOTHING when on_conflict, returning the row when returning
 */
static char *
insert_sql(GovTable *t, List *present, bool on_conflict, bool returning)
{
	StringInfoData buf;
	StringInfoData vals;
	bool		first = true;

	initStringInfo(&buf);
	initStringInfo(&vals);
	appendStringInfo(&buf, "INSERT INTO %s AS t", t->qname);
	for (int i = 0; i < t->ncols; i++)
	{
		const char *c = quote_identifier(t->cols[i]);

		if (t->generated[i] || !approval_list_has(present, t->cols[i]))
			continue;
		appendStringInfo(&buf, "%s%s", first ? " (" : ", ", c);
		appendStringInfo(&vals, "%sn.%s", first ? "" : ", ", c);
		first = false;
	}
	if (first)
		appendStringInfoString(&buf, " DEFAULT VALUES");
	else
	{
		appendStringInfo(&buf, ")%s SELECT %s FROM ",
						 t->has_identity_always ? " OVERRIDING SYSTEM VALUE" : "", vals.data);
		append_record(&buf, t, 1, "n");
	}
	if (on_conflict)
		appendStringInfoString(&buf, " ON CONFLICT DO NOTHING");
	if (returning)
		appendStringInfoString(&buf, " RETURNING t.*");
	return buf.data;
}

/*
 * Can the new row "present" (its column names) still be inserted as it was
 * held: is each of them a column that is not generated?  A column renamed,
 * dropped or made generated since would lose its value: a conflict, like a
 * row that changed.
 */
static bool
insert_fits(GovTable *t, List *present)
{
	ListCell   *lc;

	foreach(lc, present)
	{
		bool		fits = false;

		for (int i = 0; i < t->ncols && !fits; i++)
			fits = !t->generated[i] && strcmp(t->cols[i], (char *) lfirst(lc)) == 0;
		if (!fits)
			return false;
	}
	return true;
}

/*
 * UPDATE of the row whose key is $1 from record $2: the columns of "changed"
 * that are neither generated nor identity ALWAYS (which an UPDATE cannot
 * set).  NULL when that leaves none.
 */
static char *
update_sql(GovTable *t, List *changed, bool returning)
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
	if (returning)
		appendStringInfoString(&buf, " RETURNING t.*");
	return buf.data;
}

/* The whole row whose key is $1, as the current user may read it */
static char *
read_sql(GovTable *t)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "SELECT t.* FROM %s t, ", t->qname);
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
	appendStringInfo(&buf, "SELECT pg_catalog.to_jsonb(t.*) OPERATOR(pg_catalog.=) $2 FROM %s t, ",
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
 * Make the change, with the mark that lets the governed trigger pass it and
 * the settings pinned (gov_pin_settings).  as_check: the requester's trial
 * of an INSERT or UPDATE (no conflict handling: its errors are the
 * requester's), which returns the new row, so that the requester's column
 * privileges and SELECT policies are checked on it.  Returns false for a
 * conflict; for a trial, false when the UPDATE found no row.  changed: the
 * columns the change sets, for an INSERT every column of the new row.
 */
static bool
make_change(GovTable *t, GovOp op, Jsonb *key, Jsonb *oldrow, Jsonb *newrow, List *changed,
			bool as_check)
{
	Oid			prev = applying_relid;
	Oid			prev_user = applying_user;
	int			nest = NewGUCNestLevel();
	volatile bool ok = true;

	gov_pin_settings();
	applying_relid = t->relid;
	applying_user = GetUserId();
	PG_TRY();
	{
		char	   *sql;

		if (op == GOV_INSERT)
			ok = (as_check || insert_fits(t, changed)) &&
				(run(insert_sql(t, changed, !as_check, as_check), newrow, NULL) > 0 || as_check);
		else
		{
			if (!as_check)
			{
				/*
				 * The row's image is compared as it was made, with the
				 * search_path of the hold too (a reg* column's text depends
				 * on it); the check runs none of the table's triggers.
				 */
				int			lock_nest = NewGUCNestLevel();

				(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
										 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
				ok = run(lock_sql(t), key, oldrow) == 1 &&
					SPI_tuptable != NULL &&
					approval_getbool(0, 1);
				AtEOXact_GUC(false, lock_nest);
			}
			if (ok && op == GOV_UPDATE && (sql = update_sql(t, changed, as_check)) != NULL)
				ok = run(sql, key, newrow) > 0;
			else if (ok && op == GOV_DELETE)
				ok = run(delete_sql(t), key, NULL) > 0;
		}
	}
	PG_FINALLY();
	{
		applying_relid = prev;
		applying_user = prev_user;
	}
	PG_END_TRY();
	/* on error, the (sub)transaction's abort puts the settings back */
	AtEOXact_GUC(false, nest);
	return ok;
}

/*
 * A BEFORE ROW trigger that returns NULL stops the change before row-level
 * security's WITH CHECK is applied, so a change is held only once the
 * requester could have made it: it is tried as the requester (the current
 * user), in a subtransaction that is always rolled back, with the trigger
 * passing it.  Its errors (a policy's WITH CHECK, a constraint) are the
 * requester's statement's.
 *
 * The request shows its requester the row as it was and as it would be,
 * every column of it, so the requester must also be able to read them: the
 * old row of an UPDATE or DELETE is read as the requester (SELECT privilege
 * on every column, their SELECT policies), and the trial returns the new
 * row (the same for it).  Without that, DELETE privilege alone, or UPDATE
 * of a row their SELECT policies hide, would show them what they may not
 * read (42501).
 */
void
gov_check_as_requester(GovTable *t, GovOp op, Jsonb *key, Jsonb *newrow, ArrayType *changed)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	List	   *cols = approval_array_to_list(changed);
	int			nest;
	bool		tried = true;

	if (op != GOV_INSERT)
	{
		nest = NewGUCNestLevel();
		gov_pin_settings();
		if (run(read_sql(t), key, NULL) != 1)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("role \"%s\" may not read the row of %s it would %s",
							GetUserNameFromId(GetUserId(), false), t->qname,
							op == GOV_UPDATE ? "update" : "delete"),
					 errdetail("The request holding the change shows its requester the whole row; "
							   "row-level security hides this one from them."),
					 errhint("Change only rows you may SELECT.")));
		AtEOXact_GUC(false, nest);
	}
	if (op == GOV_DELETE)
		return;					/* no WITH CHECK; the trigger fired: USING passed */
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		tried = make_change(t, op, key, NULL, newrow, cols, true);
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
	if (!tried)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" may not update the row of %s as it asks",
						GetUserNameFromId(GetUserId(), false), t->qname),
				 errdetail("Tried as them, the UPDATE of the row by its key changed no row: "
						   "row-level security hides it from them, or a trigger skipped it."),
				 errhint("Change only rows you may SELECT and UPDATE.")));
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
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = false;

	if (r->is_new)
		return true;			/* approved at once: the trigger lets it through */
	if (!r->has_subject)
		return true;			/* a held change always has one (govern.c) */
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
	PG_CATCH();
	{
		ErrorData  *edata;

		SetUserIdAndSecContext(save_user, save_sec);
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();

		/*
		 * query_canceled that the table's code raised itself (RAISE ...
		 * USING ERRCODE = 'query_canceled') rather than a cancel or a
		 * statement_timeout (ProcessInterrupts): the timer ends its tick on
		 * a cancel, so the owner could end every tick at this request and
		 * stop every deadline in the database.  It is the change's error.
		 */
		if (edata->sqlerrcode != ERRCODE_QUERY_CANCELED ||
			(edata->funcname != NULL && strcmp(edata->funcname, "ProcessInterrupts") == 0))
			PG_RE_THROW();
		FlushErrorState();
		edata->sqlerrcode = ERRCODE_TRIGGERED_ACTION_EXCEPTION;
		if (edata->detail == NULL)
			edata->detail = psprintf("The code of table %s raised query_canceled (57014) while the change "
									 "request %lld holds was applied.", t->qname, (long long) r->id);
		ReThrowError(edata);
	}
	PG_END_TRY();
	SetUserIdAndSecContext(save_user, save_sec);
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

	if (r->is_new || !r->has_subject)
		return;					/* not a held change (one always has a subject) */
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
