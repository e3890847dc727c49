/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher of the background worker (DESIGN §6): registered when the
 *	  library is in shared_preload_libraries, it starts one worker
 *	  (worker.c) per database of approval.databases and keeps them running.
 *
 * The launcher connects to no database; it reads only the shared catalog
 * pg_database, to know whether a listed database exists before it starts a
 * worker there, as the autovacuum launcher does.  It starts after recovery
 * has finished, so that nothing runs on a standby; after a promotion the
 * postmaster starts it, and the workers fire what came due meanwhile.
 *
 * Each listed database is in one of these states, and the launcher says so
 * once per change, never in a loop: running (a worker), waiting to start
 * one (after it left on purpose, or while DROP DATABASE or the like holds
 * the database: a second; after failures in a row: five seconds, doubling
 * to a minute), or unable to (the database is missing, does not allow
 * connections, or there is no slot or background worker left), looked at
 * again every minute and at each reload.  A reload (SIGHUP) applies a
 * changed approval.databases: the workers of databases no longer listed are
 * stopped, new ones started.
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"
#include "worker.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/varlena.h"

#include <signal.h>

WorkerShared *approval_worker_shared = NULL;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* What the launcher has said of a database, so as not to say it again */
#define SAID_MISSING	0x01
#define SAID_NOCONNECT	0x02
#define SAID_NOSLOT		0x04
#define SAID_NOWORKER	0x08

/* One database of approval.databases, as the launcher keeps track of it */
typedef struct Watched
{
	char		name[NAMEDATALEN];
	bool		listed;			/* still in approval.databases */
	int			slot;			/* its slot while a worker runs, or -1 */
	BackgroundWorkerHandle *handle; /* that worker, or NULL */
	TimestampTz started_at;		/* when that worker was started */
	TimestampTz start_at;		/* when to start one, while none runs */
	int			failures;		/* workers in a row that left unexplained */
	int			said;			/* SAID_* */
} Watched;

/* the launcher's list of Watched, in TopMemoryContext */
static List *watched = NIL;
static uint32 my_generation = 0;

static Size
worker_shmem_size(void)
{
	return MAXALIGN(sizeof(WorkerShared));
}

#if PG_VERSION_NUM >= 150000
static void
worker_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(worker_shmem_size());
}
#endif

