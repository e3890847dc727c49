/*-------------------------------------------------------------------------
 *
 * define.c
 *	  Workflow definitions: validation and storage, define_workflow(),
 *	  enable_workflow() and disable_workflow().
 *
 * define_workflow() checks the whole document before it writes anything and
 * names the offending key in its AP005 error ("stages[2].min_approvals must
 * be >= 1"; arrays are indexed from 0, as in jsonpath).  Versions are
 * immutable; every change tells the cache of compiled definitions
 * (workflow.c) in every session.
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/regproc.h"

#define MAX_NAME_LEN APPROVAL_MAX_NAME_LEN

/* ---------- errors ---------- */

/*
 * AP005 naming the offending key: "invalid workflow definition: <path>
 * <msg>", with a hint (NULL: where the keys are described).
 */
void
approval_definition_error(const char *path, const char *msg, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_AP_INVALID_DEFINITION),
			 errmsg("invalid workflow definition: %s%s%s", path, *path ? " " : "", msg),
			 errhint("%s", hint ? hint : "See \"Workflow definitions\" in doc/approval.md for every key.")));
}

static void
def_error(const char *path, const char *msg) pg_attribute_noreturn();

static void
def_error(const char *path, const char *msg)
{
	approval_definition_error(path, msg, NULL);
}

/* ---------- reading jsonb ---------- */

typedef struct Member
{
	char	   *key;
	JsonbValue	v;
} Member;

static bool
is_object(JsonbValue *v)
{
	return v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data);
}

static bool
is_array(JsonbValue *v)
{
	return v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data) &&
		!JsonContainerIsScalar(v->val.binary.data);
}

/* members of an object, or elements of an array (key NULL), one level deep */
static List *
members(JsonbContainer *c)
{
	JsonbIterator *it = JsonbIteratorInit(c);
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;
	List	   *result = NIL;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE || tok == WJB_ELEM)
		{
			Member	   *m = palloc(sizeof(Member));

			m->key = (tok == WJB_VALUE) ? key : NULL;
			m->v = v;
			result = lappend(result, m);
		}
	}
	return result;
}

static char *
get_string(JsonbValue *v, const char *path, bool nonempty)
{
	char	   *s;

	if (v->type != jbvString)
		def_error(path, "must be a string");
	s = pnstrdup(v->val.string.val, v->val.string.len);
	if (nonempty && s[0] == '\0')
		def_error(path, "must not be empty");
	return s;
}

static bool
get_bool(JsonbValue *v, const char *path)
{
	if (v->type != jbvBool)
		def_error(path, "must be true or false");
	return v->val.boolean;
}

static int
get_int(JsonbValue *v, const char *path)
{
	char	   *text;
	char	   *end;
	long		n;

	if (v->type != jbvNumeric)
		def_error(path, "must be an integer");
	text = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	errno = 0;
	n = strtol(text, &end, 10);
	if (*end != '\0' || errno != 0 || n < PG_INT32_MIN || n > PG_INT32_MAX)
		def_error(path, "must be an integer");
	return (int) n;
}

static double
get_number(JsonbValue *v, const char *path)
{
	MemoryContext cxt = CurrentMemoryContext;
	double		d = 0;

	if (v->type != jbvNumeric)
		def_error(path, "must be a number");
	PG_TRY();
	{
		d = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
	}
	PG_CATCH();
	{
		/* out of the range of double precision */
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		def_error(path, "is out of range");
	}
	PG_END_TRY();
	return d;
}

/* a positive PostgreSQL interval */
static Interval *
get_interval(JsonbValue *v, const char *path)
{
	char	   *text = get_string(v, path, true);
	MemoryContext cxt = CurrentMemoryContext;
	Interval   *iv = NULL;
	Interval	zero = {0};

	PG_TRY();
	{
		iv = DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(text),
												   ObjectIdGetDatum(InvalidOid),
												   Int32GetDatum(-1)));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		def_error(path, psprintf("must be an interval such as \"48 hours\", not \"%s\"", text));
	}
	PG_END_TRY();

	/* (no negative part either: "1 day -23 hours" could stand still over a DST change) */
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(iv),
										  IntervalPGetDatum(&zero))) <= 0 ||
		iv->month < 0 || iv->day < 0 || iv->time < 0)
		def_error(path, "must be a positive interval");
	return iv;
}

