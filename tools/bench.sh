#!/usr/bin/env bash
# pgbench figures for the approval extension, written to doc/performance.md.
#
#   tools/bench.sh            ("make bench" builds and installs first)
#
# Workloads, each with 8 clients (-c 8 -j 2) for a fixed time, all on one
# throwaway cluster and in one database:
#
#   tpcb          pgbench's built-in TPC-B-like script (pgbench -i -s 8)
#   ext_submit    approval.submit() of a one-stage request
#   ext_approve   approval.approve() of distinct pending requests
#   pl_submit     the same with plbench, the PL/pgSQL engine in
#   pl_approve    test/bench/plbench.sql
#   route         approval.route() among 1,000 workflows against plain SQL
#                 (one client, in a database of its own)
#   scale         the pages people open (my_pending, my_requests,
#                 request_status, a count under row-level security) with a
#                 million pending requests, in a database of their own
#   delay         commit to delivery of a notification, approval.notify =
#                 commit against relay, idle and under 8 approving clients
#                 (tools/bench-relay.pl)
#   time          tick() with a million open requests, firing due deadlines,
#                 the worker's latency (tools/bench-time.sh, a database of
#                 its own; its settings BENCH_TIME_* are passed on)
#
# The four engine workloads run with approval.notify (and plbench.notify) on
# and off, and the extension's also with approval.notify = relay.  Every workload runs BENCH_RUNS times, interleaved, and the median
# TPS is reported.  Settings (environment):
#
#   BENCH_SECONDS  length of one timed run (default 15)
#   BENCH_RUNS     timed runs per workload (default 3)
#   BENCH_WARMUP   length of the untimed warm-up run of each workload (default 3)
#   BENCH_OUT      the report (default doc/performance.md of this tree)
#   BENCH_PROFILE  1 (default): after the timed runs, profile the backends with
#                  perf (when perf, objdump and python3 are there) and time each
#                  statement with pg_stat_statements; 0: skip this
#   BENCH_KEEP=1   keep the temporary directory (server log, pgbench output,
#                  perf data)
#   BENCH_SOURCE   what the installed library was built from, for the report
#                  (default: this tree's commit and its uncommitted files)
#   BENCH_SCALE_REQUESTS  pending requests of the "pages at scale" section
#                  (default 1000000)
#   BENCH_TIME     1 (default): the "Time" section (tools/bench-time.sh); 0: skip it
#   BENCH_DELAY_SAMPLES  notifications timed per setting in the "Notifications"
#                  section (default 300)
#
# PostgreSQL refuses to run as root, so as root this script runs itself again
# as the "postgres" system user.  Everything but the report goes to a
# temporary directory that is removed at exit, with the server stopped.
set -euo pipefail

script=$(readlink -f "$0")
# shellcheck source=tools/lib.sh
. "$(dirname "$script")/lib.sh"
root=${APPROVAL_BENCH_ROOT:-$(cd "$(dirname "$script")/.." && pwd)}
PG_CONFIG=${PG_CONFIG:-pg_config}
BENCH_SECONDS=${BENCH_SECONDS:-15}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_WARMUP=${BENCH_WARMUP:-3}
BENCH_OUT=${BENCH_OUT:-$root/doc/performance.md}
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_PROFILE=${BENCH_PROFILE:-1}
BENCH_SCALE_REQUESTS=${BENCH_SCALE_REQUESTS:-1000000}
BENCH_TIME=${BENCH_TIME:-1}
BENCH_DELAY_SAMPLES=${BENCH_DELAY_SAMPLES:-300}
CLIENTS=8
JOBS=2
SCALE=8

for v in BENCH_SECONDS BENCH_RUNS BENCH_WARMUP; do
    if ! [[ ${!v} =~ ^[0-9]+$ ]] || [ "${!v}" -lt 1 ]; then
        echo "bench.sh: $v must be a positive integer (got '${!v}')" >&2
        exit 2
    fi
done

bindir=$("$PG_CONFIG" --bindir)

# Which source the installed library was built from ("make bench" builds and
# installs this tree just before): the commit, and what differs from it.
if [ -z "${BENCH_SOURCE:-}" ]; then
    if rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null); then
        dirty=$(git -C "$root" status --porcelain -- src sql Makefile approval.control 2>/dev/null |
            awk '{ print $NF }' | tr '\n' ' ' | sed 's/ $//')
        BENCH_SOURCE="commit $rev${dirty:+, with uncommitted changes to $dirty}"
    else
        BENCH_SOURCE="not a git checkout"
    fi
fi

# ---------------------------------------------------------------------------
# As root: hand over to the postgres user, then put the report in place.
# ---------------------------------------------------------------------------
if [ "$(id -u)" -eq 0 ]; then
    require_postgres_user bench.sh
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/approval-bench.XXXXXX")
    # shellcheck disable=SC2317  # called from the EXIT trap
    root_cleanup() {
        stop_server "$tmp/data" "$bindir/pg_ctl" as_postgres
        if [ "$BENCH_KEEP" = 1 ]; then
            echo "bench.sh: kept $tmp"
        else
            rm -rf "$tmp"
        fi
    }
    trap root_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    # the postgres user gets its own copy of what it reads
    mkdir -p "$tmp/src/tools" "$tmp/src/test"
    cp "$script" "$tmp/src/tools/bench.sh"
    cp "$(dirname "$script")/lib.sh" "$tmp/src/tools/lib.sh"
    cp "$(dirname "$script")/bench-time.sh" "$tmp/src/tools/bench-time.sh"
    cp "$(dirname "$script")/bench-relay.pl" "$tmp/src/tools/bench-relay.pl"
    cp -a "$root/test/bench" "$tmp/src/test/bench"
    chown -R postgres: "$tmp"
    chmod 700 "$tmp"

    # the settings of tools/bench-time.sh, as they are
    time_env=()
    while IFS= read -r v; do time_env+=("$v"); done < <(env | grep '^BENCH_TIME_' || true)
    status=0
    (cd "$tmp" && as_postgres env "${time_env[@]}" \
        BENCH_TMP="$tmp" \
        BENCH_OUT="$tmp/performance.md" \
        APPROVAL_BENCH_ROOT="$tmp/src" \
        BENCH_SECONDS="$BENCH_SECONDS" BENCH_RUNS="$BENCH_RUNS" BENCH_WARMUP="$BENCH_WARMUP" \
        BENCH_PROFILE="$BENCH_PROFILE" BENCH_KEEP="$BENCH_KEEP" BENCH_SOURCE="$BENCH_SOURCE" PG_CONFIG="$PG_CONFIG" PATH="$PATH" \
        BENCH_SCALE_REQUESTS="$BENCH_SCALE_REQUESTS" BENCH_TIME="$BENCH_TIME" \
        bash "$tmp/src/tools/bench.sh") || status=$?
    if [ "$status" -eq 0 ]; then
        cp "$tmp/performance.md" "$BENCH_OUT"
        echo "bench.sh: wrote $BENCH_OUT"
    fi
    exit "$status"
