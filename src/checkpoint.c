/*-------------------------------------------------------------------------
 *
 * checkpoint.c
 *	  Checkpoints: a hash chain over the whole event log, in cursor order.
 *
 * Each request's events are chained (event.c), but a chain per request
 * cannot tell that a whole request is gone, and whoever can write the
 * tables can recompute it after an edit.  A checkpoint covers every event
 * with a seq in (upto of the checkpoint before, upto]:
 *
 *	 digest_k = sha256(digest_{k-1} || k || upto_k ||
 *					   for each event, in seq order: seq || request_id || hash)
 *
 * (digest_0 is empty, integers big-endian, a request_id of 0 for an event
 * of no request).  upto_k is below the horizon of events_after() (horizon.c)
 * when the checkpoint is made, so no event can later appear in its range:
 * the digest is final.  A purge (purge.c) keeps the seq and hash of each
 * event it removes in the request's tombstone, so the digests still
 * verify after it.
 *
 * Checkpoints are made off the write path: by the background worker every
 * approval.checkpoint_interval, or by approval.checkpoint().  Decisions do
 * not wait for them.  Whoever keeps a digest outside the database (a
 * witness) can later ask verify_audit(since_checkpoint => digest) whether
 * the log still has it; recomputing from the first event, it does not
 * trust the stored digests.
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

int			approval_checkpoint_interval = 60000;

/* every event with a seq in ($1, $2], removed ones from their tombstones */
static ApprovalPlan contributions_plan = {
	"SELECT c.seq, c.request_id, c.hash FROM ("
	"  SELECT e.seq, e.request_id, e.hash FROM approval.event e"
	"   WHERE e.seq OPERATOR(pg_catalog.>) $1 AND e.seq OPERATOR(pg_catalog.<=) $2"
	"  UNION ALL"
	"  SELECT x.seq, p.request_id, x.hash FROM approval.purged p,"
	"         ROWS FROM (pg_catalog.unnest(p.event_seqs), pg_catalog.unnest(p.event_hashes)) AS x(seq, hash)"
	"   WHERE p.last_seq OPERATOR(pg_catalog.>) $1 AND p.first_seq OPERATOR(pg_catalog.<=) $2"
	"     AND x.seq OPERATOR(pg_catalog.>) $1 AND x.seq OPERATOR(pg_catalog.<=) $2) c"
	" ORDER BY c.seq",
	2, {INT8OID, INT8OID}
};

static ApprovalPlan lock_plan = {
	"LOCK TABLE approval.checkpoints IN SHARE ROW EXCLUSIVE MODE", 0, {InvalidOid}
};

static ApprovalPlan last_plan = {
	"SELECT k, upto_seq, digest FROM approval.checkpoints ORDER BY k DESC LIMIT 1",
	0, {InvalidOid}
};

static ApprovalPlan insert_plan = {
	"INSERT INTO approval.checkpoints (k, upto_seq, events, digest, at)"
	" VALUES ($1, $2, $3, $4, pg_catalog.now()) RETURNING *",
	4, {INT8OID, INT8OID, INT8OID, BYTEAOID}
};

static ApprovalPlan by_k_plan = {
	"SELECT * FROM approval.checkpoints WHERE k OPERATOR(pg_catalog.=) $1",
	1, {INT8OID}
};

static ApprovalPlan all_plan = {
	"SELECT k, upto_seq, digest FROM approval.checkpoints ORDER BY k", 0, {InvalidOid}
};

static ApprovalPlan max_upto_plan = {
	"SELECT pg_catalog.max(upto_seq) FROM approval.checkpoints", 0, {InvalidOid}
};

/* ---------- the digest ---------- */

typedef struct Digest
{
	pg_cryptohash_ctx *ctx;
	int64		events;
	int64		first_seq;
	int64		damaged_seq;	/* the first seq without a hash (a damaged tombstone), or 0 */
} Digest;

static void
digest_begin(Digest *d, const bytea *prev, int64 k, int64 upto)
{
	d->ctx = pg_cryptohash_create(PG_SHA256);
	d->events = 0;
	d->first_seq = 0;
	d->damaged_seq = 0;
	if (d->ctx == NULL || pg_cryptohash_init(d->ctx) < 0)
		elog(ERROR, "could not initialize sha256");
	if (prev != NULL)
		pg_cryptohash_update(d->ctx, (const uint8 *) VARDATA_ANY(prev), VARSIZE_ANY_EXHDR(prev));
	approval_hash_int64(d->ctx, k);
	approval_hash_int64(d->ctx, upto);
}

