/*-------------------------------------------------------------------------
 *
 * spi_util.c
 *	  Prepared statements kept for the life of the backend, and small helpers
 *	  to read SPI results and text arrays.
 *
 * Each ApprovalPlan is a static struct next to the code that runs it.  The
 * first execution prepares it with SPI_prepare and keeps it (SPI_keepplan);
 * the plan cache re-plans it by itself when a table it uses changes, so the
 * kept plans survive DROP EXTENSION / CREATE EXTENSION in one session.
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"

#include "access/xact.h"
#include "utils/memutils.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "catalog/namespace.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/json.h"
#include "utils/lsyscache.h"

void
approval_spi_connect(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("approval: could not connect to SPI")));
}

void
approval_spi_finish(void)
{
	SPI_finish();
}

/* Prepare and keep a statement the first time it is needed */
void
approval_exec_prepare(ApprovalPlan *p)
{
	SPIPlanPtr	plan;

	if (p->plan != NULL)
		return;
	plan = SPI_prepare(p->sql, p->nargs, p->argtypes);
	if (plan == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("approval: could not prepare statement: %s",
						SPI_result_code_string(SPI_result)),
				 errdetail("Statement: %s", p->sql)));
	if (SPI_keepplan(plan) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("approval: could not keep statement")));
	p->plan = plan;
}

/*
 * Run a kept statement; returns SPI_processed.
 *
 * The engine passes read_only = false even to reads: that makes SPI take a
 * new snapshot for each statement (in READ COMMITTED), so that what is read
 * after the request's row lock, or after a write of the same operation, is
 * current.  read_only = true reuses the caller's snapshot, which is right
 * for the STABLE readers (can_see, verify_audit).  A statement that writes
 * must run with count = 0: a ModifyTable stopped at its first RETURNING row
 * never reaches the end of its input, where AFTER STATEMENT triggers are
 * queued.  Errors in the statement
 * propagate as they are (they carry their own SQLSTATE).
 */
int
approval_exec(ApprovalPlan *p, Datum *values, const char *nulls,
			  bool read_only, long count)
{
	int			rc;

	approval_exec_prepare(p);
	rc = SPI_execute_plan(p->plan, values, nulls, read_only, count);
	if (rc < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("approval: statement failed: %s", SPI_result_code_string(rc)),
				 errdetail("Statement: %s", p->sql)));
	return (int) SPI_processed;
}

Datum
approval_getdatum(int row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

/*
 * text column as a C string allocated in the caller's context (SPI_palloc),
 * so that it outlives SPI_finish; NULL for SQL NULL.
 */
char *
approval_gettext(int row, int col)
{
	bool		isnull;
	Datum		d = approval_getdatum(row, col, &isnull);
	text	   *t;
	char	   *s;
	int			len;

	if (isnull)
		return NULL;
	t = DatumGetTextPP(d);
	len = VARSIZE_ANY_EXHDR(t);
	s = SPI_palloc(len + 1);
	memcpy(s, VARDATA_ANY(t), len);
	s[len] = '\0';
	return s;
}

bool
approval_getbool(int row, int col)
{
	bool		isnull;
	Datum		d = approval_getdatum(row, col, &isnull);

	return isnull ? false : DatumGetBool(d);
}

int32
approval_getint32(int row, int col)
{
	bool		isnull;
	Datum		d = approval_getdatum(row, col, &isnull);

	return isnull ? 0 : DatumGetInt32(d);
}

int64
approval_getint64(int row, int col)
{
	bool		isnull;
	Datum		d = approval_getdatum(row, col, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

/*
 * A column's value copied into the memory context that was current before
 * SPI_connect, so that it survives SPI_finish.
 */
Datum
approval_copy_datum(int row, int col, bool *isnull)
{
	Datum		d = approval_getdatum(row, col, isnull);
	Form_pg_attribute att = TupleDescAttr(SPI_tuptable->tupdesc, col - 1);

	if (*isnull)
		return (Datum) 0;
	return SPI_datumTransfer(d, att->attbyval, att->attlen);
}

ArrayType *
approval_text_array(List *strings)
{
	Datum	   *elems;
	int			n = list_length(strings);
	int			i = 0;
	ListCell   *lc;

	elems = palloc(sizeof(Datum) * Max(n, 1));
	foreach(lc, strings)
		elems[i++] = CStringGetTextDatum((char *) lfirst(lc));
	return construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT);
}

/* Is s one of a list of C strings? */
bool
approval_list_has(List *strings, const char *s)
{
	ListCell   *lc;

	foreach(lc, strings)
		if (strcmp(lfirst(lc), s) == 0)
			return true;
	return false;
}

/* text[] to a List of C strings (NULL elements are skipped) */
List *
approval_array_to_list(ArrayType *arr)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	List	   *result = NIL;

	if (arr == NULL)
		return NIL;
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
		if (!nulls[i])
			result = lappend(result, TextDatumGetCString(elems[i]));
	return result;
}

/*
 * Let go of a cache's memory context.  What was handed out from it earlier
 * in this transaction may still be in use (an invalidation can arrive in
 * the middle of an operation, at any SPI call), so inside a transaction the
 * context is handed to the transaction and freed when it ends; outside one
 * nobody holds a pointer and it is freed now.
 */
void
approval_retire_context(MemoryContext *cxt)
{
	if (*cxt == NULL)
		return;
	if (IsTransactionState())
		MemoryContextSetParent(*cxt, TopTransactionContext);
	else
		MemoryContextDelete(*cxt);
	*cxt = NULL;
}

/* OID of a relation of the extension's schema */
Oid
approval_relid(const char *relname)
{
	Oid			nsp = get_namespace_oid("approval", false);
	Oid			relid = get_relname_relid(relname, nsp);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation approval.%s does not exist", relname),
				 errhint("Is the extension installed?  CREATE EXTENSION approval;")));
	return relid;
}

