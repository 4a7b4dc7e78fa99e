#!/usr/bin/env bash
# Clients and docs from openapi.yaml, as a client team would use them:
# generates a Python client (openapi-python-client) and TypeScript types
# (openapi-typescript, used through openapi-fetch and compiled with
# `tsc --noEmit --strict`), fails on any generator warning or left-out
# operation or schema, runs both smoke programs in tests/clients/ against
# the local API (token checks on, as deployed), and checks /docs in
# headless Chromium: every operation listed, "try it out" with a token.
#
# Installs its pinned tools on first use: a venv from
# tests/clients/python/requirements.txt under
# ${XDG_CACHE_HOME:-~/.cache}/users-api-ci/, npm packages from
# tests/clients/typescript/package-lock.json (npm's cache there too) and
# Debian's chromium if missing. Needs Python 3, Node.js and npm. Takes
# about 90 s on a fresh machine (with the local API already built), about
# 35 s once the tools are in place.
#
#   .ci/clients.sh                 check
#   .ci/clients.sh --screenshot    also rewrite docs/api-docs.png
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
clients="$root/tests/clients"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/users-api-ci"
screenshot=""
if [ "${1:-}" = "--screenshot" ]; then
  screenshot="$root/docs/api-docs.png"
fi
started=$SECONDS

# shellcheck source=.ci/local-api.sh
source "$root/.ci/local-api.sh"

# --- tools
requirements="$clients/python/requirements.txt"
venv="$cache/clients-python-$(sha256sum "$requirements" | cut -c1-12)"
# The marker is written last, so an interrupted install is redone.
if [ ! -f "$venv/installed" ] || ! "$venv/bin/python" -c '' 2>/dev/null; then
  echo "installing openapi-python-client in $venv..." >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$requirements"
  touch "$venv/installed"
fi
# npm ci starts from an empty node_modules each time; the marker skips it
# while node_modules holds what this lockfile names.
lock_marker="$clients/typescript/node_modules/.installed-$(sha256sum "$clients/typescript/package-lock.json" | cut -c1-12)"
if [ ! -f "$lock_marker" ]; then
  (cd "$clients/typescript" &&
    npm ci --silent --no-audit --no-fund --cache "$cache/npm" --prefer-offline)
  touch "$lock_marker"
fi
# $CHROMIUM names another Chromium-based browser to use (GitHub's runners
# have Chrome; their chromium package is a snap).
if [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium..." >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
echo "tools ready in $((SECONDS - started)) s"

# --- generate, failing on anything a generator says beyond its banner
generate() {
  local name="$1" log="$work/$1.log"
  shift
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo "error: the $name generator failed" >&2
    return 1
  fi
  if grep -Ev '^(Generating |✨ openapi-typescript |🚀 )|^$' "$log" >&2; then
    echo "error: the $name generator warned (above)" >&2
    return 1
  fi
}
echo "--- generate: openapi-python-client $("$venv/bin/openapi-python-client" --version | cut -d' ' -f3)"
# Its post hooks (ruff) are found on PATH.
PATH="$venv/bin:$PATH" generate openapi-python-client \
  openapi-python-client generate --path "$root/openapi.yaml" \
  --output-path "$work/python/users_api_client" --meta none --fail-on-warning
echo "--- generate: openapi-typescript"
(cd "$clients/typescript" && generate openapi-typescript npx --no-install openapi-typescript \
  "$root/openapi.yaml" --output generated/api.d.ts)
"$venv/bin/python" "$clients/check_generated.py" "$root/openapi.yaml" \
  "$work/python/users_api_client" "$clients/typescript/generated/api.d.ts"
echo "--- tsc --noEmit --strict"
(cd "$clients/typescript" && npx --no-install tsc --noEmit --strict -p . &&
  npx --no-install tsc -p .)

# --- the local API, with token checks on
build_local_api
token="$("$local_api" dev-token)"
port="$(free_port)"
log="$work/local-api.log"
RUST_LOG=warn "$local_api" --port "$port" --dev-auth >"$log" 2>&1 &
pid=$!
pids+=("$pid")
await_port "$pid" "$port" "$log"
url="http://127.0.0.1:$port"

echo "--- smoke: Python client"
USERS_API_URL="$url" USERS_API_TOKEN="$token" PYTHONPATH="$work/python" \
  "$venv/bin/python" "$clients/python/smoke.py"
echo "--- smoke: TypeScript client"
USERS_API_URL="$url" USERS_API_TOKEN="$token" node "$clients/typescript/build/smoke.js"

echo "--- /docs in headless Chromium $("${CHROMIUM:-chromium}" --version 2>/dev/null | cut -d' ' -f2)"
# Each operationId once (links name them again).
mapfile -t operations < <(sed -n 's/^ *operationId: *//p' "$root/openapi.yaml" | sort -u)
USERS_API_URL="$url" USERS_API_TOKEN="$token" node "$clients/typescript/build/docs-check.js" \
  ${screenshot:+--screenshot "$screenshot"} "${operations[@]}"
if [ -n "$screenshot" ]; then
  echo "wrote $screenshot"
fi

if grep -Eq '"level":"(ERROR|WARN)"' "$log"; then
  echo "error: the local API logged warnings or errors:" >&2
  grep -E '"level":"(ERROR|WARN)"' "$log" >&2
  exit 1
fi
echo "clients and docs checked in $((SECONDS - started)) s"