bool
approval_target_valid(const char *target)
{
	if (strcmp(target, "manager") == 0)
		return true;
	if ((strncmp(target, "user:", 5) == 0 || strncmp(target, "role:", 5) == 0) && target[5] != '\0')
		return true;
	if (strncmp(target, "group:", 6) == 0 && target[6] != '\0')
		return true;
	return false;
}

static char *
get_target(JsonbValue *v, const char *path)
{
	char	   *t = get_string(v, path, true);

	if (!approval_target_valid(t))
		def_error(path, psprintf("\"%s\" is not an approver target (user:<id>, group:<name>, role:<pg role> or manager)", t));
	return t;
}

/*
 * A callback key: resolved with the definer's search_path and stored
 * qualified; without a search_path (simulate(), which never stores or runs
 * callbacks) it is kept as written.
 */
static char *
get_callback(WorkflowDef *wf, JsonbValue *v, const char *path)
{
	char	   *name = get_string(v, path, true);

	if (wf->search_path == NULL)
		return name;
	return format_procedure_qualified(approval_check_callback(name, wf->search_path,
															  GetOuterUserId(), path));
}

/* ---------- validation ---------- */

/* A duration on the workflow's calendar keeps its units; months have none there */
static void
check_business_duration(WorkflowDef *wf, Interval *iv, const char *path)
{
	if (iv != NULL && wf->calendar != NULL && iv->month != 0)
		def_error(path, psprintf("cannot be counted in months on calendar \"%s\"; use days",
								 wf->calendar));
}

/*
 * The time keys together: the calendar exists, its durations have no
 * months, and whatever escalates has somewhere to escalate to.
 */
static void
check_clocks(WorkflowDef *wf)
{
	if (wf->calendar != NULL && !approval_calendar_exists(wf->calendar))
		approval_definition_error("calendar",
								  psprintf("names no calendar: there is no \"%s\" in approval.calendar",
										   wf->calendar),
								  "Add it with INSERT INTO approval.calendar (name, timezone, hours) first.");
	check_business_duration(wf, wf->sla, "sla");
	check_business_duration(wf, wf->escalate_after, "escalate_after");
	check_business_duration(wf, wf->escalate_every, "escalate_every");
	for (int i = 0; i < wf->nstages; i++)
	{
		StageDef   *st = &wf->stages[i];

		check_business_duration(wf, st->timeout, psprintf("stages[%d].timeout", i));
		if (st->on_timeout != NULL && strcmp(st->on_timeout, "escalate") == 0 &&
			wf->escalate_to == NULL)
			def_error(psprintf("stages[%d].on_timeout", i),
					  "is \"escalate\" but the workflow has no \"escalate_to\"");
	}
}

static const char *const workflow_keys[] = {
	"name", "description", "priority", "match", "auto_approve", "require_ack",
	"allow_self_approval", "distinct_approvers", "reapprove_on_change", "sla",
	"sla_warning", "calendar", "escalate_after", "escalate_every", "escalate_to",
	"expires_after", "on_submitted", "on_approved", "on_rejected", "on_cancelled",
	"on_expired", "stages", "sla_pause", "escalate_max", NULL
};

static const char *const stage_keys[] = {
	"name", "description", "approvers", "min_approvals", "order", "when",
	"denial_message", "reject_policy", "reject_quorum", "timeout", "on_timeout", NULL
};

static void
check_known(const char *key, const char *const *known, const char *prefix)
{
	for (int i = 0; known[i] != NULL; i++)
		if (strcmp(key, known[i]) == 0)
			return;
	def_error(psprintf("%s%s", prefix, key), "is not a known key");
}

