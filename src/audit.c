/*-------------------------------------------------------------------------
 *
 * audit.c
 *	  approval.verify_audit(): is the log whole, and do the rows agree with it?
 *
 * For each request it checks the hash chain of its events (event.c) and
 * that the chain ends at the head stored on the request, then replays the
 * events (replay.c) and compares the request, stage and decision rows with
 * what they call for.  Events of no request (administrative ones) are one
 * chain of their own.  Then, for a caller who sees the whole log, it checks
 * the log against the checkpoints (checkpoint.c), and, given a digest kept
 * outside the database, whether the log still reaches it.
 *
 * It runs as the caller, so row-level security decides which requests it
 * checks.  Requests, events, stages and decisions are read side by side in
 * request order, each through a cursor of its own, so memory stays that of
 * one request whatever the size of the log.
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"
#include "replay.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#define REQUEST_FILTER(col) \
	" WHERE $1::pg_catalog.int8 IS NULL OR " col " OPERATOR(pg_catalog.=) $1"

/* with the name, version and stages (by index) of its workflow version */
static ApprovalPlan requests_plan = {
	"SELECT r.id, r.workflow, r.requester, r.state::pg_catalog.text, r.decided_at, r.escalations,"
	"  r.last_hash, r.title, r.subject, r.created_at, w.name, w.version, d.names, d.idx, d.orders"
	"  FROM approval.request r"
	"  LEFT JOIN approval.workflow w ON w.id OPERATOR(pg_catalog.=) r.workflow_id"
	"  LEFT JOIN LATERAL (SELECT pg_catalog.array_agg(s.name ORDER BY s.idx) AS names,"
	"                            pg_catalog.array_agg(s.idx ORDER BY s.idx) AS idx,"
	"                            pg_catalog.array_agg(s.stage_order ORDER BY s.idx) AS orders"
	"                       FROM approval.workflow_stage s"
	"                      WHERE s.workflow_id OPERATOR(pg_catalog.=) r.workflow_id) d ON true"
	REQUEST_FILTER("r.id") " ORDER BY r.id",
	1, {INT8OID}
};

/*
 * The verify_audit(bigint) of 0.6.0 and before, called with this library
 * before ALTER EXTENSION UPDATE: the chains only, from the columns every
 * version has (no replay, no checkpoints).
 */
static ApprovalPlan chains_requests_plan = {
	"SELECT r.id, NULL, NULL, NULL, NULL, 0, r.last_hash FROM approval.request r"
	REQUEST_FILTER("r.id") " ORDER BY r.id",
	1, {INT8OID}
};

static ApprovalPlan chains_events_plan = {
	"SELECT request_id, seq, at, kind, actor, data, hash, NULL::pg_catalog.text FROM approval.event"
	REQUEST_FILTER("request_id") " ORDER BY request_id NULLS LAST, seq",
	1, {INT8OID}
};

static ApprovalPlan events_plan = {
	"SELECT request_id, seq, at, kind, actor, data, hash, state FROM approval.event"
	REQUEST_FILTER("request_id") " ORDER BY request_id NULLS LAST, seq",
	1, {INT8OID}
};

static ApprovalPlan stages_plan = {
	"SELECT request_id, stage, state::pg_catalog.text, round, required, approvals, rejections,"
	"  targets, activated_at, decided_at, stage_idx, stage_order FROM approval.request_stage"
	REQUEST_FILTER("request_id") " ORDER BY request_id, stage",
	1, {INT8OID}
};

static ApprovalPlan decisions_plan = {
	"SELECT request_id, decision, stage, round, actor, on_behalf_of, override, reason, comment"
	"  FROM approval.decision"
	REQUEST_FILTER("request_id") " ORDER BY request_id, id",
	1, {INT8OID}
};

/* the request id of a stream's current row; false at its end or at NULL */
static bool
peek_id(ApprovalStream *s, int64 *id)
{
	bool		isnull;
	Datum		d;

	if (!approval_stream_peek(s))
		return false;
	d = approval_stream_get(s, 1, &isnull);
	if (isnull)
		return false;
	*id = DatumGetInt64(d);
	return true;
}

