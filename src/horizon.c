/*-------------------------------------------------------------------------
 *
 * horizon.c
 *	  The gapless cursor of the event log (DESIGN §7): which events every
 *	  writer has finished with, and approval.events_after(), which returns
 *	  only those.
 *
 * An event's seq is taken when it is written, not when its transaction
 * commits: a transaction may hold seqs 112-113 while another writes 114-117
 * and commits first.  A listener that acked 117 would never be given 112.
 * So events_after() returns only events below the horizon: the lowest seq
 * held by a transaction that is still running.  Everything below it belongs
 * to transactions that have ended, and a later event can never appear below
 * a cursor a listener got from events_after().
 *
 * Preloaded, the library keeps in shared memory the highest seq taken so
 * far (max_seq) and one slot per backend: a lower bound of the first seq
 * its transaction took, or 0.  No lock is taken:
 *
 *	 writer, first event of a transaction:
 *		slot := max_seq + 1   (a lower bound: seqs only grow)
 *		barrier; seq := nextval(event_seq); slot := seq; max_seq := max(max_seq, seq)
 *	 writer, later events:  seq := nextval(event_seq); max_seq := max(...)
 *	 writer, at commit or abort (once its end is visible to new snapshots):
 *		slot := 0
 *	 reader:
 *		L := max_seq; barrier; horizon := min(L + 1, every slot but 0);
 *		then take a snapshot
 *
 * A first seq s at or below L was taken before the reader read L, so its
 * writer had filled its slot (with s or less) before: the reader either sees
 * the slot, and the horizon is at or below s, or finds it empty, and the
 * writer has ended before the snapshot is taken, which then sees what it
 * committed.  A seq above L is above the horizon.  Later seqs of a writer are
 * above its first.  So every event below the horizon is visible to the
 * snapshot, and every event the snapshot does not see is at or above the
 * horizon.  (After a restart max_seq is 0 until the first event; a reader
 * then reads the sequence itself.)  The reader uses that fresh snapshot
 * whatever its own isolation level, so a REPEATABLE READ listener is not
 * left behind; under SERIALIZABLE its reads of the log are not part of the
 * transaction's predicate locks.
 *
 * Loaded without shared_preload_libraries, there are no shared slots: a
 * writer then holds a lock of its own for the rest of its transaction, and
 * a reader reads the sequence, then waits for the writers that hold that
 * lock (as CREATE INDEX CONCURRENTLY waits, without blocking new ones), and
 * returns events up to what it read.
 *
 * A transaction that wrote events cannot be prepared (two-phase commit): it
 * would hold the horizon back until someone committed it, possibly never.
 * On a standby the primary's writers are unknown, so events_after() refuses
 * to run there.
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "postmaster/autovacuum.h"
#include "replication/walsender.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

typedef struct HorizonShared
{
	pg_atomic_uint64 max_seq;	/* the highest seq taken since start, or 0 */
	int			nslots;
	pg_atomic_uint64 first_seq[FLEXIBLE_ARRAY_MEMBER];	/* by process number */
} HorizonShared;

#if PG_VERSION_NUM >= 170000
#define my_proc_number() MyProcNumber
#else
#define my_proc_number() (MyProc->pgprocno)
#endif

/* NULL unless the library was preloaded */
static HorizonShared *horizon = NULL;

/* the first seq the current top-level transaction took, or 0 */
static int64 xact_first_seq = 0;
/* whether its events are to be relayed by the worker (approval.notify = relay) */
static bool xact_relay = false;
static bool exit_callback_set = false;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static int
horizon_nslots(void)
{
#if PG_VERSION_NUM >= 150000
	return MaxBackends + NUM_AUXILIARY_PROCS;
#else
	/* MaxBackends is not known yet in _PG_init */
	return MaxConnections + autovacuum_max_workers + 1 + max_worker_processes +
		max_wal_senders + NUM_AUXILIARY_PROCS;
#endif
}

static Size
horizon_shmem_size(void)
{
	return add_size(offsetof(HorizonShared, first_seq),
					mul_size(horizon_nslots(), sizeof(pg_atomic_uint64)));
}

#if PG_VERSION_NUM >= 150000
static void
horizon_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(horizon_shmem_size());
}
#endif

