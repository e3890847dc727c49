/*-------------------------------------------------------------------------
 *
 * calendar.c
 *	  Business calendars (DESIGN §6): the check of approval.calendar's rows
 *	  and the per-backend cache of parsed calendars.  The arithmetic on them
 *	  is business_time.c's.
 *
 * A row is checked as it is written (the calendar_check trigger), names the
 * key at fault, and is never changed.  The cache holds calendars parsed
 * once, keyed by name.  It is dropped on any invalidation of
 * approval.calendar, which its calendar_changed trigger sends, and each
 * look-up first takes in the invalidations committed by other sessions.
 * Loading a calendar runs one query, which reads the row as last committed,
 * in an SPI connection of its own (nested when the caller is connected,
 * whose connection and SPI_tuptable SPI_finish gives back as they were).
 *
 *-------------------------------------------------------------------------
 */
#include "calendar.h"

#include <ctype.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

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
parse_day(const char *calname, BusinessCalendar *cal, int day, JsonbValue *v)
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
parse_hours(const char *calname, BusinessCalendar *cal, Jsonb *hours)
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
parse_holidays(const char *calname, BusinessCalendar *cal, ArrayType *arr)
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
calendar_parse(BusinessCalendar *cal, const char *name, const char *zone, Jsonb *hours,
			   ArrayType *holidays)
{
	size_t		len = strlen(name);

	if (len == 0 || len > APPROVAL_MAX_NAME_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a calendar's name must have 1 to %d bytes", APPROVAL_MAX_NAME_LEN)));
	memset(cal, 0, sizeof(BusinessCalendar));
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
	BusinessCalendar cal;

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
	ctl.keysize = CALENDAR_KEY_LEN;
	ctl.entrysize = sizeof(BusinessCalendar);
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

/* A calendar, parsed; see calendar.h */
const BusinessCalendar *
approval_calendar_get(const char *name, bool missing_ok)
{
	BusinessCalendar *cal;
	BusinessCalendar parsed;
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
		return copy_to(CurrentMemoryContext, &parsed, sizeof(BusinessCalendar));
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
	return approval_calendar_get(name, true) != NULL;
}

/* Is a local date one of the calendar's holidays? */
bool
approval_calendar_is_holiday(const BusinessCalendar *cal, DateADT date)
{
	return cal->nholidays > 0 &&
		bsearch(&date, cal->holidays, cal->nholidays, sizeof(DateADT), holiday_cmp) != NULL;
}

