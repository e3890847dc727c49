/*-------------------------------------------------------------------------
 *
 * condition.c
 *	  Conditions are SQL/JSON path predicates, run by PostgreSQL's own
 *	  jsonpath engine: the payload is "$", and $requester and $workflow are
 *	  variables.  A result other than true (false, null, a missing key, a
 *	  type mismatch) counts as false.
 *
 * Definitions are checked once by define_workflow(): the parser's own
 * message, the predicate form, and the variables a condition may use.  The
 * compiled (binary) jsonpath is stored in the workflow tables and cached
 * with the workflow (define.c), so it is never parsed again.
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

static ApprovalPlan requester_plan = {
	"SELECT COALESCE(p.attributes, '{}'::jsonb) || pg_catalog.jsonb_build_object("
	"      'id', $1::text, 'email', p.email, 'display_name', p.display_name, 'manager', p.manager_id)"
	"  FROM (SELECT 1) AS one LEFT JOIN approval.principal p ON p.id = $1",
	1, {TEXTOID}
};

static bool
is_predicate(JsonPath *jp)
{
	JsonPathItem v;

	jspInit(&v, jp);
	switch (v.type)
	{
		case jpiAnd:
		case jpiOr:
		case jpiNot:
		case jpiIsUnknown:
		case jpiEqual:
		case jpiNotEqual:
		case jpiLess:
		case jpiGreater:
		case jpiLessOrEqual:
		case jpiGreaterOrEqual:
		case jpiExists:
		case jpiStartsWith:
		case jpiLikeRegex:
		case jpiBool:
			return !jspHasNext(&v);
		default:
			return false;
	}
}

static bool condition_eval(JsonPath *cond, Jsonb *payload, Jsonb *vars, bool *isnull);

/*
 * In a PG_CATCH block: turn the error being handled into AP005 naming the
 * key, with the original message.  The transaction is aborted right after,
 * so no subtransaction is needed.
 */
static void
rethrow_as_definition_error(MemoryContext cxt, const char *path,
							const char *detail, const char *hint) pg_attribute_noreturn();

static void
rethrow_as_definition_error(MemoryContext cxt, const char *path,
							const char *detail, const char *hint)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	ereport(ERROR,
			(errcode(ERRCODE_AP_INVALID_DEFINITION),
			 errmsg("invalid workflow definition: %s: %s", path, edata->message),
			 detail ? errdetail("%s", detail) : 0,
			 errhint("%s", hint)));
}

/*
 * Parse a condition of a definition; "path" names its key for the error
 * (e.g. "stages[1].when").  Raises AP005 with the parser's message.
 */
JsonPath *
approval_parse_condition(const char *path, const char *text)
{
	MemoryContext cxt = CurrentMemoryContext;
	JsonPath   *jp = NULL;
	Jsonb	   *probe_vars;
	bool		isnull;

	PG_TRY();
	{
		jp = DatumGetJsonPathP(DirectFunctionCall1(jsonpath_in, CStringGetDatum(text)));
	}
	PG_CATCH();
	{
		rethrow_as_definition_error(cxt, path,
									"Conditions are SQL/JSON path predicates, as with the @@ operator.",
									"For example: \"$.cost > 1000 && $requester.department == \\\"it\\\"\".");
	}
	PG_END_TRY();

	if (!is_predicate(jp))
		ereport(ERROR,
				(errcode(ERRCODE_AP_INVALID_DEFINITION),
				 errmsg("invalid workflow definition: %s must be a predicate, not a path", path),
				 errdetail("\"%s\" selects items; a condition must compare or test them.", text),
				 errhint("Write a comparison such as \"$.cost > 1000\" or \"exists($.tags[*] ? (@ == \\\"urgent\\\"))\".")));

	/*
	 * A run against an empty document raises only what silent mode does not
	 * suppress: an unknown variable.
	 */
	probe_vars = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
													CStringGetDatum("{\"requester\": {}, \"workflow\": \"\"}")));
	PG_TRY();
	{
		(void) condition_eval(jp, approval_jsonb_empty(), probe_vars, &isnull);
	}
	PG_CATCH();
	{
		rethrow_as_definition_error(cxt, path, NULL,
									"The variables a condition may use are $requester and $workflow.");
	}
	PG_END_TRY();

	return jp;
}

/* jsonb_path_match(payload, cond, vars, silent => true), NULL allowed */
static bool
condition_eval(JsonPath *cond, Jsonb *payload, Jsonb *vars, bool *isnull)
{
	LOCAL_FCINFO(fc, 4);
	Datum		result;

	InitFunctionCallInfoData(*fc, NULL, 4, InvalidOid, NULL, NULL);
	fc->args[0].value = JsonbPGetDatum(payload);
	fc->args[0].isnull = false;
	fc->args[1].value = PointerGetDatum(cond);
	fc->args[1].isnull = false;
	fc->args[2].value = JsonbPGetDatum(vars);
	fc->args[2].isnull = false;
	fc->args[3].value = BoolGetDatum(true);
	fc->args[3].isnull = false;
	result = jsonb_path_match(fc);
	*isnull = fc->isnull;
	return !fc->isnull && DatumGetBool(result);
}

bool
approval_condition_holds(JsonPath *cond, Jsonb *payload, Jsonb *vars)
{
	bool		isnull;

	if (cond == NULL)
		return true;
	return condition_eval(cond, payload, vars, &isnull);
}

/*
 * $requester: the principal's attributes at top level, then id, email,
 * display_name and manager, which attributes cannot override.  Needs SPI.
 */
Jsonb *
approval_requester_json(const char *requester)
{
	Datum		arg = CStringGetTextDatum(requester);
	bool		isnull;

	if (approval_exec(&requester_plan, &arg, NULL, false, 1) != 1)
		elog(ERROR, "requester query returned no row");
	return DatumGetJsonbP(approval_copy_datum(0, 1, &isnull));
}

/* {"requester": <requester>, "workflow": <workflow>}, built without parsing */
Jsonb *
approval_make_vars(Jsonb *requester, const char *workflow)
{
	JsonbParseState *state = NULL;
	JsonbValue	k,
				v;
	JsonbValue *res;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	k.type = jbvString;
	k.val.string.val = "requester";
	k.val.string.len = 9;
	pushJsonbValue(&state, WJB_KEY, &k);
	v.type = jbvBinary;
	v.val.binary.data = &requester->root;
	v.val.binary.len = VARSIZE(requester) - VARHDRSZ;
	pushJsonbValue(&state, WJB_VALUE, &v);
	k.val.string.val = "workflow";
	k.val.string.len = 8;
	pushJsonbValue(&state, WJB_KEY, &k);
	v.type = jbvString;
	v.val.string.val = (char *) workflow;
	v.val.string.len = strlen(workflow);
	pushJsonbValue(&state, WJB_VALUE, &v);
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/*
 * Does a condition mention $workflow?  Routing shares one set of variables
 * among the conditions that do not.  The printed form shows a variable as
 * $"name", which a string literal cannot contain unescaped.
 */
bool
approval_condition_uses_workflow(JsonPath *cond)
{
	char	   *text;

	if (cond == NULL)
		return false;
	text = DatumGetCString(DirectFunctionCall1(jsonpath_out, PointerGetDatum(cond)));
	return strstr(text, "$\"workflow\"") != NULL;
}
