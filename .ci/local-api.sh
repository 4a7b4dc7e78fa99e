# shellcheck shell=bash
# Variables set here are read by the scripts that source this file, and
# $root is theirs.
# shellcheck disable=SC2034,SC2154
# Shared by the .ci scripts that run the local API; sourced, not run.
# Needs $root (the repository). Gives:
#   $work        a scratch folder, removed on exit
#   pids+=(PID)  processes to stop on exit (each is killed, then awaited)
#   build_local_api  builds the local API (debug), sets $local_api to its path
#   free_port    prints a free TCP port on 127.0.0.1
#   await_port PID PORT LOG   waits until something listens on PORT, or PID
#                dies, or 60 s pass (then prints LOG and fails)

work="$(mktemp -d -t users-api-ci.XXXXXX)"
pids=()
stop() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap stop EXIT
# A signal ends the script through exit, so the EXIT trap runs too.
trap 'exit 130' INT
trap 'exit 143' TERM

build_local_api() {
  (cd "$root" && cargo build --locked --quiet -p local-api)
  local target_dir
  target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps --locked |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
  local_api="$target_dir/debug/local-api"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

await_port() {
  local pid="$1" port="$2" log="$3"
  for _ in $(seq 1 120); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "error: the process for port $port exited:" >&2
      cat "$log" >&2
      return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    sleep 0.5
  done
  echo "error: nothing answered on port $port within 60 s:" >&2
  cat "$log" >&2
  return 1
}
