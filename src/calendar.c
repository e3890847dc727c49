/*-------------------------------------------------------------------------
 *
 * calendar.c
 *	  Business calendars (DESIGN §6): the check of approval.calendar's rows,
 *	  the per-backend cache of parsed calendars, and business time
 *	  arithmetic, business_add() and business_elapsed().
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
 * has just risen.
 *
 * The cache holds calendars parsed once, keyed by name.  It is dropped on
 * any invalidation of approval.calendar, which its calendar_changed trigger
 * sends, and each look-up first takes in the invalidations committed by
 * other sessions.  Loading a calendar runs one query, which reads the row
 * as last committed, in an SPI connection of its own (nested when the
 * caller is connected, whose connection and SPI_tuptable SPI_finish gives
 * back as they were); the arithmetic runs no query at all.
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"

#include <ctype.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#define CAL_KEY_LEN (APPROVAL_MAX_NAME_LEN + 1)
#define MINUTES_PER_DAY 1440
/* how many days in a row without business time a search walks before it gives up */
#define CAL_SEARCH_DAYS 3660

#define HOURS_HINT \
	"hours is an object of weekdays (mon, tue, wed, thu, fri, sat, sun), each null or an array " \
	"of opening and closing times \"HH:MM\" in increasing order, " \
	"such as {\"mon\": [\"09:00\", \"12:00\", \"13:00\", \"17:00\"], \"sat\": null}."
#define ZONE_HINT \
	"Use a name of the time zone database, such as Europe/Berlin; " \
	"SELECT name FROM pg_timezone_names lists them."
#define HOLIDAYS_HINT "holidays is an array of dates, such as '{2026-12-25,2026-12-26}'."

/* keys of "hours", by j2day() (0 = Sunday) */
static const char *const day_keys[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

typedef struct Calendar
{
	char		name[CAL_KEY_LEN];	/* hash key */
	pg_tz	   *tz;				/* pg_tzset's, kept for the backend's life */
	int			npairs[7];		/* intervals of each weekday, by j2day() */
	int16	   *mins[7];		/* opening, closing, ...: minutes of the day */
	int			maxpairs;
	int			nholidays;
	DateADT    *holidays;		/* sorted */
} Calendar;

/* The intervals of one local date as instants, and their business time */
typedef struct DaySpans
{
	int			n;
	TimestampTz *s;
	TimestampTz *e;
	int64		total;
} DaySpans;


/* ---------- checking a calendar ---------- */

static void cal_error(const char *calname, const char *detail, const char *hint,
					  const char *fmt,...) pg_attribute_printf(4, 5) pg_attribute_noreturn();

/* 22023 'calendar "<name>": <message>' */
static void
cal_error(const char *calname, const char *detail, const char *hint, const char *fmt,...)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("calendar \"%s\": %s", calname, buf.data),
			 detail ? errdetail("%s", detail) : 0,
			 errhint("%s", hint)));
}

/* Is the zone, named with a digit, a file of the time zone database? */
static bool
zone_in_database(const char *zone)
{
	pg_tzenum  *dir = pg_tzenumerate_start();
	pg_tz	   *tz;
	bool		found = false;

	while (!found && (tz = pg_tzenumerate_next(dir)) != NULL)
		found = pg_strcasecmp(pg_get_timezone_name(tz), zone) == 0;
	pg_tzenumerate_end(dir);
	return found;
}

/*
 * A name of the time zone database, in any case (as SET TIME ZONE takes
 * it).  pg_tzset() also takes POSIX rules such as "FOO5BAR", which carry no
 * history of their zone: those are refused.  Every POSIX rule has a digit
 * (its offset), so only names with one are looked up in the database.
 */
