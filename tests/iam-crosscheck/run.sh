#!/usr/bin/env bash
# Holds the local API's IAM evaluator against @cloud-copilot/iam-simulate
# (pinned in package-lock.json; AGPL-3.0, a test-only tool that is never
# shipped): the generated corpus and, when given, every decision of an IAM
# record (LOCAL_API_IAM_RECORD of a test run) under its function's role.
# usage: run.sh [IAM record]
# Needs Node.js 20+ and the local-api binary (cargo build -p local-api).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in
  /*) ;;
  *) target_dir="$root/$target_dir" ;;
esac
local_api="$target_dir/debug/local-api"
if [ ! -x "$local_api" ]; then
  echo "error: $local_api is missing: run cargo build -p local-api" >&2
  exit 1
fi
(cd "$here" && npm ci --silent --no-audit --no-fund)
record=()
if [ "$#" -gt 0 ]; then
  record=(--record "$1")
fi
exec node "$here/crosscheck.mjs" --local-api "$local_api" "${record[@]}"