static char *
get_text(ApprovalStream *s, int col)
{
	bool		isnull;
	Datum		d = approval_stream_get(s, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

static int32
get_int32(ApprovalStream *s, int col)
{
	bool		isnull;
	Datum		d = approval_stream_get(s, col, &isnull);

	return isnull ? 0 : DatumGetInt32(d);
}

static bool
get_bool(ApprovalStream *s, int col)
{
	bool		isnull;
	Datum		d = approval_stream_get(s, col, &isnull);

	return !isnull && DatumGetBool(d);
}

static TimestampTz
get_time(ApprovalStream *s, int col)
{
	bool		isnull;
	Datum		d = approval_stream_get(s, col, &isnull);

	return isnull ? 0 : DatumGetTimestampTz(d);
}

/* An int4[] column as a List of int (NIL for NULL) */
static List *
get_int_list(ApprovalStream *s, int col)
{
	bool		isnull;
	Datum		d = approval_stream_get(s, col, &isnull);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	List	   *out = NIL;

	if (isnull)
		return NIL;
	deconstruct_array(DatumGetArrayTypeP(d), INT4OID, sizeof(int32), true, TYPALIGN_INT,
					  &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
		out = lappend_int(out, nulls[i] ? -1 : DatumGetInt32(elems[i]));
	return out;
}

/* A text[] column as a List of C strings (NIL for NULL) */
static List *
get_text_list(ApprovalStream *s, int col)
{
	bool		isnull;
	Datum		d = approval_stream_get(s, col, &isnull);

	return isnull ? NIL : approval_array_to_list(DatumGetArrayTypeP(d));
}

/* One chain being checked */
typedef struct Chain
{
	int32		events;
	bool		broken;
	int64		first_bad;
	bytea	   *prev;
} Chain;

/*
 * Check the next event of a chain; with "rp", replay it too.  The chain goes
 * on from the stored hash, so that one edit is one break.
 */
static void
chain_event(Chain *c, ApprovalStream *evs, int64 request_id, Replay *rp)
{
	bool		isnull;
	int64		seq = DatumGetInt64(approval_stream_get(evs, 2, &isnull));
	TimestampTz at = get_time(evs, 3);
	char	   *kind = get_text(evs, 4);
	char	   *actor = get_text(evs, 5);
	Jsonb	   *data = DatumGetJsonbPCopy(approval_stream_get(evs, 6, &isnull));
	Datum		hd = approval_stream_get(evs, 7, &isnull);
	bytea	   *stored = isnull ? NULL : DatumGetByteaPCopy(hd);
	bytea	   *expect = approval_event_hash(c->prev, seq, request_id, at, kind, actor, data);

	c->events++;
	if (!c->broken && !approval_same_hash(stored, expect))
	{
		c->broken = true;
		c->first_bad = seq;
	}
	c->prev = stored;
	if (rp != NULL)
		replay_event(rp, seq, kind, actor, at, data, get_text(evs, 8));
}

static void
emit(Tuplestorestate *ts, TupleDesc desc, bool has_id, int64 id, const Chain *c,
	 const char *problems)
{
	Datum		values[6];
	bool		nulls[6] = {!has_id, false, false, true, true, true};

	values[0] = Int64GetDatum(id);
	values[1] = Int32GetDatum(c->events);
	values[2] = BoolGetDatum(problems == NULL);
	values[3] = Int64GetDatum(c->first_bad);
	nulls[3] = (c->first_bad == 0);
	values[4] = problems ? CStringGetTextDatum(problems) : (Datum) 0;
	nulls[4] = (problems == NULL);
	values[5] = (Datum) 0;
	tuplestore_putvalues(ts, desc, values, nulls);
}

/* What is wrong with one request: NULL when nothing */
static char *
request_problems(Chain *c, Replay *rp, bool has_row, bytea *head)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (!has_row)
		appendStringInfoString(&buf, "there are events of a request that is not in approval.request (removed without approval.purge()?)");
	else
	{
		if (c->broken)
			appendStringInfo(&buf, "its hash chain breaks at seq " INT64_FORMAT, c->first_bad);
		else if (c->events > 0 && !approval_same_hash(c->prev, head))
			appendStringInfoString(&buf, "its hash chain does not end at the head stored on the request: events were removed");
		if (rp->problems.len > 0)
			appendStringInfo(&buf, "%s%s", buf.len > 0 ? "; " : "", rp->problems.data);
	}
	return buf.len > 0 ? buf.data : NULL;
}

/*
 * verify_audit(request DEFAULT NULL, since_checkpoint DEFAULT NULL): one row
 * per request (request_id, events, ok, first_bad_seq, problem), one for the
 * events of no request, and rows about the checkpoints (request_id NULL,
 * checkpoint set) when the caller sees the whole log and no request is
 * named.
 */
PG_FUNCTION_INFO_V1(approval_verify_audit);
Datum
approval_verify_audit(PG_FUNCTION_ARGS)
{
	Tuplestorestate *ts;
	TupleDesc	desc;
	Datum		arg;
	char		argnull;
	ApprovalStream reqs,
				evs,
				stages,
				decs;
	ApprovalActor actor;
	bytea	   *witness = (PG_NARGS() > 1 && !PG_ARGISNULL(1)) ? PG_GETARG_BYTEA_PP(1) : NULL;
	MemoryContext upper = CurrentMemoryContext;
	MemoryContext per_request;
	bool		replaying;

	ts = approval_srf_init(fcinfo, &desc);
	arg = PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0);
	argnull = PG_ARGISNULL(0) ? 'n' : ' ';

	approval_spi_connect();
	approval_get_actor(&actor);
	if (witness != NULL && (!actor.sees_all || !PG_ARGISNULL(0)))
		ereport(ERROR,
				(errcode(!actor.sees_all ? ERRCODE_INSUFFICIENT_PRIVILEGE : ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(!actor.sees_all ? "only a caller who sees the whole log can check it against a checkpoint"
						: "a checkpoint covers the whole log, not one request"),
				 errhint(!actor.sees_all ? "Ask an approval_admin, or connect as a gateway that acts for no one."
						 : "Call approval.verify_audit(since_checkpoint => ...) without a request.")));

	replaying = (desc->natts >= 6);
	approval_stream_open(&reqs, replaying ? &requests_plan : &chains_requests_plan, &arg, &argnull);
	approval_stream_open(&evs, replaying ? &events_plan : &chains_events_plan, &arg, &argnull);
	if (replaying)
	{
		approval_stream_open(&stages, &stages_plan, &arg, &argnull);
		approval_stream_open(&decs, &decisions_plan, &arg, &argnull);
	}
	else
	{
		approval_stream_none(&stages);
		approval_stream_none(&decs);
	}
	per_request = AllocSetContextCreate(CurrentMemoryContext, "verify_audit request",
										ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		int64		id = 0;
		int64		cand;
		bool		found = false;
		bool		has_row = false;
		bytea	   *head = NULL;
		ReplayRequestRow row = {0};
		Chain		c = {0};
		Replay		rp;
		char	   *problems;

		/* the lowest request id any stream is at */
		if (peek_id(&reqs, &cand))
			id = cand, found = true;
		if (peek_id(&evs, &cand) && (!found || cand < id))
			id = cand, found = true;
		if (peek_id(&stages, &cand) && (!found || cand < id))
			id = cand, found = true;
		if (peek_id(&decs, &cand) && (!found || cand < id))
			id = cand, found = true;
		if (!found)
			break;

		CHECK_FOR_INTERRUPTS();
		MemoryContextSwitchTo(per_request);
		replay_begin(&rp, id);
		if (peek_id(&reqs, &cand) && cand == id && !replaying)
		{
			bool		isnull;
			Datum		d = approval_stream_get(&reqs, 7, &isnull);

			has_row = true;
			head = isnull ? NULL : DatumGetByteaPCopy(d);
			approval_stream_next(&reqs);
		}
		else if (peek_id(&reqs, &cand) && cand == id)
		{
			bool		isnull;
			Datum		d;

			has_row = true;
			row.workflow = get_text(&reqs, 2);
			row.requester = get_text(&reqs, 3);
			row.state = get_text(&reqs, 4);
			row.decided_at = get_time(&reqs, 5);
			row.escalations = get_int32(&reqs, 6);
			d = approval_stream_get(&reqs, 7, &isnull);
			head = isnull ? NULL : DatumGetByteaPCopy(d);
			row.title = get_text(&reqs, 8);
			row.subject = get_text(&reqs, 9);
			row.created_at = get_time(&reqs, 10);
			row.def_workflow = get_text(&reqs, 11);
			row.def_version = get_int32(&reqs, 12);
			row.def_names = get_text_list(&reqs, 13);
			row.def_idx = get_int_list(&reqs, 14);
			row.def_orders = get_int_list(&reqs, 15);
			approval_stream_next(&reqs);
		}
		while (peek_id(&evs, &cand) && cand == id)
		{
			chain_event(&c, &evs, id, replaying ? &rp : NULL);
			approval_stream_next(&evs);
		}
		if (has_row && replaying)
			replay_check_request(&rp, &row);
		while (peek_id(&stages, &cand) && cand == id)
		{
			ReplayStageRow sr;
			bool		isnull;

			sr.stage = get_text(&stages, 2);
			sr.state = get_text(&stages, 3);
			sr.round = get_int32(&stages, 4);
			sr.required = get_int32(&stages, 5);
			sr.approvals = get_int32(&stages, 6);
			sr.rejections = get_int32(&stages, 7);
			sr.targets = approval_array_to_list(DatumGetArrayTypeP(approval_stream_get(&stages, 8, &isnull)));
			sr.activated_at = get_time(&stages, 9);
			sr.decided_at = get_time(&stages, 10);
			sr.idx = get_int32(&stages, 11);
			sr.order = get_int32(&stages, 12);
			replay_check_stage(&rp, &sr);
			approval_stream_next(&stages);
		}
		while (peek_id(&decs, &cand) && cand == id)
		{
			replay_check_decision(&rp,
								  replay_decision_key(get_text(&decs, 2), get_text(&decs, 3),
													  get_int32(&decs, 4), get_text(&decs, 5),
													  get_text(&decs, 6), get_bool(&decs, 7),
													  get_text(&decs, 8), get_text(&decs, 9)));
			approval_stream_next(&decs);
		}
		if (replaying)
			replay_end(&rp);
		problems = request_problems(&c, &rp, has_row, head);

		MemoryContextSwitchTo(upper);
		emit(ts, desc, true, id, &c, problems);
		MemoryContextReset(per_request);
	}

	/* the events of no request: a chain of their own */
	if (approval_stream_peek(&evs))
	{
		Chain		c = {0};
		char	   *problems = NULL;

		MemoryContextSwitchTo(per_request);

		while (approval_stream_peek(&evs))
		{
			chain_event(&c, &evs, 0, NULL);
			approval_stream_next(&evs);
		}
		if (c.broken)
			problems = psprintf("the hash chain of the events of no request breaks at seq " INT64_FORMAT,
								c.first_bad);
		MemoryContextSwitchTo(upper);
		emit(ts, desc, false, 0, &c, problems);
		MemoryContextReset(per_request);
	}
	approval_stream_close(&decs);
	approval_stream_close(&stages);
	approval_stream_close(&evs);
	approval_stream_close(&reqs);
	MemoryContextDelete(per_request);

	/* (the verify_audit(bigint) of 0.6.0 and before has no checkpoints) */
	if (actor.sees_all && PG_ARGISNULL(0) && desc->natts >= 6)
		approval_checkpoints_verify(ts, desc, witness);

	approval_spi_finish();
	return (Datum) 0;
}
