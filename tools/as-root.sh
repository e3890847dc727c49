#!/usr/bin/env bash
# Run a command as root: directly when we already are root, else through sudo.
#   tools/as-root.sh make install
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 command [args...]" >&2
    exit 2
fi

if [ "$(id -u)" -eq 0 ]; then
    exec "$@"
fi

if ! command -v sudo >/dev/null 2>&1; then
    echo "as-root.sh: '$*' needs root and sudo is not installed; run it as root" >&2
    exit 1
fi
exec sudo -- "$@"