static void
digest_add(Digest *d, int64 seq, int64 request_id, const bytea *hash)
{
	if (d->events++ == 0)
		d->first_seq = seq;
	approval_hash_int64(d->ctx, seq);
	approval_hash_int64(d->ctx, request_id);
	/* no hash: no event was written so, and the digest cannot match */
	if (hash == NULL)
	{
		if (d->damaged_seq == 0)
			d->damaged_seq = seq;
		return;
	}
	pg_cryptohash_update(d->ctx, (const uint8 *) VARDATA_ANY(hash), VARSIZE_ANY_EXHDR(hash));
}

static bytea *
digest_end(Digest *d)
{
	bytea	   *result = palloc(VARHDRSZ + PG_SHA256_DIGEST_LENGTH);

#if PG_VERSION_NUM >= 150000
	if (pg_cryptohash_final(d->ctx, (uint8 *) VARDATA(result), PG_SHA256_DIGEST_LENGTH) < 0)
#else
	if (pg_cryptohash_final(d->ctx, (uint8 *) VARDATA(result)) < 0)
#endif
		elog(ERROR, "could not finalize sha256");
	pg_cryptohash_free(d->ctx);
	d->ctx = NULL;
	SET_VARSIZE(result, VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	return result;
}

/* Add the events of the current stream row and on, up to seq "upto" */
static void
digest_stream(ApprovalStream *s, int64 upto, Digest *a, Digest *b)
{
	while (approval_stream_peek(s))
	{
		bool		isnull;
		int64		seq = DatumGetInt64(approval_stream_get(s, 1, &isnull));
		Datum		rid = approval_stream_get(s, 2, &isnull);
		int64		request_id = isnull ? 0 : DatumGetInt64(rid);
		Datum		hd = approval_stream_get(s, 3, &isnull);
		/* NULL only in a tombstone whose arrays were forged unequal */
		bytea	   *hash = isnull ? NULL : DatumGetByteaPP(hd);

		if (seq > upto)
			break;
		digest_add(a, seq, request_id, hash);
		if (b != NULL)
			digest_add(b, seq, request_id, hash);
		approval_stream_next(s);
	}
}

/* ---------- making one ---------- */

/*
 * Make the next checkpoint, over the events below the horizon that no
 * checkpoint covers yet (none when there are no such events).  SPI is
 * connected; returns 1 when the new or else the latest checkpoint is the
 * result of the last statement, 0 when there is no checkpoint at all.
 */
static int
make_checkpoint(void)
{
	Snapshot	snap;
	int64		horizon;
	int64		k = 1;
	int64		lo = 0;
	bytea	   *prev = NULL;
	Digest		d = {0};
	Datum		args[4];

	/* one maker at a time; readers are not blocked */
	approval_exec(&lock_plan, NULL, NULL, false, 0);
	horizon = approval_event_horizon(&snap, NULL);
	PushActiveSnapshot(snap);
	if (approval_exec(&last_plan, NULL, NULL, true, 1) == 1)
	{
		bool		isnull;

		k = approval_getint64(0, 1) + 1;
		lo = approval_getint64(0, 2);
		prev = DatumGetByteaPCopy(approval_getdatum(0, 3, &isnull));
	}
	if (horizon - 1 > lo)
	{
		ApprovalStream s;

		args[0] = Int64GetDatum(lo);
		args[1] = Int64GetDatum(horizon - 1);
		digest_begin(&d, prev, k, horizon - 1);
		approval_stream_open(&s, &contributions_plan, args, NULL);
		digest_stream(&s, horizon - 1, &d, NULL);
		approval_stream_close(&s);
	}

	if (d.events == 0)
	{
		int			n = 0;

		if (d.ctx != NULL)
			pg_cryptohash_free(d.ctx);
		/* the latest, read with the snapshot that found it (not the caller's) */
		if (k > 1)
		{
			args[0] = Int64GetDatum(k - 1);
			n = approval_exec(&by_k_plan, args, NULL, true, 1);
		}
		PopActiveSnapshot();
		UnregisterSnapshot(snap);
		return n;
	}
	PopActiveSnapshot();
	UnregisterSnapshot(snap);
	if (d.damaged_seq != 0)
	{
		pg_cryptohash_free(d.ctx);
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("cannot make a checkpoint: the tombstone of seq " INT64_FORMAT " has no hash",
						d.damaged_seq),
				 errdetail("approval.purged was written by other means than approval.purge()."),
				 errhint("approval.verify_audit() reports the checkpoints it breaks.")));
	}
	args[0] = Int64GetDatum(k);
	args[1] = Int64GetDatum(horizon - 1);
	args[2] = Int64GetDatum(d.events);
	args[3] = PointerGetDatum(digest_end(&d));
	return approval_exec(&insert_plan, args, NULL, false, 0);
}

