/*-------------------------------------------------------------------------
 *
 * tick.c
 *	  approval.tick(): fire every deadline that is due (DESIGN §6).
 *
 * The requests with something due are found through the partial index on
 * approval.request.next_due (timer.c keeps it), so a tick costs what is
 * due, not what is open.  Each is locked with SKIP LOCKED, and only while
 * something is still due on it: a request that a voter holds is left to the
 * next tick rather than waited for, and two ticks never fire the same
 * deadline.  Each request is locked and fired in a subtransaction (the
 * lock is the subtransaction's, which writes the row: a lock of the outer
 * transaction would make every write a MultiXact) through the same
 * load-lock-save path as a vote
 * (request.c, timer.c, engine.c); when that fails (a callback raises, an
 * escalation target has gone), the failure is recorded on the request and
 * its next attempt put off with a back-off, and the tick goes on with the
 * others.
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

/* (locked one by one, in the subtransaction that fires them: request.c) */
static ApprovalPlan due_plan = {
	"SELECT id FROM approval.request WHERE next_due <= $1 ORDER BY next_due LIMIT $2",
	2, {TIMESTAMPTZOID, INT4OID}
};

/*
 * 10 s after the first failure, doubling each time, at most an hour.  (Not
 * when a voter took the row meanwhile: their change plans the deadlines
 * again, and the next tick tries.)
 */
static ApprovalPlan failed_plan = {
	"UPDATE approval.request r SET timer_failures = r.timer_failures + 1, timer_error = $3,"
	"  next_due = $2 + LEAST(interval '1 hour',"
	"                        interval '10 seconds' * (2 ^ LEAST(r.timer_failures, 12)))"
	" FROM (SELECT id FROM approval.request WHERE id = $1 FOR UPDATE SKIP LOCKED) l"
	" WHERE r.id = l.id"
	" RETURNING r.timer_failures, r.next_due",
	3, {INT8OID, TIMESTAMPTZOID, TEXTOID}
};

static void
record_failure(int64 id, TimestampTz at, ErrorData *edata)
{
	Datum		args[3];
	char	   *error;
	bool		isnull;

	error = psprintf("%s: %s", unpack_sql_state(edata->sqlerrcode), edata->message);
	args[0] = Int64GetDatum(id);
	args[1] = TimestampTzGetDatum(at);
	args[2] = CStringGetTextDatum(error);
	if (approval_exec(&failed_plan, args, NULL, false, 0) != 1)
	{
		ereport(WARNING,
				(errmsg("approval: a deadline of request %lld could not fire", (long long) id),
				 errdetail("%s", error),
				 errcontext("the next tick tries again")));
		return;
	}
	ereport(WARNING,
			(errmsg("approval: a deadline of request %lld could not fire", (long long) id),
			 errdetail("%s", error),
			 errcontext("failure %d in a row; the next attempt is at %s",
						approval_getint32(0, 1),
						DatumGetCString(DirectFunctionCall1(timestamptz_out,
															approval_getdatum(0, 2, &isnull))))));
}

/* Fire what is due on one request, in a subtransaction; returns how many fired */
static int
fire_one(int64 id, TimestampTz at, MemoryContext work)
{
	MemoryContext outer = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile int fired = 0;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(work);
	PG_TRY();
	{
		Req		   *r = request_open_for_timer(id, at);

		if (r != NULL)
		{
			fired = timer_fire(r);
			request_save(r);
		}
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(outer);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(outer);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(outer);
		CurrentResourceOwner = owner;
		record_failure(id, at, edata);
		FreeErrorData(edata);
		fired = 0;
	}
	PG_END_TRY();
	MemoryContextReset(work);
	return fired;
}

PG_FUNCTION_INFO_V1(approval_tick);
Datum
approval_tick(PG_FUNCTION_ARGS)
{
	TimestampTz at = PG_GETARG_TIMESTAMPTZ(0);
	int32		max_items = PG_GETARG_INT32(1);
	Datum		args[2];
	int			n;
	int64	   *ids;
	int			fired = 0;
	MemoryContext work;

	if (max_items < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_items must be at least 1")));

	approval_spi_connect();
	args[0] = TimestampTzGetDatum(at);
	args[1] = Int32GetDatum(max_items);
	n = approval_exec(&due_plan, args, NULL, false, 0);
	ids = palloc(sizeof(int64) * Max(n, 1));
	for (int i = 0; i < n; i++)
		ids[i] = approval_getint64(i, 1);

	work = AllocSetContextCreate(CurrentMemoryContext, "approval tick",
								 ALLOCSET_DEFAULT_SIZES);
	for (int i = 0; i < n; i++)
		fired += fire_one(ids[i], at, work);
	MemoryContextDelete(work);
	approval_spi_finish();
	PG_RETURN_INT32(fired);
}