static void
parse_stage(WorkflowDef *wf, int idx, JsonbValue *sv)
{
	StageDef   *st = &wf->stages[idx];
	char	   *prefix = psprintf("stages[%d].", idx);
	ListCell   *lc;
	bool		have_order = false;
	bool		have_reject_quorum = false;

	if (!is_object(sv))
		def_error(psprintf("stages[%d]", idx), "must be an object");

	st->idx = idx;
	st->order = idx;
	st->min_approvals = 1;
	st->reject_quorum = 1;

	foreach(lc, members(sv->val.binary.data))
	{
		Member	   *m = lfirst(lc);
		char	   *path = psprintf("%s%s", prefix, m->key);

		check_known(m->key, stage_keys, prefix);
		if (strcmp(m->key, "name") == 0)
		{
			st->name = get_string(&m->v, path, true);
			if (strlen(st->name) > MAX_NAME_LEN)
				def_error(path, psprintf("must be at most %d bytes", MAX_NAME_LEN));
		}
		else if (strcmp(m->key, "description") == 0)
			(void) get_string(&m->v, path, false);
		else if (strcmp(m->key, "approvers") == 0)
		{
			ListCell   *la;
			int			j = 0;

			if (!is_array(&m->v))
				def_error(path, "must be an array of approver targets");
			foreach(la, members(m->v.val.binary.data))
			{
				Member	   *a = lfirst(la);

				st->approvers = lappend(st->approvers,
										get_target(&a->v, psprintf("%s[%d]", path, j)));
				j++;
			}
			if (st->approvers == NIL)
				def_error(path, "must name at least one approver");
		}
		else if (strcmp(m->key, "min_approvals") == 0)
		{
			if (m->v.type == jbvString &&
				m->v.val.string.len == 3 && strncmp(m->v.val.string.val, "all", 3) == 0)
				st->min_approvals = 0;
			else if (m->v.type != jbvNumeric)
				def_error(path, "must be an integer >= 1 or \"all\"");
			else if ((st->min_approvals = get_int(&m->v, path)) < 1)
				def_error(path, "must be >= 1");
		}
		else if (strcmp(m->key, "order") == 0)
		{
			st->order = get_int(&m->v, path);
			if (st->order < 0)
				def_error(path, "must be >= 0");
			have_order = true;
		}
		else if (strcmp(m->key, "when") == 0)
			st->when = approval_parse_condition(path, get_string(&m->v, path, true));
		else if (strcmp(m->key, "denial_message") == 0)
			st->denial_message = get_string(&m->v, path, false);
		else if (strcmp(m->key, "reject_policy") == 0)
		{
			char	   *p = get_string(&m->v, path, true);

			if (strcmp(p, "quorum") == 0)
				st->reject_by_quorum = true;
			else if (strcmp(p, "any") != 0)
				def_error(path, "must be \"any\" or \"quorum\"");
		}
		else if (strcmp(m->key, "reject_quorum") == 0)
		{
			st->reject_quorum = get_int(&m->v, path);
			if (st->reject_quorum < 1)
				def_error(path, "must be >= 1");
			have_reject_quorum = true;
		}
		else if (strcmp(m->key, "timeout") == 0)
			st->timeout = get_interval(&m->v, path);
		else if (strcmp(m->key, "on_timeout") == 0)
		{
			char	   *p = get_string(&m->v, path, true);

			if (strcmp(p, "escalate") != 0 && strcmp(p, "approve") != 0 &&
				strcmp(p, "reject") != 0 && strcmp(p, "expire") != 0)
				def_error(path, "must be \"escalate\", \"approve\", \"reject\" or \"expire\"");
			st->on_timeout = p;
		}
	}

	(void) have_order;
	if (st->name == NULL)
		def_error(psprintf("%sname", prefix), "is required");
	if (st->approvers == NIL)
		def_error(psprintf("%sapprovers", prefix), "is required");
	if (have_reject_quorum && !st->reject_by_quorum)
		def_error(psprintf("%sreject_quorum", prefix), "needs \"reject_policy\": \"quorum\"");
	if (st->on_timeout != NULL && st->timeout == NULL)
		def_error(psprintf("%son_timeout", prefix), "needs \"timeout\"");
	if (st->timeout != NULL && st->on_timeout == NULL)
		st->on_timeout = "expire";
	for (int j = 0; j < idx; j++)
		if (strcmp(wf->stages[j].name, st->name) == 0)
			def_error(psprintf("%sname", prefix),
					  psprintf("\"%s\" is already the name of stages[%d]", st->name, j));
}

/*
 * Check a whole definition and return it compiled.  Raises AP005 naming the
 * offending key; writes nothing.  search_path is the definer's, with which
 * callbacks are resolved (and later run); NULL: callbacks are not resolved.
 */