fi

# ---------------------------------------------------------------------------
# The benchmark proper, as the user that owns the cluster.
# ---------------------------------------------------------------------------
if [ -n "${BENCH_TMP:-}" ]; then
    tmp=$BENCH_TMP              # made (and removed) by the root part above
else
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/approval-bench.XXXXXX")
fi
data=$tmp/data
log=$tmp/server.log
runs=$tmp/runs
mkdir -p "$runs"

# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
    stop_server "$tmp/data" "$bindir/pg_ctl"
    if [ -z "${BENCH_TMP:-}" ]; then
        if [ "$BENCH_KEEP" = 1 ]; then
            echo "bench.sh: kept $tmp"
        else
            rm -rf "$tmp"
        fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf '== %s\n' "$*"; }
die() {
    echo "bench.sh: $*" >&2
    exit 1
}

# A port for the socket file.  The server listens on no TCP address and its
# socket lives in our own directory, so any port is free; one not used by
# another local server keeps the shared memory keys apart as well.
port=$((20000 + RANDOM % 20000))
while [ -e "/tmp/.s.PGSQL.$port" ] || [ -e "/var/run/postgresql/.s.PGSQL.$port" ]; do
    port=$((20000 + RANDOM % 20000))
done

# The server settings: the engine, not the disk.  Written to the report as
# they are written to postgresql.conf.
settings="listen_addresses = ''
port = $port
unix_socket_directories = '$tmp'
shared_preload_libraries = 'approval,pg_cron'
cron.database_name = 'postgres'
approval.databases = 'bench'
max_connections = 40
shared_buffers = 512MB
synchronous_commit = off
max_wal_size = 8GB
min_wal_size = 1GB
checkpoint_timeout = 30min"

say "initdb in $data"
"$bindir/initdb" -D "$data" -A trust -E UTF8 --locale=C --no-sync >"$tmp/initdb.log" 2>&1 ||
    { cat "$tmp/initdb.log" >&2; die "initdb failed"; }
printf '\n# tools/bench.sh\n%s\n' "$settings" >>"$data/postgresql.conf"
# what the server loads, to tell later whether the installed file is still it
cp "$("$PG_CONFIG" --pkglibdir)/approval.so" "$tmp/approval.so.loaded"
"$bindir/pg_ctl" -D "$data" -l "$log" -w start >/dev/null ||
    { tail -n 30 "$log" >&2; die "the server did not start"; }

export PGHOST=$tmp PGPORT=$port
db=bench
me=$(id -un)
psql() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
sql() { psql -At -U "$me" -d "$db" -c "$1"; }

say "set-up: database $db, plbench, approval, pgbench -i -s $SCALE"
psql -U "$me" -d postgres -c "CREATE DATABASE $db"
# the scripts go in on standard input, so the server's user need not read the tree
psql -U "$me" -d "$db" -f - <"$root/test/bench/plbench.sql"
psql -U "$me" -d "$db" -f - <"$root/test/bench/setup.sql" >/dev/null
"$bindir/pgbench" -i -q -s "$SCALE" -U "$me" "$db" >"$tmp/pgbench-init.log" 2>&1 ||
    { cat "$tmp/pgbench-init.log" >&2; die "pgbench -i failed"; }
sql "VACUUM ANALYZE"

# approval.notify = relay needs the worker in the database: the launcher
# looks again at a listed database that was missing when it is reloaded
sql "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 1 600); do
    [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'approval worker' AND datname = '$db'")" = 1 ] && break
    sleep 0.1
done
[ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'approval worker' AND datname = '$db'")" = 1 ] ||
    die "the background worker did not start in $db (approval.notify = relay needs it)"

