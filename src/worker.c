/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The background worker of one database (DESIGN §6): it runs
 *	  approval.tick() and sleeps on its latch until the next deadline
 *	  (approval.next_due()) or approval.tick_interval, whichever is sooner;
 *	  and approval_worker_hint(), with which a commit that makes an earlier
 *	  deadline wakes it.  Woken by a commit whose events are to be relayed
 *	  (approval.notify = relay), it sends their notifications (relay.c) in
 *	  a transaction of its own, between ticks.
 *
 * Started by the launcher (launcher.c) with the database in bgw_extra and
 * its slot in bgw_main_arg.  Each round is one transaction: it checks, by
 * catalog look-ups, that the extension is there and has approval.tick()
 * (so DROP, CREATE and ALTER EXTENSION need no restart, and a database
 * without it gets one warning, not one a round), then ticks and reads the
 * next deadline.  A tick that fails is logged and retried after
 * tick_interval, doubling up to a minute; the worker keeps running.
 *
 * The worker never holds on to its database against DROP DATABASE, ALTER
 * DATABASE RENAME / SET TABLESPACE or CREATE DATABASE ... TEMPLATE: these
 * take a lock on the database that conflicts with the one a connection
 * takes, then wait a few seconds for the other sessions to leave.  The
 * worker tries that lock, without waiting, at least every WORKER_CHECK_MS
 * and leaves when it is taken; the launcher looks again later.
 *
 * The slot's wake_at is when the worker will wake next, or DT_NOEND while
 * it ticks.  A committing backend compares its new deadline with it and
 * sets the latch when the deadline is earlier, lowering wake_at; the worker
 * then sleeps until the lowered wake_at.  A deadline committed while the
 * worker ticks (wake_at DT_NOEND) always sets the latch, so none is missed
 * between the worker's reading of next_due() and its going to sleep.
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"
#include "worker.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

/* What a round found of the extension */
typedef enum ExtState
{
	EXT_UNKNOWN,				/* not looked yet */
	EXT_READY,					/* installed, with approval.tick() */
	EXT_MISSING,				/* not installed */
	EXT_OLD						/* installed, but a version without tick() */
} ExtState;

typedef struct WorkerState
{
	ExtState	ext;
	int			fired;			/* by the last tick */
	bool		has_due;		/* next_due() was not NULL */
	TimestampTz due;			/* next_due() */
	TimestampTz tick_at;		/* the "at" of the last tick: its now() */
	int			failures;		/* rounds in a row that failed */
	int			backoff_ms;		/* the wait after the last failure */
	TimestampTz relay_at;		/* no relay before this */
	TimestampTz checkpoint_at;	/* the next checkpoint of the log, at the earliest */
} WorkerState;

/* a relay of notifications that failed is tried again after this */
#define RELAY_RETRY_MS 1000
/*
 * A relay that was not full is followed by the next one this much later at
 * the earliest, so that under load one relay sends the events of many
 * commits instead of a transaction for each (an idle database's first
 * commit is relayed at once).
 */
#define RELAY_GATHER_MS 2

static WorkerArgs args;
static int	my_slot = -1;
static bool am_worker = false;
static WorkerExit exit_reason = WORKER_EXIT_UNKNOWN;

static ApprovalPlan tick_plan = {
	"SELECT approval.tick(pg_catalog.now(), $1)", 1, {INT4OID}
};
static ApprovalPlan next_due_plan = {
	"SELECT approval.next_due()", 0, {InvalidOid}
};

/* ---- the slot ---- */

static WorkerSlot *
slot(void)
{
	return &approval_worker_shared->slots[my_slot];
}

/* Claim the slot the launcher gave; false when it is no longer ours */
static bool
claim_slot(void)
{
	WorkerShared *s = approval_worker_shared;
	bool		ok;

	SpinLockAcquire(&s->mutex);
	ok = slot()->in_use && slot()->generation == args.generation &&
		s->generation == args.generation && slot()->pid == 0;
	if (ok)
	{
		slot()->pid = MyProcPid;
		slot()->latch = MyLatch;
		slot()->wake_at = DT_NOEND;
		slot()->exit = WORKER_EXIT_UNKNOWN;
	}
	SpinLockRelease(&s->mutex);
	return ok;
}

