#!/usr/bin/env bash
# The "Time" figures of make bench (DESIGN §6, issue 9), each against a
# baseline measured in the same run:
#
#   1. approval.tick() with BENCH_TIME_REQUESTS open requests and nothing
#      due: time per call, against the SQL scan a team would run instead
#      (UPDATE ... WHERE state = 'pending' AND created_at + sla < now() ...)
#   2. firing BENCH_TIME_DUE due deadlines at that many open requests, a few
#      per tick as the worker sees them come due: deadlines per second,
#      against the same scan run per tick
#   3. the background worker: latency from due to fired, median and p99,
#      for each approval.tick_interval of BENCH_TIME_INTERVALS
#
#   tools/bench-time.sh           on a throwaway cluster of its own; replaces the
#                                 section "Time: tick and the worker" of BENCH_OUT
#                                 (default doc/performance.md of this tree)
#   tools/bench-time.sh --attach  from tools/bench.sh: on the running cluster of
#                                 PGHOST/PGPORT (which preloads approval), as its
#                                 superuser; writes the section to BENCH_TIME_OUT
#
# Settings (environment):
#
#   BENCH_RUNS            runs of each figure, interleaved (default 3)
#   BENCH_TIME_REQUESTS   open requests (default 1000000)
#   BENCH_TIME_DUE        deadlines fired per run of figure 2 (default 10000)
#   BENCH_TIME_BATCHES    deadlines due per tick in figure 2 (default "10 100 1";
#                         each must divide BENCH_TIME_DUE)
#   BENCH_TIME_BASELINE_TICKS  the baseline's scan runs at most this many of the
#                         ticks of a run of figure 2 (default 20): a scan reads
#                         every open request whatever is due, so its time per
#                         tick does not depend on which ticks run
#   BENCH_TIME_SECONDS    length of one pgbench run of figure 1 (default 5)
#   BENCH_TIME_WORKER     1 (default): figure 3; 0: skip it
#   BENCH_TIME_INTERVALS  tick intervals of figure 3 (default "1s 100ms")
#   BENCH_TIME_WORKER_SECONDS  how long one run of figure 3 submits (default 5)
#   BENCH_TIME_WORKER_RATE     requests submitted per second (default 100), each
#                         expiring 2 seconds after its submit
#   BENCH_KEEP=1          keep the temporary directory (standalone only)
#   BENCH_SOURCE          what the installed library was built from, for the report
#   BENCH_TIME_LOG        the server's log, quoted when the worker does not fire
#                         (--attach; standalone: its own server's)
#
# As root (standalone), the script runs itself again as the "postgres"
# system user, as tools/bench.sh does.
set -euo pipefail

script=$(readlink -f "$0")
# shellcheck source=tools/lib.sh
. "$(dirname "$script")/lib.sh"
root=${APPROVAL_BENCH_ROOT:-$(cd "$(dirname "$script")/.." && pwd)}
PG_CONFIG=${PG_CONFIG:-pg_config}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_OUT=${BENCH_OUT:-$root/doc/performance.md}
BENCH_TIME_REQUESTS=${BENCH_TIME_REQUESTS:-1000000}
BENCH_TIME_DUE=${BENCH_TIME_DUE:-10000}
BENCH_TIME_BATCHES=${BENCH_TIME_BATCHES:-10 100 1}
BENCH_TIME_BASELINE_TICKS=${BENCH_TIME_BASELINE_TICKS:-20}
BENCH_TIME_SECONDS=${BENCH_TIME_SECONDS:-5}
BENCH_TIME_WORKER=${BENCH_TIME_WORKER:-1}
BENCH_TIME_INTERVALS=${BENCH_TIME_INTERVALS:-1s 100ms}
BENCH_TIME_WORKER_SECONDS=${BENCH_TIME_WORKER_SECONDS:-5}
BENCH_TIME_WORKER_RATE=${BENCH_TIME_WORKER_RATE:-100}
SECTION_TITLE="Time: tick and the worker"

attach=0
[ "${1:-}" = --attach ] && attach=1

die() {
    echo "bench-time.sh: $*" >&2
    exit 1
}
for v in BENCH_RUNS BENCH_TIME_REQUESTS BENCH_TIME_DUE BENCH_TIME_BASELINE_TICKS BENCH_TIME_SECONDS \
    BENCH_TIME_WORKER_SECONDS BENCH_TIME_WORKER_RATE; do
    if ! [[ ${!v} =~ ^[0-9]+$ ]] || [ "${!v}" -lt 1 ]; then
        echo "bench-time.sh: $v must be a positive integer (got '${!v}')" >&2
        exit 2
    fi
