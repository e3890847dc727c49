/*-------------------------------------------------------------------------
 *
 * event.c
 *	  The event log: one row per state change, chained per request with
 *	  sha256, sent live with pg_notify (notify.c: at commit, or relayed by
 *	  the worker, relay.c), and verified by verify_audit().  The seqs come
 *	  from horizon.c, which keeps the cursor of events_after() gapless.
 *
 * An operation collects its events in an ApprovalEvents buffer while it holds
 * the request's row lock, and writes them with one INSERT at the end.  Each
 * event's hash is
 *
 *	 sha256(previous hash of the request || seq || request_id || at ||
 *			kind || NUL || actor || NUL || data as jsonb text)
 *
 * with the integers in big-endian.  Because every writer holds the request's
 * row lock, the chain order is the seq order.  The state, stage and targets
 * stored with an event are what its notification tells a listener; they are
 * not part of the hash.
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "access/htup_details.h"
#include "utils/snapmgr.h"

typedef struct PendingEvent
{
	int64		seq;
	TimestampTz at;
	const char *kind;
	const char *actor;
	Jsonb	   *data;
	bytea	   *hash;
	const char *state;			/* for listeners (not hashed) */
	const char *stage;
	List	   *targets;
} PendingEvent;

/*
 * The events of an operation go in with one INSERT of up to
 * EVENTS_PER_INSERT rows (a vote that approves a request writes four): one
 * kept statement per row count, its text made the first time it is needed.
 */
#define EVENTS_PER_INSERT 4
#define EVENT_COLUMNS 10

StaticAssertDecl(EVENTS_PER_INSERT * EVENT_COLUMNS <= APPROVAL_PLAN_MAX_ARGS,
				 "the multi-row INSERT of events has too many parameters");

static ApprovalPlan insert_events_plans[EVENTS_PER_INSERT];

static ApprovalPlan *
insert_events_plan(int rows)
{
	static const Oid types[EVENT_COLUMNS] =
	{INT8OID, INT8OID, TIMESTAMPTZOID, TEXTOID, TEXTOID, JSONBOID, BYTEAOID,
	TEXTOID, TEXTOID, TEXTARRAYOID};
	ApprovalPlan *p = &insert_events_plans[rows - 1];

	if (p->sql == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
		StringInfoData buf;

		initStringInfo(&buf);
		appendStringInfoString(&buf, "INSERT INTO approval.event (seq, request_id, at, kind, actor, data, hash, state, stage, targets) VALUES ");
		for (int r = 0; r < rows; r++)
		{
			appendStringInfoString(&buf, r > 0 ? ", (" : "(");
			for (int c = 0; c < EVENT_COLUMNS; c++)
			{
				appendStringInfo(&buf, "%s$%d", c > 0 ? ", " : "", r * EVENT_COLUMNS + c + 1);
				p->argtypes[r * EVENT_COLUMNS + c] = types[c];
			}
			appendStringInfoChar(&buf, ')');
		}
		MemoryContextSwitchTo(old);
		p->nargs = rows * EVENT_COLUMNS;
		p->sql = buf.data;
	}
	return p;
}

/* ---------- hashing ---------- */

void
approval_hash_int64(pg_cryptohash_ctx *ctx, int64 v)
{
	uint8		buf[8];

	for (int i = 7; i >= 0; i--)
	{
		buf[i] = (uint8) (v & 0xff);
		v >>= 8;
	}
	if (pg_cryptohash_update(ctx, buf, 8) < 0)
		elog(ERROR, "sha256 update failed");
}