# pgbench reads its scripts itself: give it copies it can read
cp "$root"/test/bench/*.sql "$tmp/"

# ---------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------
declare -A results        # workload key -> TPS of each timed run, space-separated
declare -A best_approve   # engine -> highest approve TPS seen (to size the pool)
last_submit_tps=0

# approval.notify is superuser-set: the bench roles get it as a role
# setting, which a new connection applies (plbench.notify is the client's).
#   set_notify on|off|relay|commit
set_notify() {
    sql "ALTER ROLE bench_requester SET approval.notify = $1" >/dev/null
    sql "ALTER ROLE bench_approver SET approval.notify = $1" >/dev/null
}

# One pgbench run; prints its TPS.  Fails on any failed transaction or
# aborted client, so that every reported figure is of clean runs only.
#   pgbench_run LABEL SECONDS USER NOTIFY(on|off|-) SCRIPT|builtin
pgbench_run() {
    local label=$1 secs=$2 user=$3 notify=$4 what=$5 out opts=""
    out=$runs/$label.log
    case $notify in
        on|off) opts="-c plbench.notify=$notify"; set_notify "$notify" ;;
        relay) opts="-c plbench.notify=off"; set_notify relay ;;
    esac
    sql "CHECKPOINT" >/dev/null
    local args=(-n -c "$CLIENTS" -j "$JOBS" -T "$secs" -U "$user")
    if [ "$what" = builtin ]; then
        args+=(-b tpcb-like)
    else
        args+=(-f "$tmp/$what")
    fi
    if ! PGOPTIONS=$opts "$bindir/pgbench" "${args[@]}" "$db" >"$out" 2>&1 ||
        grep -qE 'aborted|^number of failed transactions: [1-9]' "$out"; then
        cat "$out" >&2
        die "run $label failed"
    fi
    sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$out" | head -n 1
}

# Make sure at least NEED requests of ENGINE (ext|pl) are pending, with
# consecutive ids, and point the engine's cursor at the oldest.  Missing ones
# are submitted with pgbench -t (untimed, notify off).
pool_ready() {
    local engine=$1 need=$2 lo hi n per
    IFS='|' read -r lo hi n < <(sql "SELECT coalesce(lo, 0), coalesce(hi, 0), n FROM bench.pending_range('$engine')")
    if [ "$n" -lt "$need" ]; then
        per=$(( (need - n + CLIENTS - 1) / CLIENTS ))
        set_notify off
        PGOPTIONS="-c plbench.notify=off" \
            "$bindir/pgbench" -n -c "$CLIENTS" -j "$JOBS" -t "$per" -U bench_requester \
            -f "$tmp/${engine}_submit.sql" "$db" >"$runs/pool-$engine.log" 2>&1 ||
            { cat "$runs/pool-$engine.log" >&2; die "could not submit the requests to approve"; }
        IFS='|' read -r lo hi n < <(sql "SELECT lo, hi, n FROM bench.pending_range('$engine')")
    fi
    [ "$n" -eq $((hi - lo + 1)) ] || die "the pending $engine requests do not have consecutive ids ($n in $lo..$hi)"
    sql "SELECT setval('bench.${engine}_next', $lo, false)" >/dev/null
}

# How many pending requests an approve run of SECONDS may need: the best
# approve rate seen so far, or before the first one the submit rate just
# measured, times a wide margin.
pool_need() {
    local engine=$1 secs=$2 rate
    rate=${best_approve[$engine]:-0}
    if [ "${rate%.*}" -eq 0 ]; then
        rate=$(awk -v s="$last_submit_tps" 'BEGIN { printf "%d", s * 2 }')
    fi
    awk -v r="$rate" -v t="$secs" 'BEGIN { printf "%d", r * t * 1.5 + 2000 }'
}

# submit then approve, for one engine and one notify setting
#   engine_pair ENGINE NOTIFY SECONDS RECORD(1|0) TAG
engine_pair() {
    local engine=$1 notify=$2 secs=$3 record=$4 tag=$5 tps
    tps=$(pgbench_run "${engine}_submit_${notify}_$tag" "$secs" bench_requester "$notify" "${engine}_submit.sql")
    last_submit_tps=$tps
    [ "$record" = 1 ] && results[${engine}_submit_$notify]+="$tps "
    printf '   %-12s notify=%-5s %10s tps\n' "${engine}_submit" "$notify" "$tps"

    pool_ready "$engine" "$(pool_need "$engine" "$secs")"
    tps=$(pgbench_run "${engine}_approve_${notify}_$tag" "$secs" bench_approver "$notify" "${engine}_approve.sql")
    if awk -v a="$tps" -v b="${best_approve[$engine]:-0}" 'BEGIN { exit !(a > b) }'; then
        best_approve[$engine]=$tps
    fi
    [ "$record" = 1 ] && results[${engine}_approve_$notify]+="$tps "
    printf '   %-12s notify=%-5s %10s tps\n' "${engine}_approve" "$notify" "$tps"
}

tpcb_run() {
    local secs=$1 record=$2 tag=$3 tps
    tps=$(pgbench_run "tpcb_$tag" "$secs" "$me" - builtin)
    [ "$record" = 1 ] && results[tpcb]+="$tps "
    printf '   %-12s            %10s tps\n' tpcb "$tps"
}

loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')

say "warm-up: every workload once for ${BENCH_WARMUP}s (not counted)"
tpcb_run "$BENCH_WARMUP" 0 warmup
for engine in ext pl; do
    engine_pair "$engine" on "$BENCH_WARMUP" 0 warmup
done

for ((r = 1; r <= BENCH_RUNS; r++)); do
    say "run $r of $BENCH_RUNS: ${BENCH_SECONDS}s each"
    tpcb_run "$BENCH_SECONDS" 1 "r$r"
    # alternate the order from run to run, so that no workload always comes
    # first (or last, on the largest tables)
    if ((r % 2 == 1)); then
        order="ext:on pl:on ext:off pl:off"
    else
        order="pl:off ext:off pl:on ext:on"
    fi
    # relay: the extension only (plbench has no worker)
    order="${order/ext:off/ext:off ext:relay}"
    for pair in $order; do
        engine_pair "${pair%%:*}" "${pair##*:}" "$BENCH_SECONDS" 1 "r$r"
    done
done

loadavg_after=$(cut -d' ' -f1-3 /proc/loadavg)
finished=$(date -u '+%Y-%m-%d %H:%M UTC')

# The engines did what they claim: every hash chain intact, and exactly the
# events of the flow (two per request, four more per approved request).
say "checks"
bad=$(sql "SELECT (SELECT count(*) FROM approval.event)
                  - 2 * (SELECT count(*) FROM approval.request)
                  - 4 * (SELECT count(*) FROM approval.request WHERE state = 'approved')")
[ "$bad" -eq 0 ] || die "approval.event has $bad events more than the flow writes"
bad=$(sql "SELECT (SELECT count(*) FROM plbench.event)
                  - 2 * (SELECT count(*) FROM plbench.request)
                  - 4 * (SELECT count(*) FROM plbench.request WHERE state = 'approved')")
[ "$bad" -eq 0 ] || die "plbench.event has $bad events more than the flow writes"
bad=$(sql "SELECT count(*) FROM approval.verify_audit() WHERE NOT ok")
[ "$bad" -eq 0 ] || die "approval.verify_audit() reports $bad broken chains"
bad=$(sql "SELECT count(*) FROM plbench.request r WHERE NOT plbench.verify_audit(r.id)")
[ "$bad" -eq 0 ] || die "plbench.verify_audit() reports $bad broken chains"
counts=$(sql "SELECT (SELECT count(*) FROM approval.request) || ' requests, '
                  || (SELECT count(*) FROM approval.request WHERE state = 'approved') || ' approved, '
                  || (SELECT count(*) FROM approval.event) || ' events (approval); '
                  || (SELECT count(*) FROM plbench.request) || ' requests, '
                  || (SELECT count(*) FROM plbench.request WHERE state = 'approved') || ' approved, '
                  || (SELECT count(*) FROM plbench.event) || ' events (plbench)'")
echo "   $counts; every hash chain verified, the events match the flow"

# ---------------------------------------------------------------------------
# The delay from commit to notification (issue 10: relayed, p99 < 50 ms)
# ---------------------------------------------------------------------------
# tools/bench-relay.pl submits one request at a time and times the arrival
# of its first notification at a listener, with approval.notify = commit
# (the baseline: sent by the writer's own commit) and relay (sent by the
# worker after it), idle and while 8 clients approve with the same setting.
say "notification delay: commit against relay, idle and under an approve load"
declare -A delay
dsn_l="dbi:Pg:dbname=$db;host=$tmp;port=$port;user=$me"
dsn_w="dbi:Pg:dbname=$db;host=$tmp;port=$port;user=bench_requester"
delay_run() {
    local mode=$1 load=$2 key=$1_$2 pid=""
    if [ "$load" = load ]; then
        pool_ready ext "$(pool_need ext 25)"    # (with notify off)
        set_notify "$mode"
        "$bindir/pgbench" -n -c "$CLIENTS" -j "$JOBS" -T 25 -U bench_approver \
            -f "$tmp/ext_approve.sql" "$db" >"$runs/delay-load-$mode.log" 2>&1 &
        pid=$!
        sleep 3
    else
        set_notify "$mode"
    fi
    delay[$key]=$(perl "$root/tools/bench-relay.pl" "$dsn_l" "$dsn_w" "$BENCH_DELAY_SAMPLES") ||
        die "bench-relay.pl failed ($key)"
    if [ -n "$pid" ]; then
        wait "$pid" || { cat "$runs/delay-load-$mode.log" >&2; die "the approve load failed ($key)"; }
        delay[${key}_tps]=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$runs/delay-load-$mode.log" | head -n 1)
    fi
    printf '   %-6s %-5s median %s ms, p99 %s ms, max %s ms (%s samples)\n' "$mode" "$load" ${delay[$key]}
}
for load in idle load; do
    for mode in commit relay; do
        delay_run "$mode" "$load"
    done
done

# ---------------------------------------------------------------------------
# Routing among 1,000 workflows (issue: route in under 1 ms, 2x the SQL)
# ---------------------------------------------------------------------------
# In a database of its own: 1,000 enabled workflows whose "match" conditions
# are all false for the payload but one, and that one comes last by
# priority, so both sides evaluate every condition.  One client (the time of
# a call is 1 / TPS): approval.route() against the plain SQL an expert would
# write over the same 1,000 rows, with the same variables.
say "routing among 1,000 workflows"
rdb=bench_route
psql -U "$me" -d postgres -c "CREATE DATABASE $rdb" >/dev/null
psql -U "$me" -d "$rdb" -f "$root/test/bench/route_setup.sql" >/dev/null
[ "$(psql -At -U bench_requester -d "$rdb" -f "$root/test/bench/ext_route.sql")" = route-1000 ] ||
    die "approval.route() did not route to route-1000"
[ "$(psql -At -U bench_requester -d "$rdb" -f "$root/test/bench/sql_route.sql")" = route-1000 ] ||
    die "the SQL baseline did not route to route-1000"
route_run() {
    local what=$1 out=$runs/route-$1.log
    "$bindir/pgbench" -n -c 1 -j 1 -T "$BENCH_SECONDS" -U bench_requester -f "$root/test/bench/$what.sql" "$rdb" \
        >"$out" 2>&1 || { cat "$out" >&2; die "route run $what failed"; }
    sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$out" | head -n 1
}
declare -A route_tps
for ((r = 1; r <= BENCH_RUNS; r++)); do
    for what in ext_route sql_route; do
        tps=$(route_run "$what")
        route_tps[$what]+="$tps "
        printf '   %-12s %10s calls/s\n' "$what" "$tps"
    done
done

# ---------------------------------------------------------------------------
# Pages at scale: the pages people open every day, with BENCH_SCALE_REQUESTS
# pending requests (test/bench/scale.sql), as a plain approval_user (row
# level security applies).  Each page runs six times in one session, the
# first to warm it; the best of the other five (planning + execution, from
# EXPLAIN ANALYZE) is reported with its plan.
# ---------------------------------------------------------------------------
say "pages at scale: $BENCH_SCALE_REQUESTS pending requests"
sdb=bench_scale
psql -U "$me" -d postgres -c "CREATE DATABASE $sdb" >/dev/null
psql -U "$me" -d "$sdb" -v n="$BENCH_SCALE_REQUESTS" -f "$root/test/bench/scale.sql" >/dev/null
scale_rid=$((BENCH_SCALE_REQUESTS / 2 + 1))
declare -A scale_sql=(
    [my_pending]="SELECT * FROM approval.my_pending LIMIT 20"
    [my_requests]="SELECT * FROM approval.my_requests LIMIT 20"
    [request_status]="SELECT * FROM approval.request_status WHERE request_id = $scale_rid"
    [count]="SELECT count(*) FROM approval.request"
)
declare -A scale_best scale_runs scale_plan
for page in my_pending my_requests request_status count; do
    {
        for i in 1 2 3 4 5 6; do
            echo "\\echo @@run $i"
            echo "EXPLAIN (ANALYZE, BUFFERS) ${scale_sql[$page]};"
        done
    } >"$tmp/scale-$page.sql"
    psql -U scale_p0001 -d "$sdb" -f "$tmp/scale-$page.sql" >"$runs/scale-$page.txt"
    # run number, planning + execution ms, for runs 2..6
    times=$(awk '/^@@run/ { run = $2 } /Planning Time:/ { p[run] = $3 } /Execution Time:/ { e[run] = $3 }
                 END { for (r = 2; r <= 6; r++) printf "%d %.3f\n", r, p[r] + e[r] }' "$runs/scale-$page.txt")
    best_run=$(sort -k2 -g <<<"$times" | head -n 1 | cut -d' ' -f1)
    scale_best[$page]=$(sort -k2 -g <<<"$times" | head -n 1 | cut -d' ' -f2)
    scale_runs[$page]=$(cut -d' ' -f2 <<<"$times" | awk '{ printf "%s%s", (NR > 1 ? ", " : ""), $1 }')
    scale_plan[$page]=$(awk -v r="$best_run" '/^@@run/ { on = ($2 == r); next } on' "$runs/scale-$page.txt")
    printf '   %-15s best %8s ms  (%s)\n' "$page" "${scale_best[$page]}" "${scale_runs[$page]}"
done

# ---------------------------------------------------------------------------
# Time: tick() with a million open requests, firing due deadlines, the
# worker's latency (tools/bench-time.sh, in a database of its own on this
# cluster); it writes its section of the report
# ---------------------------------------------------------------------------
time_md=""
if [ "$BENCH_TIME" = 1 ]; then
    BENCH_TIME_OUT=$tmp/time.md BENCH_TIME_LOG=$log BENCH_RUNS=$BENCH_RUNS PG_CONFIG=$PG_CONFIG \
        bash "$root/tools/bench-time.sh" --attach || die "tools/bench-time.sh failed"
    time_md=$(cat "$tmp/time.md")
fi

# ---------------------------------------------------------------------------
# Where the time goes (BENCH_PROFILE=1): not part of the figures above.
# ---------------------------------------------------------------------------
pkglibdir=$("$PG_CONFIG" --pkglibdir)
so=$pkglibdir/approval.so
profile_md=""
build_id() { readelf -n "$1" 2>/dev/null | sed -n 's/.*Build ID: *//p'; }
label() { if [ "$1" = ext ]; then echo approval; else echo plbench; fi; }

