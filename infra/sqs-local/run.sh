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
# shellcheck source=infra/venv.sh
source "$here/../venv.sh"
bin="$(venv_requirements moto "$here/requirements.txt")"
exec "$bin/moto_server" -H 127.0.0.1 -p "$port"
