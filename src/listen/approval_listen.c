/*-------------------------------------------------------------------------
 *
 * approval_listen.c
 *	  Follow the approval event log from a named cursor: one JSON line per
 *	  event on stdout, or a command run per event (DESIGN §7,
 *	  doc/approval_listen.md).
 *
 * This file parses the options and keeps a connection: the first one must
 * succeed (else exit 1, as psql), a lost one is made again with back-off
 * (0.5 s doubling to 30 s), and every new connection starts the protocol
 * of follow.c again from the stored cursor.  Exit status: 0 after --once
 * caught up or on SIGTERM/SIGINT, 1 on bad options and on errors that
 * reconnecting cannot fix.
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "listen.h"

#ifndef APPROVAL_VERSION
#define APPROVAL_VERSION "unknown"
#endif

ListenOptions listen_opts = {
	.batch = 100,
	.poll_ms = 5000,
};

/* the kinds of DESIGN §7: a misspelt --kind would ack everything unseen */
static const char *const known_kinds[] = {
	"submitted", "auto_approved", "stage_activated", "stage_skipped", "voted",
	"quorum_satisfied", "stage_approved", "stage_rejected", "approved",
	"rejected", "changes_requested", "resubmitted", "commented", "cancelled",
	"expired", "sla_warning", "sla_breached", "escalated", "reassigned", "transferred",
	"delegated", NULL
};

static void log_line(const char *prefix, const char *fmt, va_list ap) LISTEN_PRINTF(2, 0);

static void
log_line(const char *prefix, const char *fmt, va_list ap)
{
	fflush(stdout);
	fprintf(stderr, "%s: %s", PROGNAME, prefix);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	fflush(stderr);
}

void
log_error(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	log_line("error: ", fmt, ap);
	va_end(ap);
}

/* a "detail: " or "hint: " line following an error */
void
log_hint(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	log_line("", fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	log_line("", fmt, ap);
	va_end(ap);
}

void
log_verbose(const char *fmt,...)
{
	va_list		ap;

	if (!listen_opts.verbose)
		return;
	va_start(ap, fmt);
	log_line("", fmt, ap);
	va_end(ap);
}

/* libpq's messages without their final newline (a static copy) */
const char *
trim_message(const char *msg)
{
	static char buf[2048];
	size_t		len;

	snprintf(buf, sizeof(buf), "%s", msg ? msg : "");
	len = strlen(buf);
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		buf[--len] = '\0';
	return buf[0] ? buf : "unknown error";
}

/* what the server says outside a query result (warnings, a FATAL at shutdown) */
static void
notice_processor(void *arg, const char *message)
{
	log_info("server: %s", trim_message(message));
}

static void
usage(void)
{
	printf("%s follows the event log of the approval extension from a named cursor:\n"
		   "it prints one JSON line per event, or runs a command per event, and acks\n"
		   "each event after it was handled.\n\n", PROGNAME);
	printf("Usage:\n  %s [OPTION]... [CONNINFO]\n\n", PROGNAME);
	printf("Options:\n"
		   "  -d, --dbname=CONNINFO     database name or connection string (as psql);\n"
		   "                            PGHOST, PGPORT, PGUSER, PGDATABASE... apply\n"
		   "  -s, --subscriber=NAME     the named cursor in approval.subscriber (required)\n"
		   "  -e, --exec=CMD            run CMD with /bin/sh -c per event, the event's JSON\n"
		   "                            line on its stdin; ack after it exits 0, else run\n"
		   "                            it again for the same event (back-off 1 s to 60 s)\n"
		   "  -k, --kind=KIND           only events of these kinds (repeatable, or\n"
		   "                            comma-separated); the others are acked unhandled\n"
		   "  -w, --workflow=NAME       only events of these workflows, likewise\n"
		   "      --batch=N             events per approval.events_after() call (default 100)\n"
		   "      --poll=SECONDS        read the log at least this often, notified or not\n"
		   "                            (default 5)\n"
		   "      --once                catch up to the end of the log, then exit\n"
		   "  -v, --verbose             say on stderr what it does\n"
		   "  -V, --version             output version information, then exit\n"
		   "  -?, --help                show this help, then exit\n\n");
	printf("Exit status: 0 after --once or on SIGTERM/SIGINT, 1 on errors.\n"
		   "See doc/approval_listen.md of the approval extension.\n");
}

static void bad_option(const char *fmt,...) LISTEN_PRINTF(1, 2);

/* an error in the options: say it, point at --help, exit 1 */
static void
bad_option(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "%s: error: ", PROGNAME);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry \"%s --help\" for more information.\n", PROGNAME);
	exit(1);
}