# perf record -g of the 8 backends of a run, attributed with perf_attribute.py
#   perf_profile ENGINE OP NOTIFY SECONDS
perf_profile() {
    local engine=$1 op=$2 notify=$3 secs=$4 user=bench_approver name pid pids data
    name=${engine}_${op}_$notify
    data=$tmp/perf.$name.data
    [ "$op" = submit ] && user=bench_requester
    [ "$op" = approve ] && pool_ready "$engine" "$(pool_need "$engine" $((secs + 3)))"
    sql "CHECKPOINT" >/dev/null
    set_notify "$notify"
    PGOPTIONS="-c plbench.notify=$notify" \
        "$bindir/pgbench" -n -c "$CLIENTS" -j "$JOBS" -T $((secs + 3)) -U "$user" \
        -f "$tmp/${engine}_$op.sql" "$db" >"$runs/perf-$name.log" 2>&1 &
    pid=$!
    sleep 2
    pids=$(sql "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE usename = '$user'")
    if [ -z "$pids" ] || ! perf record -q -g --no-buildid-cache -p "$pids" -o "$data" -- sleep "$secs" >"$runs/perf-$name.err" 2>&1; then
        wait "$pid" || true
        profile_md+="
Profiling $name failed: $(tail -n 1 "$runs/perf-$name.err" 2>/dev/null)
"
        return 0
    fi
    # perf names the functions from the library file: it must still be the
    # one the server loaded (another "make install" may have replaced it)
    if grep -q 'approval\.so (deleted)' "/proc/${pids%%,*}/maps" 2>/dev/null &&
        [ "$(build_id "$so")" != "$(build_id "$tmp/approval.so.loaded")" ]; then
        wait "$pid" || true
        profile_md+="
Profile of $name left out: another build of $so was installed while the server ran, so perf cannot name the functions of the loaded library.
"
        return 0
    fi
    perf script -i "$data" -F ip,sym,symoff,dso >"$tmp/perf.$name.txt" 2>/dev/null
    wait "$pid" || die "the profiled run $name failed (see $runs/perf-$name.log)"
    profile_md+="
**$(label "$engine").$op(), notify $notify** ($(sed -n 's/^tps = \([0-9]*\).*/\1/p' "$runs/perf-$name.log") TPS while profiled):

$(python3 "$tmp/perf_attribute.py" "$so" <"$tmp/perf.$name.txt" 2>&1 || echo "(perf_attribute.py failed)")
"
}

