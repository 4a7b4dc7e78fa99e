#!/usr/bin/env bash
# Boot check of `sam build`'s output: each function's arm64 `bootstrap`, the
# file that is uploaded, starts under qemu-aarch64 against the local Lambda
# Runtime API with the environment and role the translated template gives
# it (`local-api boot`), receives one event (a request to its route with a
# random id, or an empty stream batch) and must answer it: a proxy response
# that is not a 5xx, or the worker's batch response. This proves the target,
# the C library version and the init path of what is deployed. DynamoDB
# Local is started for it; nothing leaves the machine. Emulated timings
# mean nothing.
#
# Usage: infra/sam/boot-check.sh BUILD_DIR   (e.g. .aws-sam/build)
#
# Needs qemu-aarch64 and the arm64 C library under /usr/aarch64-linux-gnu
# (Debian: qemu-user libc6-arm64-cross; .ci/deploy-checks.sh installs them),
# and what DynamoDB Local needs (Java 17+, npm).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)"
sysroot=/usr/aarch64-linux-gnu
# shellcheck source=.ci/local-api.sh disable=SC2154  # $work comes from it
source "$root/.ci/local-api.sh"

if ! command -v qemu-aarch64 >/dev/null || [ ! -e "$sysroot/lib/ld-linux-aarch64.so.1" ]; then
  echo "error: needs qemu-aarch64 and $sysroot (apt-get install qemu-user libc6-arm64-cross)" >&2
  exit 1
fi
shopt -s nullglob
bootstraps=("$build"/*/bootstrap)
if [ ${#bootstraps[@]} -eq 0 ]; then
  echo "error: no $build/*/bootstrap: run sam build first" >&2
  exit 1
fi

build_local_api
port="$(free_port)"
"$root/infra/dynamodb-local/run.sh" "$port" >"$work/dynamodb.log" 2>&1 &
pids+=($!)
await_port "$!" "$port" "$work/dynamodb.log"

failed=0
for bootstrap in "${bootstraps[@]}"; do
  function="$(basename "$(dirname "$bootstrap")")"
  if ! "$local_api" boot --function "$function" --dynamodb-endpoint "http://127.0.0.1:$port" \
    -- qemu-aarch64 -L "$sysroot" "$bootstrap" 2>"$work/$function.log"; then
    echo "error: $function did not boot and answer; what it printed:" >&2
    tail -n 20 "$work/$function.log" >&2
    failed=1
  fi
done
if [ "$failed" -ne 0 ]; then
  exit 1
fi
echo "all ${#bootstraps[@]} arm64 bootstraps booted under qemu and answered an invocation"
