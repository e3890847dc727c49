/*-------------------------------------------------------------------------
 *
 * follow.c
 *	  The protocol of approval_listen on one connection (DESIGN §7).
 *
 *	  1. Check that the extension is there and that the role may call
 *		 events_after() and ack() (else exit 1: reconnecting cannot help).
 *	  2. LISTEN on approval.notify_channel, *before* reading the log: an
 *		 event committed after that is notified, one committed before is
 *		 returned by the next events_after().
 *	  3. Read the cursor: approval.subscriber.last_seq (0 without a row).
 *	  4. Call events_after(cursor, batch); handle the rows in order: those
 *		 that the filters leave out are only acked; the others are printed
 *		 (one line each, the text of event_json(), then one fflush and one
 *		 ack for the batch) or given to the command (one ack per event,
 *		 after it exited 0; a failing command runs again, with back-off,
 *		 for the same event, which is never skipped).
 *	  5. When a call returns fewer than batch rows, wait on the socket for
 *		 a notification naming a later seq, or --poll, and go to 4.  The
 *		 notification only wakes the loop: the rows always come from
 *		 events_after(), which holds back the events of transactions still
 *		 running, so following the last seq returned misses nothing.  A
 *		 notified seq that the call did not return is such a held-back
 *		 event: then look again after 10 ms, doubling up to --poll, since
 *		 the transaction holding it back may end without notifying.
 *
 * Every event is handled at least once: it is acked only after it was
 * handled.  It is handled twice only when the program or its connection
 * ends between handling and ack (at most one batch when printing, one
 * event with --exec).
 *
 * Every query waits through wait_for() (wait.c), so that a signal ends it;
 * every name in them is schema-qualified.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "listen.h"

#define EVENTS_SQL \
	"SELECT e.seq, e.kind, pg_catalog.json_extract_path_text(j.doc, 'workflow'), j.doc " \
	"  FROM approval.events_after($1::pg_catalog.int8, $2::pg_catalog.int4) AS e, " \
	"       LATERAL approval.event_json(e) AS j(doc) " \
	" ORDER BY e.seq"

#define ACK_SQL "SELECT approval.ack($1::pg_catalog.text, $2::pg_catalog.int8)"

#define CURSOR_SQL \
	"SELECT s.last_seq FROM approval.subscriber AS s " \
	" WHERE s.name OPERATOR(pg_catalog.=) $1::pg_catalog.text"

#define EXTENSION_SQL \
	"SELECT e.extversion, pg_catalog.current_setting('approval.notify_channel', true), " \
	"       pg_catalog.current_database(), CURRENT_USER " \
	"  FROM (SELECT) AS one " \
	"  LEFT JOIN pg_catalog.pg_extension AS e ON e.extname OPERATOR(pg_catalog.=) 'approval'"

#define SCHEMA_SQL "SELECT pg_catalog.has_schema_privilege('approval', 'USAGE')"

#define RIGHTS_SQL \
	"SELECT pg_catalog.has_function_privilege('approval.events_after(bigint, integer)', 'EXECUTE'), " \
	"       pg_catalog.has_function_privilege('approval.ack(text, bigint)', 'EXECUTE'), " \
	"       pg_catalog.has_table_privilege('approval.subscriber', 'SELECT'), " \
	"       pg_catalog.to_regprocedure('approval.event_json(approval.event)') IS NOT NULL"

#define ROLE_HINT "Connect as a role that is a member of approval_gateway or approval_admin."

/* the SQLSTATE classes and codes after which reconnecting may help */
static bool
transient_sqlstate(const char *state)
{
	static const char *const prefixes[] = {
		"08",					/* connection exception */
		"40",					/* transaction rollback: serialization, deadlock */
		"53",					/* insufficient resources */
		"57P",					/* admin or crash shutdown, cannot connect now */
		"57014",				/* query canceled (statement_timeout, a cancel) */
		"55P03",				/* lock not available */
		"58",					/* system error (I/O) */
		NULL
	};

	if (state == NULL)
		return true;			/* an error of libpq's own: the connection */
	for (int i = 0; prefixes[i] != NULL; i++)
		if (strncmp(state, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

/*
 * A query failed: say so, and whether reconnecting may help.  Errors that
 * reconnecting cannot fix (a missing function, permission denied) are fatal.
 */
static ListenStep
query_failed(PGconn *conn, const char *what, const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;

	if (msg == NULL)
		msg = trim_message(PQerrorMessage(conn));
	log_error("%s: %s", what, msg);
	if (PQstatus(conn) == CONNECTION_BAD || transient_sqlstate(state))
		return STEP_LOST;
	if (detail)
		log_hint("detail: %s", detail);
	if (hint)
		log_hint("hint: %s", hint);
	else if (strcmp(state, "42501") == 0)
		log_hint("hint: %s", ROLE_HINT);
	else if (strcmp(state, "42883") == 0 || strcmp(state, "42P01") == 0 ||
			 strcmp(state, "3F000") == 0)
		log_hint("hint: Install or update the extension: CREATE EXTENSION approval, or ALTER EXTENSION approval UPDATE.");
	return STEP_FATAL;
}

/*
 * Run one statement and wait for its result through wait_for().  On
 * STEP_OK, *result is the result to PQclear; otherwise the failure was
 * reported (except STEP_STOP: a signal, the query abandoned).
 */
static ListenStep
run_query(PGconn *conn, const char *what, const char *sql,
		  int nparams, const char *const *params, PGresult **result)
{
	PGresult   *res;
	PGresult   *keep = NULL;
	ListenStep	step;

	*result = NULL;
	if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0))
		return query_failed(conn, what, NULL);

	for (;;)
	{
		while (PQisBusy(conn))
		{
			WaitResult	w;

			if (PQsocket(conn) < 0)
			{
				PQclear(keep);
				return query_failed(conn, what, NULL);
			}
			w = wait_for(PQsocket(conn), POLLIN, -1);

			if (w == WAIT_STOP)
			{
				PQclear(keep);
				return STEP_STOP;
			}
			if (w == WAIT_READY && !PQconsumeInput(conn))
			{
				PQclear(keep);
				return query_failed(conn, what, NULL);
			}
		}
		res = PQgetResult(conn);
		if (res == NULL)
			break;
		/* keep the first error, else the last result */
		if (keep != NULL && PQresultStatus(keep) == PGRES_FATAL_ERROR)
			PQclear(res);
		else
		{
			PQclear(keep);
			keep = res;
		}
	}

	if (keep != NULL && (PQresultStatus(keep) == PGRES_TUPLES_OK ||
						 PQresultStatus(keep) == PGRES_COMMAND_OK))
	{
		*result = keep;
		return STEP_OK;
	}
	step = query_failed(conn, what, keep);
	PQclear(keep);
	return step;
}

static ListenStep
fatal(const char *fmt, const char *arg, const char *hint)
{
	log_error(fmt, arg);
	if (hint)
		log_hint("hint: %s", hint);
	return STEP_FATAL;
}

/*
 * Check the extension and the role's rights, LISTEN (unless --once) and
 * read the cursor into *cursor.
 */
ListenStep
listen_setup(PGconn *conn, int64_t *cursor)
{
	PGresult   *res;
	ListenStep	step;
	const char *channel;
	const char *params[1];
	char	   *quoted;
	char	   *sql;

	step = run_query(conn, "could not look for the extension", EXTENSION_SQL, 0, NULL, &res);
	if (step != STEP_OK)
		return step;
	if (PQgetisnull(res, 0, 0))
	{
		step = fatal("extension \"approval\" is not installed in database \"%s\"",
					 PQgetvalue(res, 0, 2), "Connect to the database that has it, or CREATE EXTENSION approval.");
		PQclear(res);
		return step;
	}
	log_verbose("connected to database \"%s\" as \"%s\" (approval %s)",
				PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 0));
	channel = PQgetisnull(res, 0, 1) || PQgetvalue(res, 0, 1)[0] == '\0'
		? "approval" : PQgetvalue(res, 0, 1);
	quoted = PQescapeIdentifier(conn, channel, strlen(channel));
	if (quoted == NULL)
	{
		log_error("could not quote the channel name: %s", trim_message(PQerrorMessage(conn)));
		PQclear(res);
		return STEP_FATAL;
	}
	sql = malloc(strlen(quoted) + 8);
	if (sql == NULL)
	{
		log_error("out of memory");
		exit(1);
	}
	sprintf(sql, "LISTEN %s", quoted);
	PQfreemem(quoted);
	if (!listen_opts.once)
		log_verbose("listening on channel \"%s\"", channel);
	PQclear(res);

	step = run_query(conn, "could not check the rights of the role", SCHEMA_SQL, 0, NULL, &res);
	if (step == STEP_OK)
	{
		if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
			step = fatal("role \"%s\" may not use schema approval", PQuser(conn), ROLE_HINT);
		PQclear(res);
	}
	if (step == STEP_OK)
		step = run_query(conn, "could not check the rights of the role", RIGHTS_SQL, 0, NULL, &res);
	if (step == STEP_OK)
	{
		static const char *const needs[] = {
			"role \"%s\" may not call approval.events_after()",
			"role \"%s\" may not call approval.ack()",
			"role \"%s\" may not read approval.subscriber",
		};

		for (int i = 0; i < 3 && step == STEP_OK; i++)
			if (strcmp(PQgetvalue(res, 0, i), "t") != 0)
				step = fatal(needs[i], PQuser(conn), ROLE_HINT);
		if (step == STEP_OK && strcmp(PQgetvalue(res, 0, 3), "t") != 0)
			step = fatal("%s needs approval.event_json(), which this version of the extension does not have",
						 PROGNAME, "Update the extension: ALTER EXTENSION approval UPDATE.");
		PQclear(res);
	}

	if (step == STEP_OK && !listen_opts.once)
	{
		step = run_query(conn, "could not listen", sql, 0, NULL, &res);
		PQclear(res);
	}
	free(sql);
	if (step != STEP_OK)
		return step;

	params[0] = listen_opts.subscriber;
	step = run_query(conn, "could not read the cursor", CURSOR_SQL, 1, params, &res);
	if (step != STEP_OK)
		return step;
	*cursor = PQntuples(res) > 0 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
	log_verbose("subscriber \"%s\" is at seq %" PRId64 "%s", listen_opts.subscriber, *cursor,
				PQntuples(res) > 0 ? "" : " (no row yet)");
	PQclear(res);
	return STEP_OK;
}

