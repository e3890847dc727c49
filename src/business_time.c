/*-------------------------------------------------------------------------
 *
 * business_time.c
 *	  Business time arithmetic on a calendar (DESIGN §6): business_add()
 *	  and business_elapsed(), for SQL and for the timer.
 *
 * Business time is the union of a calendar's intervals.  Each local date of
 * the calendar's time zone has the intervals of its weekday (none on a
 * holiday); an interval runs between the instants that its wall clock times
 * name on that date (DetermineTimeZoneOffset, as "timestamp AT TIME ZONE"
 * does), so a day across a DST change has its real length.  B(t), the
 * business time up to t, rises inside the intervals and stands still
 * between them.  Every result is the earliest instant with the B it needs:
 * an interval's end rather than the next opening.  elapsed(s, t) is
 * B(t) - B(s), so add(s, elapsed(s, t)) = t for every t after s at which B
 * has just risen.  The calendar comes parsed from calendar.c's cache, and
 * no query runs here: a day costs a few conversions of wall clock times.
 * doc/approval.md, "Business time arithmetic", is the contract.
 *
 *-------------------------------------------------------------------------
 */
#include "calendar.h"

#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"

/* how many days in a row without business time a search walks before it gives up */
#define CAL_SEARCH_DAYS 3660

/* The intervals of one local date as instants, and their business time */
typedef struct DaySpans
{
	int			n;
	TimestampTz *s;
	TimestampTz *e;
	int64		total;
} DaySpans;

/* ---------- local dates and instants ---------- */

static void
out_of_range(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
			 errmsg("timestamp out of range")));
}

/* the instant of a wall clock time (minutes, 24:00 included) of a local date */
static TimestampTz
wall_instant(const BusinessCalendar *cal, int32 date, int minute)
{
	struct pg_tm tm;
	int			tz;
	TimestampTz t;

	if (minute >= MINUTES_PER_DAY)
	{
		date++;
		minute -= MINUTES_PER_DAY;
	}
	memset(&tm, 0, sizeof(tm));
	j2date(date + POSTGRES_EPOCH_JDATE, &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
	tm.tm_hour = minute / 60;
	tm.tm_min = minute % 60;
	tz = DetermineTimeZoneOffset(&tm, cal->tz);
	if (tm2timestamp(&tm, 0, &tz, &t) != 0)
		out_of_range();
	return t;
}

/* the local date of an instant */
static int32
local_date(const BusinessCalendar *cal, TimestampTz t)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;

	if (timestamp2tm(t, &tz, &tm, &fsec, NULL, cal->tz) != 0)
		out_of_range();
	return date2j(tm.tm_year, tm.tm_mon, tm.tm_mday) - POSTGRES_EPOCH_JDATE;
}

static void
spans_init(const BusinessCalendar *cal, DaySpans *d)
{
	d->s = palloc(sizeof(TimestampTz) * cal->maxpairs);
	d->e = palloc(sizeof(TimestampTz) * cal->maxpairs);
}

/*
 * The intervals of a local date as instants.  Where a DST change makes an
 * interval begin before the one before it ends, or end before it begins, it
 * is cut to what follows that one (possibly to nothing), so that the spans
 * stay in order.
 */
static void
day_spans(const BusinessCalendar *cal, int32 date, DaySpans *d)
{
	int			wd = j2day(date + POSTGRES_EPOCH_JDATE);
	const int16 *m = cal->mins[wd];

	CHECK_FOR_INTERRUPTS();
	d->n = 0;
	d->total = 0;
	if (date >= TIMESTAMP_END_JULIAN - POSTGRES_EPOCH_JDATE)
		out_of_range();
	if (cal->npairs[wd] == 0 || approval_calendar_is_holiday(cal, date))
		return;
	for (int i = 0; i < cal->npairs[wd]; i++)
	{
		TimestampTz s = wall_instant(cal, date, m[2 * i]);
		TimestampTz e = wall_instant(cal, date, m[2 * i + 1]);

		if (d->n > 0 && s < d->e[d->n - 1])
			s = d->e[d->n - 1];
		if (e <= s)
			continue;
		d->s[d->n] = s;
		d->e[d->n] = e;
		d->n++;
		d->total += e - s;
	}
}

/* another day without business time in a search that began at "from" */
static void
count_idle(const BusinessCalendar *cal, int *idle, int32 from)
{
	int			y,
				m,
				d;

	if (++*idle <= CAL_SEARCH_DAYS)
		return;
	j2date(from + POSTGRES_EPOCH_JDATE, &y, &m, &d);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("calendar \"%s\" has no business hours in the %d days after %04d-%02d-%02d",
					cal->name, CAL_SEARCH_DAYS, y, m, d),
			 errhint("Look at the holidays of the calendar in approval.calendar.")));
}


/* ---------- business time ---------- */

/* The earliest instant by which "amount" (> 0) of business time has passed since p */
static TimestampTz
consume(const BusinessCalendar *cal, TimestampTz p, int64 amount, DaySpans *d)
{
	int32		date = local_date(cal, p);
	int32		from = date;
	int			idle = 0;

	for (;; date++)
	{
		day_spans(cal, date, d);
		for (int i = 0; i < d->n; i++)
		{
			TimestampTz start;

			if (d->e[i] <= p)
				continue;
			start = Max(d->s[i], p);
			if (amount <= d->e[i] - start)
				return start + amount;
			amount -= d->e[i] - start;
			idle = 0;
		}
		if (d->total == 0)
			count_idle(cal, &idle, from);
	}
}

