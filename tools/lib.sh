# Shell functions that tools/run-tests.sh, tools/bench.sh and tools/demo.sh
# share: the hand-over from root to the postgres system user (PostgreSQL
# refuses to run as root), a free port, and stopping a server.
#
#   . "$(dirname "$(readlink -f "$0")")/lib.sh"
# shellcheck shell=bash

# require_postgres_user NAME: as root, the postgres system user must exist
require_postgres_user() {
    if ! id postgres >/dev/null 2>&1; then
        echo "$1: running as root needs the 'postgres' system user (tools/bootstrap.sh installs PostgreSQL)" >&2
        exit 1
    fi
}

# as_postgres COMMAND...: run a command as the postgres system user.  The
# environment is not passed on: give what the command needs with env.
as_postgres() {
    if command -v runuser >/dev/null 2>&1; then
        runuser -u postgres -- "$@"
    else
        sudo -u postgres -- "$@"
    fi
}

# free_port: a TCP port on which nothing listens and for which no Unix
# socket exists in the usual places
free_port() {
    local p
    for _ in $(seq 1 100); do
        p=$((50000 + RANDOM % 10000))
        [ -e "/tmp/.s.PGSQL.$p" ] && continue
        [ -e "/var/run/postgresql/.s.PGSQL.$p" ] && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    echo 55432
}

# stop_server DATADIR PG_CTL [COMMAND PREFIX...]: stop the server of a data
# directory if one runs there, fast and else immediately
stop_server() {
    local data=$1 pg_ctl=$2
    shift 2
    if [ -f "$data/postmaster.pid" ]; then
        "$@" "$pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 ||
            "$@" "$pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
}