/* Set up a set-returning function in materialize mode */
Tuplestorestate *
approval_srf_init(FunctionCallInfo fcinfo, TupleDesc *desc)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext old;
	Tuplestorestate *ts;
	TupleDesc	tupdesc;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("function returning a set of rows called in a context that cannot accept it")));

	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	tupdesc = CreateTupleDescCopy(tupdesc);
	ts = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = ts;
	rsinfo->setDesc = tupdesc;
	MemoryContextSwitchTo(old);
	*desc = tupdesc;
	return ts;
}

/* ---------- jsonb objects for event data ---------- */

void
aj_init(ApprovalJson *j)
{
	initStringInfo(&j->buf);
	appendStringInfoChar(&j->buf, '{');
}

static void
aj_key(ApprovalJson *j, const char *key)
{
	if (j->buf.len > 1)
		appendStringInfoChar(&j->buf, ',');
	escape_json(&j->buf, key);
	appendStringInfoChar(&j->buf, ':');
}

void
aj_str(ApprovalJson *j, const char *key, const char *value)
{
	aj_key(j, key);
	if (value == NULL)
		appendStringInfoString(&j->buf, "null");
	else
		escape_json(&j->buf, value);
}

void
aj_int(ApprovalJson *j, const char *key, int64 value)
{
	aj_key(j, key);
	appendStringInfo(&j->buf, INT64_FORMAT, value);
}

void
aj_bool(ApprovalJson *j, const char *key, bool value)
{
	aj_key(j, key);
	appendStringInfoString(&j->buf, value ? "true" : "false");
}

void
aj_list(ApprovalJson *j, const char *key, List *strings)
{
	ListCell   *lc;

	aj_key(j, key);
	appendStringInfoChar(&j->buf, '[');
	foreach(lc, strings)
	{
		if (lc != list_head(strings))
			appendStringInfoChar(&j->buf, ',');
		escape_json(&j->buf, (char *) lfirst(lc));
	}
	appendStringInfoChar(&j->buf, ']');
}

Jsonb *
aj_finish(ApprovalJson *j)
{
	appendStringInfoChar(&j->buf, '}');
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(j->buf.data)));
}

Jsonb *
approval_jsonb_empty(void)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
}

/* ---------- streams: several cursors read side by side ---------- */

#define STREAM_BATCH 1000

/*
 * Open a read-only cursor on a kept statement, under the active snapshot.
 * Each stream keeps its own batch (SPI_tuptable is replaced by every
 * fetch), so that several can be merged by a key.
 */
void
approval_stream_open(ApprovalStream *s, ApprovalPlan *p, Datum *values, const char *nulls)
{
	approval_exec_prepare(p);
	memset(s, 0, sizeof(*s));
	s->portal = SPI_cursor_open(NULL, p->plan, values, nulls, true);
}

/* A stream with no rows, not backed by a cursor */
void
approval_stream_none(ApprovalStream *s)
{
	memset(s, 0, sizeof(*s));
	s->done = true;
}

/*
 * The current row, or false at the end.  A fetch leaves the caller in the
 * memory context it was in (SPI would leave it in the procedure's, where
 * what the caller allocates next would stay until SPI_finish).
 */
bool
approval_stream_peek(ApprovalStream *s)
{
	if (s->done)
		return false;
	if (s->batch == NULL || s->pos >= s->batch->numvals)
	{
		MemoryContext cxt = CurrentMemoryContext;

		if (s->batch != NULL)
			SPI_freetuptable(s->batch);
		s->batch = NULL;
		SPI_cursor_fetch(s->portal, true, STREAM_BATCH);
		MemoryContextSwitchTo(cxt);
		if (SPI_processed == 0)
		{
			SPI_freetuptable(SPI_tuptable);
			s->done = true;
			return false;
		}
		s->batch = SPI_tuptable;
		s->pos = 0;
	}
	return true;
}

void
approval_stream_next(ApprovalStream *s)
{
	s->pos++;
}

/* A column of the current row (1-based); it lives as long as the batch */
Datum
approval_stream_get(ApprovalStream *s, int col, bool *isnull)
{
	return SPI_getbinval(s->batch->vals[s->pos], s->batch->tupdesc, col, isnull);
}

void
approval_stream_close(ApprovalStream *s)
{
	if (s->batch != NULL)
		SPI_freetuptable(s->batch);
	s->batch = NULL;
	if (s->portal != NULL)
		SPI_cursor_close(s->portal);
	s->portal = NULL;
	s->done = true;
}