static void
worker_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	approval_worker_shared = ShmemInitStruct("approval worker",
											 worker_shmem_size(), &found);
	if (!found)
	{
		memset(approval_worker_shared, 0, worker_shmem_size());
		SpinLockInit(&approval_worker_shared->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * From _PG_init: when preloaded, ask for the shared memory and register the
 * launcher.  Loaded any other way, the library runs no worker and
 * approval_worker_hint() does nothing.
 */
void
approval_worker_init(void)
{
	BackgroundWorker bgw;

	if (!process_shared_preload_libraries_in_progress)
		return;

#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = worker_shmem_request;
#else
	RequestAddinShmemSpace(worker_shmem_size());
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = worker_shmem_startup;
	approval_worker_hint_init();

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = WORKER_RESTART_MS / 1000;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "approval");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "approval_launcher_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "approval launcher");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "approval launcher");
	RegisterBackgroundWorker(&bgw);
}

/* ---- the databases ---- */

typedef enum DbState
{
	DB_OK,
	DB_MISSING,
	DB_NOCONNECT
} DbState;

/*
 * Whether a database exists and takes connections.  A sequential scan of
 * pg_database, as the autovacuum launcher does: without a database there
 * are no relcache entries for its indexes to use.
 */
static DbState
database_state(const char *name, Oid *dboid)
{
	DbState		state = DB_MISSING;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	*dboid = InvalidOid;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (strcmp(NameStr(db->datname), name) != 0)
			continue;
		*dboid = db->oid;
		state = db->datallowconn ? DB_OK : DB_NOCONNECT;
#ifdef DATCONNLIMIT_INVALID_DB
		/* left half-dropped by an interrupted DROP DATABASE */
		if (db->datconnlimit == DATCONNLIMIT_INVALID_DB)
			state = DB_NOCONNECT;
#endif
		break;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return state;
}

static Watched *
find_watched(const char *name)
{
	ListCell   *lc;

	foreach(lc, watched)
	{
		Watched    *w = lfirst(lc);

		if (strcmp(w->name, name) == 0)
			return w;
	}
	return NULL;
}

/*
 * Apply approval.databases: mark what is listed, add what is new, stop the
 * workers of what is no longer listed.  Whatever waits to be started is
 * looked at now (a reload is when an admin expects something to happen).
 */
static void
sync_watched(void)
{
	char	   *raw = pstrdup(approval_databases ? approval_databases : "");
	List	   *names = NIL;
	ListCell   *lc;
	MemoryContext old;

	/* the check hook has accepted the value, so this cannot fail */
	if (!SplitIdentifierString(raw, ',', &names))
		names = NIL;

	foreach(lc, watched)
		((Watched *) lfirst(lc))->listed = false;

	old = MemoryContextSwitchTo(TopMemoryContext);
	foreach(lc, names)
	{
		const char *name = lfirst(lc);
		Watched    *w = find_watched(name);

		if (w == NULL)
		{
			w = palloc0(sizeof(Watched));
			strlcpy(w->name, name, NAMEDATALEN);
			w->slot = -1;
			watched = lappend(watched, w);
		}
		w->listed = true;
		w->start_at = 0;
	}
	MemoryContextSwitchTo(old);

	foreach(lc, watched)
	{
		Watched    *w = lfirst(lc);

		if (!w->listed && w->handle != NULL)
		{
			ereport(LOG,
					(errmsg("approval launcher: stopping the worker of database \"%s\", no longer in approval.databases",
							w->name)));
			TerminateBackgroundWorker(w->handle);
		}
	}
	list_free(names);
	pfree(raw);
}

/* Give a free slot to a database; -1 when all are taken */
static int
take_slot(Oid dboid)
{
	WorkerShared *s = approval_worker_shared;
	int			found = -1;

	SpinLockAcquire(&s->mutex);
	for (int i = 0; i < APPROVAL_MAX_DATABASES; i++)
	{
		WorkerSlot *slot = &s->slots[i];

		if (slot->in_use)
			continue;
		slot->in_use = true;
		slot->generation = my_generation;
		slot->dboid = dboid;
		slot->pid = 0;
		slot->latch = NULL;
		slot->wake_at = DT_NOEND;
		slot->exit = WORKER_EXIT_UNKNOWN;
		slot->relay_ready = false;
		slot->relay_pending = false;
		slot->relay_waiting = false;
		slot->relay_cursor = 0;
		slot->relay_ends = 0;
		found = i;
		break;
	}
	SpinLockRelease(&s->mutex);
	return found;
}

/* Take a slot back from a worker that has stopped; returns why it left */
static WorkerExit
free_slot(int slotno)
{
	WorkerShared *s = approval_worker_shared;
	WorkerExit	why;

	SpinLockAcquire(&s->mutex);
	why = s->slots[slotno].exit;
	s->slots[slotno].in_use = false;
	s->slots[slotno].pid = 0;
	s->slots[slotno].latch = NULL;
	SpinLockRelease(&s->mutex);
	return why;
}

static void
start_worker(Watched *w, TimestampTz now)
{
	Oid			dboid;
	DbState		state = database_state(w->name, &dboid);
	BackgroundWorker bgw;
	WorkerArgs	args;
	MemoryContext old;
	bool		ok;

	if (state != DB_OK)
	{
		int			flag = state == DB_MISSING ? SAID_MISSING : SAID_NOCONNECT;

		if (!(w->said & flag))
			ereport(WARNING,
					(errcode(state == DB_MISSING ? ERRCODE_UNDEFINED_DATABASE
							 : ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 state == DB_MISSING
					 ? errmsg("approval launcher: database \"%s\" of approval.databases does not exist",
							  w->name)
					 : errmsg("approval launcher: database \"%s\" of approval.databases does not accept connections",
							  w->name),
					 errdetail("No approval worker runs there; the launcher looks again every minute and at each reload, without saying this again."),
					 errhint("Create the database, or remove it from approval.databases and reload.")));
		w->said = (w->said & ~(SAID_MISSING | SAID_NOCONNECT)) | flag;
		w->start_at = now + (TimestampTz) WORKER_RECHECK_MS * 1000;
		return;
	}
	if (w->said & (SAID_MISSING | SAID_NOCONNECT))
		ereport(LOG,
				(errmsg("approval launcher: database \"%s\" of approval.databases can be connected to now",
						w->name)));
	w->said &= ~(SAID_MISSING | SAID_NOCONNECT);

	/* DROP DATABASE and the like are under way: wait for them */
	if (approval_database_wanted(dboid))
	{
		w->start_at = now + (TimestampTz) WORKER_AGAIN_MS * 1000;
		return;
	}

	w->slot = take_slot(dboid);
	if (w->slot < 0)
	{
		if (!(w->said & SAID_NOSLOT))
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("approval launcher: no worker for database \"%s\": approval.databases lists more than %d databases",
							w->name, APPROVAL_MAX_DATABASES),
					 errhint("List fewer databases, or schedule approval.tick() with pg_cron in the others.")));
		w->said |= SAID_NOSLOT;
		w->start_at = now + (TimestampTz) WORKER_RECHECK_MS * 1000;
		return;
	}

	memset(&args, 0, sizeof(args));
	args.dboid = dboid;
	args.generation = my_generation;
	strlcpy(args.dbname, w->name, NAMEDATALEN);

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;	/* the launcher does it */
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "approval");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "approval_worker_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "approval worker for database %s", w->name);
	snprintf(bgw.bgw_type, BGW_MAXLEN, "approval worker");
	bgw.bgw_main_arg = Int32GetDatum(w->slot);
	StaticAssertStmt(sizeof(WorkerArgs) <= BGW_EXTRALEN, "WorkerArgs must fit in bgw_extra");
	memcpy(bgw.bgw_extra, &args, sizeof(args));
	bgw.bgw_notify_pid = MyProcPid;

	old = MemoryContextSwitchTo(TopMemoryContext);
	ok = RegisterDynamicBackgroundWorker(&bgw, &w->handle);
	MemoryContextSwitchTo(old);
	if (!ok)
	{
		free_slot(w->slot);
		w->slot = -1;
		w->handle = NULL;
		if (!(w->said & SAID_NOWORKER))
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("approval launcher: could not start the worker of database \"%s\": no background worker slot is free",
							w->name),
					 errhint("Raise max_worker_processes (the launcher and each database of approval.databases take one)."),
					 errdetail("The launcher tries again every few seconds, without saying this again.")));
		w->said |= SAID_NOWORKER;
		w->start_at = now + (TimestampTz) WORKER_RESTART_MS * 1000;
		return;
	}
	w->said &= ~(SAID_NOSLOT | SAID_NOWORKER);
	w->started_at = now;
}