static ListenStep
ack(PGconn *conn, int64_t seq)
{
	char		seqbuf[32];
	const char *params[2];
	PGresult   *res;
	ListenStep	step;

	snprintf(seqbuf, sizeof(seqbuf), "%" PRId64, seq);
	params[0] = listen_opts.subscriber;
	params[1] = seqbuf;
	step = run_query(conn, "could not ack", ACK_SQL, 2, params, &res);
	PQclear(res);
	return step;
}

static bool
in_list(char **list, const char *value)
{
	if (list == NULL)
		return true;
	for (; *list != NULL; list++)
		if (value != NULL && strcmp(*list, value) == 0)
			return true;
	return false;
}

/*
 * --exec: run the command for one event until it exits 0.  Between tries
 * (1 s, doubling up to 60 s) the connection is still read (wait.c).
 */
static ListenStep
exec_event(int64_t seq, const char *kind, const char *workflow, const char *line)
{
	char		seqbuf[32];
	const char *env[7];
	char		why[256];
	int64_t		delay = RETRY_FIRST_MS;

	snprintf(seqbuf, sizeof(seqbuf), "%" PRId64, seq);
	env[0] = "APPROVAL_SEQ";
	env[1] = seqbuf;
	env[2] = "APPROVAL_KIND";
	env[3] = kind;
	env[4] = "APPROVAL_WORKFLOW";
	env[5] = workflow;
	env[6] = NULL;

	for (;;)
	{
		switch (run_command(listen_opts.command, line, env, why, sizeof(why)))
		{
			case COMMAND_OK:
				return STEP_OK;
			case COMMAND_STOP:
				return STEP_STOP;
			case COMMAND_FAILED:
				break;
		}
		log_error("event %" PRId64 ": %s; running it again in %" PRId64 " s",
				  seq, why, delay / 1000);
		if (!sleep_ms(delay))
			return STEP_STOP;
		delay = delay * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : delay * 2;
	}
}

