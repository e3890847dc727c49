#!/usr/bin/env bash
# A persistent demo cluster under ./.demo (data, socket, log, port).
#
#   tools/demo.sh start   create the cluster if absent, start it if it is not
#                         running (restart it when the installed library is
#                         newer than the server), recreate database
#                         approval_demo and run doc/demo.sql in it
#   tools/demo.sh stop    stop the cluster if it is running
#
# "make demo" builds and installs the extension first; "make demo-stop" stops.
# PostgreSQL refuses to run as root, so as root the server runs as the
# "postgres" system user and ./.demo belongs to it.
set -euo pipefail

root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
# shellcheck source=tools/lib.sh
. "$root/tools/lib.sh"
demo=$root/.demo
data=$demo/data
log=$demo/server.log
PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$("$PG_CONFIG" --bindir)
default_port=54329

if [ "$(id -u)" -eq 0 ]; then
    require_postgres_user demo.sh
    owner=postgres
    run() { (cd / && as_postgres "$@"); }
else
    owner=$(id -un)
    run() { "$@"; }
fi

# The socket lives in .demo unless that path is too long for a Unix socket
# (107 bytes); then in a directory under /tmp, remembered in .demo/sockdir.
socket_dir() {
    if [ -f "$demo/sockdir" ]; then
        cat "$demo/sockdir"
    elif [ $((${#demo} + 18)) -le 107 ]; then
        echo "$demo"
    else
        local d
        d=$(mktemp -d /tmp/approval-demo.XXXXXX)
        chown "$owner" "$d"
        echo "$d" >"$demo/sockdir"
        chown "$owner" "$demo/sockdir"
        echo "$d"
    fi
}

running() {
    [ -f "$data/PG_VERSION" ] && run "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1
}

start() {
    mkdir -p "$demo"
    chown "$owner" "$demo"
    if ! run test -w "$demo"; then
        echo "demo.sh: the user $owner cannot write $demo (is the repository under a private" >&2
        echo "directory such as /root?); clone it somewhere $owner can reach, e.g. /srv or /tmp" >&2
        exit 1
    fi
    if [ ! -f "$demo/port" ]; then
        echo "$default_port" >"$demo/port"
        chown "$owner" "$demo/port"
    fi
    port=$(cat "$demo/port")
    sock=$(socket_dir)

    if [ ! -f "$data/PG_VERSION" ]; then
        echo "== creating the demo cluster in $data"
        if ! run "$bindir/initdb" -D "$data" -A trust -E UTF8 --locale=C >"$demo/initdb.log" 2>&1; then
            cat "$demo/initdb.log" >&2
            exit 1
        fi
        chown "$owner" "$demo/initdb.log"
        cat >>"$data/postgresql.conf" <<CONF

# tools/demo.sh
listen_addresses = ''
port = $port
unix_socket_directories = '$sock'
shared_preload_libraries = 'approval,pg_cron'
cron.database_name = 'postgres'
approval.databases = 'approval_demo'
CONF
    fi

    # A preloaded library is read once, at server start: restart the server
    # when "make install" put a newer approval.so in place.
    lib=$("$PG_CONFIG" --pkglibdir)/approval.so
    if running && [ "$lib" -nt "$data/postmaster.pid" ]; then
        echo "== restarting the demo server to load the newly installed approval.so"
        run "$bindir/pg_ctl" -D "$data" -l "$log" -w -m fast restart >/dev/null
    elif ! running; then
        echo "== starting the demo server (log: $log)"
        if ! run "$bindir/pg_ctl" -D "$data" -l "$log" -w start >/dev/null; then
            tail -n 30 "$log" >&2
            exit 1
        fi
    fi

    psql=("$bindir/psql" -X -h "$sock" -p "$port" -U "$owner")
    run "${psql[@]}" -q -v ON_ERROR_STOP=1 -d postgres \
        -c 'SET client_min_messages = warning' \
        -c 'DROP DATABASE IF EXISTS approval_demo WITH (FORCE)' \
        -c 'CREATE DATABASE approval_demo'

    echo "== running doc/demo.sql in database approval_demo"
    echo
    # the script goes in on standard input, so the server's user need not
    # be able to read the source tree
    run "${psql[@]}" -e -v ON_ERROR_STOP=1 -P pager=off -d approval_demo -f - <"$root/doc/demo.sql"

    echo
    echo "The demo server is running.  Connect with:"
    echo
    echo "    psql -h $sock -p $port -U $owner approval_demo"
    echo
    echo "Stop it with: make demo-stop"
}

stop() {
    if running; then
        run "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null
        echo "demo server stopped"
    else
        echo "demo server is not running"
    fi
}

case "${1:-}" in
    start) start ;;
    stop)  stop ;;
    *)     echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
