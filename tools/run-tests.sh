#!/usr/bin/env bash
# Run every test suite of the approval extension and print one summary line.
#
#   tools/run-tests.sh --regress "t1 t2" --isolation "s1 s2" [--pgtap GLOB] [--tap GLOB]
#                      [--existing] [--keep]
#
#   --regress LIST     pg_regress tests: sql/NAME.sql, expected/NAME.out
#   --isolation LIST   isolation specs: test/isolation/NAME.spec,
#                      test/isolation/expected/NAME.out
#   --pgtap GLOB       pgTAP files to run (default "*": test/pgtap/*.sql; "" none)
#   --tap GLOB         TAP files to run (default "*": test/t/*.pl; "" none)
#   --existing         use the server named by PGHOST/PGPORT instead of starting
#                      a throwaway one; the TAP suite (test/t) is skipped, since
#                      its tests start their own clusters ("make test" runs it)
#   --keep             keep the temporary directory (results, logs) for a look
#
# Suites: pg_regress, isolation, pgTAP (test/pgtap/*.sql with pg_prove) and TAP
# (test/t/*.pl with prove and PostgreSQL::Test::Cluster).  A failing suite does
# not stop the others.  Per-suite lines are followed by exactly one line
# "N passed, N failed"; the exit status is non-zero when anything failed or a
# suite could not run.  pg_regress and isolation count tests, pgTAP and TAP
# count assertions.
#
# PostgreSQL refuses to run as root, so as root this script runs itself again
# as the "postgres" system user.  Nothing is written into the source tree: all
# output goes to a temporary directory that is removed at exit (and the
# throwaway server stopped), whatever happened.
set -uo pipefail

usage() {
    sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

regress_tests=""
isolation_tests=""
pgtap_glob="*"
tap_glob="*"
existing=false
keep=false
orig_args=("$@")
while [ "$#" -gt 0 ]; do
    case "$1" in
        --regress)      [ "$#" -ge 2 ] || usage; regress_tests=$2; shift 2 ;;
        --regress=*)    regress_tests=${1#*=}; shift ;;
        --isolation)    [ "$#" -ge 2 ] || usage; isolation_tests=$2; shift 2 ;;
        --isolation=*)  isolation_tests=${1#*=}; shift ;;
        --pgtap)        [ "$#" -ge 2 ] || usage; pgtap_glob=$2; shift 2 ;;
        --tap)          [ "$#" -ge 2 ] || usage; tap_glob=$2; shift 2 ;;
        --existing)     existing=true; shift ;;
        --keep)         keep=true; shift ;;
        -h|--help)      usage ;;
        *)              echo "run-tests.sh: unknown argument '$1'" >&2; usage ;;
    esac
done

script=$(readlink -f "$0")
# shellcheck source=tools/lib.sh
. "$(dirname "$script")/lib.sh"
root=${APPROVAL_TEST_ROOT:-$(cd "$(dirname "$script")/.." && pwd)}
PG_CONFIG=${PG_CONFIG:-pg_config}