/* print mode: the lines of a batch are out when fflush succeeds */
static ListenStep
stdout_failed(void)
{
	int			err = errno;

	if (stop_requested())
		return STEP_STOP;
	log_error("could not write to standard output: %s", strerror(err));
	return STEP_FATAL;
}

/*
 * Handle the rows of one events_after() call, in order, and ack them.
 * *cursor becomes the last seq handled.
 */
static ListenStep
handle_batch(PGconn *conn, PGresult *res, int64_t *cursor)
{
	int			n = PQntuples(res);
	int64_t		acked = *cursor;
	bool		printed = false;
	ListenStep	step;

	for (int i = 0; i < n; i++)
	{
		int64_t		seq = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		const char *kind = PQgetvalue(res, i, 1);
		const char *workflow = PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2);
		const char *line = PQgetvalue(res, i, 3);

		if (in_list(listen_opts.kinds, kind) && in_list(listen_opts.workflows, workflow))
		{
			if (listen_opts.command != NULL)
			{
				if (stop_requested())
					break;
				step = exec_event(seq, kind, workflow ? workflow : "", line);
				if (step != STEP_OK)
					return step;
				step = ack(conn, seq);
				if (step != STEP_OK)
					return step;
				acked = seq;
			}
			else
			{
				if (fputs(line, stdout) == EOF || fputc('\n', stdout) == EOF)
					return stdout_failed();
				printed = true;
			}
		}
		*cursor = seq;
	}

	if (printed && fflush(stdout) == EOF)
		return stdout_failed();
	if (*cursor > acked)
		return ack(conn, *cursor);
	return STEP_OK;
}