done
for b in $BENCH_TIME_BATCHES; do
    if ! [[ $b =~ ^[0-9]+$ ]] || [ "$b" -lt 1 ] || [ $((BENCH_TIME_DUE % b)) -ne 0 ]; then
        echo "bench-time.sh: every BENCH_TIME_BATCHES must divide BENCH_TIME_DUE=$BENCH_TIME_DUE (got '$b')" >&2
        exit 2
    fi
done
nbatches=$(wc -w <<<"$BENCH_TIME_BATCHES")
due_total=$((BENCH_TIME_DUE * BENCH_RUNS * nbatches))
[ $((due_total + 1000)) -lt "$BENCH_TIME_REQUESTS" ] ||
    die "BENCH_TIME_REQUESTS=$BENCH_TIME_REQUESTS must exceed the $due_total requests that come due, plus 1000"

bindir=$("$PG_CONFIG" --bindir)

# ---------------------------------------------------------------------------
# Standalone, as root: hand over to the postgres user, then merge the section
# ---------------------------------------------------------------------------
# merge_section FRAGMENT REPORT: replace the section of the report (from its
# "## " heading to the next one) with the fragment, or put it before
# "## Machine and run" (or at the end) when the report has none
merge_section() {
    local frag=$1 report=$2 out
    out=$(mktemp)
    if [ -f "$report" ]; then
        awk -v title="## $SECTION_TITLE" -v frag="$frag" '
            function put() { while ((getline l < frag) > 0) print l; close(frag); print ""; done = 1 }
            $0 == title { put(); skip = 1; next }
            skip && /^## / { skip = 0 }
            skip { next }
            !done && $0 == "## Machine and run" { put() }
            { print }
            END { if (!done) put() }' "$report" >"$out"
    else
        cp "$frag" "$out"
    fi
    cat "$out" >"$report"
    rm -f "$out"
}

if [ "$attach" = 0 ] && [ "$(id -u)" -eq 0 ]; then
    require_postgres_user bench-time.sh
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/approval-bench-time.XXXXXX")
    # shellcheck disable=SC2317  # called from the EXIT trap
    root_cleanup() {
        stop_server "$tmp/data" "$bindir/pg_ctl" as_postgres
        if [ "$BENCH_KEEP" = 1 ]; then
            echo "bench-time.sh: kept $tmp"
        else
            rm -rf "$tmp"
        fi
    }
    trap root_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    mkdir -p "$tmp/src/tools" "$tmp/src/test/bench"
    cp "$script" "$(dirname "$script")/lib.sh" "$tmp/src/tools/"
    cp "$root/test/bench/time_setup.sql" "$tmp/src/test/bench/"
    chown -R postgres: "$tmp"
    chmod 700 "$tmp"
    status=0
    (cd "$tmp" && as_postgres env \
        BENCH_TMP="$tmp" BENCH_TIME_OUT="$tmp/time.md" APPROVAL_BENCH_ROOT="$tmp/src" \
        PG_CONFIG="$PG_CONFIG" PATH="$PATH" BENCH_RUNS="$BENCH_RUNS" \
        BENCH_TIME_REQUESTS="$BENCH_TIME_REQUESTS" BENCH_TIME_DUE="$BENCH_TIME_DUE" \
        BENCH_TIME_BATCHES="$BENCH_TIME_BATCHES" BENCH_TIME_BASELINE_TICKS="$BENCH_TIME_BASELINE_TICKS" \
        BENCH_TIME_SECONDS="$BENCH_TIME_SECONDS" BENCH_TIME_WORKER="$BENCH_TIME_WORKER" \
        BENCH_TIME_INTERVALS="$BENCH_TIME_INTERVALS" BENCH_TIME_WORKER_SECONDS="$BENCH_TIME_WORKER_SECONDS" \
        BENCH_TIME_WORKER_RATE="$BENCH_TIME_WORKER_RATE" BENCH_SOURCE="${BENCH_SOURCE:-}" \
        bash "$tmp/src/tools/bench-time.sh") || status=$?
    if [ "$status" -eq 0 ]; then
        merge_section "$tmp/time.md" "$BENCH_OUT"
        echo "bench-time.sh: wrote the section \"$SECTION_TITLE\" of $BENCH_OUT"
    fi
    exit "$status"
fi

say() { printf '== %s\n' "$*"; }
psql() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