static void *
alloc_or_die(size_t size)
{
	void	   *p = calloc(1, size);

	if (p == NULL)
	{
		log_error("out of memory");
		exit(1);
	}
	return p;
}

/* add the comma-separated items of arg to the NULL-terminated *list */
static void
add_items(char ***list, const char *arg, const char *option)
{
	const char *p = arg;
	size_t		n = 0;

	while (*list != NULL && (*list)[n] != NULL)
		n++;
	for (;;)
	{
		const char *end = strchr(p, ',');
		size_t		len = end ? (size_t) (end - p) : strlen(p);
		char	  **grown;
		char	   *item;

		while (len > 0 && isspace((unsigned char) *p))
			p++, len--;
		while (len > 0 && isspace((unsigned char) p[len - 1]))
			len--;
		if (len == 0)
			bad_option("empty item in %s", option);
		item = alloc_or_die(len + 1);
		memcpy(item, p, len);
		grown = realloc(*list, (n + 2) * sizeof(char *));
		if (grown == NULL)
		{
			log_error("out of memory");
			exit(1);
		}
		grown[n++] = item;
		grown[n] = NULL;
		*list = grown;
		if (end == NULL)
			break;
		p = end + 1;
	}
}

static void
check_kinds(char **kinds)
{
	for (; kinds != NULL && *kinds != NULL; kinds++)
	{
		bool		known = false;

		for (int i = 0; known_kinds[i] != NULL; i++)
			known = known || strcmp(*kinds, known_kinds[i]) == 0;
		if (!known)
		{
			fprintf(stderr, "%s: error: unknown event kind \"%s\"\n", PROGNAME, *kinds);
			fprintf(stderr, "%s: hint: The kinds are", PROGNAME);
			for (int i = 0; known_kinds[i] != NULL; i++)
				fprintf(stderr, "%s %s", i ? "," : "", known_kinds[i]);
			fprintf(stderr, ".\n");
			exit(1);
		}
	}
}

static int
parse_int(const char *arg, const char *option, long min, long max)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v < min || v > max)
	{
		fprintf(stderr, "%s: error: %s must be an integer from %ld to %ld, not \"%s\"\n",
				PROGNAME, option, min, max, arg);
		exit(1);
	}
	return (int) v;
}

static int
parse_seconds(const char *arg, const char *option)
{
	char	   *end;
	double		v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno != 0 || end == arg || *end != '\0' || !(v >= 0.01 && v <= 86400))
	{
		fprintf(stderr, "%s: error: %s must be a number of seconds from 0.01 to 86400, not \"%s\"\n",
				PROGNAME, option, arg);
		exit(1);
	}
	return (int) (v * 1000 + 0.5);
}

static void
parse_options(int argc, char **argv)
{
	enum
	{
		OPT_BATCH = 256, OPT_POLL, OPT_ONCE, OPT_HELP
	};
	static const struct option long_options[] = {
		{"dbname", required_argument, NULL, 'd'},
		{"subscriber", required_argument, NULL, 's'},
		{"exec", required_argument, NULL, 'e'},
		{"kind", required_argument, NULL, 'k'},
		{"workflow", required_argument, NULL, 'w'},
		{"batch", required_argument, NULL, OPT_BATCH},
		{"poll", required_argument, NULL, OPT_POLL},
		{"once", no_argument, NULL, OPT_ONCE},
		{"verbose", no_argument, NULL, 'v'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, OPT_HELP},
		{NULL, 0, NULL, 0}
	};
	int			c;

	if (argc > 1 && strcmp(argv[1], "-?") == 0)
	{
		usage();
		exit(0);
	}

	while ((c = getopt_long(argc, argv, "d:s:e:k:w:vV", long_options, NULL)) != -1)
	{
		switch (c)
		{
			case 'd':
				listen_opts.dbname = optarg;
				break;
			case 's':
				listen_opts.subscriber = optarg;
				break;
			case 'e':
				listen_opts.command = optarg;
				break;
			case 'k':
				add_items(&listen_opts.kinds, optarg, "--kind");
				break;
			case 'w':
				add_items(&listen_opts.workflows, optarg, "--workflow");
				break;
			case OPT_BATCH:
				listen_opts.batch = parse_int(optarg, "--batch", 1, 100000);
				break;
			case OPT_POLL:
				listen_opts.poll_ms = parse_seconds(optarg, "--poll");
				break;
			case OPT_ONCE:
				listen_opts.once = true;
				break;
			case 'v':
				listen_opts.verbose = true;
				break;
			case 'V':
				printf("%s (approval) %s\n", PROGNAME, APPROVAL_VERSION);
				exit(0);
			case OPT_HELP:
				usage();
				exit(0);
			default:
				/* getopt_long said what was wrong */
				fprintf(stderr, "Try \"%s --help\" for more information.\n", PROGNAME);
				exit(1);
		}
	}

	if (optind < argc && listen_opts.dbname == NULL)
		listen_opts.dbname = argv[optind++];
	if (optind < argc)
		bad_option("too many command-line arguments (first is \"%s\")", argv[optind]);
	if (listen_opts.subscriber == NULL || listen_opts.subscriber[0] == '\0')
		bad_option("no subscriber given: use --subscriber=NAME");
	if (listen_opts.command != NULL && listen_opts.command[0] == '\0')
		bad_option("--exec needs a command");
	check_kinds(listen_opts.kinds);
}

