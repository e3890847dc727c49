#!/usr/bin/env python3
"""Follow approval's events: print each one as a JSON line, then ack it.

    DATABASE_URL='dbname=app user=listener' python3 listener.py mailer

DATABASE_URL is a libpq conninfo or URL (empty: the PG* variables); the
argument names the cursor in approval.subscriber.  Needs psycopg 3.
"""
import os
import select
import signal
import sys
import time

import psycopg

NAME = sys.argv[1] if len(sys.argv) > 1 else "example"
BATCH = 100          # rows per events_after() call
IDLE = 30            # seconds to wait without a notification (notify = off)


def follow(conn):
    woken = False

    def on_notify(_n):              # a notification is only a wake-up
        nonlocal woken
        woken = True

    conn.add_notify_handler(on_notify)
    conn.execute("LISTEN approval")             # first LISTEN, then read
    row = conn.execute("SELECT last_seq FROM approval.subscriber WHERE name = %s",
                       (NAME,)).fetchone()
    cursor = row[0] if row else 0
    while True:
        woken = False
        rows = conn.execute(
            "SELECT e.seq, approval.event_json(e)::text"
            " FROM approval.events_after(%s, %s) e", (cursor, BATCH)).fetchall()
        for seq, line in rows:
            print(line, flush=True)             # the side effect, then the ack
            conn.execute("SELECT approval.ack(%s, %s)", (NAME, seq))
            cursor = seq
        if len(rows) < BATCH and not woken:
            select.select([conn.fileno()], [], [], IDLE)


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    delay = 1
    while True:
        try:
            with psycopg.connect(os.environ.get("DATABASE_URL", ""),
                                 autocommit=True) as conn:
                delay = 1
                follow(conn)
        except psycopg.OperationalError as err:
            print("listener:", " ".join(str(err).split()), file=sys.stderr, flush=True)
        print(f"listener: reconnecting in {delay} s", file=sys.stderr, flush=True)
        time.sleep(delay)
        delay = min(delay * 2, 30)


if __name__ == "__main__":
    main()