# ---------------------------------------------------------------------------
# The cluster: the caller's (--attach), or a throwaway one
# ---------------------------------------------------------------------------
if [ "$attach" = 1 ]; then
    [ -n "${PGHOST:-}" ] && [ -n "${PGPORT:-}" ] || die "--attach needs PGHOST and PGPORT"
    [ -n "${BENCH_TIME_OUT:-}" ] || die "--attach needs BENCH_TIME_OUT"
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/approval-bench-time.XXXXXX")
    # shellcheck disable=SC2317  # called from the EXIT trap
    cleanup() {
        # leave the caller's cluster as it was
        psql -d postgres -c "ALTER SYSTEM RESET approval.databases" -c "ALTER SYSTEM RESET approval.tick_interval" \
            -c "SELECT pg_reload_conf()" >/dev/null 2>&1 || true
        rm -rf "$tmp"
    }
    trap cleanup EXIT
    settings_note="the cluster of the sections above (its settings are listed under \"Server settings\")."
else
    if [ -n "${BENCH_TMP:-}" ]; then
        tmp=$BENCH_TMP
    else
        tmp=$(mktemp -d "${TMPDIR:-/tmp}/approval-bench-time.XXXXXX")
    fi
    BENCH_TIME_OUT=${BENCH_TIME_OUT:-$tmp/time.md}
    # shellcheck disable=SC2317  # called from the EXIT trap
    cleanup() {
        stop_server "$tmp/data" "$bindir/pg_ctl"
        if [ -z "${BENCH_TMP:-}" ] && [ "$BENCH_KEEP" != 1 ]; then rm -rf "$tmp"; fi
    }
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    port=$((20000 + RANDOM % 20000))
    while [ -e "/tmp/.s.PGSQL.$port" ] || [ -e "/var/run/postgresql/.s.PGSQL.$port" ]; do
        port=$((20000 + RANDOM % 20000))
    done
    # the settings of tools/bench.sh
    settings="listen_addresses = ''
port = $port
unix_socket_directories = '$tmp'
shared_preload_libraries = 'approval'
max_connections = 40
shared_buffers = 512MB
synchronous_commit = off
max_wal_size = 8GB
min_wal_size = 1GB
checkpoint_timeout = 30min"
    say "initdb in $tmp/data"
    "$bindir/initdb" -D "$tmp/data" -A trust -E UTF8 --locale=C --no-sync >"$tmp/initdb.log" 2>&1 ||
        { cat "$tmp/initdb.log" >&2; die "initdb failed"; }
    printf '\n# tools/bench-time.sh\n%s\n' "$settings" >>"$tmp/data/postgresql.conf"
    "$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w start >/dev/null ||
        { tail -n 30 "$tmp/server.log" >&2; die "the server did not start"; }
    export PGHOST=$tmp PGPORT=$port
    settings_note="a throwaway cluster of its own (tools/bench-time.sh, standalone) with these settings added to a fresh \`initdb\`:

