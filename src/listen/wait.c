/*-------------------------------------------------------------------------
 *
 * wait.c
 *	  Signals, waiting and commands for approval_listen.
 *
 * Every wait of the program goes through wait_for(): a poll() on one file
 * descriptor (the server's socket, the pipe to a command, or none) and on
 * the read end of a self-pipe that the signal handlers write to.  So a
 * SIGTERM or SIGINT ends any wait at once, whatever its timeout, and no
 * signal is missed between a look at the flag and the start of a wait: the
 * byte its handler wrote is still in the pipe.  SIGCHLD writes to the pipe
 * too; that is how the end of a command ends its wait.
 *
 * A command (--exec) runs in a process group of its own, its input written
 * through a non-blocking pipe (a command that does not read cannot block
 * us); on SIGTERM or SIGINT the group gets SIGTERM and the command is
 * waited for (a second signal: SIGKILL), so nothing of it outlives us.
 *
 * While the program waits for something else (a command, a back-off), the
 * connection named by watch_connection() is read as well, so that the
 * server can go on sending notifications instead of blocking on a full
 * socket (which would hold up the server's notification queue for every
 * session).  The notifications only ever say that the log may have grown:
 * what is kept of them is the highest seq they named since the last
 * forget_notifications(), and since the connection was made.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "listen.h"

static volatile sig_atomic_t stop_signals = 0;
static int	wake_pipe[2] = {-1, -1};

/* the connection read while waiting for something else, or NULL */
static PGconn *watched_conn = NULL;

/* the highest seq notified since forget_notifications(); 0: none */
static int64_t notified_seq = 0;
/* the highest seq notified since forget_notifications(true) */
static int64_t notified_highest = 0;

static void
wake_up(void)
{
	int			save_errno = errno;
	ssize_t		rc;

	rc = write(wake_pipe[1], "x", 1);
	(void) rc;					/* a full pipe is awake enough */
	errno = save_errno;
}

static void
handle_stop(int signo)
{
	stop_signals = stop_signals + 1;
	wake_up();
}

static void
handle_child(int signo)
{
	wake_up();
}

static void
set_flags(int fd, int fl_flags)
{
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | fl_flags) == -1 ||
		fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
	{
		log_error("could not set up a pipe: %s", strerror(errno));
		exit(1);
	}
}

/*
 * Install the signal handlers.  SIGTERM and SIGINT do not restart system
 * calls: a blocking write to a stalled stdout gives way to them.  SIGPIPE is
 * ignored, so that a command that does not read its input or a reader of
 * stdout that went away is an EPIPE to handle, not the end of the program.
 */
void
wait_init(void)
{
	struct sigaction sa;

	if (pipe(wake_pipe) == -1)
	{
		log_error("could not create a pipe: %s", strerror(errno));
		exit(1);
	}
	set_flags(wake_pipe[0], O_NONBLOCK);
	set_flags(wake_pipe[1], O_NONBLOCK);

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGTERM);
	sigaddset(&sa.sa_mask, SIGINT);
	sa.sa_handler = handle_stop;
	sa.sa_flags = 0;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	sa.sa_handler = handle_child;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);

	sa.sa_handler = SIG_IGN;
	sa.sa_flags = 0;
	sigaction(SIGPIPE, &sa, NULL);
}

bool
stop_requested(void)
{
	return stop_signals > 0;
}

/* a monotonic clock in milliseconds */
int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
drain_wake_pipe(void)
{
	char		buf[64];

	while (read(wake_pipe[0], buf, sizeof(buf)) > 0)
		;
}

/*
 * Wait until fd (-1: none) is ready for events, the deadline (from now_ms();
 * -1: none) passes, or a signal comes.  WAIT_WAKE means that something else
 * happened (a child ended, the watched connection was read): the caller
 * looks at what it waits for and calls again with the same deadline.
 */