/* on_shmem_exit: say why we leave; a slot no launcher owns comes free */
static void
release_slot(int code, Datum arg)
{
	WorkerShared *s = approval_worker_shared;

	SpinLockAcquire(&s->mutex);
	if (slot()->pid == MyProcPid)
	{
		slot()->pid = 0;
		slot()->latch = NULL;
		slot()->relay_ready = false;
		slot()->exit = exit_reason;
		if (s->generation != slot()->generation)
			slot()->in_use = false;
	}
	SpinLockRelease(&s->mutex);
}

/* Publish when we wake next, or the earlier time a commit asked for */
static TimestampTz
publish_wake(TimestampTz at)
{
	WorkerShared *s = approval_worker_shared;

	SpinLockAcquire(&s->mutex);
	if (at != DT_NOEND && slot()->wake_at < at)
		at = slot()->wake_at;
	slot()->wake_at = at;
	SpinLockRelease(&s->mutex);
	return at;
}

static bool
launcher_changed(void)
{
	WorkerShared *s = approval_worker_shared;
	bool		changed;

	SpinLockAcquire(&s->mutex);
	changed = s->generation != args.generation;
	SpinLockRelease(&s->mutex);
	return changed;
}

/*
 * Whether someone wants the database without other sessions: DROP
 * DATABASE, ALTER DATABASE RENAME / SET TABLESPACE, CREATE DATABASE with it
 * as the template.  Each holds a lock on the database that conflicts with
 * the RowExclusiveLock a connection takes, while it waits for the others to
 * leave.  Also asked by the launcher before it starts a worker.
 */
bool
approval_database_wanted(Oid dboid)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, InvalidOid, DatabaseRelationId, dboid, 0);
	if (LockAcquire(&tag, RowExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		return true;
	LockRelease(&tag, RowExclusiveLock, true);
	return false;
}

/* ---- a round ---- */

static ExtState
extension_state(void)
{
	Oid			tick_args[2] = {TIMESTAMPTZOID, INT4OID};
	Oid			no_args[1] = {InvalidOid};

	if (!OidIsValid(get_extension_oid("approval", true)))
		return EXT_MISSING;
	if (!OidIsValid(LookupFuncName(list_make2(makeString("approval"), makeString("tick")),
								   2, tick_args, true)) ||
		!OidIsValid(LookupFuncName(list_make2(makeString("approval"), makeString("next_due")),
								   0, no_args, true)))
		return EXT_OLD;
	return EXT_READY;
}

/* Whether the extension's event log keeps what a relay sends (0.5.0 on) */
static bool
relay_possible(void)
{
	Oid			nsp = get_namespace_oid("approval", true);
	Oid			rel = OidIsValid(nsp) ? get_relname_relid("event", nsp) : InvalidOid;

	return OidIsValid(rel) && get_attnum(rel, "targets") != InvalidAttrNumber;
}

/* Say what changed about the extension; each state is said once */
static void
report_extension(ExtState was, ExtState now)
{
	if (now == was)
		return;
	if (now == EXT_MISSING)
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("approval worker: extension \"approval\" is not installed in database \"%s\"",
						args.dbname),
				 errdetail("The worker ticks nothing there until CREATE EXTENSION approval, which it notices by itself."),
				 errhint("Install the extension in that database, or remove the database from approval.databases.")));
	else if (now == EXT_OLD)
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("approval worker: extension \"approval\" in database \"%s\" has no approval.tick()",
						args.dbname),
				 errdetail("It is a version older than the library (%s); the worker ticks nothing there until it is updated.",
						   APPROVAL_VERSION),
				 errhint("Run ALTER EXTENSION approval UPDATE in that database.")));
	else if (now == EXT_READY && was != EXT_UNKNOWN)
		ereport(LOG,
				(errmsg("approval worker: extension \"approval\" is ready in database \"%s\"; ticking",
						args.dbname)));
}

