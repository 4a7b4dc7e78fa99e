#!/usr/bin/env bash
# The benchmarks, one command: builds every function with the release
# profile it deploys with, installs the Node.js and Python peers (pinned),
# runs the handler micro-benchmarks (criterion) and the harness (Lambda
# Runtime API, DynamoDB Local, wrk), prints the report and writes it to
# docs/benchmarks.md with SVG charts.
#
#   infra/bench/run.sh            full run (under 30 minutes; the report says how long)
#   infra/bench/run.sh --levers   also rebuild create-user once per lever and
#                                 measure each build (about an hour more;
#                                 LEVERS="tls-aws-lc opt-s ..." builds only those)
#   infra/bench/run.sh --quick    a few minutes: proves the harness works (CI);
#                                 writes to target/bench-quick/, not docs/
#
# Needs Rust, Java 17+, Node.js with npm, Python 3.11+ with venv, wrk,
# and taskset (util-linux). BENCH_QUICK=1 is the same as --quick.
# Run `sam build` first for the arm64 size budget: the report reads the
# bootstraps in .aws-sam/build/ (without them that row is "not measured").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
quick=false
levers=false
for arg in "$@"; do
  case "$arg" in
    --quick) quick=true ;;
    --levers) levers=true ;;
    *) sed -n '2,19p' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
  esac
done
if [ "${BENCH_QUICK:-}" = 1 ]; then quick=true; fi
# The report says how long the whole run took, builds included.
BENCH_STARTED="$(date +%s)"
export BENCH_STARTED

missing=()
for tool in cargo java node npm python3 wrk taskset; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "error: the benchmarks need: ${missing[*]} (wrk: apt-get install wrk; taskset: util-linux)" >&2
  exit 1
fi
if [ "$(nproc)" -lt 2 ]; then
  echo "error: the benchmarks pin the server and the load generator to two different cores; this machine has $(nproc)" >&2
  exit 1
fi

target="${CARGO_TARGET_DIR:-$root/target}"
if $quick; then
  work="$target/bench-quick"
  out="$work/report"
else
  work="$target/bench"
  out="$root/docs"
fi
cache="${XDG_CACHE_HOME:-$HOME/.cache}/users-api-bench"
mkdir -p "$work" "$cache"
cd "$root"
echo "--- load before the run: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# As `sam build` builds them (`cargo lambda build --release --bin <function>`):
# the functions' features resolved among the functions alone, not unified
# with the local API's and the harness's (which turn on the SDK's default
# HTTPS client and common's test helpers), the release profile. Plus
# storage's `local-ca`: the functions then trust the harness's DynamoDB
# proxy CA from USERS_API_LOCAL_CA_FILE.
functions=()
for dir in functions/*/; do
  name="$(basename "$dir")"
  [ "$name" = common ] || functions+=(-p "$name")
done
echo "--- building the functions and the hello-world baseline (release profile, storage/local-ca)" >&2
cargo build --release --locked --features storage/local-ca "${functions[@]}" -p hello-lambda
# The harness, the local API (its load test) and the handler benchmarks:
# release builds for the report; in quick mode, whose figures nobody reads,
# the workspace's dev builds (the ones ./infra/test.sh has just made), so CI
# does not build them twice more.
if $quick; then
  profile=dev
  tools="$target/debug"
  echo "--- building the harness and the local API (dev profile: quick mode)" >&2
  cargo build --locked --workspace --bins
else
  profile=release
  tools="$target/release"
  echo "--- building the harness and the local API (its load test)" >&2
  cargo build --release --locked -p bench -p local-api
fi

echo "--- installing the Node.js peers (npm ci)" >&2
node_dir="$root/infra/bench/peers/node"
if ! cmp -s "$node_dir/package-lock.json" "$node_dir/node_modules/.installed-lock.json" 2>/dev/null; then
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$node_dir/package-lock.json" "$node_dir/node_modules/.installed-lock.json"
fi

echo "--- installing the Python peers (venv from requirements.txt)" >&2
requirements="$root/infra/bench/peers/python/requirements.txt"
venv="$cache/venv-$(sha256sum "$requirements" | cut -c1-16)"
if [ ! -f "$venv/.installed" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$requirements"
  touch "$venv/.installed"
fi

echo "--- handler cost (criterion, pinned to core 0)" >&2
if $quick; then
  criterion_args=(--warm-up-time 0.2 --measurement-time 0.5 --sample-size 10)
else
  criterion_args=(--warm-up-time 2 --measurement-time 5)
fi
# --workspace: features resolved as for `cargo test --workspace`, so a dev
# build reuses what the tests built.
cargo bench --locked --profile "$profile" --workspace --bench handlers --no-run
taskset -c 0 cargo bench --locked --profile "$profile" --workspace --bench handlers -- --noplot "${criterion_args[@]}"

lever_args=()
if $levers && ! $quick; then
  echo "--- levers: building create-user once per lever (levers.sh)" >&2
  # shellcheck disable=SC2086 # LEVERS is a list of build names
  "$root/infra/bench/levers.sh" "$work/levers" ${LEVERS:-}
  lever_args=(--levers "$work/levers/manifest.tsv")
fi

quick_args=()
if $quick; then quick_args=(--quick); fi
echo "--- the harness (pinned to core 1; functions and servers on core 0)" >&2
taskset -c 1 "$tools/bench" \
  --bin-dir "$target/release" \
  --local-api "$tools/local-api" \
  --criterion-dir "$target/criterion" \
  --venv "$venv" \
  --out "$out" \
  --work-dir "$work" \
  "${quick_args[@]}" "${lever_args[@]}"
