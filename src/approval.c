/*-------------------------------------------------------------------------
 *
 * approval.c
 *	  Module glue: _PG_init and the approval.* settings.
 *
 * The library works both from shared_preload_libraries (where it will also
 * register the background worker) and loaded on first use by CREATE
 * EXTENSION or a function call.
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/varlena.h"

PG_MODULE_MAGIC;

char	   *approval_actor = NULL;
char	   *approval_actor_claim = NULL;
int			approval_notify = APPROVAL_NOTIFY_COMMIT;
int			approval_notify_payload = APPROVAL_PAYLOAD_FULL;
char	   *approval_notify_channel = NULL;
char	   *approval_databases = NULL;
int			approval_tick_interval = 1000;

void		_PG_init(void);

/* approval.notify; "on" and "off" are what it took when it was a boolean */
static const struct config_enum_entry notify_options[] = {
	{"commit", APPROVAL_NOTIFY_COMMIT, false},
	{"relay", APPROVAL_NOTIFY_RELAY, false},
	{"off", APPROVAL_NOTIFY_OFF, false},
	{"on", APPROVAL_NOTIFY_COMMIT, true},
	{"true", APPROVAL_NOTIFY_COMMIT, true},
	{"false", APPROVAL_NOTIFY_OFF, true},
	{"yes", APPROVAL_NOTIFY_COMMIT, true},
	{"no", APPROVAL_NOTIFY_OFF, true},
	{"1", APPROVAL_NOTIFY_COMMIT, true},
	{"0", APPROVAL_NOTIFY_OFF, true},
	{NULL, 0, false}
};

static const struct config_enum_entry payload_options[] = {
	{"full", APPROVAL_PAYLOAD_FULL, false},
	{"minimal", APPROVAL_PAYLOAD_MINIMAL, false},
	{NULL, 0, false}
};

static bool
check_notify_channel(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0')
	{
		GUC_check_errdetail("approval.notify_channel must not be empty.");
		return false;
	}
	if (strlen(*newval) >= NAMEDATALEN)
	{
		GUC_check_errdetail("approval.notify_channel must be shorter than %d bytes.",
							NAMEDATALEN);
		return false;
	}
	return true;
}

static bool
check_databases(char **newval, void **extra, GucSource source)
{
	char	   *raw;
	List	   *names;
	bool		ok;

	if (*newval == NULL)
		return true;
	raw = pstrdup(*newval);
	ok = SplitIdentifierString(raw, ',', &names);
	if (!ok)
		GUC_check_errdetail("approval.databases must be a comma-separated list of database names.");
	list_free(names);
	pfree(raw);
	return ok;
}

void
_PG_init(void)
{
	DefineCustomStringVariable("approval.actor",
							   "Principal the current transaction acts for.",
							   "Honoured only for members of the role approval_gateway; "
							   "set it with SET LOCAL from an application that acts for many people.",
							   &approval_actor,
							   "",
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("approval.actor_claim",
							   "Claim of request.jwt.claims that names the actor (e.g. sub).",
							   "When set, and approval.actor is not, a session whose session user "
							   "is a member of approval_gateway (PostgREST's authenticator) acts for "
							   "the principal that claim of the verified JWT names.  Superuser-set.",
							   &approval_actor_claim,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomEnumVariable("approval.notify",
							 "When events are sent with pg_notify: commit, relay or off.",
							 "commit: by each transaction at its commit, which takes a "
							 "database-wide lock; relay: by the background worker shortly "
							 "after commit; off: never (listeners read approval.events_after()).  "
							 "Superuser-set (ALTER DATABASE/ROLE ... SET), so no user can "
							 "silence the notifications of their own requests.",
							 &approval_notify,
							 APPROVAL_NOTIFY_COMMIT,
							 notify_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomEnumVariable("approval.notify_payload",
							 "What a notification says: full or minimal.",
							 "minimal sends only seq, kind and request: any role can LISTEN, "
							 "so a listener then reads the rest through row-level security.",
							 &approval_notify_payload,
							 APPROVAL_PAYLOAD_FULL,
							 payload_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("approval.notify_channel",
							   "Channel on which events are sent with pg_notify.",
							   NULL,
							   &approval_notify_channel,
							   "approval",
							   PGC_SUSET,
							   0,
							   check_notify_channel, NULL, NULL);

	DefineCustomStringVariable("approval.databases",
							   "Databases in which the background worker runs approval.tick().",
							   "A comma-separated list of database names.",
							   &approval_databases,
							   "postgres",
							   PGC_SIGHUP,
							   GUC_LIST_INPUT,
							   check_databases, NULL, NULL);

	DefineCustomIntVariable("approval.tick_interval",
							"How often the background worker runs approval.tick().",
							"It runs it sooner when a deadline comes due sooner.",
							&approval_tick_interval,
							1000, 10, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("approval.checkpoint_interval",
							"How often the background worker makes a checkpoint of the event log.",
							"Each checkpoint chains a digest of the events since the one before; "
							"0 makes none (approval.checkpoint() still does).",
							&approval_checkpoint_interval,
							60 * 1000, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("approval");
#else
	EmitWarningsOnPlaceholders("approval");
#endif

	approval_horizon_init();
	approval_worker_init();
}