/* In PG_CATCH of a round: what went wrong, with the transaction aborted */
static ErrorData *
abort_round(MemoryContext cxt)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	HOLD_INTERRUPTS();
	AbortOutOfAnyTransaction();
	RESUME_INTERRUPTS();
	pgstat_report_activity(STATE_IDLE, NULL);
	return edata;
}

/* One transaction: check the extension, tick, read the next deadline */
static void
run_round(WorkerState *st)
{
	MemoryContext cxt = CurrentMemoryContext;
	ExtState	was = st->ext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		st->ext = extension_state();
		if (st->ext == EXT_READY)
		{
			Datum		values[1];
			bool		isnull;
			Datum		d;

			approval_spi_connect();
			PushActiveSnapshot(GetTransactionSnapshot());
			pgstat_report_activity(STATE_RUNNING, tick_plan.sql);
			values[0] = Int32GetDatum(WORKER_MAX_ITEMS);
			approval_exec(&tick_plan, values, NULL, false, 0);
			st->fired = approval_getint32(0, 1);
			st->tick_at = GetCurrentTransactionStartTimestamp();
			approval_exec(&next_due_plan, NULL, NULL, false, 0);
			d = approval_getdatum(0, 1, &isnull);
			st->has_due = !isnull;
			st->due = isnull ? 0 : DatumGetTimestampTz(d);
			if (relay_possible())
				approval_relay_start(slot());
			if (approval_checkpoint_interval > 0 && GetCurrentTimestamp() >= st->checkpoint_at)
			{
				approval_checkpoint_from_worker();
				st->checkpoint_at = GetCurrentTimestamp() +
					(int64) approval_checkpoint_interval * 1000;
			}
			approval_spi_finish();
			PopActiveSnapshot();
		}
		CommitTransactionCommand();
#if PG_VERSION_NUM < 150000
		ProcessCompletedNotifies();
#endif
		pgstat_report_stat(false);
		pgstat_report_activity(STATE_IDLE, NULL);

		report_extension(was, st->ext);
		if (st->failures > 0)
			ereport(LOG,
					(errmsg("approval worker: approval.tick() in database \"%s\" works again after %d failed attempts",
							args.dbname, st->failures)));
		st->failures = 0;
		st->backoff_ms = 0;
	}
	PG_CATCH();
	{
		ErrorData  *edata = abort_round(cxt);

		st->failures++;
		st->backoff_ms = st->failures == 1 ? approval_tick_interval
			: Min(st->backoff_ms * 2, TICK_BACKOFF_MAX_MS);
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("approval worker: approval.tick() failed in database \"%s\": %s",
						args.dbname, edata->message),
				 edata->detail ? errdetail_internal("%s", edata->detail) : 0,
				 errhint("The worker tries again in %d ms (attempt %d; the wait doubles up to %d s).",
						 st->backoff_ms, st->failures + 1, TICK_BACKOFF_MAX_MS / 1000)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

/*
 * One transaction: send the notifications of newly committed events
 * (approval.notify = relay, relay.c).  A failure is logged; the same events
 * are relayed again a second later.
 */
static void
run_relay(WorkerState *st, TimestampTz now)
{
	MemoryContext cxt = CurrentMemoryContext;
	RelayRound	round;
	volatile bool ok = true;

	memset(&round, 0, sizeof(round));
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		approval_spi_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "approval: relaying notifications");
		approval_relay_send(slot(), &round);
		approval_spi_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_CATCH();
	{
		ErrorData  *edata = abort_round(cxt);
		ok = false;
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("approval worker: relaying notifications failed in database \"%s\": %s",
						args.dbname, edata->message),
				 edata->detail ? errdetail_internal("%s", edata->detail) : 0,
				 errhint("The worker relays the same events again in %d ms.", RELAY_RETRY_MS)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	approval_relay_done(slot(), &round, ok);
	if (!ok)
		st->relay_at = GetCurrentTimestamp() + (int64) RELAY_RETRY_MS * 1000;
	else if (round.sent < RELAY_BATCH)
		st->relay_at = now + (int64) RELAY_GATHER_MS * 1000;
}

/*
 * When to run the next round: after tick_interval at the latest (a second
 * at least while the extension is not ready), at the next deadline if that
 * is sooner, right away after a full batch.  A deadline that came due
 * while the tick ran (after its now()) is fired right away; one that was
 * due when it looked, but that it left (its request locked by a voter), is
 * tried again after a short pause rather than in a busy loop.
 */
static TimestampTz
next_round(const WorkerState *st, TimestampTz now)
{
	int64		interval = (int64) approval_tick_interval * 1000;
	TimestampTz next;

	if (st->failures > 0)
		return now + (int64) st->backoff_ms * 1000;
	if (st->ext != EXT_READY)
		return now + Max(interval, (int64) 1000 * 1000);
	if (st->fired >= WORKER_MAX_ITEMS)
		return now;
	next = now + interval;
	if (st->has_due && st->due < next)
	{
		if (st->due > now)
			next = st->due;
		else if (st->due > st->tick_at)
			next = now;
		else
			next = now + Min(interval, (int64) 100 * 1000);
	}
	return next;
}

/* set while a round runs: a SIGTERM then ends the worker at once */
static volatile sig_atomic_t in_round = false;

/*
 * SIGTERM (shutdown, pg_terminate_backend, DROP DATABASE ... WITH (FORCE)):
 * between rounds the loop sees the request and leaves cleanly; during a
 * round (a callback may run for long) it is die(), as for any backend.
 */
static void
worker_sigterm(SIGNAL_ARGS)
{
	if (in_round)
		die(postgres_signal_arg);
	else
		SignalHandlerForShutdownRequest(postgres_signal_arg);
}

void
approval_worker_main(Datum main_arg)
{
	WorkerState st;
	TimestampTz next = 0;
	MemoryContext round_cxt;

	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	my_slot = DatumGetInt32(main_arg);
	am_worker = true;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, worker_sigterm);
	BackgroundWorkerUnblockSignals();

	if (approval_worker_shared == NULL || my_slot < 0 || my_slot >= APPROVAL_MAX_DATABASES)
		proc_exit(0);
	BackgroundWorkerInitializeConnectionByOid(args.dboid, InvalidOid, 0);
	if (!claim_slot())
		proc_exit(0);			/* a new launcher starts its own */
	on_shmem_exit(release_slot, (Datum) 0);

	SetConfigOption("application_name", "approval worker", PGC_USERSET, PGC_S_SESSION);
	/* the worker runs statements as a superuser: no search_path of the database's */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	ereport(DEBUG1,
			(errmsg("approval worker: started for database \"%s\"", args.dbname)));

	memset(&st, 0, sizeof(st));
	round_cxt = AllocSetContextCreate(TopMemoryContext, "approval worker round",
									  ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		TimestampTz now;
		TimestampTz wake;
		bool		gathering;
		long		ms;
		int			rc;

		CHECK_FOR_INTERRUPTS();
		if (ShutdownRequestPending || launcher_changed())
		{
			exit_reason = WORKER_EXIT_STOPPED;
			break;
		}
		if (approval_database_wanted(MyDatabaseId))
		{
			ereport(LOG,
					(errmsg("approval worker: leaving database \"%s\", which another session needs to itself",
							args.dbname),
					 errdetail("DROP DATABASE, ALTER DATABASE or CREATE DATABASE with it as the template waits for the other sessions to leave.")));
			exit_reason = WORKER_EXIT_YIELDED;
			break;
		}
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			/* a shorter tick_interval applies now */
			if (st.failures == 0)
				next = Min(next, GetCurrentTimestamp() + (int64) approval_tick_interval * 1000);
		}

		now = GetCurrentTimestamp();
		if (now >= next && RecoveryInProgress())
		{
			/* never so (the launcher starts after recovery), but harmless */
			next = now + (int64) approval_tick_interval * 1000;
		}
		if (now >= next)
		{
			MemoryContext old;

			publish_wake(DT_NOEND);
			MemoryContextReset(round_cxt);
			old = MemoryContextSwitchTo(round_cxt);
			in_round = true;
			if (ShutdownRequestPending)
			{
				exit_reason = WORKER_EXIT_STOPPED;
				break;
			}
			run_round(&st);
			in_round = false;
			MemoryContextSwitchTo(old);
			now = GetCurrentTimestamp();
			next = publish_wake(next_round(&st, now));
		}

		wake = next;
		gathering = false;
		if (approval_relay_pending(slot()))
		{
			if (now >= st.relay_at)
			{
				MemoryContext old;

				MemoryContextReset(round_cxt);
				old = MemoryContextSwitchTo(round_cxt);
				in_round = true;
				if (ShutdownRequestPending)
				{
					exit_reason = WORKER_EXIT_STOPPED;
					break;
				}
				run_relay(&st, now);
				in_round = false;
				MemoryContextSwitchTo(old);
				continue;
			}
			wake = Min(wake, st.relay_at);
			/* gathering: the commits meanwhile need not wake us */
			gathering = st.relay_at - now <= (int64) RELAY_GATHER_MS * 1000;
		}

		ms = wake > now ? (long) ((wake - now + 999) / 1000) : 0;
		rc = WaitLatch(MyLatch, (gathering ? 0 : WL_LATCH_SET) | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					   Min(ms, WORKER_CHECK_MS), PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			/* a commit may have asked for an earlier round */
			if (st.failures == 0)
				next = publish_wake(next);
		}
	}
	proc_exit(0);
}