static void
horizon_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	horizon = ShmemInitStruct("approval event horizon", horizon_shmem_size(), &found);
	if (!found)
	{
		pg_atomic_init_u64(&horizon->max_seq, 0);
		horizon->nslots = horizon_nslots();
		for (int i = 0; i < horizon->nslots; i++)
			pg_atomic_init_u64(&horizon->first_seq[i], 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* ---- the writer ---- */

/* The lock a writer holds when there are no shared slots */
static void
fallback_locktag(LOCKTAG *tag)
{
	/* an object lock on the sequence, which nothing else takes */
	SET_LOCKTAG_OBJECT(*tag, MyDatabaseId, RelationRelationId,
					   approval_relid("event_seq"), 0);
}

static void
leave_horizon(void)
{
	if (horizon != NULL && MyProc != NULL)
		pg_atomic_write_u64(&horizon->first_seq[my_proc_number()], 0);
	xact_first_seq = 0;
	xact_relay = false;
}

/*
 * A backend that leaves in a transaction that wrote events never holds the
 * horizon back.  (This runs before the transaction is aborted, so the slot
 * is emptied before its end is visible; harmless, as it can only abort.)
 * A relay waiting for it goes on.
 */
static void
horizon_at_exit(int code, Datum arg)
{
	bool		writing = xact_first_seq != 0;

	leave_horizon();
	if (writing)
		approval_relay_committed(false);
}

/* max_seq := max(max_seq, seq) */
static void
raise_max_seq(int64 seq)
{
	uint64		cur = pg_atomic_read_u64(&horizon->max_seq);

	while (cur < (uint64) seq &&
		   !pg_atomic_compare_exchange_u64(&horizon->max_seq, &cur, (uint64) seq))
		;
}

/*
 * The seq of a new event of the current transaction.  The first one enters
 * the transaction into the horizon.
 */
int64
approval_event_next_seq(void)
{
	Oid			seqid = approval_relid("event_seq");
	int64		seq;

	if (xact_first_seq != 0)
	{
		seq = nextval_internal(seqid, false);
		if (horizon != NULL)
			raise_max_seq(seq);
		return seq;
	}

	if (!exit_callback_set)
	{
		before_shmem_exit(horizon_at_exit, (Datum) 0);
		exit_callback_set = true;
	}

	if (horizon != NULL)
	{
		pg_atomic_uint64 *slot;

		if (my_proc_number() >= horizon->nslots)
			elog(ERROR, "approval: process number %d has no event horizon slot",
				 my_proc_number());
		slot = &horizon->first_seq[my_proc_number()];
		/* in the horizon from here on: an error in nextval empties the slot */
		xact_first_seq = (int64) pg_atomic_read_u64(&horizon->max_seq) + 1;
		pg_atomic_write_u64(slot, (uint64) xact_first_seq);
		pg_memory_barrier();
		seq = nextval_internal(seqid, false);
		pg_atomic_write_u64(slot, (uint64) seq);
		raise_max_seq(seq);
	}
	else
	{
		LOCKTAG		tag;
		ResourceOwner owner = CurrentResourceOwner;

		/* held to the end of the transaction, whatever subtransaction asks */
		fallback_locktag(&tag);
		CurrentResourceOwner = TopTransactionResourceOwner;
		(void) LockAcquire(&tag, RowExclusiveLock, false, false);
		CurrentResourceOwner = owner;
		seq = nextval_internal(seqid, false);
	}
	xact_first_seq = seq;
	return seq;
}

/* The events of the current transaction are to be relayed by the worker */
void
approval_event_relay(void)
{
	xact_relay = true;
}

static void
horizon_xact_callback(XactEvent event, void *arg)
{
	int64		first = xact_first_seq;
	bool		relay = xact_relay;

	if (first == 0)
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot PREPARE a transaction that wrote approval events"),
					 errdetail("Listeners could not follow the event log past its events until it was committed or rolled back."),
					 errhint("Make the approval calls in a transaction of their own.")));
			break;
		case XACT_EVENT_COMMIT:
			/* (after ProcArrayEndTransaction: new snapshots see the events) */
			leave_horizon();
			approval_relay_committed(relay);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			leave_horizon();
			/* a waiting relay may go on past what this transaction held */
			approval_relay_committed(false);
			break;
		default:
			break;
	}
}

/*
 * From _PG_init.  Preloaded (in the postmaster), ask for the shared slots;
 * in every case, end each transaction's part in the horizon at its end.
 */
