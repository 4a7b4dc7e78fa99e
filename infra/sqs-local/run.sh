#!/usr/bin/env bash
# Runs moto's server (an independent emulation of AWS APIs, here for SQS)
# in the foreground on 127.0.0.1:${1:-5000}. Installs it from this folder's
# requirements.txt into a cached venv on first use. Needs Python 3.9+.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
port="${1:-5000}"

if ! command -v python3 >/dev/null 2>&1; then
  echo "error: the SQS emulator needs Python 3 (python3), and it is not on PATH." >&2
  exit 1
fi
cache="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/users-api-ci"
python="$(python3 -c 'import sys; print("py%d.%d" % sys.version_info[:2])')"
venv="$cache/moto-$(sha256sum "$here/requirements.txt" | cut -c1-12)-$python"
# A venv counts only once its install finished (the marker).
if [ ! -e "$venv/.installed" ] || ! "$venv/bin/python" -c '' 2>/dev/null; then
  echo "installing moto into $venv..." >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$here/requirements.txt" >&2
  touch "$venv/.installed"
fi
exec "$venv/bin/moto_server" -H 127.0.0.1 -p "$port"
