/*-------------------------------------------------------------------------
 *
 * callback.c
 *	  Workflow callbacks (on_submitted, on_approved, on_rejected,
 *	  on_cancelled, on_expired): checked when a workflow is defined, called
 *	  as fn(request bigint) in the transaction of the change.
 *
 * A callback runs as the role that defined the workflow, with the
 * search_path that was in effect when it was defined (stored with the
 * version; pg_temp last unless it names pg_temp), never the caller's and
 * never the engine's pinned one: a function written with unqualified names
 * works, and no caller can steer what it resolves.  Whatever settings it
 * changes are undone when it returns.  It acts for the caller's actor: an
 * approval function it calls is the caller's call.  The name is resolved with that same path at definition and
 * stored schema-qualified with its argument type.  Nothing is cached: the
 * catalog look-ups are syscache hits, and the function or the definer's
 * rights may change between calls.
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"

#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

const char *const approval_callback_keys[CALLBACK_COUNT] = {
	"on_submitted", "on_approved", "on_rejected", "on_cancelled", "on_expired"
};

static void
callback_error(const char *key, const char *msg) pg_attribute_noreturn();

static void
callback_error(const char *key, const char *msg)
{
	approval_definition_error(key, msg,
							  "A callback is a function taking one bigint (the request id), "
							  "such as \"app.grant_license\" or \"grant_license(bigint)\".");
}

static bool
may_execute(Oid fn, Oid role)
{
#if PG_VERSION_NUM >= 160000
	return object_aclcheck(ProcedureRelationId, fn, role, ACL_EXECUTE) == ACLCHECK_OK;
#else
	return pg_proc_aclcheck(fn, role, ACL_EXECUTE) == ACLCHECK_OK;
#endif
}

/*
 * The function a "name(argtypes)" text names, or InvalidOid: to_regprocedure,
 * called so that its NULL answer is seen (DirectFunctionCall raises on NULL).
 */
static Oid
regprocedure_or_invalid(const char *signature)
{
	Datum		result;

	LOCAL_FCINFO(fc, 1);

	InitFunctionCallInfoData(*fc, NULL, 1, InvalidOid, NULL, NULL);
	fc->args[0].value = CStringGetTextDatum(signature);
	fc->args[0].isnull = false;
	result = to_regprocedure(fc);
	return fc->isnull ? InvalidOid : DatumGetObjectId(result);
}

/*
 * Act as the definer, with the definer's search_path, until as_definer_end():
 * "$user" is the definer, and pg_temp, unless the path names it, is
 * searched last rather than first, so that no caller's temporary table or
 * function takes the place of what the definer meant.
 */
typedef struct AsDefiner
{
	Oid			save_user;
	int			save_sec;
	int			nest;
} AsDefiner;

