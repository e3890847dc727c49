/*-------------------------------------------------------------------------
 *
 * relay.c
 *	  approval.notify = relay (DESIGN §7): decisions write only the log, and
 *	  the background worker of their database sends the notifications of
 *	  newly committed events shortly after, so that no decision's commit
 *	  takes NOTIFY's database-wide lock.
 *
 * The worker follows the log as a listener does, with a cursor of its own
 * (relay_cursor, in its slot): when it starts, it puts the cursor just
 * below the horizon of the event log (horizon.c), so that it relays what
 * is committed from then on, and says it is ready (relay_ready).  A
 * transaction that wrote events to be relayed says so at commit, in its
 * database's slot (relay_pending), and sets the worker's latch.  The worker then
 * reads, in one transaction, the events after its cursor and below the
 * horizon, notifies them, and moves the cursor to the last one: relayed
 * notifications come in cursor order, with no gaps.  When a writer still
 * running held it back, it notes so (relay_waiting) and relays again when
 * any writer of events ends; relay_ends, counted by every writer that ends,
 * tells it whether one ended while it was reading.
 *
 * Events written with approval.notify = relay while no worker is ready for
 * the database are notified at their commit instead, so they are not lost.
 * The relay sends every committed event after its cursor: set relay for a
 * whole database, or events written by sessions with approval.notify =
 * commit are sent twice (and those with off once).  Notifications are best
 * effort, as NOTIFY is: a relay that fails is tried again, but a worker that
 * is replaced may lose what it had not sent.  Listeners find every event in
 * the log (events_after()).
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"
#include "worker.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/snapmgr.h"

static ApprovalPlan relay_plan = {
	"SELECT e.seq, e.kind, e.request_id, r.workflow, e.state, e.stage, e.actor, e.targets, e.at"
	"  FROM approval.event e LEFT JOIN approval.request r ON r.id OPERATOR(pg_catalog.=) e.request_id"
	" WHERE e.seq OPERATOR(pg_catalog.>) $1 AND e.seq OPERATOR(pg_catalog.<) $2"
	" ORDER BY e.seq LIMIT $3",
	3, {INT8OID, INT8OID, INT8OID}
};

/* Whether a worker is ready to relay the events of the current database */
bool
approval_relay_available(void)
{
	WorkerShared *s = approval_worker_shared;
	bool		found = false;

	if (s == NULL)
		return false;
	SpinLockAcquire(&s->mutex);
	for (int i = 0; i < APPROVAL_MAX_DATABASES && !found; i++)
		found = s->slots[i].in_use && s->slots[i].dboid == MyDatabaseId &&
			s->slots[i].pid != 0 && s->slots[i].relay_ready;
	SpinLockRelease(&s->mutex);
	return found;
}

/*
 * From the worker, in a transaction, once the extension is there: put the
 * relay's cursor below the horizon and say it is ready.  What committed
 * before was notified at its commit (no worker was ready to relay it).
 */
void
approval_relay_start(WorkerSlot *slot)
{
	WorkerShared *s = approval_worker_shared;
	Snapshot	snap;
	int64		h;

	SpinLockAcquire(&s->mutex);
	if (slot->relay_ready)
	{
		SpinLockRelease(&s->mutex);
		return;
	}
	SpinLockRelease(&s->mutex);

	h = approval_event_horizon(&snap, NULL);
	UnregisterSnapshot(snap);

	SpinLockAcquire(&s->mutex);
	slot->relay_cursor = h - 1;
	slot->relay_ready = true;
	SpinLockRelease(&s->mutex);
}

/*
 * At the end of a transaction that wrote events, once it has left the
 * horizon: ask this database's worker to relay them ("relayed"), or to go
 * on with a relay that a writer held back.  Cannot fail.
 */