\`\`\`
$(sed -e "s|$tmp|(temporary directory)|" -e "s|^port = .*|port = (any free port)|" <<<"$settings")
\`\`\`"
fi
export PGUSER=${PGUSER:-$(id -un)}
serverlog=${BENCH_TIME_LOG:-$tmp/server.log}
db=bench_time
runs=$tmp/time-runs
mkdir -p "$runs"
sql() { psql -At -d "$db" -c "$1"; }

# ---------------------------------------------------------------------------
# Set-up: the open requests (test/bench/time_setup.sql), the ticks of figure 2
# ---------------------------------------------------------------------------
say "time: $BENCH_TIME_REQUESTS open requests, $due_total of them to come due (test/bench/time_setup.sql)"
setup_start=$(date +%s)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)
psql -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
psql -d "$db" -v n="$BENCH_TIME_REQUESTS" -v due="$due_total" -v sample=200 \
    -f - <"$root/test/bench/time_setup.sql" >"$runs/setup.log" 2>&1 ||
    { cat "$runs/setup.log" >&2; die "test/bench/time_setup.sql failed"; }
open=$(sql "SELECT count(*) FROM approval.request WHERE state = 'pending'")
[ "$open" -eq "$BENCH_TIME_REQUESTS" ] || die "$open open requests instead of $BENCH_TIME_REQUESTS"
[ "$(sql "SELECT count(*) FROM team.request WHERE state = 'pending'")" -eq "$open" ] ||
    die "team.request does not hold the same open requests"
echo "   set up in $(($(date +%s) - setup_start)) s"

# The due deadlines in time order, numbered from 1; run (round r, batch b)
# fires window w (rows w * DUE + 1 .. (w + 1) * DUE), both sides the same
# rows.  A tick fires what is due at the deadline of every b-th one, plus
# a microsecond (the baseline's scan asks for created_at + sla < at).
psql -d "$db" >/dev/null <<'EOF'
CREATE TABLE bench_time.due AS
SELECT row_number() OVER (ORDER BY due_at, id) AS rn, id, due_at
  FROM approval.request WHERE workflow = 'time-due';
ALTER TABLE bench_time.due ADD PRIMARY KEY (rn);
CREATE TABLE bench_time.fired (side text, win integer, per_tick integer, ticks integer,
                               fired bigint, seconds float8);

-- fire window [lo, hi] of bench_time.due with ticks of per_tick deadlines,
-- at most max_ticks of them, one transaction each, as the worker would
CREATE PROCEDURE bench_time.fire(side text, win integer, lo bigint, hi bigint,
                                 per_tick integer, max_ticks integer)
LANGUAGE plpgsql AS $$
DECLARE
    ats timestamptz[];
    t timestamptz;
    n bigint;
    total bigint := 0;
    started timestamptz;
BEGIN
    ats := ARRAY(SELECT due_at + interval '1 microsecond' FROM bench_time.due
                  WHERE rn BETWEEN lo AND hi AND (rn - lo + 1) % per_tick = 0
                  ORDER BY rn LIMIT max_ticks);
    COMMIT;
    started := clock_timestamp();
    FOREACH t IN ARRAY ats LOOP
        IF side = 'ours' THEN
            n := approval.tick(t, 1000);
        ELSE
            UPDATE team.request SET sla_state = 'breached'
             WHERE state = 'pending' AND created_at + sla < t AND sla_state <> 'breached';
            GET DIAGNOSTICS n = ROW_COUNT;
        END IF;
        total := total + n;
        COMMIT;
    END LOOP;
    INSERT INTO bench_time.fired
    VALUES (side, win, per_tick, cardinality(ats), total,
            extract(epoch FROM clock_timestamp() - started));
    COMMIT;
    -- what the baseline's sample of ticks left of the window (not timed)
    IF side = 'team' THEN
        UPDATE team.request r SET sla_state = 'breached' FROM bench_time.due d
         WHERE d.rn BETWEEN lo AND hi AND r.id = d.id AND r.sla_state <> 'breached';
    END IF;
END
$$;
EOF
cat >"$tmp/tick.sql" <<'EOF'
SELECT approval.tick();
EOF
cat >"$tmp/team_tick.sql" <<'EOF'
UPDATE team.request SET sla_state = 'breached' WHERE state = 'pending' AND created_at + sla < now() AND sla_state <> 'breached';
EOF
sql "VACUUM ANALYZE" >/dev/null
sql "CHECKPOINT" >/dev/null

# ---------------------------------------------------------------------------
# 1. tick() with nothing due, against the scan (one client, pgbench -T)
# ---------------------------------------------------------------------------
# pgbench_latency LABEL SCRIPT: one run; prints the average latency in ms
pgbench_latency() {
    local out=$runs/$1.log
    "$bindir/pgbench" -n -c 1 -j 1 -T "$BENCH_TIME_SECONDS" -f "$2" "$db" >"$out" 2>&1 &&
        ! grep -qE 'aborted|^number of failed transactions: [1-9]' "$out" ||
        { cat "$out" >&2; die "run $1 failed"; }
    sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$out" | head -n 1
}
declare -A lat
say "time 1: tick() with nothing due, ${BENCH_TIME_SECONDS}s per run, one client"
pgbench_latency warmup-tick "$tmp/tick.sql" >/dev/null
for ((r = 1; r <= BENCH_RUNS; r++)); do
    order="ours team"
    ((r % 2 == 0)) && order="team ours"
    for side in $order; do
        if [ "$side" = ours ]; then
            ms=$(pgbench_latency "tick-r$r" "$tmp/tick.sql")
        else
            ms=$(pgbench_latency "team-tick-r$r" "$tmp/team_tick.sql")
        fi
        lat[$side]+="$ms "
        printf '   %-5s %10s ms per call\n' "$side" "$ms"
    done
done
[ "$(sql "SELECT count(*) FROM approval.event WHERE kind LIKE 'sla%' OR kind = 'expired'")" -eq 0 ] ||
    die "a tick of figure 1 fired something"

# ---------------------------------------------------------------------------
# 2. Firing the due deadlines, a batch per tick, against the scan per tick
# ---------------------------------------------------------------------------
say "time 2: firing $BENCH_TIME_DUE due deadlines per run, $BENCH_TIME_BATCHES per tick"
declare -A rate
win=0
for ((r = 1; r <= BENCH_RUNS; r++)); do
    batches=$BENCH_TIME_BATCHES
    order="ours team"
    if ((r % 2 == 0)); then
        batches=$(tr ' ' '\n' <<<"$BENCH_TIME_BATCHES" | grep . | tac | tr '\n' ' ')
        order="team ours"
    fi
    for b in $batches; do
        lo=$((win * BENCH_TIME_DUE + 1))
        hi=$(((win + 1) * BENCH_TIME_DUE))
        # each run starts from vacuumed tables, as autovacuum leaves them: the
        # updates of a firing leave their old index entries behind until
        # VACUUM, and the next ticks step over them (see the figure below)
        sql "VACUUM approval.request" >/dev/null
        sql "VACUUM team.request" >/dev/null
        for side in $order; do
            max=$((BENCH_TIME_DUE / b))
            [ "$side" = team ] && [ "$max" -gt "$BENCH_TIME_BASELINE_TICKS" ] && max=$BENCH_TIME_BASELINE_TICKS
            sql "CHECKPOINT" >/dev/null
            psql -d "$db" -c "CALL bench_time.fire('$side', $win, $lo, $hi, $b, $max)" >/dev/null ||
                die "firing window $win ($side, $b per tick) failed"
            IFS='|' read -r ticks fired secs < <(sql "SELECT ticks, fired, seconds FROM bench_time.fired
                                                        WHERE side = '$side' AND win = $win")
            [ "$fired" -eq $((ticks * b)) ] ||
                die "$side fired $fired deadlines in $ticks ticks of $b (window $win)"
            per_s=$(awk -v n="$fired" -v s="$secs" 'BEGIN { printf "%.1f", n / s }')
            rate[$side:$b]+="$per_s "
            printf '   %-5s %4s per tick: %6s deadlines in %5s ticks, %8.3f s, %10s deadlines/s\n' \
                "$side" "$b" "$fired" "$ticks" "$secs" "$per_s"
        done
        win=$((win + 1))
    done
done

# what was fired, each once, with its event in an intact chain
say "time 2: checks"
bad=$(sql "SELECT count(*) FROM approval.request r JOIN bench_time.due d ON d.id = r.id
            WHERE r.sla_state <> 'breached' OR r.next_due <> r.expires_at")
[ "$bad" -eq 0 ] || die "$bad due requests were not fired as they should"
bad=$(sql "SELECT count(*) - (SELECT count(*) FROM bench_time.due) FROM approval.event WHERE kind = 'sla_breached'")
[ "$bad" -eq 0 ] || die "$bad sla_breached events more than due deadlines"
bad=$(sql "SELECT count(*) FROM team.request r JOIN bench_time.due d ON d.id = r.id WHERE r.sla_state <> 'breached'")
[ "$bad" -eq 0 ] || die "$bad due rows of team.request were not updated"
bad=$(sql "SELECT count(*) FROM team.request WHERE sla_state = 'breached'
                                                 AND id NOT IN (SELECT id FROM bench_time.due)")
[ "$bad" -eq 0 ] || die "the baseline updated $bad rows that were not due"
bad=$(sql "SELECT count(*) FROM bench_time.due d CROSS JOIN LATERAL approval.verify_audit(d.id) v
            WHERE d.rn % 10 = 0 AND NOT v.ok")
[ "$bad" -eq 0 ] || die "verify_audit() reports $bad broken chains among the fired requests"
fired_events=$(sql "SELECT count(*) FROM approval.event WHERE kind = 'sla_breached'")
echo "   $fired_events deadlines fired, each once, with an sla_breached event; chains verified (every 10th)"

# An empty tick just after the last run, whose firings left the old index
# entries of $BENCH_TIME_DUE requests in request_next_due before the tick's
# time, and the same after VACUUM
say "time 2: tick() with nothing due after the last run's firings, before and after VACUUM"
late=$(sql "SELECT extract(epoch FROM max(due_at) + interval '1 second') FROM bench_time.due")
printf 'SELECT approval.tick(to_timestamp(%s));\n' "$late" >"$tmp/tick_late.sql"
dead_ms=$(pgbench_latency tick-late-dead "$tmp/tick_late.sql")
sql "VACUUM approval.request" >/dev/null
vac_ms=$(pgbench_latency tick-late-vacuumed "$tmp/tick_late.sql")
printf '   before VACUUM %s ms, after %s ms per call\n' "$dead_ms" "$vac_ms"
[ "$(sql "SELECT count(*) FROM approval.event WHERE kind = 'sla_breached'")" -eq "$fired_events" ] ||
    die "a late tick fired something"

# ---------------------------------------------------------------------------
# 3. The worker: latency from due to fired
# ---------------------------------------------------------------------------
declare -A wlat
worker_md=""
if [ "$BENCH_TIME_WORKER" = 1 ]; then
    say "time 3: the worker, tick_interval $BENCH_TIME_INTERVALS"
    if [ "$(sql "SELECT count(*) FROM pg_settings WHERE name IN ('approval.databases', 'approval.tick_interval')")" -ne 2 ] ||
        ! sql "SELECT 1 FROM pg_settings WHERE name = 'shared_preload_libraries' AND setting ~ '(^|[ ,])approval($|[ ,])'" | grep -q 1; then
        worker_md="Figure 3 was not measured: the server does not preload \`approval\` or has no \`approval.databases\`/\`approval.tick_interval\` settings (no background worker)."
    else
        sql "ALTER SYSTEM SET approval.databases = '$db'" >/dev/null
        sql "ALTER SYSTEM SET approval.tick_interval = '1s'" >/dev/null
        sql "SELECT pg_reload_conf()" >/dev/null
        # the worker fires one deadline with no manual tick, within 20 s
        printf 'SET approval.actor = %s;\nSELECT approval.submit(%s, %s, %s);\n' \
            "'r001'" "'time-worker'" "'{}'" "'probe'" >"$tmp/probe.sql"
        psql -d "$db" -f "$tmp/probe.sql" >/dev/null
        ok=0
        for _ in $(seq 1 40); do
            if [ "$(sql "SELECT count(*) FROM approval.request WHERE title = 'probe' AND state = 'expired'")" -eq 1 ]; then
                ok=1
                break
            fi
            sleep 0.5
        done
        if [ "$ok" = 0 ]; then
            worker_md="Figure 3 was not measured: with \`approval.databases = '$db'\` no worker expired a request within 20 s of its deadline (the server log's last line on approval: $(grep -i approval "$serverlog" 2>/dev/null | tail -n 1 | cut -c1-200))."
        fi
    fi
    if [ -z "$worker_md" ]; then
        for ((r = 1; r <= BENCH_RUNS; r++)); do
            intervals=$BENCH_TIME_INTERVALS
            ((r % 2 == 0)) && intervals=$(tr ' ' '\n' <<<"$BENCH_TIME_INTERVALS" | grep . | tac | tr '\n' ' ')
            for iv in $intervals; do
                label="worker $iv r$r"
                sql "ALTER SYSTEM SET approval.tick_interval = '$iv'" >/dev/null
                sql "SELECT pg_reload_conf()" >/dev/null
                sleep 1
                printf '\\set r random(1, 99)\nSET approval.actor = %s;\nSELECT approval.submit(%s, %s, %s);\n' \
                    "'r001'" "'time-worker'" "'{}'" "'$label'" >"$tmp/worker_submit.sql"
                "$bindir/pgbench" -n -c 1 -j 1 -R "$BENCH_TIME_WORKER_RATE" -T "$BENCH_TIME_WORKER_SECONDS" \
                    -f "$tmp/worker_submit.sql" "$db" >"$runs/worker-$iv-r$r.log" 2>&1 ||
                    { cat "$runs/worker-$iv-r$r.log" >&2; die "submitting for $label failed"; }
                # all expired (2 s after the last submit, plus the interval), within 30 s
                n=$(sql "SELECT count(*) FROM approval.request WHERE title = '$label'")
                ok=0
                for _ in $(seq 1 60); do
                    if [ "$(sql "SELECT count(*) FROM approval.request WHERE title = '$label' AND state = 'expired'")" -eq "$n" ]; then
                        ok=1
                        break
                    fi
                    sleep 0.5
                done
                [ "$ok" = 1 ] || die "the worker did not expire the $n requests of $label within 30 s"
                IFS='|' read -r med p99 mx < <(sql "
                    SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY ms))::numeric, 1),
                           round((percentile_cont(0.99) WITHIN GROUP (ORDER BY ms))::numeric, 1),
                           round(max(ms)::numeric, 1)
                      FROM (SELECT extract(epoch FROM e.at - (r.created_at + interval '2 seconds')) * 1000 AS ms
                              FROM approval.request r JOIN approval.event e ON e.request_id = r.id
                             WHERE r.title = '$label' AND e.kind = 'expired') l")
                [ "$(sql "SELECT count(*) FROM approval.request r JOIN approval.event e ON e.request_id = r.id
                           WHERE r.title = '$label' AND e.kind = 'expired' AND e.at < r.created_at + interval '2 seconds'")" -eq 0 ] ||
                    die "a request of $label expired before its deadline"
                wlat[$iv:n]=$((${wlat[$iv:n]:-0} + n))
                wlat[$iv:p99]+="$p99 "
                wlat[$iv:med]+="$med "
                printf '   %-6s run %d: %5d requests, median %7s ms, p99 %7s ms, max %7s ms\n' "$iv" "$r" "$n" "$med" "$p99" "$mx"
            done
        done
    fi
    sql "ALTER SYSTEM RESET approval.databases" >/dev/null
    sql "ALTER SYSTEM RESET approval.tick_interval" >/dev/null
    sql "SELECT pg_reload_conf()" >/dev/null
else
    worker_md="Figure 3 was not measured (BENCH_TIME_WORKER=0)."
fi

finished=$(date -u '+%Y-%m-%d %H:%M UTC')
loadavg_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------
# The section
# ---------------------------------------------------------------------------
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
list() { tr ' ' '\n' <<<"$1" | grep . | awk -v f="$2" '{ printf "%s" f, (NR > 1 ? ", " : ""), $1 }'; }
num() { awk -v x="$1" -v f="$2" 'BEGIN { printf f, x }'; }
interval_ms() { case $1 in *ms) echo "${1%ms}" ;; *s) echo $((${1%s} * 1000)) ;; *) echo "$1" ;; esac; }

t_ours=$(median "${lat[ours]}")
t_team=$(median "${lat[team]}")
v="met"; awk -v t="$t_ours" 'BEGIN { exit !(t < 1) }' || v="**not met**"
table="| figure | ours | baseline (the team's scan) | ratio | runs: ours; baseline | goal |
|---|---:|---:|---:|---|---|
| \`tick()\`, nothing due: time per call | **$(num "$t_ours" "%.3f") ms** | $(num "$t_team" "%.1f") ms | **$(awk -v a="$t_team" -v b="$t_ours" 'BEGIN { printf "%.0f", a / b }') ×** | $(list "${lat[ours]}" "%.3f"); $(list "${lat[team]}" "%.1f") ms | < 1 ms: $v |"
first_b=${BENCH_TIME_BATCHES%% *}
for b in $BENCH_TIME_BATCHES; do
    o=$(median "${rate[ours:$b]}")
    t=$(median "${rate[team:$b]}")
    ratio=$(awk -v a="$o" -v b="$t" 'BEGIN { r = a / b; printf (r < 10 ? "%.1f" : "%.0f"), r }')
    goal="–"
    if [ "$b" = "$first_b" ]; then
        goal="≥ 100 ×: met"
        awk -v r="$ratio" 'BEGIN { exit !(r >= 100) }' || goal="≥ 100 ×: **not met**"
    fi
    bold=""
    [ "$b" = "$first_b" ] && bold="**"
    table+="
| firing $BENCH_TIME_DUE due deadlines, $b per tick ($((BENCH_TIME_DUE / b)) ticks): deadlines/s | $bold$(num "$o" "%.0f")$bold | $(num "$t" "%.0f") | $bold$ratio ×$bold | $(list "${rate[ours:$b]}" "%.0f"); $(list "${rate[team:$b]}" "%.0f") | $goal |"
done
table+="
| \`tick()\`, nothing due, right after the last run of firing, whose $BENCH_TIME_DUE updates left their old entries in the deadline index: before / after \`VACUUM\` | $(num "$dead_ms" "%.3f") / $(num "$vac_ms" "%.3f") ms | – | – | one run each | – |"
if [ -z "$worker_md" ]; then
    for iv in $BENCH_TIME_INTERVALS; do
        label_all="worker $iv"
        IFS='|' read -r med p99 mx < <(sql "
            SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY ms))::numeric, 1),
                   round((percentile_cont(0.99) WITHIN GROUP (ORDER BY ms))::numeric, 1),
                   round(max(ms)::numeric, 1)
              FROM (SELECT extract(epoch FROM e.at - (r.created_at + interval '2 seconds')) * 1000 AS ms
                      FROM approval.request r JOIN approval.event e ON e.request_id = r.id
                     WHERE r.title LIKE '$label_all r%' AND e.kind = 'expired') l")
        limit=$(($(interval_ms "$iv") + 50))
        v="met"; awk -v p="$p99" -v l="$limit" 'BEGIN { exit !(p <= l) }' || v="**not met**"
        table+="
| worker, \`tick_interval = $iv\`: due → fired, median / p99 (max) | **$med / $p99 ms** ($mx) | – | – | p99 of each run: $(list "${wlat[$iv:p99]}" "%s") ms; medians $(list "${wlat[$iv:med]}" "%s") ms | p99 ≤ $limit ms: $v |"
    done
fi

{
    cat <<EOF
## $SECTION_TITLE

$BENCH_TIME_REQUESTS open requests (\`test/bench/time_setup.sql\`), on
$settings_note

Each figure against a baseline measured in the same run: the plain table a
team would keep instead, \`team.request (id, state, created_at, sla,
sla_state)\` with the same open requests (a primary key, an index on
\`state\` and one on \`created_at WHERE state = 'pending'\`; no index can
serve \`created_at + sla < now()\`), and the statement it would run on a
schedule:

\`\`\`sql
UPDATE team.request SET sla_state = 'breached'
 WHERE state = 'pending' AND created_at + sla < now() AND sla_state <> 'breached';
\`\`\`

Median of $BENCH_RUNS interleaved runs, each run's figure listed ($started to
$finished, load average $loadavg_before before and $loadavg_after after; the
machine may be shared, and the spread of the runs shows the noise$( [ -n "${BENCH_SOURCE:-}" ] && printf '; source: %s' "$BENCH_SOURCE")).

$table

- **\`tick()\`, nothing due**: \`SELECT approval.tick();\` against the
  \`UPDATE\` above, each with \`pgbench -n -c 1 -T $BENCH_TIME_SECONDS\`
  (pgbench's average latency, the client's round trip included).  Of the
  open requests, $((BENCH_TIME_REQUESTS - due_total)) have
  \`"sla": "48 hours"\`, \`"sla_warning": 0.75\` and \`"expires_after": "30 days"\` and
  were created in the 3 hours before the run (nothing due for 33 hours).
  The other $due_total, of a workflow with \`"sla": "1 day"\` and
  \`"expires_after": "30 days"\`, come due in figure 2.  200 requests of each
  workflow were submitted through \`approval.submit()\`, the rest written
  set-based as the engine writes them (request, stage, \`pending_vote\`, two
  events with their hash chain): the script checks the generated rows
  against the submitted ones, and \`verify_audit()\` on a thousand of them.
- **Firing**: each run takes $BENCH_TIME_DUE of those $due_total in the
  order they come due and fires them with a tick each time $first_b more
  have come due (likewise for the other batch sizes), \`approval.tick(at)\` in a
  transaction of its own as the worker calls it, from a procedure (no client
  round trip).  Per deadline, **ours** locks the request (\`SKIP LOCKED\`),
  opens a subtransaction, loads the request and its stages, writes an
  \`sla_breached\` event chained to the request's sha256 hash chain (and
  sends it with NOTIFY, \`approval.notify\` being on), and writes the request
  back with its SLA state and its next deadline (the expiry).  **The
  baseline** runs the scan per tick at the same \`at\`; each scan reads every
  open request and updates the rows that came due: no event, no audit, no
  next deadline.  The baseline runs at most $BENCH_TIME_BASELINE_TICKS ticks of
  each run (a scan costs the same whichever rows it finds), then brings the
  rest of that run's rows up to date untimed; deadlines per second are the
  deadlines fired over the time of the ticks run.  After the runs the script
  checks that every due request fired once (its \`sla_breached\` event, its
  next deadline the expiry), that the baseline updated exactly the due rows,
  and the hash chains of every tenth fired request.  Each run starts after
  a \`VACUUM\` of both tables (untimed) and a \`CHECKPOINT\`.
- **After firing**: a firing updates the request's \`next_due\`, so its old
  entry stays in the index \`request_next_due\`, pointing to a dead row
  version, until \`VACUUM\`; a tick's scan for what is due steps over the
  old entries before its \`at\`.  The row measures \`approval.tick(at)\`
  with \`at\` a second after the last run's deadlines (nothing due there),
  \`pgbench -T $BENCH_TIME_SECONDS\`, before and after \`VACUUM
  approval.request\`.
EOF
    if [ -z "$worker_md" ]; then
        cat <<EOF
- **Worker**: \`approval.databases = '$db'\`, \`approval.tick_interval\`
  set with \`ALTER SYSTEM\` and a reload; in each run pgbench submits
  $BENCH_TIME_WORKER_RATE requests a second for $BENCH_TIME_WORKER_SECONDS s
  (\`-R $BENCH_TIME_WORKER_RATE\`, Poisson arrivals) of a workflow with
  \`"expires_after": "2 seconds"\`, so deadlines come due every 10 ms or so among
  the open requests above, and nobody calls \`tick()\`.  The latency of a
  request is the time of its \`expired\` event (\`approval.event.at\`, the
  firing transaction's \`now()\`) minus its deadline, \`created_at\` (the
  submit's \`now()\`) plus 2 seconds (\`expires_at\`, cleared when the
  request closes); median and p99
  over all the runs' requests ($(for iv in $BENCH_TIME_INTERVALS; do printf '%s: %s; ' "$iv" "${wlat[$iv:n]}"; done | sed 's/; $//')).
EOF
    else
        printf -- '- **Worker**: %s\n' "$worker_md"
    fi
} >"$BENCH_TIME_OUT"

say "time: section written to $BENCH_TIME_OUT"
