/*-------------------------------------------------------------------------
 *
 * schedule.c
 *	  pg_cron instead of the background worker (DESIGN §6):
 *	  approval.schedule_with_pg_cron() and approval.unschedule_pg_cron().
 *
 * pg_cron stays optional: nothing in the install script names it, and these
 * functions reach cron.* through SPI only when they run.  pg_cron keeps all
 * its jobs in one database (cron.database_name); the job that ticks a
 * database is named "approval-tick:<database>", so that the jobs of two
 * databases do not replace each other.  Called in the cron database, the
 * functions schedule (or remove) its job there; called anywhere else, they
 * raise object_not_in_prerequisite_state (55000) with the statement to run
 * in the cron database as the hint, since a job for another database can
 * only be made from there.  The functions are SECURITY DEFINER: the job
 * belongs to, and ticks as, the extension's owner.
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"

#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#define TICK_COMMAND	"SELECT approval.tick()"

static ApprovalPlan schedule_plan = {
	"SELECT cron.schedule($1, $2, $3)", 3, {TEXTOID, TEXTOID, TEXTOID}
};
static ApprovalPlan unschedule_plan = {
	"SELECT cron.unschedule(j.jobid) FROM cron.job j"
	" WHERE j.jobname::pg_catalog.text OPERATOR(pg_catalog.=) $1"
	" AND j.username::pg_catalog.text OPERATOR(pg_catalog.=) CURRENT_USER::pg_catalog.text",
	1, {TEXTOID}
};

/*
 * Raise unless pg_cron is loaded, keeps its jobs in this database and is
 * installed here.  "there" is the statement to run in the cron database
 * instead, for the hint.
 */
static void
require_pg_cron_here(const char *dbname, const char *there)
{
	const char *cron_db = GetConfigOption("cron.database_name", true, false);
	bool		installed = OidIsValid(get_extension_oid("pg_cron", true));

	if (cron_db == NULL && !installed)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_cron is not installed"),
				 errdetail("cron.database_name is not set: pg_cron is not in shared_preload_libraries."),
				 errhint("Add pg_cron to shared_preload_libraries, restart, and run CREATE EXTENSION pg_cron "
						 "in the database that cron.database_name names; or let the background worker tick: "
						 "add approval to shared_preload_libraries and this database to approval.databases.")));
	if (cron_db != NULL && strcmp(cron_db, dbname) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_cron keeps its jobs in database \"%s\", not in \"%s\"", cron_db, dbname),
				 errdetail("A pg_cron job for database \"%s\" can only be made in database \"%s\".",
						   dbname, cron_db),
				 errhint("Run this in database \"%s\": %s", cron_db, there)));
	if (!installed)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"pg_cron\" is not installed in database \"%s\"", dbname),
				 errhint("Run CREATE EXTENSION pg_cron in this database (the one cron.database_name names).")));
}

static char *
job_name(const char *dbname)
{
	return psprintf("approval-tick:%s", dbname);
}

PG_FUNCTION_INFO_V1(approval_schedule_with_pg_cron);
Datum
approval_schedule_with_pg_cron(PG_FUNCTION_ARGS)
{
	char	   *schedule = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *dbname = get_database_name(MyDatabaseId);
	char	   *job = job_name(dbname);
	Datum		values[3];
	bool		isnull;
	int64		jobid;

	require_pg_cron_here(dbname,
						 psprintf("SELECT cron.schedule_in_database(%s, %s, %s, %s);",
								  quote_literal_cstr(job), quote_literal_cstr(schedule),
								  quote_literal_cstr(TICK_COMMAND), quote_literal_cstr(dbname)));

	values[0] = CStringGetTextDatum(job);
	values[1] = CStringGetTextDatum(schedule);
	values[2] = CStringGetTextDatum(TICK_COMMAND);
	approval_spi_connect();
	approval_exec(&schedule_plan, values, NULL, false, 0);
	jobid = DatumGetInt64(approval_getdatum(0, 1, &isnull));
	approval_spi_finish();
	PG_RETURN_INT64(jobid);
}

PG_FUNCTION_INFO_V1(approval_unschedule_pg_cron);
Datum
approval_unschedule_pg_cron(PG_FUNCTION_ARGS)
{
	char	   *dbname = get_database_name(MyDatabaseId);
	char	   *job = job_name(dbname);
	Datum		values[1];
	bool		removed = false;
	int			n;

	require_pg_cron_here(dbname,
						 psprintf("SELECT cron.unschedule(%s);", quote_literal_cstr(job)));

	values[0] = CStringGetTextDatum(job);
	approval_spi_connect();
	n = approval_exec(&unschedule_plan, values, NULL, false, 0);
	for (int i = 0; i < n; i++)
		removed |= approval_getbool(i, 1);
	approval_spi_finish();
	PG_RETURN_BOOL(removed);
}