WorkflowDef *
approval_parse_definition(Jsonb *doc, const char *search_path)
{
	WorkflowDef *wf = palloc0(sizeof(WorkflowDef));
	JsonbValue	stages = {0};
	bool		have_stages = false;
	ListCell   *lc;

	if (!JB_ROOT_IS_OBJECT(doc))
		def_error("", "the definition must be a JSON object");

	wf->priority = 100;
	wf->sla_pauses = true;
	wf->enabled = true;
	wf->search_path = search_path ? pstrdup(search_path) : NULL;

	foreach(lc, members(&doc->root))
	{
		Member	   *m = lfirst(lc);
		const char *k = m->key;

		check_known(k, workflow_keys, "");
		if (strcmp(k, "name") == 0)
		{
			wf->name = get_string(&m->v, k, true);
			if (strlen(wf->name) > MAX_NAME_LEN)
				def_error(k, psprintf("must be at most %d bytes", MAX_NAME_LEN));
		}
		else if (strcmp(k, "description") == 0)
			wf->description = get_string(&m->v, k, false);
		else if (strcmp(k, "priority") == 0)
			wf->priority = get_int(&m->v, k);
		else if (strcmp(k, "match") == 0)
			wf->match = approval_parse_condition(k, get_string(&m->v, k, true));
		else if (strcmp(k, "auto_approve") == 0)
			wf->auto_approve = approval_parse_condition(k, get_string(&m->v, k, true));
		else if (strcmp(k, "require_ack") == 0)
			wf->require_ack = get_string(&m->v, k, true);
		else if (strcmp(k, "allow_self_approval") == 0)
			wf->allow_self_approval = get_bool(&m->v, k);
		else if (strcmp(k, "distinct_approvers") == 0)
			wf->distinct_approvers = get_bool(&m->v, k);
		else if (strcmp(k, "reapprove_on_change") == 0)
		{
			char	   *p = get_string(&m->v, k, true);

			if (strcmp(p, "all") == 0)
				wf->reapprove_all = true;
			else if (strcmp(p, "stage") != 0)
				def_error(k, "must be \"stage\" or \"all\"");
		}
		else if (strcmp(k, "sla") == 0)
			wf->sla = get_interval(&m->v, k);
		else if (strcmp(k, "sla_warning") == 0)
		{
			wf->sla_warning = get_number(&m->v, k);
			if (!(wf->sla_warning > 0 && wf->sla_warning < 1))
				def_error(k, "must be a fraction between 0 and 1 (e.g. 0.75)");
		}
		else if (strcmp(k, "calendar") == 0)
			wf->calendar = get_string(&m->v, k, true);
		else if (strcmp(k, "escalate_after") == 0)
			wf->escalate_after = get_interval(&m->v, k);
		else if (strcmp(k, "escalate_every") == 0)
			wf->escalate_every = get_interval(&m->v, k);
		else if (strcmp(k, "escalate_to") == 0)
			wf->escalate_to = get_target(&m->v, k);
		else if (strcmp(k, "expires_after") == 0)
			wf->expires_after = get_interval(&m->v, k);
		else if (strcmp(k, "sla_pause") == 0)
		{
			char	   *p = get_string(&m->v, k, true);

			if (strcmp(p, "never") == 0)
				wf->sla_pauses = false;
			else if (strcmp(p, "changes_requested") != 0)
				def_error(k, "must be \"changes_requested\" or \"never\"");
		}
		else if (strcmp(k, "escalate_max") == 0)
		{
			if ((wf->escalate_max = get_int(&m->v, k)) < 1)
				def_error(k, "must be >= 1");
		}
		else if (strncmp(k, "on_", 3) == 0)
		{
			for (int c = 0; c < CALLBACK_COUNT; c++)
				if (strcmp(k, approval_callback_keys[c]) == 0)
					wf->callbacks[c] = get_callback(wf, &m->v, k);
		}
		else if (strcmp(k, "stages") == 0)
		{
			if (!is_array(&m->v))
				def_error(k, "must be an array of stages");
			stages = m->v;
			have_stages = true;
		}
	}

	if (wf->name == NULL)
		def_error("name", "is required");
	if (wf->sla_warning != 0 && wf->sla == NULL)
		def_error("sla_warning", "needs \"sla\"");
	if (wf->escalate_every != NULL && wf->escalate_after == NULL)
		def_error("escalate_every", "needs \"escalate_after\"");
	if (wf->escalate_max > 0 && wf->escalate_after == NULL)
		def_error("escalate_max", "needs \"escalate_after\"");
	if (wf->escalate_after != NULL && wf->escalate_to == NULL)
		def_error("escalate_after", "needs \"escalate_to\", the target to escalate to");

	if (have_stages)
	{
		List	   *sl = members(stages.val.binary.data);
		int			i = 0;

		wf->nstages = list_length(sl);
		wf->stages = palloc0(sizeof(StageDef) * Max(wf->nstages, 1));
		foreach(lc, sl)
			parse_stage(wf, i++, &((Member *) lfirst(lc))->v);
	}
	check_clocks(wf);
	return wf;
}