# One client, notify off, pg_stat_statements with track = all: the time of
# each statement the engine runs, per transaction.  pg_stat_statements counts
# a statement's executor run and finish, not its start-up and plan checks.
#   statement_times ENGINE OP SECONDS
statement_times() {
    local engine=$1 op=$2 secs=$3 user=bench_approver name tx
    name=${engine}_${op}_statements
    [ "$op" = submit ] && user=bench_requester
    [ "$op" = approve ] && pool_ready "$engine" "$(pool_need "$engine" "$secs")"
    sql "SELECT pg_stat_statements_reset()" >/dev/null
    set_notify off
    PGOPTIONS="-c plbench.notify=off" \
        "$bindir/pgbench" -n -c 1 -j 1 -T "$secs" -U "$user" -f "$tmp/${engine}_$op.sql" "$db" \
        >"$runs/$name.log" 2>&1 || die "the run $name failed (see $runs/$name.log)"
    tx=$(sql "SELECT max(calls) FILTER (WHERE query LIKE 'SELECT %.$op(%') FROM pg_stat_statements")
    [ -n "$tx" ] || die "pg_stat_statements did not see the calls of $name"
    profile_md+="
**$(label "$engine").$op()**, one client: $(sed -n 's/^tps = \([0-9]*\).*/\1/p' "$runs/$name.log") TPS, $(sql "SELECT round((1000 * total_exec_time / calls)::numeric) FROM pg_stat_statements WHERE query LIKE 'SELECT %.$op(%'") µs per call

| µs per call | statements per call | statement |
|---:|---:|---|
$(sql "SELECT '| ' || round((1000 * total_exec_time / $tx)::numeric, 1) || ' | '
              || round(calls::numeric / $tx, 1) || ' | \`'
              || replace(left(regexp_replace(query, '\\s+', ' ', 'g'), 100), '|', '\\|')
              || CASE WHEN length(regexp_replace(query, '\\s+', ' ', 'g')) > 100 THEN '…' ELSE '' END || '\` |'
         FROM pg_stat_statements
        WHERE calls >= $tx / 2 AND query NOT LIKE 'SELECT %.$op(%'
        ORDER BY total_exec_time DESC LIMIT 14")
"
}

if [ "$BENCH_PROFILE" = 1 ]; then
    if command -v perf >/dev/null && command -v objdump >/dev/null && command -v readelf >/dev/null &&
        command -v python3 >/dev/null; then
        say "profile: perf record -g of the backends (not counted)"
        cp "$root/test/bench/perf_attribute.py" "$tmp/"
        profile_md+="
### perf: where the backends spend their time

\`perf record -g\` of the eight backends during a ${BENCH_SECONDS} s run with
notify on, each sample put in one bucket by its call chain
(\`test/bench/perf_attribute.py\`): \`SPI <plan>\` is a statement the
extension runs (named after its \`ApprovalPlan\` in \`src/\`), \`C <function>\`
the extension's own code with what it calls outside SPI.  Without root, perf
sees user space only.
"
        perf_profile ext approve on "$BENCH_SECONDS"
        perf_profile ext submit on "$BENCH_SECONDS"
        perf_profile pl approve on "$BENCH_SECONDS"
    else
        profile_md+="
(perf, objdump, readelf or python3 is missing: no perf profile.)
"
    fi
    if [ -f "$pkglibdir/pg_stat_statements.so" ]; then
        say "profile: statement times with pg_stat_statements (not counted)"
        "$bindir/pg_ctl" -D "$data" -l "$log" -w -m fast restart \
            -o "-c shared_preload_libraries=approval,pg_cron,pg_stat_statements -c pg_stat_statements.track=all" \
            >/dev/null || die "the server did not restart with pg_stat_statements"
        sql "CREATE EXTENSION pg_stat_statements" >/dev/null
        profile_md+="
### pg_stat_statements: the statements of one call

One client, notify off, $((BENCH_WARMUP + 5)) s per workload, \`pg_stat_statements.track = all\`
(so the statements inside the functions are counted).  The time of a
statement is its executor run; its start-up, plan cache checks and
everything outside statements are not in these figures, only in the total.
"
        for w in ext:approve pl:approve ext:submit pl:submit; do
            statement_times "${w%%:*}" "${w##*:}" $((BENCH_WARMUP + 5))
        done
        "$bindir/pg_ctl" -D "$data" -l "$log" -w -m fast restart >/dev/null ||
            die "the server did not restart"
    fi
fi

settings_shown=$(sed -e "s|$tmp|(temporary directory)|" -e "s|^port = .*|port = (any free port)|" <<<"$settings")
pg_version=$(sql "SHOW server_version")
pgbench_version=$("$bindir/pgbench" --version)

# ---------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
fmt() { awk -v x="$1" 'BEGIN { printf "%.0f", x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
runs_of() { tr ' ' '\n' <<<"$1" | grep . | awk '{ printf "%s%.0f", (NR > 1 ? ", " : ""), $1 }'; }
meets() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { exit !(a / b >= t) }'; }

tpcb=$(median "${results[tpcb]}")
table="| workload | notify | TPS (median) | runs | × TPC-B-like | × PL/pgSQL |
|---|---|---:|---|---:|---:|
| TPC-B-like (pgbench built-in, -s $SCALE) | – | $(fmt "$tpcb") | $(runs_of "${results[tpcb]}") | 1.00 | – |"
verdicts=""
for op in submit approve; do
    for notify in on off relay; do
        ext=$(median "${results[ext_${op}_$notify]}")
        if [ "$notify" = relay ]; then
            # against plbench notifying at commit: both deliver notifications
            pl=$(median "${results[pl_${op}_on]}")
            table+="
| **approval.$op()** | relay | **$(fmt "$ext")** | $(runs_of "${results[ext_${op}_$notify]}") | **$(ratio "$ext" "$tpcb")** | **$(ratio "$ext" "$pl")** (× plbench on) |"
        else
            pl=$(median "${results[pl_${op}_$notify]}")
            table+="
| **approval.$op()** | $notify | **$(fmt "$ext")** | $(runs_of "${results[ext_${op}_$notify]}") | **$(ratio "$ext" "$tpcb")** | **$(ratio "$ext" "$pl")** |
| plbench.$op() (PL/pgSQL) | $notify | $(fmt "$pl") | $(runs_of "${results[pl_${op}_$notify]}") | $(ratio "$pl" "$tpcb") | 1.00 |"
        fi
        v1="met"; meets "$ext" "$tpcb" 1.5 || v1="**not met**"
        v2="met"; meets "$ext" "$pl" 1.2 || v2="**not met**"
        verdicts+="| $op | $notify | $(ratio "$ext" "$tpcb") (≥ 1.5: $v1) | $(ratio "$ext" "$pl") (≥ 1.2: $v2) |
"
    done
done

ext_r=$(median "${route_tps[ext_route]}")
sql_r=$(median "${route_tps[sql_route]}")
per_call() { awk -v t="$1" 'BEGIN { printf "%.3f ms", 1000 / t }'; }
v1="met"; awk -v t="$ext_r" 'BEGIN { exit !(1000 / t < 1) }' || v1="**not met**"
v2="met"; meets "$ext_r" "$sql_r" 2 || v2="**not met**"
route_table="| **approval.route()** | **$(fmt "$ext_r")** | $(runs_of "${route_tps[ext_route]}") | **$(per_call "$ext_r")** (< 1 ms: $v1) | **$(ratio "$ext_r" "$sql_r")** (≥ 2: $v2) |
| SQL over the same rows | $(fmt "$sql_r") | $(runs_of "${route_tps[sql_route]}") | $(per_call "$sql_r") | 1.00 |"

scale_goal() {
    case $1 in
        my_pending|my_requests) awk -v t="$2" 'BEGIN { if (t < 2) print "< 2 ms: met"; else print "< 2 ms: **not met**" }' ;;
        request_status) awk -v t="$2" 'BEGIN { if (t < 1) print "< 1 ms: met"; else print "< 1 ms: **not met**" }' ;;
        count) awk -v t="$2" 'BEGIN { if (12533 / t >= 10) printf "≥ 10 × faster than 12,533 ms: met (%.0f ×)", 12533 / t;
                                     else printf "≥ 10 × faster than 12,533 ms: **not met** (%.1f ×)", 12533 / t }' ;;
    esac
}
scale_table=""
scale_plans=""
for page in my_pending my_requests request_status count; do
    scale_table+="| \`$page\` | \`${scale_sql[$page]}\` | **${scale_best[$page]} ms** | ${scale_runs[$page]} | $(scale_goal "$page" "${scale_best[$page]}") |
"
    scale_plans+="
**$page** (\`${scale_sql[$page]}\`):

\`\`\`
${scale_plan[$page]}
\`\`\`
"
done

delay_table=""
for load in idle load; do
    for mode in commit relay; do
        read -r d_med d_p99 d_max d_n <<<"${delay[${mode}_$load]}"
        read -r c_med c_p99 c_max c_n <<<"${delay[commit_$load]}"
        goal=""
        if [ "$mode" = relay ]; then
            goal=" (< 50 ms: met)"
            awk -v p="$d_p99" 'BEGIN { exit !(p < 50) }' || goal=" (< 50 ms: **not met**)"
        fi
        tps=${delay[${mode}_${load}_tps]:-–}
        [ "$tps" != – ] && tps=$(fmt "$tps")
        delay_table+="| $mode | $load | $d_med ms | **$d_p99 ms**$goal | $d_max ms | $(ratio "$d_p99" "$c_p99") | $tps |
"
    done
done

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
interpretation=$root/test/bench/interpretation.md

{
    cat <<EOF
# Performance

<!-- Generated by tools/bench.sh ("make bench"); edit test/bench/interpretation.md
     for the interpretation and run "make bench" again rather than editing this file. -->

What one approval costs, measured with pgbench against two baselines in the
same run on the same cluster: pgbench's built-in TPC-B-like transaction, and
\`plbench\`, a hand-written PL/pgSQL engine of the same one-stage flow
(\`test/bench/plbench.sql\`).  Higher is better.

## Results

$CLIENTS clients, $JOBS pgbench threads, ${BENCH_SECONDS} s per run, median of
$BENCH_RUNS interleaved runs (each run's TPS listed).  "notify" is
\`approval.notify\` for the extension and \`plbench.notify\` for the PL/pgSQL
engine: on, every event is also sent with NOTIFY (nobody listens).

$table

Targets: approve and submit at least 1.5 × TPC-B-like and at least 1.2 × the
PL/pgSQL engine.

| operation | notify | × TPC-B-like | × PL/pgSQL |
|---|---|---|---|
$verdicts
## Notifications: commit against relay

From a decision's commit to the delivery of its first notification at a
listener (\`tools/bench-relay.pl\`: one submit at a time in autocommit, 5–25 ms
apart, $BENCH_DELAY_SAMPLES samples each; the delay is from the return of the
submit to the arrival of the notification), with \`approval.notify = commit\`
(the baseline: sent by the writer's own commit) and \`relay\` (sent by the
background worker after it), idle and while $CLIENTS clients run
\`approval.approve()\` with the same setting (their TPS in that run shown).

| approval.notify | load | median | p99 | max | × commit (p99) | approve TPS meanwhile |
|---|---|---:|---:|---:|---:|---:|
$delay_table
Target: relayed, p99 under 50 ms.

## Routing

\`approval.route()\` among 1,000 enabled workflows whose \`match\` conditions
(\`$.dept == "dept-N" && $.cost < 5000\`) are all false for the payload but
the one that comes last by priority, against the SQL an expert would write
over the same 1,000 rows (\`SELECT name FROM route_rules WHERE
jsonb_path_match(payload, match, vars, true) ORDER BY priority, name LIMIT
1\`, with the same \`\$requester\` variables).  One client, ${BENCH_SECONDS} s
per run, median of $BENCH_RUNS.

| | calls/s (median) | runs | time per call | × the SQL |
|---|---:|---|---:|---:|
$route_table

Targets: under 1 ms per call, and at least 2 × faster than the SQL.

## Pages at scale

$BENCH_SCALE_REQUESTS pending requests from 1,000 people over 50 groups
(\`test/bench/scale.sql\`: each person answers for $((BENCH_SCALE_REQUESTS / 50))
of them through a group and has submitted $((BENCH_SCALE_REQUESTS / 1000))), read as
\`scale_p0001\`, a plain \`approval_user\` (row-level security applies).  Each
page ran six times in one session; the first warmed it, and the best of the
other five is shown (planning + execution, from \`EXPLAIN ANALYZE\`), with
each run's time.

| page | query | best of 5 | runs (ms) | goal |
|---|---|---:|---|---|
$scale_table

Before this release (0.2.0), on this machine with the same data, the same
pages took: \`my_pending\` 936 ms and the count 3,684 ms at 200,000 requests,
growing with them; the goals were set from 1,119 ms, 10.8 ms, 20.4 ms and
12,533 ms at a million.

The plans of the best runs:

$scale_plans

After the runs the script checked both engines: every hash chain verifies
(\`approval.verify_audit()\`, \`plbench.verify_audit()\`), and the event
logs hold exactly two events per request and four more per approved one:
$counts.

$time_md

## Machine and run

- date: $started to $finished (timed runs)
- CPU: $cpu, $(nproc) cores (nproc); memory $mem
- load average before and after the runs: $loadavg_before; $loadavg_after
  (the machine may be shared; the spread of each workload's runs shows the noise)
- source of the installed \`approval.so\`: $BENCH_SOURCE
- PostgreSQL $pg_version; $pgbench_version
- BENCH_SECONDS=$BENCH_SECONDS, BENCH_RUNS=$BENCH_RUNS, BENCH_WARMUP=$BENCH_WARMUP

## What runs

- **Set-up** (\`test/bench/setup.sql\`): principals \`requester\` (login role
  \`bench_requester\`) and \`approver\` (login role \`bench_approver\`), nine more
  approvers without roles, group \`bench\` of the ten approvers, and workflow
  \`bench\` with one stage whose approvers are \`["group:bench"]\`,
  \`min_approvals\` 1.  pgbench connects as these roles (\`-U\`), so each engine
  finds the acting person from the login role; no \`SET ROLE\`, no gateway.
  The same people, group and workflow are loaded into \`plbench\`.
- **submit** (\`ext_submit.sql\`, \`pl_submit.sql\`):
  \`SELECT approval.submit('bench', jsonb_build_object('amount', :amount), 'bench request')\`
  with a random amount, as \`bench_requester\`.  Each transaction writes a
  request, its active stage and two events.
- **approve** (\`ext_approve.sql\`, \`pl_approve.sql\`):
  \`SELECT approval.approve(nextval('bench.ext_next'))\` as \`bench_approver\`.
  Before each run the script makes sure enough requests are pending (submitting
  more, untimed, when needed), checks that their ids are consecutive and points
  the sequence at the oldest, so that every transaction approves a different
  pending request.  Each transaction locks the request, checks eligibility
  through the group, writes a vote, counts the quorum, approves the stage and
  the request and writes four events.
- **TPC-B-like**: \`pgbench -i -s $SCALE\` into the same database (its own
  tables), run with \`-b tpcb-like\` as the superuser.
- Every run is \`pgbench -n -c $CLIENTS -j $JOBS -T $BENCH_SECONDS\` in the
  default (simple) query protocol, after a \`CHECKPOINT\`; a run with a
  failed transaction or an aborted client stops the script.  One untimed
  ${BENCH_WARMUP} s run of every workload comes first.  Each of the
  $BENCH_RUNS rounds runs TPC-B-like, then submit and approve of each engine
  and notify setting, in an order that is reversed every other round.
- **plbench** (\`test/bench/plbench.sql\`) is written the way a competent team
  would: SECURITY DEFINER functions with a pinned search_path, the request
  row locked \`FOR UPDATE\`, eligibility by group membership, one vote per
  person by a unique index, the quorum as a counter under the row lock, the
  same events as the extension chained per request with the built-in
  \`sha256()\` (chain head kept on the request row), \`pg_notify()\` with the
  same compact JSON, and the same indexes and foreign keys as the extension's
  tables.  It leaves out, in its favour, what the extension does on every call
  and a one-stage flow does not need: delegation and \`role:\` targets, stage
  ordering and conditions, subjects, row-level security.

## Server settings

Added to the \`postgresql.conf\` of a fresh \`initdb\` (everything else is
the default):

\`\`\`
$settings_shown
\`\`\`

- \`synchronous_commit = off\`: a commit does not wait for its WAL to reach
  the disk, so the figures measure the engine's CPU work and locking rather
  than the latency of the disk's flush, which would otherwise cap every
  workload alike.  \`fsync\` stays **on** (the default): with asynchronous
  commit it only costs the background WAL writer's and checkpoints' flushes,
  not the transactions, and the server stays crash-safe (a crash loses the
  last few hundred milliseconds of commits, never consistency).
- \`shared_buffers = 512MB\` holds every table and index of the run, so reads
  do not go to the kernel's page cache.
- \`max_wal_size\`, \`min_wal_size\` and \`checkpoint_timeout\` keep checkpoints
  out of the runs; each run starts with an explicit \`CHECKPOINT\`.
- Autovacuum stays on, as in production.

EOF
    if [ -n "$profile_md" ]; then
        printf '## Profile\n\nMeasured by the same script after the timed runs, on the same cluster\n(BENCH_PROFILE=0 skips this).\n%s\n' "$profile_md"
    fi
    printf '## Interpretation\n\n'
    if [ -f "$interpretation" ]; then
        cat "$interpretation"
    else
        echo "(test/bench/interpretation.md is missing)"
    fi
} >"$BENCH_OUT"

say "results (medians)"
printf '%s\n' "$table" | sed 's/\*\*//g'
printf '%s\n' "$route_table" | sed 's/\*\*//g'
say "report written to $BENCH_OUT"
