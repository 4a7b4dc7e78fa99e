#!/usr/bin/env bash
# Builds create-user once per lever, with that lever undone (or pushed the
# other way), for the benchmark's "Levers" section. Profile levers are
# `--config profile.release.*` overrides; the others build a copy of the
# workspace with one edit. Every build, the reference included, is
# `-p create-user`: features resolved for create-user alone, so a lever's
# effect is not mixed with what the rest of the workspace turns on. Every
# build, the reference included, has storage's `local-ca` feature, as the
# harness's builds do, so that it trusts the harness's TLS proxy. The
# profile builds share one target folder; each source variant (a copy of
# the workspace with one edit) has its own: cargo keys a path crate's
# artifacts by its path inside the workspace and judges freshness by the
# sources it last built from, so in a shared folder a copy's edit can go
# unseen and the "variant" is the reference again. A variant byte-identical
# to the reference stops the script. A second run only rebuilds what
# changed; a first one takes minutes per build on a two-core machine.
#
# Usage: levers.sh OUT_DIR [BUILD...]   (default: every build, in the order below)
# Writes OUT_DIR/manifest.tsv: lever <TAB> build <TAB> binary <TAB> note
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="$(mkdir -p "$1" && cd "$1" && pwd)"
shift
wanted=("$@")
target="$out/target"
manifest="$out/manifest.tsv"
mkdir -p "$out/bin"
: >"$manifest"

# Whether build NAME was asked for.
wanted() {
  [ "${#wanted[@]}" -eq 0 ] && return 0
  local name
  for name in "${wanted[@]}"; do [ "$name" = "$1" ] && return 0; done
  return 1
}

# Builds create-user in DIR into TARGET (with the cargo ARGs) and records
# it in the manifest as build NAME.
build() { # name lever build note dir target [arg...]
  local name=$1 lever=$2 build=$3 note=$4 dir=$5 target=$6
  shift 6
  echo "--- levers: $name ($build)" >&2
  (cd "$dir" && CARGO_TARGET_DIR="$target" cargo build --quiet --release -p create-user --features storage/local-ca "$@")
  if [ "$name" != deployed ] && cmp -s "$target/release/create-user" "$out/bin/deployed"; then
    echo "levers.sh: $name built the same binary as the reference; its edit did not take" >&2
    exit 1
  fi
  cp "$target/release/create-user" "$out/bin/$name"
  printf '%s\t%s\t%s\t%s\n' "$lever" "$build" "$out/bin/$name" "$note" >>"$manifest"
}

profile() { # name lever build note config...
  local name=$1 lever=$2 build=$3 note=$4
  shift 4
  [ "$name" = deployed ] || wanted "$name" || return 0
  local args=()
  for setting in "$@"; do args+=(--config "profile.release.$setting"); done
  build "$name" "$lever" "$build" "$note" "$root" "$target" "${args[@]}"
}

# A copy of the workspace's tracked files in $out/src-NAME, rewritten only
# where a file's content changed, so cargo sees unchanged files as fresh.
copy_workspace() { # name
  local dest="$out/src-$1" file
  (cd "$root" && git ls-files -z) | while IFS= read -r -d '' file; do
    mkdir -p "$dest/$(dirname "$file")"
    if ! cmp -s "$root/$file" "$dest/$file.orig" 2>/dev/null; then
      cp -p "$root/$file" "$dest/$file.orig"
      cp -p "$root/$file" "$dest/$file"
    fi
  done
  echo "$dest"
}

edit() { # dir file perl-substitution
  local dir=$1 file=$2 expression=$3 staged
  staged="$(mktemp)"
  perl -0pe "$expression" "$dir/$file.orig" >"$staged"
  if cmp -s "$staged" "$dir/$file.orig"; then
    echo "levers.sh: '$expression' no longer matches $file; update this script" >&2
    exit 1
  fi
  if ! cmp -s "$staged" "$dir/$file"; then cp "$staged" "$dir/$file"; fi
  rm -f "$staged"
}