/* ---------- storage ---------- */

static ApprovalPlan lock_name_plan = {
	"SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('approval.workflow:' || $1))",
	1, {TEXTOID}
};

static ApprovalPlan insert_workflow_plan = {
	"INSERT INTO approval.workflow (name, version, description, priority, match, auto_approve,"
	"  require_ack, allow_self_approval, distinct_approvers, reapprove_on_change, sla, sla_warning,"
	"  calendar, escalate_after, escalate_every, escalate_to, expires_after, on_approved, on_rejected,"
	"  definition, created_by, on_submitted, on_cancelled, on_expired, search_path, sla_pause,"
	"  escalate_max)"
	" VALUES ($1, (SELECT COALESCE(max(version), 0) + 1 FROM approval.workflow WHERE name = $1),"
	"  $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,"
	"  $21, $22, $23, $24, $25, $26)"
	" RETURNING id",
	26, {TEXTOID, TEXTOID, INT4OID, JSONPATHOID, JSONPATHOID, TEXTOID, BOOLOID, BOOLOID, TEXTOID,
		INTERVALOID, FLOAT8OID, TEXTOID, INTERVALOID, INTERVALOID, TEXTOID, INTERVALOID,
		TEXTOID, TEXTOID, JSONBOID, OIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	INT4OID}
};

static ApprovalPlan insert_stage_plan = {
	"INSERT INTO approval.workflow_stage (workflow_id, idx, name, stage_order, approvers,"
	"  min_approvals, reject_policy, reject_quorum, when_cond, denial_message, timeout, on_timeout)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
	12, {INT4OID, INT4OID, TEXTOID, INT4OID, TEXTARRAYOID, INT4OID, TEXTOID, INT4OID,
	JSONPATHOID, TEXTOID, INTERVALOID, TEXTOID}
};

#define TEXT_OR_NULL(i, s)	(values[i] = (s) ? CStringGetTextDatum(s) : (Datum) 0, nulls[i] = (s) ? ' ' : 'n')
#define PTR_OR_NULL(i, p)	(values[i] = PointerGetDatum(p), nulls[i] = (p) ? ' ' : 'n')