static pg_tz *
parse_zone(const char *calname, const char *zone)
{
	pg_tz	   *tz = zone[0] ? pg_tzset(zone) : NULL;

	if (tz == NULL)
		cal_error(calname, NULL, ZONE_HINT, "time zone \"%s\" is not known", zone);
	if (!pg_tz_acceptable(tz))
		cal_error(calname, "PostgreSQL does not support leap seconds.", ZONE_HINT,
				  "time zone \"%s\" uses leap seconds", zone);
	if (strpbrk(zone, "0123456789") != NULL && !zone_in_database(zone))
		cal_error(calname, NULL, ZONE_HINT,
				  "time zone \"%s\" is a POSIX rule, not a name of the time zone database", zone);
	return tz;
}

/* "HH:MM" to minutes; -1 when not of that form, -2 when out of 00:00..24:00 */
static int
parse_hhmm(const char *s, int len)
{
	int			h,
				m;

	if (len != 5 || s[2] != ':' ||
		!isdigit((unsigned char) s[0]) || !isdigit((unsigned char) s[1]) ||
		!isdigit((unsigned char) s[3]) || !isdigit((unsigned char) s[4]))
		return -1;
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	if (m > 59 || h > 24 || (h == 24 && m != 0))
		return -2;
	return h * 60 + m;
}

/* one weekday of "hours": null or an array of pairs of times */
static void
parse_day(const char *calname, Calendar *cal, int day, JsonbValue *v)
{
	const char *key = day_keys[day];
	JsonbContainer *c;
	int			n;
	int16	   *mins;

	if (v->type == jbvNull)
		return;
	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data) ||
		JsonContainerIsScalar(v->val.binary.data))
		cal_error(calname, NULL, HOURS_HINT,
				  "hours.%s must be an array of times \"HH:MM\" or null", key);
	c = v->val.binary.data;
	n = JsonContainerSize(c);
	if (n % 2 != 0)
		cal_error(calname, "Each opening time needs its closing time.", HOURS_HINT,
				  "hours.%s has an odd number of times (%d)", key, n);
	mins = palloc(sizeof(int16) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		JsonbValue *t = getIthJsonbValueFromContainer(c, i);
		char	   *s;
		int			m;

		if (t->type != jbvString)
			cal_error(calname, NULL, HOURS_HINT, "hours.%s[%d] is not a string \"HH:MM\"", key, i);
		s = pnstrdup(t->val.string.val, t->val.string.len);
		m = parse_hhmm(s, t->val.string.len);
		if (m == -1)
			cal_error(calname, NULL, HOURS_HINT,
					  "hours.%s[%d] \"%s\" is not a time of the form HH:MM", key, i, s);
		if (m == -2)
			cal_error(calname, NULL, HOURS_HINT,
					  "hours.%s[%d] \"%s\" is not a time between 00:00 and 24:00", key, i, s);
		if (i % 2 == 0 && m == MINUTES_PER_DAY)
			cal_error(calname, "24:00 is the end of the day: it can only close an interval.", HOURS_HINT,
					  "hours.%s[%d] \"%s\" cannot open an interval", key, i, s);
		if (i % 2 == 1 && m <= mins[i - 1])
			cal_error(calname, psprintf("The interval opens at %02d:%02d.", mins[i - 1] / 60, mins[i - 1] % 60),
					  HOURS_HINT, "hours.%s[%d] \"%s\" does not close after the opening before it", key, i, s);
		if (i % 2 == 0 && i > 0 && m < mins[i - 1])
			cal_error(calname, psprintf("The interval before it closes at %02d:%02d.", mins[i - 1] / 60, mins[i - 1] % 60),
					  HOURS_HINT, "hours.%s[%d] \"%s\" is before the end of the interval before it", key, i, s);
		mins[i] = (int16) m;
	}
	cal->npairs[day] = n / 2;
	cal->mins[day] = mins;
	cal->maxpairs = Max(cal->maxpairs, n / 2);
}