void
approval_horizon_init(void)
{
	if (process_shared_preload_libraries_in_progress)
	{
#if PG_VERSION_NUM >= 150000
		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = horizon_shmem_request;
#else
		RequestAddinShmemSpace(horizon_shmem_size());
#endif
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = horizon_shmem_startup;
	}
	RegisterXactCallback(horizon_xact_callback, NULL);
}

/* ---- the reader ---- */

/* The sequence's last value (0 before the first), read as its owner */
static int64
sequence_last_value(Oid seqid)
{
	Oid			save_userid;
	int			save_sec_context;
	HeapTuple	tup;
	Oid			owner;
	LOCAL_FCINFO(fcinfo, 1);
	Datum		d;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(seqid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", seqid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = ObjectIdGetDatum(seqid);
	fcinfo->args[0].isnull = false;
	d = pg_sequence_last_value(fcinfo);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return fcinfo->isnull ? 0 : DatumGetInt64(d);
}

/*
 * The horizon: every event with a lower seq belongs to a transaction that
 * has ended, and *snap (registered; the caller unregisters it) sees all of
 * those that committed.  *held (if not NULL) says whether a transaction
 * still writing events holds it back.
 */
int64
approval_event_horizon(Snapshot *snap, bool *held)
{
	int64		h;
	bool		by_writer = false;

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("approval events cannot be followed on a standby"),
				 errdetail("A standby cannot tell which of the primary's transactions are still writing events, so a cursor could pass some of them."),
				 errhint("Follow the event log on the primary.")));

	if (horizon != NULL)
	{
		int64		last = (int64) pg_atomic_read_u64(&horizon->max_seq);

		if (last == 0)
		{
			/* no event since the server started: ask the sequence */
			last = sequence_last_value(approval_relid("event_seq"));
			raise_max_seq(last);
		}
		pg_memory_barrier();
		h = last + 1;
		for (int i = 0; i < horizon->nslots; i++)
		{
			int64		v = (int64) pg_atomic_read_u64(&horizon->first_seq[i]);

			if (v != 0 && v < h)
			{
				h = v;
				by_writer = true;
			}
		}
		*snap = RegisterSnapshot(GetLatestSnapshot());
	}
	else
	{
		LOCKTAG		tag;

		h = sequence_last_value(approval_relid("event_seq")) + 1;
		fallback_locktag(&tag);
		WaitForLockers(tag, ShareLock, false);
		if (xact_first_seq != 0 && xact_first_seq < h)
			h = xact_first_seq;
		*snap = RegisterSnapshot(GetLatestSnapshot());
	}
	if (held != NULL)
		*held = by_writer;
	return h;
}

/*
 * approval.events_after(seq, max): the events after the cursor "seq" that
 * every writer has finished with, in seq order, at most "max" of them (all
 * when NULL), as the caller may see them (row-level security).
 */
static ApprovalPlan events_after_plan = {
	"SELECT e.* FROM approval.event e"
	" WHERE e.seq OPERATOR(pg_catalog.>) $1 AND e.seq OPERATOR(pg_catalog.<) $2"
	" ORDER BY e.seq LIMIT $3",
	3, {INT8OID, INT8OID, INT8OID}
};

PG_FUNCTION_INFO_V1(approval_events_after);
Datum
approval_events_after(PG_FUNCTION_ARGS)
{
	Tuplestorestate *ts;
	TupleDesc	desc;
	Snapshot	snap;
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	Portal		portal;

	ts = approval_srf_init(fcinfo, &desc);
	if (PG_ARGISNULL(0))
		return (Datum) 0;		/* "seq > NULL": nothing */
	if (!PG_ARGISNULL(1) && PG_GETARG_INT32(1) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max must not be negative")));

	values[0] = Int64GetDatum(PG_GETARG_INT64(0));
	values[2] = Int64GetDatum(PG_ARGISNULL(1) ? 0 : (int64) PG_GETARG_INT32(1));
	nulls[2] = PG_ARGISNULL(1) ? 'n' : ' ';

	approval_spi_connect();
	approval_exec_prepare(&events_after_plan);
	values[1] = Int64GetDatum(approval_event_horizon(&snap, NULL));
	/* read in batches, through a cursor on that snapshot */
	PushActiveSnapshot(snap);
	portal = SPI_cursor_open(NULL, events_after_plan.plan, values, nulls, true);
	PopActiveSnapshot();
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 1000);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
			tuplestore_puttuple(ts, SPI_tuptable->vals[i]);
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	UnregisterSnapshot(snap);
	approval_spi_finish();
	return (Datum) 0;
}