static int32
store_definition(WorkflowDef *wf, Jsonb *doc)
{
	Datum		values[26];
	char		nulls[26];
	bool		isnull;
	int32		id;
	Datum		arg = CStringGetTextDatum(wf->name);

	approval_exec(&lock_name_plan, &arg, NULL, false, 1);

	memset(nulls, ' ', sizeof(nulls));
	values[0] = arg;
	TEXT_OR_NULL(1, wf->description);
	values[2] = Int32GetDatum(wf->priority);
	PTR_OR_NULL(3, wf->match);
	PTR_OR_NULL(4, wf->auto_approve);
	TEXT_OR_NULL(5, wf->require_ack);
	values[6] = BoolGetDatum(wf->allow_self_approval);
	values[7] = BoolGetDatum(wf->distinct_approvers);
	values[8] = CStringGetTextDatum(wf->reapprove_all ? "all" : "stage");
	PTR_OR_NULL(9, wf->sla);
	values[10] = Float8GetDatum(wf->sla_warning);
	nulls[10] = wf->sla_warning != 0 ? ' ' : 'n';
	TEXT_OR_NULL(11, wf->calendar);
	PTR_OR_NULL(12, wf->escalate_after);
	PTR_OR_NULL(13, wf->escalate_every);
	TEXT_OR_NULL(14, wf->escalate_to);
	PTR_OR_NULL(15, wf->expires_after);
	TEXT_OR_NULL(16, wf->callbacks[CALLBACK_APPROVED]);
	TEXT_OR_NULL(17, wf->callbacks[CALLBACK_REJECTED]);
	values[18] = JsonbPGetDatum(doc);
	values[19] = ObjectIdGetDatum(GetOuterUserId());
	TEXT_OR_NULL(20, wf->callbacks[CALLBACK_SUBMITTED]);
	TEXT_OR_NULL(21, wf->callbacks[CALLBACK_CANCELLED]);
	TEXT_OR_NULL(22, wf->callbacks[CALLBACK_EXPIRED]);
	TEXT_OR_NULL(23, wf->search_path);
	values[24] = CStringGetTextDatum(wf->sla_pauses ? "changes_requested" : "never");
	values[25] = Int32GetDatum(wf->escalate_max);
	nulls[25] = wf->escalate_max > 0 ? ' ' : 'n';
	approval_exec(&insert_workflow_plan, values, nulls, false, 0);
	id = DatumGetInt32(approval_getdatum(0, 1, &isnull));

	for (int i = 0; i < wf->nstages; i++)
	{
		StageDef   *st = &wf->stages[i];
		Datum		sv[12];
		char		sn[12];

		memset(sn, ' ', sizeof(sn));
		sv[0] = Int32GetDatum(id);
		sv[1] = Int32GetDatum(st->idx);
		sv[2] = CStringGetTextDatum(st->name);
		sv[3] = Int32GetDatum(st->order);
		sv[4] = PointerGetDatum(approval_text_array(st->approvers));
		sv[5] = Int32GetDatum(st->min_approvals);
		sn[5] = st->min_approvals == 0 ? 'n' : ' ';
		sv[6] = CStringGetTextDatum(st->reject_by_quorum ? "quorum" : "any");
		sv[7] = Int32GetDatum(st->reject_quorum);
		sv[8] = PointerGetDatum(st->when);
		sn[8] = st->when ? ' ' : 'n';
		sv[9] = st->denial_message ? CStringGetTextDatum(st->denial_message) : (Datum) 0;
		sn[9] = st->denial_message ? ' ' : 'n';
		sv[10] = PointerGetDatum(st->timeout);
		sn[10] = st->timeout ? ' ' : 'n';
		sv[11] = st->on_timeout ? CStringGetTextDatum(st->on_timeout) : (Datum) 0;
		sn[11] = st->on_timeout ? ' ' : 'n';
		approval_exec(&insert_stage_plan, sv, sn, false, 0);
	}
	return id;
}

/* Tell every session (this one included) that definitions changed */

PG_FUNCTION_INFO_V1(approval_define_workflow);
Datum
approval_define_workflow(PG_FUNCTION_ARGS)
{
	Jsonb	   *doc = PG_GETARG_JSONB_P(0);
	/*
	 * The 0.1.0 SQL declaration has no search_path argument: between
	 * installing this library and ALTER EXTENSION UPDATE, resolve callbacks
	 * with the pinned path, as 0.1.0 did (they had to be qualified).
	 */
	char	   *search_path = PG_NARGS() > 1 ? text_to_cstring(PG_GETARG_TEXT_PP(1))
		: pstrdup(namespace_search_path);
	WorkflowDef *wf;
	int32		id;

	approval_spi_connect();
	wf = approval_parse_definition(doc, search_path);
	id = store_definition(wf, doc);
	approval_definitions_changed();
	approval_spi_finish();
	PG_RETURN_INT32(id);
}

static ApprovalPlan set_enabled_plan = {
	"UPDATE approval.workflow SET enabled = $2 WHERE name = $1",
	2, {TEXTOID, BOOLOID}
};

static void
set_enabled(text *name, bool enabled)
{
	Datum		args[2];

	args[0] = PointerGetDatum(name);
	args[1] = BoolGetDatum(enabled);
	approval_spi_connect();
	if (approval_exec(&set_enabled_plan, args, NULL, false, 0) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_AP_NO_WORKFLOW_MATCHES),
				 errmsg("workflow \"%s\" does not exist", text_to_cstring(name)),
				 errhint("SELECT name FROM approval.workflows lists the workflows.")));
	/* (the UPDATE's workflow_changed trigger tells every session) */
	approval_spi_finish();
}

PG_FUNCTION_INFO_V1(approval_disable_workflow);
Datum
approval_disable_workflow(PG_FUNCTION_ARGS)
{
	set_enabled(PG_GETARG_TEXT_PP(0), false);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(approval_enable_workflow);
Datum
approval_enable_workflow(PG_FUNCTION_ARGS)
{
	set_enabled(PG_GETARG_TEXT_PP(0), true);
	PG_RETURN_VOID();
}