WaitResult
wait_for(int fd, short events, int64_t deadline)
{
	struct pollfd pfd[3];
	int			n = 0;
	int			self = -1;
	int			watched = -1;
	int			timeout = -1;
	int			rc;

	if (stop_requested())
		return WAIT_STOP;

	pfd[n].fd = wake_pipe[0];
	pfd[n].events = POLLIN;
	pfd[n].revents = 0;
	n++;
	if (fd >= 0)
	{
		self = n;
		pfd[n].fd = fd;
		pfd[n].events = events;
		pfd[n].revents = 0;
		n++;
	}
	if (watched_conn != NULL && PQsocket(watched_conn) >= 0 &&
		PQsocket(watched_conn) != fd)
	{
		watched = n;
		pfd[n].fd = PQsocket(watched_conn);
		pfd[n].events = POLLIN;
		pfd[n].revents = 0;
		n++;
	}
	if (deadline >= 0)
	{
		int64_t		left = deadline - now_ms();

		timeout = left <= 0 ? 0 : left > 3600000 ? 3600000 : (int) left;
	}

	rc = poll(pfd, n, timeout);
	if (rc == -1)
	{
		if (errno == EINTR)
			return stop_requested() ? WAIT_STOP : WAIT_WAKE;
		log_error("poll() failed: %s", strerror(errno));
		exit(1);
	}
	if (pfd[0].revents != 0)
		drain_wake_pipe();
	if (stop_requested())
		return WAIT_STOP;
	if (self >= 0 && pfd[self].revents != 0)
		return WAIT_READY;
	if (watched >= 0 && pfd[watched].revents != 0)
	{
		/* a broken connection is found by the next query; stop reading it */
		if (!consume_notifications(watched_conn))
			watched_conn = NULL;
		return WAIT_WAKE;
	}
	if (rc == 0 || (deadline >= 0 && now_ms() >= deadline))
		return WAIT_TIMEOUT;
	return WAIT_WAKE;
}

/* Sleep ms milliseconds; false when a signal asked us to stop. */
bool
sleep_ms(int64_t ms)
{
	int64_t		deadline = now_ms() + ms;

	for (;;)
	{
		switch (wait_for(-1, 0, deadline))
		{
			case WAIT_STOP:
				return false;
			case WAIT_TIMEOUT:
				return true;
			default:
				break;
		}
	}
}

/* Read conn (NULL: nothing) while waiting for other things. */
void
watch_connection(PGconn *conn)
{
	watched_conn = conn;
}

/* the seq that a notification's payload names ("seq": N), or INT64_MAX */
static int64_t
payload_seq(const char *payload)
{
	const char *p = payload ? strstr(payload, "\"seq\"") : NULL;
	char	   *end;
	long long	v;

	if (p == NULL)
		return INT64_MAX;
	p += 5;
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p++ != ':')
		return INT64_MAX;
	errno = 0;
	v = strtoll(p, &end, 10);
	if (end == p || errno != 0 || v <= 0)
		return INT64_MAX;
	return (int64_t) v;
}

static void
take_notifies(PGconn *conn)
{
	PGnotify   *n;

	while ((n = PQnotifies(conn)) != NULL)
	{
		int64_t		seq = payload_seq(n->extra);

		if (seq > notified_seq)
			notified_seq = seq;
		if (seq != INT64_MAX && seq > notified_highest)
			notified_highest = seq;
		PQfreemem(n);
	}
}

/*
 * Read what the server sent and note the notifications.  False when the
 * connection broke.
 */
bool
consume_notifications(PGconn *conn)
{
	if (!PQconsumeInput(conn))
		return false;
	take_notifies(conn);
	return true;
}

/* Start again: since now (all: also the highest seq ever notified). */
void
forget_notifications(bool all)
{
	notified_seq = 0;
	if (all)
		notified_highest = 0;
}

/* the highest seq notified since forget_notifications(true); 0: none */
int64_t
highest_notified(PGconn *conn)
{
	take_notifies(conn);
	return notified_highest;
}

/*
 * Did a notification since forget_notifications() name an event after seq?
 * (A payload without a seq counts as one.)
 */
bool
notified_after(PGconn *conn, int64_t seq)
{
	take_notifies(conn);
	return notified_seq > seq;
}