# Stop every server whose data directory is under DIR: ours, and TAP nodes
# that an interrupted test did not get to stop (pg_ctl puts the postmaster in
# a session of its own, so a Ctrl-C does not reach it).  First politely with
# pg_ctl, then SIGQUIT (immediate shutdown) to any postmaster still running
# from DIR, found by its command line "postgres -D DIR/...".
#   stop_servers_under DIR PG_CTL [COMMAND PREFIX, e.g. runuser -u postgres --]
# shellcheck disable=SC2317  # called from the EXIT traps
stop_servers_under() {
    local dir=$1 pg_ctl=$2 pidfile proc cmd
    shift 2
    for pidfile in "$dir"/data/postmaster.pid "$dir"/tap/tmp_check/*/pgdata/postmaster.pid; do
        [ -f "$pidfile" ] || continue
        "$@" "$pg_ctl" -D "$(dirname "$pidfile")" -m immediate stop >/dev/null 2>&1
    done
    for proc in /proc/[0-9]*; do
        cmd=$(tr '\0' ' ' 2>/dev/null <"$proc/cmdline") || continue
        case "$cmd" in
            *"postgres -D $dir/"*) kill -QUIT "${proc#/proc/}" 2>/dev/null ;;
        esac
    done
    return 0
}

# ---------------------------------------------------------------------------
# As root: hand over to the postgres user.
# ---------------------------------------------------------------------------
if [ "$(id -u)" -eq 0 ]; then
    require_postgres_user run-tests.sh

    tmp=$(mktemp -d "${TMPDIR:-/tmp}/approval-test.XXXXXX") || exit 1
    chown postgres: "$tmp"
    chmod 700 "$tmp"

    # shellcheck disable=SC2317  # called from the EXIT trap
    root_cleanup() {
        stop_servers_under "$tmp" "$("$PG_CONFIG" --bindir)/pg_ctl" as_postgres
        if $keep; then
            echo "run-tests.sh: kept $tmp"
        else
            rm -rf "$tmp"
        fi
    }
    trap root_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    # The postgres user must be able to read the tests.  When it cannot (a
    # clone under /root, say), it gets a copy of what the suites read.
    tree=$root
    if ! as_postgres test -r "$root/tools/run-tests.sh" -a -x "$root/test" 2>/dev/null; then
        tree=$tmp/tree
        mkdir -p "$tree"
        for d in tools sql expected test doc; do
            [ -d "$root/$d" ] && cp -a "$root/$d" "$tree/"
        done
        chown -R postgres: "$tree"
    fi

    cd "$tmp" || exit 1
    # (CI and the settings of test/t/010_model.pl are passed on by name:
    # sudo without -E rights would drop them)
    as_postgres env \
        APPROVAL_TEST_TMP="$tmp" \
        APPROVAL_TEST_ROOT="$tree" \
        PG_CONFIG="$PG_CONFIG" \
        PATH="$PATH" \
        ${CI:+"CI=$CI"} \
        ${APPROVAL_MODEL_SEED:+"APPROVAL_MODEL_SEED=$APPROVAL_MODEL_SEED"} \
        ${APPROVAL_MODEL_OPS:+"APPROVAL_MODEL_OPS=$APPROVAL_MODEL_OPS"} \
        ${APPROVAL_MODEL_TRACE:+"APPROVAL_MODEL_TRACE=$APPROVAL_MODEL_TRACE"} \
        bash "$tree/tools/run-tests.sh" "${orig_args[@]}"
    exit $?
fi

# ---------------------------------------------------------------------------
# Set-up: paths, temporary directory, throwaway server.
# ---------------------------------------------------------------------------
if ! bindir=$("$PG_CONFIG" --bindir 2>/dev/null) || ! pkglibdir=$("$PG_CONFIG" --pkglibdir); then
    echo "run-tests.sh: $PG_CONFIG not found; run tools/bootstrap.sh" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
pgxs_test=$pkglibdir/pgxs/src/test
pg_regress=$pgxs_test/regress/pg_regress
pg_isolation_regress=$pgxs_test/isolation/pg_isolation_regress

if [ -n "${APPROVAL_TEST_TMP:-}" ]; then
    tmp=$APPROVAL_TEST_TMP          # made (and removed) by the root parent
else
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/approval-test.XXXXXX") || exit 1
fi
cd "$tmp" || exit 1

server_started=false
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
    if $server_started; then
        stop_server "$tmp/data" "$bindir/pg_ctl"
    fi
    stop_servers_under "$tmp" "$bindir/pg_ctl"
    if [ -z "${APPROVAL_TEST_TMP:-}" ]; then
        if $keep; then
            echo "run-tests.sh: kept $tmp"
        else
            rm -rf "$tmp"
        fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

total_passed=0
total_failed=0
suite_lines=()

# report SUITE PASSED FAILED [NOTE]
report() {
    if ! [[ "$2" =~ ^[0-9]+$ && "$3" =~ ^[0-9]+$ ]]; then
        set -- "$1" 0 1 "could not read its summary"
    fi
    local line="$1: $2 passed, $3 failed${4:+ ($4)}"
    total_passed=$((total_passed + $2))
    total_failed=$((total_failed + $3))
    suite_lines+=("$line")
    echo "== $line"
}

finish() {
    echo
    echo "== summary"
    local l
    for l in "${suite_lines[@]}"; do
        echo "   $l"
    done
    echo "$total_passed passed, $total_failed failed"
    if [ "$total_failed" -gt 0 ]; then
        exit 1
    fi
    exit 0
}


if $existing; then
    echo "== using the existing server at ${PGHOST:-<libpq default host>}:${PGPORT:-<libpq default port>}"
else
    port=$(free_port)
    echo "== starting a throwaway server in $tmp (port $port)"
    if ! "$bindir/initdb" -D "$tmp/data" -A trust -E UTF8 --locale=C --no-sync \
            >"$tmp/initdb.log" 2>&1; then
        cat "$tmp/initdb.log"
        report server 0 1 "initdb failed"
        finish
    fi
    cat >>"$tmp/data/postgresql.conf" <<EOF

# tools/run-tests.sh
listen_addresses = ''
port = $port
unix_socket_directories = '$tmp'
shared_preload_libraries = 'approval,pg_cron'
cron.database_name = 'postgres'
fsync = off
max_connections = 50
log_line_prefix = '%m [%p] %q%a '
EOF
    if ! "$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w -t 120 start >/dev/null 2>&1; then
        echo "run-tests.sh: the server did not start; its log:"
        cat "$tmp/server.log"
        report server 0 1 "did not start"
        finish
    fi
    server_started=true
    export PGHOST=$tmp PGPORT=$port
fi
unset PGDATABASE PGOPTIONS

conn=()
[ -n "${PGHOST:-}" ] && conn+=(--host="$PGHOST")
[ -n "${PGPORT:-}" ] && conn+=(--port="$PGPORT")

# ---------------------------------------------------------------------------
# Parsing the tools' summaries.
# ---------------------------------------------------------------------------

# pg_regress LOG RC -> "PASSED FAILED"; FAILED is at least 1 when RC != 0.
# From the summary " All 3 tests passed. " / " 1 of 3 tests failed. "
# (PostgreSQL 16+: "# ..."), or, when pg_regress stopped before printing it
# (a missing expected file, say), from the per-test lines: "test x ... ok",
# "test x ... FAILED" (PostgreSQL 16+: "ok 1 - x", "not ok 2 - x").
parse_pg_regress() {
    awk -v rc="$2" '
        /^(test +)?[^ ].* \.\.\. +ok( |$)/ || /^ +[^ ].* \.\.\. +ok( |$)/ { lp++ }
        /\.\.\. +FAILED/ { lf++ }
        /^ok [0-9]+ / { lp++ }
        /^not ok [0-9]+ / { if ($0 ~ /# \(ignored\)|ignored/) lp++; else lf++ }
        { sub(/^# /, ""); sub(/^ +/, "") }
        /^All [0-9]+ tests passed/ { p = $2; f = 0; seen = 1 }
        /^[0-9]+ of [0-9]+ tests passed, [0-9]+ failed test\(s\) ignored/ { p = $1; f = 0; seen = 1 }
        /^[0-9]+ of [0-9]+ tests failed/ {
            f = $1; p = $3 - $1; seen = 1
            if (match($0, /[0-9]+ of these failures ignored/)) {
                ign = substr($0, RSTART) + 0; f -= ign; p += ign
            }
        }
        END {
            if (!seen) { p = lp; f = lf }
            if (rc != 0 && f == 0) f = 1
            print p + 0, f + 0
        }' "$1"
}

# prove / pg_prove LOG RC -> "PASSED FAILED TODO", counting assertions.  "Tests=N"
# is every assertion run.  Failures: each file in the "Test Summary Report"
# counts its failed assertions, or 1 when it died, exited non-zero or had a
# parse error (bad plan, no plan) without a failed assertion; the per-file
# "Failed X/Y subtests" lines (which also count planned tests that never ran)
# are summed too, and the larger of the two sums is taken.  TODO tests that
# fail (known bugs, shown by --comments as "# Failed (TODO) test") are counted
# apart: neither passed nor failed.
parse_prove() {
    awk -v rc="$2" '
        /^# +Failed \(TODO\) test/ { todo += 1 }
        /^Failed [0-9]+\/[0-9]+ subtests/ { split($2, xy, "/"); subtests_failed += xy[1] }
        /^Files=[0-9]+, Tests=[0-9]+/ {
            match($0, /Tests=[0-9]+/); total = substr($0, RSTART + 6, RLENGTH - 6) + 0; seen = 1
        }
        /\(Wstat: [0-9]+.*Tests: [0-9]+ Failed: [0-9]+\)/ {
            match($0, /Failed: [0-9]+/); f = substr($0, RSTART + 8, RLENGTH - 8) + 0
            match($0, /Wstat: [0-9]+/); w = substr($0, RSTART + 7, RLENGTH - 7) + 0
            asserts_failed += f
            pending = 0
            if (f > 0) failed += f
            else if (w != 0) failed += 1
            else pending = 1        # counts only if a "Parse errors" line follows
            next
        }
        /^ +Parse errors:/ { if (pending) failed += 1; pending = 0 }
        /^[^ ]/ { pending = 0 }
        END {
            if (!seen) total = 0
            if (subtests_failed > failed) failed = subtests_failed
            if (rc != 0 && failed == 0) failed = 1
            print total - asserts_failed - todo, failed + 0, todo + 0
        }' "$1"
}

todo_note() {
    if [ "${1:-0}" != 0 ]; then
        echo "TODO (known bug) failing: $1, not counted"
    fi
}

# ---------------------------------------------------------------------------
# a. pg_regress
# ---------------------------------------------------------------------------
run_regress() {
    echo
    echo "== pg_regress: ${regress_tests:-(none)}"
    if [ -z "${regress_tests// /}" ]; then
        report regress 0 0 "no tests"
        return
    fi
    local out=$tmp/regress rc
    mkdir -p "$out"
    # shellcheck disable=SC2086  # the list is split on purpose
    "$pg_regress" --inputdir="$root" --outputdir="$out" --bindir="$bindir" \
        "${conn[@]}" --dbname=contrib_regression $regress_tests 2>&1 | tee "$out/pg_regress.log"
    rc=${PIPESTATUS[0]}
    if [ "$rc" -ne 0 ] && [ -s "$out/regression.diffs" ]; then
        echo "== regression.diffs ($out/regression.diffs):"
        cat "$out/regression.diffs"
    fi
    read -r p f < <(parse_pg_regress "$out/pg_regress.log" "$rc")
    report regress "$p" "$f"
}

# ---------------------------------------------------------------------------
# b. isolation
# ---------------------------------------------------------------------------
run_isolation() {
    echo
    echo "== isolation: ${isolation_tests:-(none)}"
    if [ -z "${isolation_tests// /}" ]; then
        report isolation 0 0 "no specs"
        return
    fi
    local in=$tmp/isolation-input out=$tmp/isolation rc
    mkdir -p "$in" "$out"
    ln -s "$root/test/isolation" "$in/specs"
    ln -s "$root/test/isolation/expected" "$in/expected"
    # shellcheck disable=SC2086
    "$pg_isolation_regress" --inputdir="$in" --outputdir="$out" --bindir="$bindir" \
        "${conn[@]}" --dbname=isolation_regression $isolation_tests 2>&1 | tee "$out/pg_isolation_regress.log"
    rc=${PIPESTATUS[0]}
    if [ "$rc" -ne 0 ] && [ -s "$out/regression.diffs" ]; then
        echo "== regression.diffs ($out/regression.diffs):"
        cat "$out/regression.diffs"
    fi
    read -r p f < <(parse_pg_regress "$out/pg_isolation_regress.log" "$rc")
    report isolation "$p" "$f"
}

# ---------------------------------------------------------------------------
# c. pgTAP
# ---------------------------------------------------------------------------
run_pgtap() {
    echo
    echo "== pgTAP: test/pgtap/*.sql"
    local files=() out=$tmp/pgtap rc
    shopt -s nullglob
    # shellcheck disable=SC2206  # the glob is expanded on purpose
    [ -n "$pgtap_glob" ] && files=("$root"/test/pgtap/$pgtap_glob.sql)
    shopt -u nullglob
    if [ "${#files[@]}" -eq 0 ]; then
        report pgtap 0 0 "no tests"
        return
    fi
    if ! command -v pg_prove >/dev/null 2>&1; then
        echo "pg_prove not found (package libtap-parser-sourcehandler-pgtap-perl)"
        report pgtap 0 1 "could not run"
        return
    fi
    mkdir -p "$out"
    if ! "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d postgres \
            -c 'SET client_min_messages = warning' \
            -c 'DROP DATABASE IF EXISTS pgtap_regression' \
            -c 'CREATE DATABASE pgtap_regression' ||
       ! "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d pgtap_regression \
            -c 'CREATE EXTENSION pgtap'; then
        report pgtap 0 1 "could not create database pgtap_regression with pgtap"
        return
    fi
    local pgconn=()
    [ -n "${PGHOST:-}" ] && pgconn+=(--host "$PGHOST")
    [ -n "${PGPORT:-}" ] && pgconn+=(--port "$PGPORT")
    pg_prove --psql-bin "$bindir/psql" "${pgconn[@]}" \
        --dbname pgtap_regression --failures --comments --nocolor "${files[@]}" 2>&1 | tee "$out/pg_prove.log"
    rc=${PIPESTATUS[0]}
    read -r p f t < <(parse_prove "$out/pg_prove.log" "$rc")
    report pgtap "$p" "$f" "$(todo_note "$t")"
}

# ---------------------------------------------------------------------------
# d. TAP (perl, PostgreSQL::Test::Cluster), as PGXS's prove_installcheck runs it
# ---------------------------------------------------------------------------
run_tap() {
    echo
    echo "== TAP: test/t/*.pl"
    if $existing; then
        report tap 0 0 "skipped with --existing: its tests start their own clusters"
        return
    fi
    local files=() out=$tmp/tap rc
    shopt -s nullglob
    # shellcheck disable=SC2206
    [ -n "$tap_glob" ] && files=("$root"/test/t/$tap_glob.pl)
    shopt -u nullglob
    if [ "${#files[@]}" -eq 0 ]; then
        report tap 0 0 "no tests"
        return
    fi
    mkdir -p "$out/tmp_check"
    (
        cd "$out" || exit 1
        unset PGHOST PGPORT PGUSER PGDATABASE
        export TESTDIR=$out
        export PATH="$bindir:$PATH"
        export PG_REGRESS=$pg_regress
        export PERL5LIB="$pgxs_test/perl:$root/test/t${PERL5LIB:+:$PERL5LIB}"
        prove --nocolor --comments "${files[@]}"
    ) 2>&1 | tee "$out/prove.log"
    rc=${PIPESTATUS[0]}
    read -r p f t < <(parse_prove "$out/prove.log" "$rc")
    # for each file that failed: its own log (nodes, queries) and its servers' logs
    local file name log
    while read -r file; do
        name=$(basename "$file" .pl)
        for log in "$out/tmp_check/log/regress_log_$name" "$out/tmp_check/log/${name}"_*.log; do
            [ -f "$log" ] || continue
            echo "== last lines of $log:"
            tail -n 40 "$log"
        done
    done < <(sed -n 's/^\([^ ].*\.pl\) *(Wstat:.*/\1/p' "$out/prove.log")
    report tap "$p" "$f" "$(todo_note "$t")"
}

run_regress
run_isolation
run_pgtap
run_tap
finish