/*
 * The business day of the first business instant at or after t, and in
 * *offset the business time from that day's opening to that instant; d is
 * left with that day's spans.
 */
static int32
business_position(const BusinessCalendar *cal, TimestampTz t, DaySpans *d, int64 *offset)
{
	int32		date = local_date(cal, t);
	int32		from = date;
	int			idle = 0;

	for (;; date++)
	{
		int64		o = 0;

		day_spans(cal, date, d);
		for (int i = 0; i < d->n; i++)
		{
			if (d->e[i] > t)
			{
				*offset = o + Max(0, t - d->s[i]);
				return date;
			}
			o += d->e[i] - d->s[i];
		}
		if (d->total == 0)
			count_idle(cal, &idle, from);
	}
}

/* the next business day after date; d is left with its spans */
static int32
next_business_day(const BusinessCalendar *cal, int32 date, DaySpans *d)
{
	int32		from = date;
	int			idle = 0;

	for (;;)
	{
		day_spans(cal, ++date, d);
		if (d->total > 0)
			return date;
		count_idle(cal, &idle, from);
	}
}

/* business_add() of DESIGN §6; see doc/approval.md "Business time arithmetic" */
TimestampTz
approval_business_add(const char *calendar, TimestampTz start, const Interval *amount)
{
	const BusinessCalendar *cal = approval_calendar_get(calendar, false);
	DaySpans	d;
	TimestampTz result = start;

	if (amount->month != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a business time amount cannot have months or years"),
				 errdetail("The amount was %s.",
						   DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(amount)))),
				 errhint("Give the amount in business days and hours, such as '20 days' instead of '1 month'.")));
	if (amount->day < 0 || amount->time < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a business time amount cannot be negative"),
				 errdetail("The amount was %s.",
						   DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(amount)))),
				 errhint("Give a start and an amount of zero or more days and hours.")));
	if (TIMESTAMP_NOT_FINITE(start) || (amount->day == 0 && amount->time == 0))
		return start;

	spans_init(cal, &d);
	if (amount->day > 0)
	{
		int64		offset;
		int32		date = business_position(cal, start, &d, &offset);
		TimestampTz prev_end = 0;

		/* d has the spans of date, the business day where the count starts */
		for (int k = 0; k < amount->day; k++)
		{
			prev_end = d.e[d.n - 1];
			date = next_business_day(cal, date, &d);
		}
		if (offset == 0)
			result = prev_end;	/* the same business instant as d's opening */
		else if (offset >= d.total)
			result = d.e[d.n - 1];
		else
		{
			for (int i = 0; i < d.n; i++)
			{
				if (offset <= d.e[i] - d.s[i])
				{
					result = d.s[i] + offset;
					break;
				}
				offset -= d.e[i] - d.s[i];
			}
		}
	}
	if (amount->time > 0)
		result = consume(cal, result, amount->time, &d);
	return result;
}

/* business time in [since, until), since <= until */
static int64
elapsed_forward(const BusinessCalendar *cal, TimestampTz since, TimestampTz until)
{
	DaySpans	d;
	int64		sum = 0;
	int32		last = local_date(cal, until);

	spans_init(cal, &d);
	for (int32 date = local_date(cal, since); date <= last; date++)
	{
		day_spans(cal, date, &d);
		for (int i = 0; i < d.n; i++)
		{
			TimestampTz lo = Max(d.s[i], since);
			TimestampTz hi = Min(d.e[i], until);

			if (hi > lo)
				sum += hi - lo;
		}
	}
	return sum;
}

int64
approval_business_elapsed(const char *calendar, TimestampTz since, TimestampTz until)
{
	const BusinessCalendar *cal = approval_calendar_get(calendar, false);

	if (TIMESTAMP_NOT_FINITE(since) || TIMESTAMP_NOT_FINITE(until))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("business time to or from infinity cannot be measured"),
				 errhint("Give two finite timestamps.")));
	if (until < since)
		return -elapsed_forward(cal, until, since);
	return elapsed_forward(cal, since, until);
}


/* ---------- SQL ---------- */

/* business_add(start timestamptz, amount interval, calendar text) */
PG_FUNCTION_INFO_V1(approval_business_add_fn);
Datum
approval_business_add_fn(PG_FUNCTION_ARGS)
{
	TimestampTz start = PG_GETARG_TIMESTAMPTZ(0);
	Interval   *amount = PG_GETARG_INTERVAL_P(1);
	char	   *calendar = text_to_cstring(PG_GETARG_TEXT_PP(2));

	PG_RETURN_TIMESTAMPTZ(approval_business_add(calendar, start, amount));
}

/* business_elapsed(since timestamptz, until timestamptz, calendar text) */
PG_FUNCTION_INFO_V1(approval_business_elapsed_fn);
Datum
approval_business_elapsed_fn(PG_FUNCTION_ARGS)
{
	TimestampTz since = PG_GETARG_TIMESTAMPTZ(0);
	TimestampTz until = PG_GETARG_TIMESTAMPTZ(1);
	char	   *calendar = text_to_cstring(PG_GETARG_TEXT_PP(2));
	Interval   *result = palloc0(sizeof(Interval));

	result->time = approval_business_elapsed(calendar, since, until);
	PG_RETURN_INTERVAL_P(result);
}
