#!/usr/bin/env bash
# Install the Debian packages that the build, the tests and the demo need.
# Does nothing when they are all installed; otherwise runs apt-get update and
# installs only the missing ones (as root, through sudo when needed).
set -euo pipefail

PACKAGES=(
    make
    gcc
    postgresql-15
    postgresql-server-dev-15
    libpq-dev
    postgresql-15-cron
    postgresql-15-pgtap
    libtap-parser-sourcehandler-pgtap-perl
    libipc-run-perl
    libdbd-pg-perl
    python3-psycopg
)

# Installed only when their command is missing: Node.js from elsewhere
# (NodeSource's nodejs package) brings its own npm, which conflicts with
# Debian's.  COMMAND:PACKAGE
COMMANDS=(
    node:nodejs
    npm:npm
)

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: not a Debian-like system (no dpkg-query/apt-get); install these yourself:" >&2
    echo "  ${PACKAGES[*]} ${COMMANDS[*]#*:}" >&2
    exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    if [ "$status" != "installed" ]; then
        missing+=("$pkg")
    fi
done
for entry in "${COMMANDS[@]}"; do
    if ! command -v "${entry%%:*}" >/dev/null 2>&1; then
        missing+=("${entry#*:}")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

echo "bootstrap: installing ${missing[*]}"

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "bootstrap: root is needed to install ${missing[*]}, and sudo is not installed" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends "${missing[@]}"