/* the child: input on stdin, the event in the environment, then sh -c */
static void
exec_child(const char *command, int input_fd, const char *const *env)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);

	if (input_fd != STDIN_FILENO)
	{
		if (dup2(input_fd, STDIN_FILENO) == -1)
		{
			fprintf(stderr, "%s: could not set up the command's standard input: %s\n",
					PROGNAME, strerror(errno));
			_exit(126);
		}
		close(input_fd);
	}
	for (; env != NULL && env[0] != NULL; env += 2)
		setenv(env[0], env[1] ? env[1] : "", 1);

	execl("/bin/sh", "sh", "-c", command, (char *) NULL);
	fprintf(stderr, "%s: could not run /bin/sh: %s\n", PROGNAME, strerror(errno));
	_exit(127);
}

/*
 * After SIGTERM or SIGINT: pass SIGTERM on to the command's process group
 * and wait for the command; a further signal kills the group.
 */
static void
stop_child(pid_t pid)
{
	int			signals = stop_signals;
	int			status;

	kill(-pid, SIGTERM);
	while (waitpid(pid, &status, 0) == -1)
	{
		if (errno != EINTR)
			return;
		if (stop_signals > signals)
			kill(-pid, SIGKILL);
	}
}

/* Write input, then a newline, to fd; false when a signal came first. */
static bool
write_input(int fd, const char *input)
{
	size_t		len = strlen(input);
	size_t		done = 0;
	bool		newline = false;

	while (!newline)
	{
		const char *p = done < len ? input + done : "\n";
		size_t		n = done < len ? len - done : 1;
		ssize_t		rc = write(fd, p, n);

		if (rc > 0)
		{
			if (done < len)
				done += (size_t) rc;
			else
				newline = true;
			continue;
		}
		if (rc == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		{
			if (wait_for(fd, POLLOUT, -1) == WAIT_STOP)
				return false;
			continue;
		}
		if (rc == -1 && errno == EINTR)
		{
			if (stop_requested())
				return false;
			continue;
		}
		/* EPIPE: the command did not read it all; its status says how it went */
		break;
	}
	return true;
}

/*
 * Run command with /bin/sh -c, input and a newline on its standard input,
 * env (pairs of name and value, NULL-terminated) added to its environment;
 * its stdout and stderr are ours.  On COMMAND_FAILED, why says what went
 * wrong.  On SIGTERM or SIGINT the command gets SIGTERM and is waited for.
 */
CommandResult
run_command(const char *command, const char *input, const char *const *env,
			char *why, size_t whylen)
{
	int			fds[2];
	pid_t		pid;
	int			status;

	if (pipe(fds) == -1)
	{
		snprintf(why, whylen, "could not create a pipe: %s", strerror(errno));
		return COMMAND_FAILED;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == -1)
	{
		snprintf(why, whylen, "could not fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return COMMAND_FAILED;
	}
	if (pid == 0)
	{
		/* a process group of its own: a signal reaches the shell's children */
		setpgid(0, 0);
		close(fds[1]);
		close(wake_pipe[0]);
		close(wake_pipe[1]);
		exec_child(command, fds[0], env);
	}

	setpgid(pid, pid);			/* also here, so that stop_child() can rely on it */
	close(fds[0]);
	set_flags(fds[1], O_NONBLOCK);
	if (!write_input(fds[1], input))
	{
		close(fds[1]);
		stop_child(pid);
		return COMMAND_STOP;
	}
	close(fds[1]);

	for (;;)
	{
		pid_t		rc = waitpid(pid, &status, WNOHANG);

		if (rc == pid)
			break;
		if (rc == -1 && errno != EINTR)
		{
			snprintf(why, whylen, "could not wait for the command: %s", strerror(errno));
			return COMMAND_FAILED;
		}
		if (rc == 0 && wait_for(-1, 0, -1) == WAIT_STOP)
		{
			stop_child(pid);
			return COMMAND_STOP;
		}
	}

	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return COMMAND_OK;
	if (WIFEXITED(status))
		snprintf(why, whylen, "the command exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(why, whylen, "the command was terminated by signal %d (%s)",
				 WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(why, whylen, "the command ended with status 0x%x", (unsigned) status);
	return COMMAND_FAILED;
}