/*
 * approval.checkpoint(): make a checkpoint now; returns it, or the latest
 * when no event came since (NULL when there is none at all).
 */
PG_FUNCTION_INFO_V1(approval_checkpoint);
Datum
approval_checkpoint(PG_FUNCTION_ARGS)
{
	ApprovalActor actor;
	TupleDesc	desc;
	MemoryContext upper = CurrentMemoryContext;
	Datum		values[5];
	bool		nulls[5];
	HeapTuple	tuple;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE || desc->natts != 5)
		elog(ERROR, "approval.checkpoint() must return a row of approval.checkpoints");
	approval_spi_connect();
	approval_get_actor(&actor);
	if (!actor.is_admin)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only an approval_admin may make a checkpoint"),
				 errhint("The background worker makes one every approval.checkpoint_interval.")));
	if (make_checkpoint() == 0)
	{
		approval_spi_finish();
		PG_RETURN_NULL();
	}
	for (int i = 0; i < 5; i++)
		values[i] = approval_getdatum(0, i + 1, &nulls[i]);
	MemoryContextSwitchTo(upper);
	tuple = heap_form_tuple(BlessTupleDesc(desc), values, nulls);
	approval_spi_finish();
	PG_RETURN_DATUM(HeapTupleGetDatum(tuple));
}

/*
 * From the worker's round (in its transaction, connected to SPI): make a
 * checkpoint in a subtransaction, so that a failure is a warning and does
 * not undo the round's tick.
 */
void
approval_checkpoint_from_worker(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	Oid			nsp = get_namespace_oid("approval", true);

	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("checkpoints", nsp)))
		return;					/* a version before checkpoints */

	BeginInternalSubTransaction(NULL);
	PG_TRY();
	{
		approval_spi_connect();
		(void) make_checkpoint();
		approval_spi_finish();
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("approval worker: could not make a checkpoint: %s", edata->message),
				 errhint("The worker tries again after approval.checkpoint_interval.")));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
}

/* ---------- verifying them ---------- */

static void
emit(Tuplestorestate *ts, TupleDesc desc, int64 events, bool ok, int64 first_seq,
	 const char *problem, int64 k)
{
	Datum		values[6];
	bool		nulls[6] = {true, false, false, true, false, true};

	values[0] = (Datum) 0;
	values[1] = Int32GetDatum((int32) Min(events, PG_INT32_MAX));
	values[2] = BoolGetDatum(ok);
	values[3] = Int64GetDatum(first_seq);
	nulls[3] = (first_seq == 0);
	values[4] = CStringGetTextDatum(problem);
	values[5] = Int64GetDatum(k);
	nulls[5] = (k == 0);
	tuplestore_putvalues(ts, desc, values, nulls);
}

/*
 * verify_audit()'s rows about the whole log (request_id NULL): each
 * checkpoint whose digest the log no longer gives (one changed range is one
 * such row: each digest is recomputed from the one stored before it), one
 * row for all of them, and, given a witness's digest, whether the log
 * recomputed from its first event still reaches it.  SPI is connected.
 */
