/*-------------------------------------------------------------------------
 *
 * notify.c
 *	  What a listener is told of an event (DESIGN §7): the one home of its
 *	  JSON shape, used by the notification sent at commit, by the one the
 *	  worker relays (relay.c), and by approval.event_json(), which gives the
 *	  same object, with the event's data, for a row of events_after().
 *
 *	  full:     {"seq","kind","request","workflow","state","stage","actor",
 *	             "targets","at"}
 *	  minimal:  {"seq","kind","request"}
 *
 * Never the request payload.  A notification stays under NOTIFY's limit of
 * 8000 bytes: long names are cut, and so is the list of targets (with
 * "targets_truncated": true); the event row keeps them all.
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"

#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/snapmgr.h"

#define NOTIFY_LIMIT 7900		/* NOTIFY refuses 8000 bytes and more */
#define NOTIFY_FIELD_MAX 200	/* longest name copied into a notification */

static void
json_field(StringInfo buf, const char *key, const char *value, bool clip)
{
	appendStringInfoChar(buf, buf->len > 1 ? ',' : '{');
	escape_json(buf, key);
	appendStringInfoChar(buf, ':');
	if (value == NULL)
		appendStringInfoString(buf, "null");
	else
	{
		int			len = strlen(value);

		if (clip && len > NOTIFY_FIELD_MAX)
		{
			char	   *clipped = pnstrdup(value, pg_mbcliplen(value, len, NOTIFY_FIELD_MAX));

			escape_json(buf, clipped);
			pfree(clipped);
		}
		else
			escape_json(buf, value);
	}
}

/*
 * The JSON object of an event.  "limit" > 0 clips names and keeps the
 * object under that many bytes by keeping fewer targets; 0 keeps all.
 */
char *
approval_note_json(const ApprovalNote *n, bool minimal, int limit)
{
	StringInfoData buf;
	char		atbuf[MAXDATELEN + 1];
	int			ntargets = list_length(n->targets);
	bool		clip = limit > 0;

	for (;;)
	{
		ListCell   *lc;
		int			i = 0;

		initStringInfo(&buf);
		appendStringInfo(&buf, "{\"seq\":" INT64_FORMAT, n->seq);
		json_field(&buf, "kind", n->kind, clip);
		if (n->request == 0)
			appendStringInfoString(&buf, ",\"request\":null");	/* an admin's delegate_for */
		else
			appendStringInfo(&buf, ",\"request\":" INT64_FORMAT, n->request);
		if (minimal)
		{
			appendStringInfoChar(&buf, '}');
			return buf.data;
		}
		json_field(&buf, "workflow", n->workflow, clip);
		json_field(&buf, "state", n->state, clip);
		json_field(&buf, "stage", n->stage, clip);
		json_field(&buf, "actor", n->actor, clip);
		appendStringInfoString(&buf, ",\"targets\":");
		if (n->targets == NIL)
			appendStringInfoString(&buf, "null");
		else
		{
			appendStringInfoChar(&buf, '[');
			foreach(lc, n->targets)
			{
				if (i >= ntargets)
					break;
				if (i++ > 0)
					appendStringInfoChar(&buf, ',');
				escape_json(&buf, (char *) lfirst(lc));
			}
			appendStringInfoChar(&buf, ']');
			if (ntargets < list_length(n->targets))
				appendStringInfoString(&buf, ",\"targets_truncated\":true");
		}
		JsonEncodeDateTime(atbuf, TimestampTzGetDatum(n->at), TIMESTAMPTZOID, NULL);
		json_field(&buf, "at", atbuf, false);
		if (n->data != NULL)
		{
			appendStringInfoString(&buf, ",\"data\":");
			(void) JsonbToCString(&buf, &n->data->root, VARSIZE(n->data));
		}
		appendStringInfoChar(&buf, '}');

		if (limit <= 0 || buf.len < limit || ntargets == 0)
			return buf.data;
		/* too long: keep fewer targets and try again */
		pfree(buf.data);
		ntargets = ntargets / 2;
	}
}

