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
 * load-lock-save path as a vote (request.c, timer.c, engine.c), one
 * deadline at a time; when one fails (a callback raises, an escalation
 * target has gone), the failure is recorded on the request, that deadline
 * is put off with a back-off, and the request's other deadlines and the
 * other requests still fire.
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/resowner.h"

/* (locked one by one, in the subtransaction that fires them: request.c) */
static ApprovalPlan due_plan = {
	"SELECT id FROM approval.request WHERE next_due <= $1 ORDER BY next_due LIMIT $2",
	2, {TIMESTAMPTZOID, INT4OID}
};

/* A firing failed: 10 s after the first failure in a row, doubling, at most an hour */
static TimestampTz
backoff(TimestampTz at, int failures)
{
	int64		s = 10 << Min(failures, 9);

	return at + Min(s, (int64) SECS_PER_HOUR) * USECS_PER_SEC;
}

typedef enum Step
{
	STEP_NOTHING,				/* nothing due (any more), or someone holds it */
	STEP_FIRED,					/* and nothing more is due on it */
	STEP_FIRED_MORE,			/* and more is due */
	STEP_FAILED,
	STEP_DEFERRED				/* a failed one put off */
} Step;

/*
 * One step on one request, in a subtransaction and an SPI connection of its
 * own (what it allocates goes with them): lock it if something is due and
 * nobody holds it, then either fire its earliest due deadline (which says
 * in *which), or — after a failure — put that deadline off.  A cancel (or
 * statement_timeout) is not a failure of the firing: it ends the tick.
 */
static Step
step(int64 id, TimestampTz at, TimerDue *which, ErrorData **failure)
{
	MemoryContext outer = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile Step result = STEP_NOTHING;

	BeginInternalSubTransaction(NULL);
	PG_TRY();
	{
		Req		   *r;

		approval_spi_connect();
		r = request_open_for_timer(id, at);
		if (r != NULL && *failure != NULL)
		{
			/* after a failure: put the deadline off, say why */
			ErrorData  *e = *failure;
			TimestampTz until = backoff(at, r->t.failures);

			timer_defer(r, which, until);
			result = STEP_DEFERRED;
			r->t.failures++;
			r->t.error = psprintf("%s: %s", unpack_sql_state(e->sqlerrcode), e->message);
			request_save(r);
			ereport(WARNING,
					(errmsg("approval: a deadline of request %lld could not fire", (long long) id),
					 errdetail("%s", r->t.error),
					 errcontext("failure %d in a row; it is tried again at %s",
								r->t.failures,
								DatumGetCString(DirectFunctionCall1(timestamptz_out,
																	TimestampTzGetDatum(until))))));
		}
		else if (r != NULL)
		{
			bool		fired = timer_fire_next(r, which);

			/* (nothing due: the save still corrects a stale next_due) */
			request_save(r);
			if (fired)
				result = (r->t.next_due <= at) ? STEP_FIRED_MORE : STEP_FIRED;
		}
		approval_spi_finish();
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
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ReThrowError(edata);
		if (*failure != NULL)
		{
			/* not even put off: the next tick tries again */
			ereport(WARNING,
					(errmsg("approval: a deadline of request %lld could not fire, nor be put off",
							(long long) id),
					 errdetail("%s", edata->message)));
			FreeErrorData(edata);
		}
		else
			*failure = edata;
		result = STEP_FAILED;
	}
	PG_END_TRY();
	return result;
}

/*
 * Fire what is due on one request, one deadline at a time, each in its own
 * subtransaction: one that fails is put off with a back-off, and the
 * others still fire.  Returns how many fired.
 */
static int
fire_request(int64 id, TimestampTz at)
{
	int			fired = 0;

	/* each step moves a deadline on, clears it, or puts it off; a guard */
	for (int guard = 0; guard < 64; guard++)
	{
		TimerDue	which;
		ErrorData  *failure = NULL;
		Step		s = step(id, at, &which, &failure);

		if (s == STEP_NOTHING)
			break;
		if (s == STEP_FIRED || s == STEP_FIRED_MORE)
		{
			fired++;
			if (s == STEP_FIRED)
				break;			/* (no step just to find nothing due) */
			continue;
		}
		/* failed: record it and put that deadline off (a second step) */
		s = step(id, at, &which, &failure);
		FreeErrorData(failure);
		if (s != STEP_DEFERRED)
			break;
	}
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

	for (int i = 0; i < n; i++)
		fired += fire_request(ids[i], at);
	approval_spi_finish();
	PG_RETURN_INT32(fired);
}