static void
as_definer_begin(AsDefiner *st, Oid definer, const char *search_path)
{
	const char *path = search_path;

	if (strstr(search_path, "pg_temp") == NULL)
		path = psprintf("%s%spg_temp", search_path, *search_path ? ", " : "");
	GetUserIdAndSecContext(&st->save_user, &st->save_sec);
	SetUserIdAndSecContext(definer, st->save_sec | SECURITY_LOCAL_USERID_CHANGE);
	st->nest = NewGUCNestLevel();
	(void) set_config_option("search_path", path, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/*
 * Put back the caller's user and settings.  Whatever the definer's code set,
 * even with a plain SET, is undone: none of it is the caller's.  On error,
 * the (sub)transaction's abort does the same.
 */
static void
as_definer_end(AsDefiner *st)
{
	AtEOXact_GUC(false, st->nest);
	SetUserIdAndSecContext(st->save_user, st->save_sec);
}

/* Errors of a malformed name, which are the definition's fault (AP005) */
static bool
is_name_error(int sqlerrcode)
{
	return sqlerrcode == ERRCODE_SYNTAX_ERROR ||
		sqlerrcode == ERRCODE_INVALID_NAME ||
		sqlerrcode == ERRCODE_UNDEFINED_OBJECT ||
		sqlerrcode == ERRCODE_UNDEFINED_SCHEMA ||
		sqlerrcode == ERRCODE_FEATURE_NOT_SUPPORTED ||
		sqlerrcode == ERRCODE_INVALID_TEXT_REPRESENTATION;
}

/*
 * The function a callback key names, resolved with search_path: it must exist, be a plain function (no aggregate, window
 * function or procedure) of exactly one bigint argument returning no set,
 * and the definer must be allowed to execute it.  AP005 naming the key
 * otherwise.
 */
Oid
approval_check_callback(const char *name, const char *search_path, Oid definer,
						const char *key)
{
	MemoryContext cxt = CurrentMemoryContext;
	AsDefiner	st;
	volatile Oid fn = InvalidOid;
	volatile bool bad_name = false;
	volatile bool no_usage = false;
	HeapTuple	tp;
	Form_pg_proc proc;
	char	   *sig;

	as_definer_begin(&st, definer, search_path);
	PG_TRY();
	{
		if (strchr(name, '(') != NULL)
			fn = regprocedure_or_invalid(name);
		else
		{
			Oid			argtypes[1] = {INT8OID};
#if PG_VERSION_NUM >= 160000
			List	   *names = stringToQualifiedNameList(name, NULL);
#else
			List	   *names = stringToQualifiedNameList(name);
#endif

			if (list_length(names) > 2)
				bad_name = true;
			else
				fn = LookupFuncName(names, 1, argtypes, true);
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		/*
		 * A malformed name is the definition's error; anything else (a
		 * cancel, running out of memory) goes on as it is.  The
		 * transaction is aborted right after either way.
		 */
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode == ERRCODE_INSUFFICIENT_PRIVILEGE)
			no_usage = true;	/* a schema the definer may not use */
		else if (!is_name_error(edata->sqlerrcode))
			PG_RE_THROW();
		FlushErrorState();
		bad_name = !no_usage;
	}
	PG_END_TRY();
	as_definer_end(&st);

	if (bad_name)
		callback_error(key, psprintf("\"%s\" is not a function name (write function or schema.function)",
									 name));
	if (no_usage)
		callback_error(key, psprintf("names %s, in a schema that role \"%s\" may not use", name,
									 GetUserNameFromId(definer, false)));
	if (!OidIsValid(fn))
		callback_error(key, psprintf("names no function: %s%s does not exist (search_path: %s)", name,
									 strchr(name, '(') ? "" : "(bigint)", search_path));

	tp = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (!HeapTupleIsValid(tp))
		callback_error(key, psprintf("names no function: %s", name));
	proc = (Form_pg_proc) GETSTRUCT(tp);
	sig = format_procedure_qualified(fn);
	if (proc->prokind != PROKIND_FUNCTION)
		callback_error(key, psprintf("must be a plain function, and %s is %s", sig,
									 proc->prokind == PROKIND_AGGREGATE ? "an aggregate" :
									 proc->prokind == PROKIND_WINDOW ? "a window function" :
									 "a procedure"));
	if (proc->pronargs != 1 || proc->proargtypes.values[0] != INT8OID)
		callback_error(key, psprintf("must take exactly one bigint (the request id), and %s does not",
									 sig));
	if (proc->proretset)
		callback_error(key, psprintf("must not return a set, and %s does", sig));
	ReleaseSysCache(tp);

	if (!may_execute(fn, definer))
		callback_error(key, psprintf("names %s, which role \"%s\" may not execute", sig,
									 GetUserNameFromId(definer, false)));
	return fn;
}

/*
 * Call one callback of a workflow for a request, if it has one.  Errors
 * propagate: a callback that fails makes the change fail.
 */
void
approval_run_callback(const WorkflowDef *wf, ApprovalCallback which, int64 request_id)
{
	const char *signature = wf->callbacks[which];
	const char *key = approval_callback_keys[which];
	Oid			fn;
	FmgrInfo	flinfo;
	AsDefiner	st;

	LOCAL_FCINFO(fc, 1);

	if (signature == NULL)
		return;

	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(wf->created_by)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the role that defined workflow \"%s\" (version %d) no longer exists",
						wf->name, wf->version),
				 errdetail("Its %s callback %s runs as that role.", key, signature),
				 errhint("Define a new version of the workflow as an existing role for new requests; "
						 "for open ones a superuser can hand the callbacks to another role: "
						 "UPDATE approval.workflow SET created_by = 'some_role'::regrole WHERE id = %d.",
						 wf->id)));

	fn = regprocedure_or_invalid(signature);
	if (!OidIsValid(fn))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("%s callback %s of workflow \"%s\" does not exist", key, signature, wf->name),
				 errhint("Create the function again, or define a new version of the workflow.")));

	if (!may_execute(fn, wf->created_by))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\", which defined workflow \"%s\", may not execute its %s callback %s",
						GetUserNameFromId(wf->created_by, false), wf->name, key, signature),
				 errhint("GRANT EXECUTE ON FUNCTION %s TO %s.", signature,
						 quote_identifier(GetUserNameFromId(wf->created_by, false)))));

	as_definer_begin(&st, wf->created_by, wf->search_path ? wf->search_path : "\"$user\", public");
	fmgr_info(fn, &flinfo);
	InitFunctionCallInfoData(*fc, &flinfo, 1, InvalidOid, NULL, NULL);
	fc->args[0].value = Int64GetDatum(request_id);
	fc->args[0].isnull = false;
	(void) FunctionCallInvoke(fc);
	as_definer_end(&st);
}