/* ---- the hint of a committing backend ---- */

/* the earliest deadline this transaction hinted at, or DT_NOEND */
static TimestampTz hint_pending = DT_NOEND;

/*
 * Lower the wake-up time of this database's worker to "due" if that is
 * earlier; returns its latch when it must be woken.  Under the spinlock.
 */
static Latch *
lower_wake(TimestampTz due)
{
	WorkerShared *s = approval_worker_shared;
	Latch	   *latch = NULL;

	SpinLockAcquire(&s->mutex);
	for (int i = 0; i < APPROVAL_MAX_DATABASES; i++)
	{
		WorkerSlot *sl = &s->slots[i];

		if (!sl->in_use || sl->pid == 0 || sl->latch == NULL ||
			sl->dboid != MyDatabaseId || due >= sl->wake_at)
			continue;
		sl->wake_at = due;
		latch = sl->latch;
	}
	SpinLockRelease(&s->mutex);
	return latch;
}

static void
hint_at_end(XactEvent event, void *arg)
{
	TimestampTz due = hint_pending;
	Latch	   *latch;

	if (due == DT_NOEND)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			hint_pending = DT_NOEND;
			latch = lower_wake(due);
			if (latch != NULL)
				SetLatch(latch);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			hint_pending = DT_NOEND;
			break;
		default:
			break;
	}
}

/*
 * The current transaction makes a deadline at next_due: if this database's
 * worker would sleep past it, wake the worker when the transaction commits.
 * Does nothing when the library is not preloaded; the commit compares the
 * deadline with the worker's wake-up, under the spinlock.  Cannot fail.
 */
void
approval_worker_hint(TimestampTz next_due)
{
	if (approval_worker_shared == NULL || am_worker || !OidIsValid(MyDatabaseId))
		return;
	/* (compared with the worker's wake-up at commit: it may change before) */
	if (next_due < hint_pending)
		hint_pending = next_due;
}

/*
 * From the postmaster's _PG_init (preloaded only): every backend inherits
 * the callback, so that a hint never has to allocate; it returns at once
 * in a transaction that made none.
 */
void
approval_worker_hint_init(void)
{
	RegisterXactCallback(hint_at_end, NULL);
}