# variant NAME LEVER BUILD NOTE FILE EXPRESSION [FILE EXPRESSION...]: a copy
# of the workspace with each perl substitution applied to its file, built
# in a target folder of its own.
variant() {
  local name=$1 lever=$2 build=$3 note=$4 dir
  shift 4
  wanted "$name" || return 0
  dir="$(copy_workspace "$name")"
  while [ "$#" -gt 0 ]; do
    edit "$dir" "$1" "$2"
    shift 2
  done
  build "$name" "$lever" "$build" "$note" "$dir" "$target-$name"
}

# The reference: the deployed profile, built the same way as the variants.
profile deployed "(reference)" "deployed profile: opt-level z (3 for the per-request crates), lto, 1 codegen unit, panic abort, strip" "-p create-user"

config=functions/storage/src/config.rs
variant lazy-connection "DynamoDB connection opened at init" "undone: the first request opens it" "lambda.rs without open_connection" \
  functions/storage/src/lambda.rs 's/\n    config::open_connection\(&client\)\.await;//'
variant dynamodb-interceptor "DynamoDB call metrics and spans" "undone: no SDK interceptor on the store's client" "the store without dynamodb_calls::instrument" \
  functions/storage/src/dynamodb/mod.rs 's/telemetry::dynamodb_calls::instrument\(&client\)/client/'
variant tls-aws-lc "TLS crypto provider" "changed: rustls on aws-lc-rs instead of ring" "the SDK's default provider" \
  Cargo.toml 's/(aws-smithy-http-client = \{[^\n]*)"rustls-ring"/$1"rustls-aws-lc"/' \
  "$config" 's/CryptoMode::Ring/CryptoMode::AwsLc/'
variant roots-system "trust roots" "undone: the system's store (SSL_CERT_FILE) instead of the 5 compiled in" "read and parsed at init, as the SDK does by default" \
  "$config" 's/\.with_native_roots\(false\)\s*\.with_pem_certificate\(AMAZON_TRUST_SERVICES\);/.with_native_roots(true);/'
variant roots-mozilla "trust roots" "changed: Mozilla's roots compiled in (webpki-root-certs) instead of Amazon's 5" "every root a browser trusts, encoded and parsed at init" \
  functions/storage/Cargo.toml 's/\[dependencies\]\n/[dependencies]\nbase64.workspace = true\nwebpki-root-certs.workspace = true\n/' \
  "$config" 's/\.with_pem_certificate\(AMAZON_TRUST_SERVICES\);/;\n    let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().fold(roots, |roots, der| roots.with_pem_certificate(format!("-----BEGIN CERTIFICATE-----\\n{}\\n-----END CERTIFICATE-----\\n", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der))));/'
variant credential-chain "credentials and region" "undone: the SDK's default chain instead of Lambda's environment" "aws_config::defaults(...).load()" \
  "$config" 's/match lambda_environment\(env_var\) \{/match None::<(Region, Credentials)> {/'
variant sdk-default-features "SDK default features off" "undone: default features on" "aws-config and aws-sdk-dynamodb with default features" \
  Cargo.toml 's/(aws-config = \{ version = "[^"]*", )default-features = false, /$1/; s/(aws-sdk-dynamodb = \{ version = "[^"]*", )default-features = false, /$1/'

profile cargo-defaults "release profile" "undone: Cargo's defaults (opt-level 3, no LTO, 16 units, unwind, no strip)" "" "opt-level=3" "lto=false" "codegen-units=16" 'panic="unwind"' "strip=false"
profile panic-unwind "panic strategy" 'undone: panic = "unwind"' "a panic would end one invocation, not the process" 'panic="unwind"'
profile opt-s "opt-level" 'changed: opt-level = "s"' "small code, some speed optimisations; the per-request crates stay at 3" 'opt-level="s"'
profile opt-3 "opt-level" "changed: opt-level = 3" "fastest code" "opt-level=3"
profile no-lto "lto" "undone: lto = false" "" "lto=false"
profile cgu-16 "codegen-units" "undone: codegen-units = 16" "" "codegen-units=16"
profile no-strip "strip" "undone: strip = false" "symbols kept" "strip=false"

echo "levers: built $(wc -l <"$manifest") variants; manifest in $manifest" >&2
