#!/usr/bin/env bash
# Freeze the test data of a release, as that release made it, for
# test/t/004_upgrade.pl:
#
#   tools/freeze-upgrade-data.sh VERSION COMMIT > test/t/data/approval--VERSION.data.sql
#
# COMMIT is the release's commit (its approval.control names VERSION).  The
# script builds that commit's C library, puts it with the release's frozen
# install script (sql/approval--VERSION.sql of this tree) into a private copy
# of the PostgreSQL installation that pg_config names, starts a throwaway
# server of that copy, makes test/t/data/roles.sql and requests.sql there,
# and prints what pg_dump --data-only prints (less its \restrict lines), then
# every sequence's position.  A test loads it after CREATE EXTENSION approval
# VERSION 'VERSION' and the roles, and so holds the rows, event hashes and
# sequence positions the release itself wrote.
#
# Needs git, a C compiler and the server's development files.  Run it as a
# user that may run a server (not root: e.g. runuser -u postgres -- ...).
# Nothing in the tree or the installation is changed.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 VERSION COMMIT > test/t/data/approval--VERSION.data.sql" >&2
    exit 2
fi
version=$1
commit=$2
if [ "$(id -u)" -eq 0 ]; then
    echo "$0: run it as a user that may run a server, e.g. runuser -u postgres -- $0 $*" >&2
    exit 2
fi

root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$("$PG_CONFIG" --bindir)
pkglibdir=$("$PG_CONFIG" --pkglibdir)
sharedir=$("$PG_CONFIG" --sharedir)

script=$root/sql/approval--$version.sql
if [ ! -f "$script" ]; then
    echo "$0: no install script $script" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/approval-freeze.XXXXXX")
pg=$work/pg
cleanup() {
    if [ -f "$work/data/postmaster.pid" ]; then
        "$pg$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# --- the release's library ---
mkdir "$work/src"
git -c safe.directory="$root" -C "$root" archive "$commit" | tar -x -C "$work/src"
if ! grep -q "^default_version *= *'$version'" "$work/src/approval.control"; then
    echo "$0: approval.control of $commit is not version $version" >&2
    exit 1
fi
make -s -C "$work/src" PG_CONFIG="$PG_CONFIG" approval.so >&2

# --- a copy of the installation with that library and install script ---
# (the server finds its lib and share directories relative to its binary)
mkdir -p "$pg$bindir" "$pg$pkglibdir" "$pg$sharedir"
cp -a "$bindir/." "$pg$bindir/"
tar -C "$pkglibdir" --exclude=./bitcode -cf - . | tar -C "$pg$pkglibdir" -xf -
cp -a "$sharedir/." "$pg$sharedir/"
rm -f "$pg$sharedir"/extension/approval.control "$pg$sharedir"/extension/approval--*.sql
cp "$work/src/approval.so" "$pg$pkglibdir/approval.so"
cp "$work/src/approval.control" "$pg$sharedir/extension/"
cp "$script" "$pg$sharedir/extension/"

# --- a throwaway server of the copy, the data ---
"$pg$bindir/initdb" -D "$work/data" -A trust -E UTF8 --locale=C --no-sync >&2
cat >>"$work/data/postgresql.conf" <<EOF
listen_addresses = ''
port = 5432
unix_socket_directories = '$work'
shared_preload_libraries = 'approval'
jit = off
fsync = off
EOF
"$pg$bindir/pg_ctl" -D "$work/data" -l "$work/server.log" -w start >&2
export PGHOST=$work PGPORT=5432
unset PGDATABASE PGUSER PGOPTIONS

"$pg$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d postgres \
    -c "CREATE EXTENSION approval VERSION '$version'" \
    -f "$root/test/t/data/roles.sql" \
    -f "$root/test/t/data/requests.sql" >/dev/null
got=$("$pg$bindir/psql" -X -At -d postgres -c "SELECT extversion FROM pg_extension WHERE extname = 'approval'")
if [ "$got" != "$version" ]; then
    echo "$0: the extension is at $got, not $version" >&2
    exit 1
fi

# --- the dump ---
cat <<EOF
--
-- Data of approval $version as release $version made it (test/t/data/roles.sql
-- and requests.sql, on its own library): written by
--   tools/freeze-upgrade-data.sh $version $commit
-- Load after CREATE EXTENSION approval VERSION '$version' and roles.sql
-- (test/t/ApprovalFixture.pm, load_frozen).  Do not edit.
--
EOF
"$pg$bindir/pg_dump" --data-only -d postgres 2>/dev/null | grep -v -E '^\\(un)?restrict '
"$pg$bindir/psql" -X -At -d postgres -c "
    SELECT pg_catalog.format('SELECT pg_catalog.setval(%L, %s, true);', schemaname || '.' || sequencename, last_value)
      FROM pg_catalog.pg_sequences
     WHERE schemaname = 'approval' AND last_value IS NOT NULL
     ORDER BY sequencename"