static void
parse_hours(const char *calname, Calendar *cal, Jsonb *hours)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			total = 0;

	if (!JB_ROOT_IS_OBJECT(hours))
		cal_error(calname, NULL, HOURS_HINT, "hours must be a JSON object");
	it = JsonbIteratorInit(&hours->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		int			day;

		if (tok != WJB_KEY)
			continue;
		for (day = 0; day < 7; day++)
			if (v.val.string.len == 3 && memcmp(v.val.string.val, day_keys[day], 3) == 0)
				break;
		if (day == 7)
			cal_error(calname, NULL, "The keys of hours are mon, tue, wed, thu, fri, sat and sun, in lower case.",
					  "hours has an unknown key \"%s\"", pnstrdup(v.val.string.val, v.val.string.len));
		if (JsonbIteratorNext(&it, &v, true) != WJB_VALUE)
			elog(ERROR, "approval: a jsonb key without its value");
		parse_day(calname, cal, day, &v);
		total += cal->npairs[day];
	}
	if (total == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("calendar \"%s\" has no business hours in the week", calname),
				 errhint("Give at least one weekday an interval, such as \"mon\": [\"09:00\", \"17:00\"].")));
}

static int
holiday_cmp(const void *a, const void *b)
{
	DateADT		x = *(const DateADT *) a;
	DateADT		y = *(const DateADT *) b;

	return (x > y) - (x < y);
}

static void
parse_holidays(const char *calname, Calendar *cal, ArrayType *arr)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			lb = ARR_NDIM(arr) == 1 ? ARR_LBOUND(arr)[0] : 1;

	if (ARR_NDIM(arr) > 1)
		cal_error(calname, NULL, HOLIDAYS_HINT, "holidays must be a one-dimensional array of dates");
	deconstruct_array(arr, DATEOID, sizeof(DateADT), true, TYPALIGN_INT, &elems, &nulls, &n);
	cal->holidays = palloc(sizeof(DateADT) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			cal_error(calname, NULL, HOLIDAYS_HINT, "holidays[%d] is NULL", lb + i);
		cal->holidays[i] = DatumGetDateADT(elems[i]);
		if (DATE_NOT_FINITE(cal->holidays[i]))
			cal_error(calname, NULL, HOLIDAYS_HINT, "holidays[%d] is not a finite date", lb + i);
	}
	qsort(cal->holidays, n, sizeof(DateADT), holiday_cmp);
	cal->nholidays = n;
}

/* Check a calendar and parse it, in CurrentMemoryContext */
static void
calendar_parse(Calendar *cal, const char *name, const char *zone, Jsonb *hours,
			   ArrayType *holidays)
{
	size_t		len = strlen(name);

	if (len == 0 || len > APPROVAL_MAX_NAME_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a calendar's name must have 1 to %d bytes", APPROVAL_MAX_NAME_LEN)));
	memset(cal, 0, sizeof(Calendar));
	memcpy(cal->name, name, len + 1);
	cal->tz = parse_zone(name, zone);
	parse_hours(name, cal, hours);
	parse_holidays(name, cal, holidays);
}

/*
 * calendar_check(): BEFORE INSERT OR UPDATE row trigger of approval.calendar.
 * A NULL column is left to its NOT NULL constraint.
 */
PG_FUNCTION_INFO_V1(approval_calendar_check);
Datum
approval_calendar_check(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	HeapTuple	tuple;
	TupleDesc	desc;
	Datum		v[4];
	bool		isnull[4];
	static const char *const cols[4] = {"name", "timezone", "hours", "holidays"};
	Calendar	cal;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) || TRIGGER_FIRED_BY_DELETE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("approval.calendar_check() must be called as a BEFORE INSERT OR UPDATE row trigger")));
	tuple = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	desc = RelationGetDescr(td->tg_relation);
	for (int i = 0; i < 4; i++)
	{
		v[i] = heap_getattr(tuple, SPI_fnumber(desc, cols[i]), desc, &isnull[i]);
		if (isnull[i])
			return PointerGetDatum(tuple);
	}
	calendar_parse(&cal, TextDatumGetCString(v[0]), TextDatumGetCString(v[1]),
				   DatumGetJsonbP(v[2]), DatumGetArrayTypeP(v[3]));
	return PointerGetDatum(tuple);
}

