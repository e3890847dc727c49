/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The shared memory of the background worker (DESIGN §6): one slot per
 *	  watched database, given out by the launcher (launcher.c), filled in by
 *	  that database's worker (worker.c: who it is, when it wakes next) and
 *	  read by any backend whose commit may have to wake that worker
 *	  (approval_worker_hint, and the relay of notifications: relay.c).
 *
 * Every field is read and written under the spinlock, which is held for a
 * few instructions at a time: no code that can fail or sleep runs under it.
 * A launcher that starts bumps the generation; a slot belongs to the
 * launcher of its generation, and a worker of an older generation leaves.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APPROVAL_WORKER_H
#define APPROVAL_WORKER_H

#include "postgres.h"

#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

/* databases the launcher watches at most (each costs a background worker) */
#define APPROVAL_MAX_DATABASES	32

/* the launcher starts a worker again this long after it left on purpose */
#define WORKER_AGAIN_MS			1000
/* ... or this long after it failed, doubling with each failure in a row ... */
#define WORKER_RESTART_MS		5000
/* ... up to this (also the launcher's own restart interval is WORKER_RESTART_MS) */
#define WORKER_RESTART_MAX_MS	60000
/* a database that is missing, or cannot be connected to, is looked at again */
#define WORKER_RECHECK_MS		60000
/* a failing tick is retried after tick_interval, doubling up to this */
#define TICK_BACKOFF_MAX_MS		60000
/* the worker looks at least this often whether its database is wanted */
#define WORKER_CHECK_MS			500
/* deadlines one tick fires at most; a full batch means "tick again now" */
#define WORKER_MAX_ITEMS		50

/* Why a worker left, as it says itself; the launcher reads it when it stopped */
typedef enum WorkerExit
{
	WORKER_EXIT_UNKNOWN = 0,	/* an error, or it never got to say */
	WORKER_EXIT_STOPPED,		/* told to stop (SIGTERM, or a new launcher) */
	WORKER_EXIT_YIELDED			/* left so that DROP/ALTER DATABASE can go on */
} WorkerExit;

typedef struct WorkerSlot
{
	bool		in_use;			/* given to a database by the launcher */
	uint32		generation;		/* of that launcher */
	Oid			dboid;
	pid_t		pid;			/* the worker's, 0 while none runs */
	Latch	   *latch;			/* the worker's, NULL while none runs */
	TimestampTz wake_at;		/* when the worker wakes next; DT_NOEND while
								 * it ticks */
	WorkerExit	exit;			/* why its last worker left */

	/* the relay of notifications (relay.c; approval.notify = relay) */
	bool		relay_ready;	/* the worker relays: its cursor is set */
	bool		relay_pending;	/* there is something to relay */
	bool		relay_waiting;	/* a writer still running held the last relay
								 * back: relay again when a writer ends */
	int64		relay_cursor;	/* the last seq it sent, or where it started */
	uint64		relay_ends;		/* writers that ended, counted */
} WorkerSlot;

typedef struct WorkerShared
{
	slock_t		mutex;
	uint32		generation;		/* bumped by each launcher that starts */
	WorkerSlot	slots[APPROVAL_MAX_DATABASES];
} WorkerShared;

/* What the launcher hands a worker in bgw_extra (bgw_main_arg: the slot) */
typedef struct WorkerArgs
{
	Oid			dboid;
	uint32		generation;
	char		dbname[NAMEDATALEN];
} WorkerArgs;

/* NULL unless the library was preloaded */
extern WorkerShared *approval_worker_shared;

extern bool approval_database_wanted(Oid dboid);
/* notifications one relay transaction sends at most */
#define RELAY_BATCH				1000

/* One relay of notifications by the worker (relay.c) */
typedef struct RelayRound
{
	bool		taken;			/* it took the pending work (else: nothing to do) */
	int64		start;			/* it sent the events after this seq ... */
	bool		held;			/* ... below a horizon a writer still running held */
	int64		last;			/* the last seq it sent, or start */
	int			sent;
	uint64		ends;			/* relay_ends when it started */
} RelayRound;

extern void approval_relay_start(WorkerSlot *slot);
extern bool approval_relay_pending(WorkerSlot *slot);
extern void approval_relay_send(WorkerSlot *slot, RelayRound *round);
extern void approval_relay_done(WorkerSlot *slot, const RelayRound *round, bool ok);
extern void approval_worker_hint_init(void);

extern PGDLLEXPORT void approval_launcher_main(Datum main_arg);
extern PGDLLEXPORT void approval_worker_main(Datum main_arg);

#endif							/* APPROVAL_WORKER_H */