/* libpq's connect_timeout of conn in milliseconds, or -1 */
static int64_t
connect_timeout_ms(PGconn *conn)
{
	PQconninfoOption *opts = PQconninfo(conn);
	int64_t		ms = -1;

	for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
		if (strcmp(o->keyword, "connect_timeout") == 0 && o->val != NULL && atoi(o->val) > 0)
			ms = (int64_t) (atoi(o->val) < 2 ? 2 : atoi(o->val)) * 1000;
	PQconninfoFree(opts);
	return ms;
}

/*
 * Connect without blocking, so that a signal ends the attempt.  NULL when it
 * failed (said on stderr) or *stopped by a signal.
 */
static PGconn *
connect_server(bool *stopped)
{
	const char *keywords[] = {"fallback_application_name", "dbname", NULL};
	const char *values[] = {PROGNAME, listen_opts.dbname, NULL};
	PostgresPollingStatusType status = PGRES_POLLING_WRITING;
	PGconn	   *conn;
	int64_t		deadline;

	*stopped = false;
	conn = PQconnectStartParams(keywords, values, 1);
	if (conn == NULL)
	{
		log_error("out of memory");
		exit(1);
	}
	deadline = connect_timeout_ms(conn);
	if (deadline > 0)
		deadline += now_ms();

	while (PQstatus(conn) != CONNECTION_BAD && status != PGRES_POLLING_OK)
	{
		WaitResult	w;

		if (status == PGRES_POLLING_FAILED || PQsocket(conn) < 0)
			break;
		w = wait_for(PQsocket(conn), status == PGRES_POLLING_READING ? POLLIN : POLLOUT,
					 deadline);
		if (w == WAIT_STOP)
		{
			PQfinish(conn);
			*stopped = true;
			return NULL;
		}
		if (w == WAIT_TIMEOUT)
		{
			log_error("could not connect: timeout expired");
			PQfinish(conn);
			return NULL;
		}
		if (w == WAIT_READY)
			status = PQconnectPoll(conn);
	}
	if (PQstatus(conn) != CONNECTION_OK)
	{
		log_error("could not connect: %s", trim_message(PQerrorMessage(conn)));
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, notice_processor, NULL);
	return conn;
}

int
main(int argc, char **argv)
{
	int64_t		cursor = 0;
	int64_t		backoff = RECONNECT_FIRST_MS;
	bool		connected_once = false;

	parse_options(argc, argv);
	wait_init();

	for (;;)
	{
		bool		stopped;
		PGconn	   *conn = connect_server(&stopped);
		ListenStep	step = STEP_LOST;

		if (stopped)
			break;
		if (conn == NULL && !connected_once)
			exit(1);
		if (conn != NULL)
		{
			if (connected_once)
				log_info("reconnected");
			connected_once = true;
			step = listen_setup(conn, &cursor);
			if (step == STEP_OK)
			{
				backoff = RECONNECT_FIRST_MS;
				step = listen_follow(conn, &cursor);
			}
			watch_connection(NULL);
			PQfinish(conn);
		}

		if (step == STEP_DONE || step == STEP_STOP)
			break;
		if (step == STEP_FATAL)
			exit(1);
		log_info("reconnecting in %.1f s", (double) backoff / 1000);
		if (!sleep_ms(backoff))
			break;
		backoff = backoff * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : backoff * 2;
	}

	log_verbose(stop_requested() ? "stopping on a signal" : "done");
	if (fflush(stdout) == EOF)
		exit(1);
	return 0;
}