bytea *
approval_event_hash(const bytea *prev, int64 seq, int64 request_id, TimestampTz at,
		   const char *kind, const char *actor, Jsonb *data)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	bytea	   *result = palloc(VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	char	   *datatext = JsonbToCString(NULL, &data->root, VARSIZE(data));
	static const uint8 nul = 0;

	if (ctx == NULL || pg_cryptohash_init(ctx) < 0)
		elog(ERROR, "could not initialize sha256");
	if (prev != NULL)
		pg_cryptohash_update(ctx, (const uint8 *) VARDATA_ANY(prev), VARSIZE_ANY_EXHDR(prev));
	approval_hash_int64(ctx, seq);
	approval_hash_int64(ctx, request_id);
	approval_hash_int64(ctx, (int64) at);
	pg_cryptohash_update(ctx, (const uint8 *) kind, strlen(kind));
	pg_cryptohash_update(ctx, &nul, 1);
	if (actor != NULL)
		pg_cryptohash_update(ctx, (const uint8 *) actor, strlen(actor));
	pg_cryptohash_update(ctx, &nul, 1);
	pg_cryptohash_update(ctx, (const uint8 *) datatext, strlen(datatext));
#if PG_VERSION_NUM >= 150000
	if (pg_cryptohash_final(ctx, (uint8 *) VARDATA(result), PG_SHA256_DIGEST_LENGTH) < 0)
#else
	if (pg_cryptohash_final(ctx, (uint8 *) VARDATA(result)) < 0)
#endif
		elog(ERROR, "could not finalize sha256");
	pg_cryptohash_free(ctx);
	pfree(datatext);
	SET_VARSIZE(result, VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	return result;
}

/* ---------- the buffer ---------- */

/*
 * Start collecting the events of one operation.  prev_hash is the head of the
 * request's chain (approval.request.last_hash, read under the row lock), or
 * NULL for a new request.
 */
void
approval_events_init(ApprovalEvents *ev, int64 request_id, const char *workflow,
					 bytea *prev_hash)
{
	memset(ev, 0, sizeof(*ev));
	ev->request_id = request_id;
	ev->workflow = workflow;
	ev->prev_hash = prev_hash;
}

/*
 * Add one event.  "state" is the request's state once this event has
 * happened, "stage" and "targets" (a List of C strings) what a listener
 * needs to tell the next approvers; they go to NOTIFY only.
 */
void
approval_event_add(ApprovalEvents *ev, const char *kind, const char *actor,
				   Jsonb *data, const char *state, const char *stage, List *targets)
{
	PendingEvent *pe = palloc0(sizeof(PendingEvent));

	pe->kind = kind;
	pe->actor = actor;
	pe->data = data ? data : approval_jsonb_empty();
	pe->state = state;
	pe->stage = stage;
	pe->targets = targets;
	ev->pending = lappend(ev->pending, pe);
}

/*
 * Number the collected events and chain them; returns the new head of the
 * chain, which the caller stores in approval.request.last_hash.
 */
bytea *
approval_events_seal(ApprovalEvents *ev)
{
	ListCell   *lc;

	foreach(lc, ev->pending)
	{
		PendingEvent *pe = lfirst(lc);

		if (pe->hash != NULL)
			continue;
		pe->seq = approval_event_next_seq();
		pe->at = GetCurrentTransactionStartTimestamp();
		pe->hash = approval_event_hash(ev->prev_hash, pe->seq, ev->request_id, pe->at,
							  pe->kind, pe->actor, pe->data);
		ev->prev_hash = pe->hash;
	}
	return ev->prev_hash;
}

/*
 * Write the sealed events, then queue their notifications: a handful of
 * rows, in one kept multi-row INSERT (no arrays to build and unpack).
 */
void
approval_events_write(ApprovalEvents *ev)
{
	ListCell   *lc;

	if (ev->pending == NIL)
		return;
	approval_events_seal(ev);
	for (int first = 0; first < list_length(ev->pending); first += EVENTS_PER_INSERT)
	{
		int			rows = Min(EVENTS_PER_INSERT, list_length(ev->pending) - first);
		Datum		args[EVENTS_PER_INSERT * EVENT_COLUMNS];
		char		nulls[EVENTS_PER_INSERT * EVENT_COLUMNS];

		memset(nulls, ' ', sizeof(nulls));
		for (int r = 0; r < rows; r++)
		{
			PendingEvent *pe = list_nth(ev->pending, first + r);
			Datum	   *a = &args[r * EVENT_COLUMNS];

			a[0] = Int64GetDatum(pe->seq);
			a[1] = Int64GetDatum(ev->request_id);
			nulls[r * EVENT_COLUMNS + 1] = ev->request_id == 0 ? 'n' : ' ';
			a[2] = TimestampTzGetDatum(pe->at);
			a[3] = CStringGetTextDatum(pe->kind);
			a[4] = pe->actor ? CStringGetTextDatum(pe->actor) : (Datum) 0;
			nulls[r * EVENT_COLUMNS + 4] = pe->actor ? ' ' : 'n';
			a[5] = JsonbPGetDatum(pe->data);
			a[6] = PointerGetDatum(pe->hash);
			a[7] = pe->state ? CStringGetTextDatum(pe->state) : (Datum) 0;
			nulls[r * EVENT_COLUMNS + 7] = pe->state ? ' ' : 'n';
			a[8] = pe->stage ? CStringGetTextDatum(pe->stage) : (Datum) 0;
			nulls[r * EVENT_COLUMNS + 8] = pe->stage ? ' ' : 'n';
			a[9] = pe->targets ? PointerGetDatum(approval_text_array(pe->targets)) : (Datum) 0;
			nulls[r * EVENT_COLUMNS + 9] = pe->targets ? ' ' : 'n';
		}
		approval_exec(insert_events_plan(rows), args, nulls, false, 0);
	}

	if (approval_notify == APPROVAL_NOTIFY_RELAY && approval_relay_available())
		approval_event_relay();
	else if (approval_notify != APPROVAL_NOTIFY_OFF)
		foreach(lc, ev->pending)
		{
			PendingEvent *pe = lfirst(lc);
			ApprovalNote n = {0};

			n.seq = pe->seq;
			n.kind = pe->kind;
			n.request = ev->request_id;
			n.workflow = ev->workflow;
			n.state = pe->state;
			n.stage = pe->stage;
			n.actor = pe->actor;
			n.targets = pe->targets;
			n.at = pe->at;
			approval_note_send(&n);
		}
	ev->pending = NIL;
}

/* ---------- events without a request ---------- */

/*
 * An admin's act that concerns no request (approval.delegate_for()) is an
 * event with request_id NULL.  Those events chain among themselves, hashed
 * with request_id 0, each after the latest of them: a one-row table that
 * only the extension's owner may read serializes their writers as a
 * request's row lock does (no user can take or block that lock), and the
 * latest is read, after the lock, with the newest snapshot.
 */
static ApprovalPlan lock_alone_plan = {
	"SELECT 1 FROM approval.event_chain_lock FOR UPDATE",
	0, {InvalidOid}
};

static ApprovalPlan last_alone_plan = {
	"SELECT hash FROM approval.event WHERE request_id IS NULL ORDER BY seq DESC LIMIT 1",
	0, {InvalidOid}
};

void
approval_event_alone(const char *kind, const char *actor, Jsonb *data, List *targets)
{
	ApprovalEvents ev;
	bytea	   *prev = NULL;
	bool		isnull;

	approval_exec(&lock_alone_plan, NULL, NULL, false, 0);
	PushActiveSnapshot(GetLatestSnapshot());
	if (approval_exec(&last_alone_plan, NULL, NULL, true, 1) == 1)
		prev = DatumGetByteaP(approval_copy_datum(0, 1, &isnull));
	PopActiveSnapshot();
	approval_events_init(&ev, 0, NULL, prev);
	approval_event_add(&ev, kind, actor, data, NULL, NULL, targets);
	approval_events_write(&ev);
}

/* ---------- append-only ---------- */

PG_FUNCTION_INFO_V1(approval_event_is_append_only);
Datum
approval_event_is_append_only(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *what;
	const char *rel;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("approval.event_is_append_only() must be called as a trigger")));

	rel = RelationGetRelationName(trigdata->tg_relation);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		what = "UPDATE";
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
	{
		bool		isnull;
		Datum		rid;

		what = "DELETE";
		/* purge.c removing a purged request's events */
		if (strcmp(rel, "event") == 0 && TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		{
			rid = heap_getattr(trigdata->tg_trigtuple, 2,
							   RelationGetDescr(trigdata->tg_relation), &isnull);
			if (!isnull && approval_purge_allows(DatumGetInt64(rid)))
				return PointerGetDatum(trigdata->tg_trigtuple);
		}
	}
	else
		what = "TRUNCATE";

	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("approval.%s is append-only: %s is not allowed", rel, what),
			 errdetail("The event log, its checkpoints and the tombstones of purged requests are the audit trail; rows are never changed or removed."),
			 errhint("Read it with approval.events_after(), check it with approval.verify_audit(), remove closed requests with approval.purge().")));
	PG_RETURN_NULL();
}

/* Whether two hashes (either may be NULL) are the same */
bool
approval_same_hash(const bytea *a, const bytea *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0;
}