void
approval_relay_committed(bool relayed)
{
	WorkerShared *s = approval_worker_shared;
	Latch	   *latch = NULL;

	if (s == NULL || !OidIsValid(MyDatabaseId))
		return;
	SpinLockAcquire(&s->mutex);
	for (int i = 0; i < APPROVAL_MAX_DATABASES; i++)
	{
		WorkerSlot *sl = &s->slots[i];

		if (!sl->in_use || sl->dboid != MyDatabaseId)
			continue;
		sl->relay_ends++;
		if (relayed || sl->relay_waiting)
		{
			sl->relay_pending = true;
			sl->relay_waiting = false;
			latch = sl->latch;
		}
	}
	SpinLockRelease(&s->mutex);
	if (latch != NULL)
		SetLatch(latch);
}

/* Whether the worker of this slot has notifications to relay */
bool
approval_relay_pending(WorkerSlot *slot)
{
	WorkerShared *s = approval_worker_shared;
	bool		pending;

	SpinLockAcquire(&s->mutex);
	pending = slot->relay_pending;
	SpinLockRelease(&s->mutex);
	return pending;
}

/*
 * One relay, in the worker's transaction (SPI connected): notify the
 * committed events after the cursor, below the horizon.  round->taken is
 * false when there was nothing to do.  The slot is brought up to date only
 * once the transaction has committed (approval_relay_done).
 */
void
approval_relay_send(WorkerSlot *slot, RelayRound *round)
{
	WorkerShared *s = approval_worker_shared;
	Snapshot	snap;
	Datum		values[3];
	int			rc;

	memset(round, 0, sizeof(*round));
	SpinLockAcquire(&s->mutex);
	round->taken = slot->relay_ready && slot->relay_pending;
	if (round->taken)
		slot->relay_pending = false;
	round->start = slot->relay_cursor;
	round->ends = slot->relay_ends;
	SpinLockRelease(&s->mutex);
	if (!round->taken)
		return;

	approval_exec_prepare(&relay_plan);
	values[0] = Int64GetDatum(round->start);
	values[1] = Int64GetDatum(approval_event_horizon(&snap, &round->held));
	values[2] = Int64GetDatum(RELAY_BATCH);
	rc = SPI_execute_snapshot(relay_plan.plan, values, NULL, snap, InvalidSnapshot,
							  true, false, 0);
	UnregisterSnapshot(snap);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "approval: relay query failed: %s", SPI_result_code_string(rc));

	round->last = round->start;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		ApprovalNote n = {0};
		bool		isnull;
		Datum		d;

		n.seq = approval_getint64(i, 1);
		n.kind = approval_gettext(i, 2);
		n.request = approval_getint64(i, 3);
		n.workflow = approval_gettext(i, 4);
		n.state = approval_gettext(i, 5);
		n.stage = approval_gettext(i, 6);
		n.actor = approval_gettext(i, 7);
		d = approval_getdatum(i, 8, &isnull);
		n.targets = isnull ? NIL : approval_array_to_list(DatumGetArrayTypeP(d));
		n.at = DatumGetTimestampTz(approval_getdatum(i, 9, &isnull));
		approval_note_send(&n);
		round->last = n.seq;
	}
	round->sent = (int) SPI_processed;
}

/*
 * After the relay's transaction: "ok" when it committed (its notifications
 * are sent), false when it failed (the same events are relayed again).
 */
void
approval_relay_done(WorkerSlot *slot, const RelayRound *round, bool ok)
{
	WorkerShared *s = approval_worker_shared;

	if (!round->taken)
		return;
	SpinLockAcquire(&s->mutex);
	if (!ok)
		slot->relay_pending = true;
	else
	{
		slot->relay_cursor = Max(slot->relay_cursor, round->last);
		if (round->sent == RELAY_BATCH)
			slot->relay_pending = true;
		else if (round->held)
		{
			/* held back by a writer: go on when one ends, now if one did */
			if (slot->relay_ends != round->ends)
				slot->relay_pending = true;
			else
				slot->relay_waiting = true;
		}
	}
	SpinLockRelease(&s->mutex);
}