/* calendar_changed(): statement trigger, so that every session drops its cache */
PG_FUNCTION_INFO_V1(approval_calendar_changed);
Datum
approval_calendar_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("approval.calendar_changed() must be called as a trigger")));
	CacheInvalidateRelcacheByRelid(approval_relid("calendar"));
	return PointerGetDatum(NULL);
}


/* ---------- the cache ---------- */

static MemoryContext cal_cxt = NULL;
static HTAB *cal_hash = NULL;
static Oid	cal_relid = InvalidOid; /* approval.calendar the cache is of */
static bool cal_callback = false;

static void
cal_invalidate(Datum arg, Oid relid)
{
	if (OidIsValid(relid) && relid != cal_relid)
		return;
	/* what is in use goes on living until the transaction ends */
	approval_retire_context(&cal_cxt);
	cal_hash = NULL;
}

static void
cal_cache_ready(void)
{
	Oid			relid;
	HASHCTL		ctl;

	if (!cal_callback)
	{
		CacheRegisterRelcacheCallback(cal_invalidate, (Datum) 0);
		cal_callback = true;
	}
	/* first use, or the extension was dropped and created again */
	relid = approval_relid("calendar");
	if (relid != cal_relid)
	{
		cal_invalidate((Datum) 0, InvalidOid);
		cal_relid = relid;
	}
	if (cal_hash != NULL)
		return;
	cal_cxt = AllocSetContextCreate(CacheMemoryContext, "approval calendar cache",
									ALLOCSET_SMALL_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = CAL_KEY_LEN;
	ctl.entrysize = sizeof(Calendar);
	ctl.hcxt = cal_cxt;
	cal_hash = hash_create("approval calendars", 16, &ctl,
						   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
}

static ApprovalPlan load_calendar_plan = {
	"SELECT timezone, hours, holidays FROM approval.calendar WHERE name OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}
};

/* a varlena column, detoasted, in the caller's context (it outlives SPI_finish) */
static void *
spi_varlena(int col)
{
	bool		isnull;
	struct varlena *v = PG_DETOAST_DATUM(approval_getdatum(0, col, &isnull));
	void	   *copy = SPI_palloc(VARSIZE(v));

	memcpy(copy, v, VARSIZE(v));
	return copy;
}

/*
 * Read a calendar's row, in an SPI connection of its own; false if there is
 * none.  It is read as last committed (and as this transaction has changed
 * it), with a snapshot taken after the invalidations were taken in, not
 * with the caller's: a caller's older snapshot (REPEATABLE READ, or a
 * statement that began before another session's commit) would put a row in
 * the cache whose invalidation has already come and gone.
 */
static bool
calendar_read(const char *name, char **zone, Jsonb **hours, ArrayType **holidays)
{
	Datum		arg = CStringGetTextDatum(name);
	bool		found;
	int			rc;

	approval_spi_connect();
	approval_exec_prepare(&load_calendar_plan);
	rc = SPI_execute_snapshot(load_calendar_plan.plan, &arg, NULL, GetLatestSnapshot(),
							  InvalidSnapshot, true, false, 1);
	if (rc != SPI_OK_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("approval: statement failed: %s", SPI_result_code_string(rc)),
				 errdetail("Statement: %s", load_calendar_plan.sql)));
	found = SPI_processed == 1;
	if (found)
	{
		*zone = approval_gettext(0, 1);
		*hours = (Jsonb *) spi_varlena(2);
		*holidays = (ArrayType *) spi_varlena(3);
	}
	approval_spi_finish();
	return found;
}

static void *
copy_to(MemoryContext cxt, const void *p, Size size)
{
	void	   *copy = MemoryContextAlloc(cxt, Max(size, 1));

	memcpy(copy, p, size);
	return copy;
}

/* A calendar, parsed; NULL when there is none (or an error if !missing_ok) */
static const Calendar *
calendar_get(const char *name, bool missing_ok)
{
	Calendar   *cal;
	Calendar	parsed;
	bool		found;
	char	   *zone;
	Jsonb	   *hours;
	ArrayType  *holidays;
	MemoryContext cxt;

	AcceptInvalidationMessages();
	cal_cache_ready();
	if (strlen(name) <= APPROVAL_MAX_NAME_LEN)
	{
		cal = hash_search(cal_hash, name, HASH_FIND, &found);
		if (found)
			return cal;
	}
	cxt = cal_cxt;
	if (strlen(name) > APPROVAL_MAX_NAME_LEN || !calendar_read(name, &zone, &hours, &holidays))
	{
		if (missing_ok)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("calendar \"%s\" does not exist", name),
				 errhint("SELECT name FROM approval.calendar lists the calendars; "
						 "an admin adds one with INSERT INTO approval.calendar.")));
	}
	calendar_parse(&parsed, name, zone, hours, holidays);

	/*
	 * Keep it only if no invalidation came while it was read; otherwise it is
	 * good for this call only.
	 */
	if (cxt != cal_cxt)
		return copy_to(CurrentMemoryContext, &parsed, sizeof(Calendar));
	cal = hash_search(cal_hash, name, HASH_ENTER, &found);
	*cal = parsed;
	for (int d = 0; d < 7; d++)
		if (parsed.npairs[d] > 0)
			cal->mins[d] = copy_to(cal_cxt, parsed.mins[d], sizeof(int16) * 2 * parsed.npairs[d]);
	cal->holidays = copy_to(cal_cxt, parsed.holidays, sizeof(DateADT) * parsed.nholidays);
	return cal;
}

