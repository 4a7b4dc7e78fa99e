#!/usr/bin/env bash
# Boot check of `sam build`'s output: starts each function's arm64
# `bootstrap` under qemu-aarch64 and checks that it gets past the dynamic
# loader and into its own code. There is no Lambda Runtime API to serve it
# yet: the runtime address is a closed local port, so a function that boots
# ends by failing to reach it, and what it prints is shown. Nothing leaves
# the machine: DynamoDB's endpoint is another closed local port, and the
# credentials and region are placeholders, so the SDK asks no metadata
# service.
#
# Usage: infra/sam/boot-check.sh BUILD_DIR   (e.g. .aws-sam/build)
#
# Needs qemu-aarch64 and the arm64 C library under /usr/aarch64-linux-gnu
# (Debian: qemu-user libc6-arm64-cross; .ci/deploy-checks.sh installs them).
set -euo pipefail

build="${1:?usage: $0 BUILD_DIR}"
sysroot=/usr/aarch64-linux-gnu
# Local ports nothing listens on (discard, echo): one for the runtime API,
# another for DynamoDB, so the error a function ends with says which it was.
runtime_api=127.0.0.1:9
dynamodb=127.0.0.1:7
# Seconds a function may take to boot and give up on the runtime API.
limit=30

# --- prerequisites
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

# --- boot: run one bootstrap, print what it said, return its exit status
boot() {
  env -i PATH="$PATH" \
    AWS_LAMBDA_RUNTIME_API="$runtime_api" \
    AWS_LAMBDA_FUNCTION_NAME="$1" \
    AWS_LAMBDA_FUNCTION_VERSION="\$LATEST" \
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128 \
    AWS_LAMBDA_LOG_GROUP_NAME="/aws/lambda/$1" \
    AWS_LAMBDA_LOG_STREAM_NAME=boot-check \
    TABLE_NAME=x \
    AWS_REGION=us-east-1 \
    AWS_ACCESS_KEY_ID=boot-check \
    AWS_SECRET_ACCESS_KEY=boot-check \
    AWS_EC2_METADATA_DISABLED=true \
    AWS_ENDPOINT_URL_DYNAMODB="http://$dynamodb" \
    timeout "$limit" qemu-aarch64 -L "$sysroot" "$2" 2>&1
}

# --- verdict: booted means it ran its own code as far as asking the runtime
# API for an invocation, and did not hang
failed=0
for bootstrap in "${bootstraps[@]}"; do
  function="$(basename "$(dirname "$bootstrap")")"
  status=0
  output="$(boot "$function" "$bootstrap")" || status=$?
  echo "--- $function: exit $status"
  printf '%s\n' "$output" | head -n 5
  if [ "$status" -eq 124 ]; then
    echo "error: $function still ran after ${limit} s" >&2
    failed=1
  elif printf '%s' "$output" | grep -q -e 'error while loading shared libraries' -e 'Could not open'; then
    echo "error: $function did not get past the dynamic loader" >&2
    failed=1
  elif ! printf '%s' "$output" | grep -q "$runtime_api"; then
    echo "error: $function never tried the runtime API at $runtime_api" >&2
    failed=1
  fi
done
if [ "$failed" -ne 0 ]; then
  exit 1
fi
echo "all ${#bootstraps[@]} functions booted and reached for the runtime API"