/*
 * A worker has stopped: take its slot back and decide when to start the
 * next one.  One that was told to stop or gave way to DROP/ALTER DATABASE
 * is started again after a second (once the database is free again); one
 * that left unexplained (an error) after five seconds, doubling with each
 * such exit in a row up to a minute.
 */
static void
worker_stopped(Watched *w, TimestampTz now)
{
	WorkerExit	why = free_slot(w->slot);
	int64		delay_ms = WORKER_AGAIN_MS;

	pfree(w->handle);
	w->handle = NULL;
	w->slot = -1;

	if (why == WORKER_EXIT_UNKNOWN)
	{
		delay_ms = WORKER_RESTART_MS;
		/* one that ran a good while before it failed starts a new series */
		if (TimestampDifferenceExceeds(w->started_at, now, WORKER_RESTART_MAX_MS))
			w->failures = 0;
		for (int i = 0; i < w->failures && delay_ms < WORKER_RESTART_MAX_MS; i++)
			delay_ms *= 2;
		delay_ms = Min(delay_ms, WORKER_RESTART_MAX_MS);
		w->failures++;
	}
	else
		w->failures = 0;
	w->start_at = now + delay_ms * 1000;
}

/* Look after one database; lowers *wake to when it wants to be looked at */
static void
look_after(Watched *w, TimestampTz now, TimestampTz *wake)
{
	if (w->handle != NULL)
	{
		pid_t		pid;

		if (GetBackgroundWorkerPid(w->handle, &pid) != BGWH_STOPPED)
			return;
		worker_stopped(w, now);
	}
	if (!w->listed)
		return;
	if (w->start_at <= now)
		start_worker(w, now);
	if (w->handle == NULL && w->start_at < *wake)
		*wake = w->start_at;
}

/*
 * A new launcher takes over: bump the generation, free the slots of workers
 * that never started and ask the ones still running from an earlier
 * launcher to leave (their slots come free as they do).
 */
static void
take_over(void)
{
	WorkerShared *s = approval_worker_shared;
	pid_t		stale[APPROVAL_MAX_DATABASES];
	int			nstale = 0;

	SpinLockAcquire(&s->mutex);
	my_generation = ++s->generation;
	for (int i = 0; i < APPROVAL_MAX_DATABASES; i++)
	{
		WorkerSlot *slot = &s->slots[i];

		if (!slot->in_use)
			continue;
		if (slot->pid != 0)
			stale[nstale++] = slot->pid;
		else
			slot->in_use = false;
	}
	SpinLockRelease(&s->mutex);

	for (int i = 0; i < nstale; i++)
		kill(stale[i], SIGTERM);
}

void
approval_launcher_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	/* no database: the shared catalogs only */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	SetConfigOption("application_name", "approval launcher", PGC_USERSET, PGC_S_SESSION);

	if (approval_worker_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("approval launcher: the shared memory of the worker is missing")));
	take_over();
	sync_watched();

	while (!ShutdownRequestPending)
	{
		TimestampTz now = GetCurrentTimestamp();
		TimestampTz wake = now + (TimestampTz) WORKER_RECHECK_MS * 1000;
		ListCell   *lc;
		long		ms;

		foreach(lc, watched)
			look_after(lfirst(lc), now, &wake);
		/* forget what is no longer listed once its worker has stopped */
		foreach(lc, watched)
		{
			Watched    *w = lfirst(lc);

			if (!w->listed && w->handle == NULL)
			{
				watched = foreach_delete_current(watched, lc);
				pfree(w);
			}
		}

		ms = (long) ((wake - now + 999) / 1000);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(ms, 1), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			sync_watched();
		}
	}

	/* stopped on purpose: the workers go with the launcher */
	{
		ListCell   *lc;

		foreach(lc, watched)
		{
			Watched    *w = lfirst(lc);

			if (w->handle != NULL)
				TerminateBackgroundWorker(w->handle);
		}
	}
	/* exit code 1: the postmaster starts a launcher again (unless it stops) */
	proc_exit(1);
}