bool
approval_calendar_exists(const char *name)
{
	return calendar_get(name, true) != NULL;
}


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
wall_instant(const Calendar *cal, int32 date, int minute)
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
local_date(const Calendar *cal, TimestampTz t)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;

	if (timestamp2tm(t, &tz, &tm, &fsec, NULL, cal->tz) != 0)
		out_of_range();
	return date2j(tm.tm_year, tm.tm_mon, tm.tm_mday) - POSTGRES_EPOCH_JDATE;
}

static bool
is_holiday(const Calendar *cal, DateADT date)
{
	return cal->nholidays > 0 &&
		bsearch(&date, cal->holidays, cal->nholidays, sizeof(DateADT), holiday_cmp) != NULL;
}

static void
spans_init(const Calendar *cal, DaySpans *d)
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
day_spans(const Calendar *cal, int32 date, DaySpans *d)
{
	int			wd = j2day(date + POSTGRES_EPOCH_JDATE);
	const int16 *m = cal->mins[wd];

	d->n = 0;
	d->total = 0;
	if (date >= TIMESTAMP_END_JULIAN - POSTGRES_EPOCH_JDATE)
		out_of_range();
	if (cal->npairs[wd] == 0 || is_holiday(cal, date))
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
count_idle(const Calendar *cal, int *idle, int32 from)
{
	int			y,
				m,
				d;

	CHECK_FOR_INTERRUPTS();
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
consume(const Calendar *cal, TimestampTz p, int64 amount, DaySpans *d)
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
business_position(const Calendar *cal, TimestampTz t, DaySpans *d, int64 *offset)
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
next_business_day(const Calendar *cal, int32 date, DaySpans *d)
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
	const Calendar *cal = calendar_get(calendar, false);
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
elapsed_forward(const Calendar *cal, TimestampTz since, TimestampTz until)
{
	DaySpans	d;
	int64		sum = 0;
	int32		last = local_date(cal, until);

	spans_init(cal, &d);
	for (int32 date = local_date(cal, since); date <= last; date++)
	{
		CHECK_FOR_INTERRUPTS();
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
	const Calendar *cal = calendar_get(calendar, false);

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