/*
 * Queue the notification of an event, sent when the current transaction
 * commits, on approval.notify_channel with approval.notify_payload.
 */
void
approval_note_send(const ApprovalNote *n)
{
	Async_Notify(approval_notify_channel,
				 approval_note_json(n, approval_notify_payload == APPROVAL_PAYLOAD_MINIMAL,
									NOTIFY_LIMIT));
}

/* ---- approval.event_json(approval.event) ---- */

static ApprovalPlan workflow_of_plan = {
	"SELECT workflow FROM approval.request WHERE id OPERATOR(pg_catalog.=) $1", 1, {INT8OID}
};

/* one request's workflow, kept across the rows of one query */
typedef struct WorkflowOf
{
	int64		request;
	char	   *workflow;
} WorkflowOf;

static const char *
workflow_of(FunctionCallInfo fcinfo, int64 request)
{
	WorkflowOf *cache = fcinfo->flinfo->fn_extra;
	Datum		arg = Int64GetDatum(request);
	char	   *name = NULL;

	if (cache != NULL && cache->request == request)
		return cache->workflow;
	approval_spi_connect();

	/*
	 * events_after() reads the log with a snapshot of its own, newer than
	 * the calling statement's: an event it returns may belong to a request
	 * this statement's snapshot does not see yet.  A request's workflow
	 * never changes, so the latest snapshot names it.
	 */
	PushActiveSnapshot(GetLatestSnapshot());
	if (approval_exec(&workflow_of_plan, &arg, NULL, true, 1) > 0)
		name = approval_gettext(0, 1);
	PopActiveSnapshot();
	if (cache == NULL)
		cache = fcinfo->flinfo->fn_extra =
			MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(WorkflowOf));
	else if (cache->workflow != NULL)
		pfree(cache->workflow);
	cache->request = request;
	cache->workflow = name ? MemoryContextStrdup(fcinfo->flinfo->fn_mcxt, name) : NULL;
	approval_spi_finish();
	return cache->workflow;
}

static Datum
attr(HeapTupleHeader row, const char *name, bool *isnull)
{
	return GetAttributeByName(row, name, isnull);
}

static const char *
attr_text(HeapTupleHeader row, const char *name)
{
	bool		isnull;
	Datum		d = attr(row, name, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/*
 * event_json(e): the full notification of an event with its data, for
 * listeners that read events_after(): the same object whether an event is
 * caught up or live.
 */
PG_FUNCTION_INFO_V1(approval_event_json);
Datum
approval_event_json(PG_FUNCTION_ARGS)
{
	HeapTupleHeader row = PG_GETARG_HEAPTUPLEHEADER(0);
	ApprovalNote n = {0};
	bool		isnull;
	Datum		d;

	n.seq = DatumGetInt64(attr(row, "seq", &isnull));
	if (isnull)
		PG_RETURN_NULL();
	d = attr(row, "request_id", &isnull);
	n.request = isnull ? 0 : DatumGetInt64(d);
	n.kind = attr_text(row, "kind");
	n.actor = attr_text(row, "actor");
	n.state = attr_text(row, "state");
	n.stage = attr_text(row, "stage");
	d = attr(row, "at", &isnull);
	n.at = isnull ? DT_NOBEGIN : DatumGetTimestampTz(d);
	d = attr(row, "targets", &isnull);
	n.targets = isnull ? NIL : approval_array_to_list(DatumGetArrayTypeP(d));
	d = attr(row, "data", &isnull);
	n.data = isnull ? approval_jsonb_empty() : DatumGetJsonbP(d);
	n.workflow = n.request == 0 ? NULL : workflow_of(fcinfo, n.request);

	PG_RETURN_TEXT_P(cstring_to_text(approval_note_json(&n, false, 0)));
}