/*
 * Wait for a notification naming an event after cursor, or timeout_ms.
 */
static ListenStep
wait_for_events(PGconn *conn, int64_t cursor, int64_t timeout_ms)
{
	int64_t		deadline = now_ms() + timeout_ms;

	for (;;)
	{
		if (notified_after(conn, cursor))
			return STEP_OK;
		if (PQsocket(conn) < 0)
			return query_failed(conn, "connection lost", NULL);
		switch (wait_for(PQsocket(conn), POLLIN, deadline))
		{
			case WAIT_STOP:
				return STEP_STOP;
			case WAIT_TIMEOUT:
				return STEP_OK;
			case WAIT_READY:
				if (!consume_notifications(conn))
					return query_failed(conn, "connection lost", NULL);
				break;
			case WAIT_WAKE:
				break;
		}
	}
}

/*
 * Follow the log from *cursor until the connection is lost, a signal
 * comes, an error is fatal or (--once) the end of the log is reached.
 */
ListenStep
listen_follow(PGconn *conn, int64_t *cursor)
{
	char		batchbuf[16];
	bool		caught_up = false;
	int64_t		held_ms = 0;

	snprintf(batchbuf, sizeof(batchbuf), "%d", listen_opts.batch);
	watch_connection(conn);
	forget_notifications(true);
	for (;;)
	{
		char		seqbuf[32];
		const char *params[2];
		PGresult   *res;
		ListenStep	step;
		int			n;

		snprintf(seqbuf, sizeof(seqbuf), "%" PRId64, *cursor);
		params[0] = seqbuf;
		params[1] = batchbuf;
		forget_notifications(false);
		step = run_query(conn, "could not read events", EVENTS_SQL, 2, params, &res);
		if (step != STEP_OK)
			return step;
		n = PQntuples(res);
		step = handle_batch(conn, res, cursor);
		PQclear(res);
		if (step != STEP_OK)
			return step;
		if (stop_requested())
			return STEP_STOP;
		if (n >= listen_opts.batch)
		{
			caught_up = false;
			continue;
		}
		if (!caught_up || n > 0)
			log_verbose("caught up at seq %" PRId64, *cursor);
		caught_up = true;
		if (listen_opts.once)
			return STEP_DONE;

		/*
		 * A notified event (committed, then) that events_after() did not
		 * return is held back behind a transaction still running, which may
		 * end without a notification (a rollback): look again soon.
		 */
		if (highest_notified(conn) > *cursor)
		{
			if (held_ms == 0)
				log_verbose("seq %" PRId64 " was notified but is held back by a transaction still running",
							highest_notified(conn));
			held_ms = held_ms == 0 ? HELD_BACK_FIRST_MS
				: held_ms * 2 > listen_opts.poll_ms ? listen_opts.poll_ms : held_ms * 2;
		}
		else
			held_ms = 0;
		step = wait_for_events(conn, *cursor, held_ms ? held_ms : listen_opts.poll_ms);
		if (step != STEP_OK)
			return step;
	}
}
