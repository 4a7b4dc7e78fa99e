#!/usr/bin/env bash
# Fuzzes the local API against openapi.yaml with Schemathesis, with every
# check on, positive and negative data: first on the memory store, then on
# DynamoDB Local. Installs Schemathesis (pinned in
# schemathesis-requirements.txt) in a venv under
# ${XDG_CACHE_HOME:-~/.cache}/users-api-ci/, builds and starts the local API
# on a free port, and stops everything it started on exit. Exits non-zero on
# any failure. Needs Python 3, and Java 17+ and Node.js for DynamoDB Local.
#
# SCHEMATHESIS_EXAMPLES (default 200) caps the test cases per operation and
# phase; SCHEMATHESIS_SEED makes a run repeat an earlier one (each run prints
# its seed).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
examples="${SCHEMATHESIS_EXAMPLES:-200}"
requirements="$root/.ci/schemathesis-requirements.txt"

# --- Schemathesis, in a venv named after the pins so a change reinstalls it
pins="$(sha256sum "$requirements" | cut -c1-12)"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/users-api-ci/schemathesis-$pins"
# The marker is written last, so an interrupted install is redone.
if [ ! -f "$venv/installed" ]; then
  echo "installing Schemathesis in $venv..." >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$requirements"
  touch "$venv/installed"
fi
"$venv/bin/st" --version


# --- the local API binary, and the processes we start (stopped on exit)
# shellcheck source=.ci/local-api.sh
source "$root/.ci/local-api.sh"
build_local_api
token="$("$local_api" dev-token)"

# Runs Schemathesis against a local API started with the given options.
fuzz() {
  local name="$1"
  shift
  local port log pid
  port="$(free_port)"
  log="$work/local-api-$name.log"
  # Info logs are one line per request; warnings and errors are what matter here.
  # With token checks on, as deployed: a token with both scopes for the
  # run, while Schemathesis' ignored_auth check sends requests without it.
  RUST_LOG=warn "$local_api" --port "$port" --dev-auth "$@" >"$log" 2>&1 &
  pid=$!
  pids+=("$pid")
  await_port "$pid" "$port" "$log" || return 1

  echo "--- schemathesis on the $name store (local API on port $port)" >&2
  local seed=()
  if [ -n "${SCHEMATHESIS_SEED:-}" ]; then
    seed=(--seed "$SCHEMATHESIS_SEED")
  fi
  local status=0
  # Three checks are left out, each because it asserts a convention the
  # documented contract breaks on purpose:
  # - unsupported_method expects 405 for a method a path does not list, but
  #   API Gateway HTTP APIs answer any request that matches no route with
  #   404 {"message":"Not Found"}, which the local API reproduces.
  # - use_after_free expects everything under a deleted user's path to be
  #   gone; a user's history (GET /users/{id}/events) outlives the user.
  # - ensure_resource_availability expects the user a 201 names to exist; a
  #   create retried with an Idempotency-Key replays the first 201 even after
  #   that user was deleted (the IETF draft's and Stripe's semantics).
  # Schemathesis judges a stateful step under settings that per-operation
  # configuration did not reliably reach, so they are excluded here.
  # Run from $work so Schemathesis' and Hypothesis' state stays out of the repo.
  # schemathesis_hooks.py adds one check: problem types as each response lists them.
  (cd "$work" && PYTHONPATH="$root/.ci" SCHEMATHESIS_HOOKS=schemathesis_hooks "$venv/bin/st" --config-file "$root/.ci/schemathesis.toml" run \
    "$root/openapi.yaml" --url "http://127.0.0.1:$port" \
    --header "Authorization: Bearer $token" \
    --checks all --exclude-checks unsupported_method,use_after_free,ensure_resource_availability \
    --mode all --max-examples "$examples" "${seed[@]}" \
    --request-timeout 10 --no-color) || status=$?
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if grep -Eq '"level":"(ERROR|WARN)"' "$log"; then
    echo "error: the local API logged warnings or errors ($name store):" >&2
    grep -E '"level":"(ERROR|WARN)"' "$log" >&2
    status=1
  fi
  return "$status"
}

# Both runs always happen, so one failure does not hide another.
failed=0
fuzz memory || failed=1

ddb_port="$(free_port)"
ddb_log="$work/dynamodb-local.log"
"$root/infra/dynamodb-local/run.sh" "$ddb_port" >"$ddb_log" 2>&1 &
ddb_pid=$!
pids+=("$ddb_pid")
await_port "$ddb_pid" "$ddb_port" "$ddb_log"
fuzz dynamodb --dynamodb-endpoint "http://127.0.0.1:$ddb_port" --table users-schemathesis || failed=1

if [ "$failed" -ne 0 ]; then
  echo "error: schemathesis found failures (see above)" >&2
fi
exit "$failed"