void
approval_checkpoints_verify(Tuplestorestate *ts, TupleDesc desc, const bytea *witness)
{
	ApprovalStream cps;
	ApprovalStream evs;
	Datum		args[2];
	bool		isnull;
	Datum		d;
	int64		max_upto;
	int64		expect_k = 1;
	int64		lo = 0;
	int64		total = 0;
	int64		last_k = 0;
	int			bad = 0;
	int64		witness_k = 0;
	int64		witness_upto = 0;
	int64		witness_events = 0;
	bytea	   *pure_prev = NULL;
	bytea	   *stored_prev = NULL;
	MemoryContext cxt = CurrentMemoryContext;
	MemoryContext per_checkpoint = AllocSetContextCreate(cxt, "verify_audit checkpoint",
														 ALLOCSET_SMALL_SIZES);

	approval_exec(&max_upto_plan, NULL, NULL, true, 1);
	d = approval_getdatum(0, 1, &isnull);
	max_upto = isnull ? 0 : DatumGetInt64(d);

	args[0] = Int64GetDatum(0);
	args[1] = Int64GetDatum(max_upto);
	approval_stream_open(&cps, &all_plan, NULL, NULL);
	approval_stream_open(&evs, &contributions_plan, args, NULL);
	while (approval_stream_peek(&cps))
	{
		int64		k = DatumGetInt64(approval_stream_get(&cps, 1, &isnull));
		int64		upto = DatumGetInt64(approval_stream_get(&cps, 2, &isnull));
		bytea	   *stored = DatumGetByteaPP(approval_stream_get(&cps, 3, &isnull));
		Digest		pure;
		Digest		local;
		bytea	   *pure_d;
		bytea	   *local_d;
		MemoryContext old = MemoryContextSwitchTo(per_checkpoint);

		if (k != expect_k)
		{
			emit(ts, desc, 0, false, 0,
				 psprintf("checkpoints " INT64_FORMAT " to " INT64_FORMAT " are missing",
						  expect_k, k - 1), expect_k);
			bad++;
		}
		digest_begin(&pure, pure_prev, k, upto);
		digest_begin(&local, stored_prev, k, upto);
		digest_stream(&evs, upto, &pure, &local);
		pure_d = digest_end(&pure);
		local_d = digest_end(&local);
		if (!approval_same_hash(local_d, stored))
		{
			emit(ts, desc, local.events, false, local.first_seq,
				 psprintf("checkpoint " INT64_FORMAT " (seqs " INT64_FORMAT " to " INT64_FORMAT
						  "): the log no longer gives its digest: events in its range were changed, added or removed",
						  k, lo + 1, upto), k);
			bad++;
		}
		total += pure.events;
		if (witness != NULL && witness_k == 0 && approval_same_hash(pure_d, witness))
		{
			witness_k = k;
			witness_upto = upto;
			witness_events = total;
		}
		/* only the digests before go on to the next checkpoint */
		MemoryContextSwitchTo(cxt);
		if (pure_prev != NULL)
			pfree(pure_prev);
		if (stored_prev != NULL)
			pfree(stored_prev);
		pure_prev = DatumGetByteaPCopy(PointerGetDatum(pure_d));
		stored_prev = DatumGetByteaPCopy(PointerGetDatum(stored));
		MemoryContextReset(per_checkpoint);
		lo = upto;
		last_k = k;
		expect_k = k + 1;
		MemoryContextSwitchTo(old);
		approval_stream_next(&cps);
	}
	MemoryContextDelete(per_checkpoint);
	approval_stream_close(&evs);
	approval_stream_close(&cps);

	if (last_k == 0)
	{
		if (witness != NULL)
			emit(ts, desc, 0, false, 0,
				 "there is no checkpoint: the log cannot have the digest kept", 0);
		return;
	}
	if (bad == 0)
		emit(ts, desc, total, true, 0,
			 psprintf("the log up to seq " INT64_FORMAT " gives the digests of its " INT64_FORMAT " checkpoints",
					  lo, last_k), last_k);
	else
		emit(ts, desc, total, false, 0,
			 psprintf("%d of the " INT64_FORMAT " checkpoints do not match the log", bad, last_k),
			 last_k);

	if (witness == NULL)
		return;
	if (witness_k != 0)
		emit(ts, desc, witness_events, true, 0,
			 psprintf("the digest kept is that of checkpoint " INT64_FORMAT
					  ": the log up to seq " INT64_FORMAT " is as it was then",
					  witness_k, witness_upto), witness_k);
	else
		emit(ts, desc, total, false, 0,
			 "no checkpoint of the log as it is now has the digest kept: "
			 "events up to it were changed or removed, and the checkpoints rewritten "
			 "(or the digest is not of this database)", 0);
}
