/*-------------------------------------------------------------------------
 *
 * calendar.h
 *	  A business calendar as calendar.c parses and caches it, for the
 *	  business time arithmetic of business_time.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APPROVAL_CALENDAR_H
#define APPROVAL_CALENDAR_H

#include "approval.h"

#include "pgtime.h"
#include "utils/date.h"

#define CALENDAR_KEY_LEN (APPROVAL_MAX_NAME_LEN + 1)
#define MINUTES_PER_DAY 1440

typedef struct BusinessCalendar
{
	char		name[CALENDAR_KEY_LEN]; /* hash key */
	pg_tz	   *tz;				/* pg_tzset's, kept for the backend's life */
	int			npairs[7];		/* intervals of each weekday, by j2day() (0 = Sunday) */
	int16	   *mins[7];		/* opening, closing, ...: minutes of the day */
	int			maxpairs;		/* the most intervals of a weekday */
	int			nholidays;
	DateADT    *holidays;		/* sorted */
} BusinessCalendar;

/*
 * A calendar, parsed, from the cache (good until the end of the
 * transaction at least); NULL when there is none, or 42704 if !missing_ok.
 * Connects to SPI by itself when the calendar must be read.
 */
extern const BusinessCalendar *approval_calendar_get(const char *name, bool missing_ok);
extern bool approval_calendar_is_holiday(const BusinessCalendar *cal, DateADT date);

#endif							/* APPROVAL_CALENDAR_H */
