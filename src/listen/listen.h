/*-------------------------------------------------------------------------
 *
 * listen.h
 *	  approval_listen: follow the approval event log from a named cursor
 *	  (DESIGN §7, doc/approval_listen.md).
 *
 * Three files: approval_listen.c (options, connecting, reconnecting with
 * back-off), follow.c (the protocol: LISTEN, read the cursor, events_after,
 * print or run a command, ack) and wait.c (signals, every wait of the
 * program, running commands).  The program is single-threaded; every wait
 * goes through wait_for(), so that SIGTERM and SIGINT end any of them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APPROVAL_LISTEN_H
#define APPROVAL_LISTEN_H

#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libpq-fe.h"

#define PROGNAME "approval_listen"

#if defined(__GNUC__) || defined(__clang__)
#define LISTEN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define LISTEN_PRINTF(f, a)
#endif

/* reconnecting: 0.5 s, doubling, up to 30 s */
#define RECONNECT_FIRST_MS	500
#define RECONNECT_MAX_MS	30000
/* a failed --exec command runs again after 1 s, doubling, up to 60 s */
#define RETRY_FIRST_MS		1000
#define RETRY_MAX_MS		60000
/* a notified event held back behind a running transaction: look again
 * after 10 ms, doubling, up to --poll */
#define HELD_BACK_FIRST_MS	10

/* the options, as parsed (approval_listen.c) */
typedef struct ListenOptions
{
	const char *dbname;			/* database name or conninfo; NULL: libpq's
								 * defaults and environment */
	const char *subscriber;		/* the cursor's name in approval.subscriber */
	const char *command;		/* --exec, or NULL to print */
	char	  **kinds;			/* NULL-terminated, or NULL: every kind */
	char	  **workflows;		/* NULL-terminated, or NULL: every workflow */
	int			batch;			/* events per events_after() call */
	int			poll_ms;		/* read the log at least this often */
	bool		once;			/* catch up, then exit */
	bool		verbose;
} ListenOptions;

extern ListenOptions listen_opts;

/* What became of a step of the protocol. */
typedef enum ListenStep
{
	STEP_OK,					/* go on */
	STEP_DONE,					/* --once: caught up */
	STEP_STOP,					/* SIGTERM or SIGINT */
	STEP_LOST,					/* the connection is gone: reconnect */
	STEP_FATAL					/* reconnecting cannot help: exit 1 */
} ListenStep;

/* approval_listen.c */
extern void log_error(const char *fmt,...) LISTEN_PRINTF(1, 2);
extern void log_hint(const char *fmt,...) LISTEN_PRINTF(1, 2);
extern void log_info(const char *fmt,...) LISTEN_PRINTF(1, 2);
extern void log_verbose(const char *fmt,...) LISTEN_PRINTF(1, 2);
extern const char *trim_message(const char *msg);

/* follow.c */
extern ListenStep listen_setup(PGconn *conn, int64_t *cursor);
extern ListenStep listen_follow(PGconn *conn, int64_t *cursor);

/* wait.c */
typedef enum WaitResult
{
	WAIT_READY,					/* the file descriptor is ready */
	WAIT_TIMEOUT,				/* the deadline passed */
	WAIT_WAKE,					/* something else happened: look and wait again */
	WAIT_STOP					/* SIGTERM or SIGINT */
} WaitResult;

typedef enum CommandResult
{
	COMMAND_OK,					/* it exited with status 0 */
	COMMAND_FAILED,				/* it did not; why says how */
	COMMAND_STOP				/* SIGTERM or SIGINT while it ran */
} CommandResult;

extern void wait_init(void);
extern bool stop_requested(void);
extern int64_t now_ms(void);
extern WaitResult wait_for(int fd, short events, int64_t deadline);
extern bool sleep_ms(int64_t ms);
extern void watch_connection(PGconn *conn);
extern bool consume_notifications(PGconn *conn);
extern void forget_notifications(bool all);
extern bool notified_after(PGconn *conn, int64_t seq);
extern int64_t highest_notified(PGconn *conn);
extern CommandResult run_command(const char *command, const char *input,
								 const char *const *env, char *why, size_t whylen);

#endif							/* APPROVAL_LISTEN_H */
