#!/usr/bin/env bash
# Deploy checks: lints template.yaml (sam validate --lint, cfn-lint, checkov),
# checks that its committed SAM translation (infra/sam/translated/) is
# current, and proves the SAM build path: `sam build` must turn every
# function into an arm64 `bootstrap`, whose sizes it prints, and each one
# must start under qemu-aarch64 (infra/sam/boot-check.sh). Installs its
# pinned tools into virtualenvs under a cache directory on first use (about
# 80 s), and qemu from apt when it is missing (about 15 s); later runs reuse
# them. Needs python3, rustup and network access to PyPI, the Rust
# distribution server and Debian's archive on first use.
set -euo pipefail
trap 'echo "error: deploy checks failed (line $LINENO: $BASH_COMMAND)" >&2' ERR
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=.ci/tools.sh
source .ci/tools.sh

started=$SECONDS
step=$SECONDS
echo "--- tools (pinned, cached in $cache)"
sam_bin="$(venv aws-sam-cli "$SAM_CLI_VERSION")"
cfn_lint_bin="$(venv cfn-lint "$CFN_LINT_VERSION")"
checkov_bin="$(venv checkov "$CHECKOV_VERSION")"
cargo_lambda_bin="$(venv cargo-lambda "$CARGO_LAMBDA_VERSION")"
rustup target add aarch64-unknown-linux-gnu
# qemu runs the arm64 bootstraps on this machine, with Debian's arm64 C
# library as their root for the dynamic loader.
if ! command -v qemu-aarch64 >/dev/null || [ ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]; then
  qemu_step=$SECONDS
  echo "installing qemu-user and libc6-arm64-cross" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user libc6-arm64-cross >/dev/null
  echo "qemu installed in $((SECONDS - qemu_step)) s"
fi
echo "tools ready in $((SECONDS - step)) s"

echo "--- sam validate --lint (SAM CLI $SAM_CLI_VERSION)"
"$sam_bin/sam" validate --lint --region us-east-1 --template template.yaml

echo "--- cfn-lint $CFN_LINT_VERSION"
"$cfn_lint_bin/cfn-lint" template.yaml
echo "no findings"

echo "--- checkov $CHECKOV_VERSION (skips are justified in template.yaml)"
# --skip-download: no calls to the vendor's platform, which CI need not reach.
"$checkov_bin/checkov" --quiet --compact --skip-download \
  --framework cloudformation --file template.yaml

echo "--- the edge's companion web ACL template (infra/edge/web-acl.py): cfn-lint, checkov"
companion="$(mktemp -t web-acl.XXXXXX.json)"
"$sam_bin/python" infra/edge/web-acl.py template.yaml >"$companion"
"$cfn_lint_bin/cfn-lint" --regions us-east-1 -- "$companion"
"$checkov_bin/checkov" --quiet --compact --skip-download \
  --framework cloudformation --file "$companion"
rm -f "$companion"
echo "no findings"

echo "--- the deploy workflow sends every parameter (infra/deploy/check-deploy-parameters.sh)"
infra/deploy/check-deploy-parameters.sh "$sam_bin"

echo "--- SAM translation is current (infra/sam/translate.sh --check)"
step=$SECONDS
infra/sam/translate.sh --check
echo "translation check took $((SECONDS - step)) s"

echo "--- sam build (rust-cargolambda, arm64)"
step=$SECONDS
rm -rf .aws-sam/build
# sam build runs `cargo lambda build --release --arm64 --bin <binary>` once
# a function, one after another, and each link (LTO, one codegen unit) keeps
# one core busy. The same command with every binary at once selects the
# same packages (the default members), so the same features: it links them
# side by side, and sam build's own runs then find them fresh.
mapfile -t binaries < <("$sam_bin/python" - template.yaml <<'EOF'
import sys
from samtranslator.yaml_helper import yaml_parse
with open(sys.argv[1]) as f:
    resources = yaml_parse(f.read())["Resources"]
for resource in resources.values():
    if resource["Type"] == "AWS::Serverless::Function":
        print(resource["Metadata"]["BuildProperties"]["Binary"])
EOF
)
PATH="$cargo_lambda_bin:$PATH" cargo lambda build --release --arm64 "${binaries[@]/#/--bin=}"
echo "the ${#binaries[@]} binaries built in $((SECONDS - step)) s"
# cargo-lambda cross-compiles with the zig its PyPI package brings.
PATH="$cargo_lambda_bin:$PATH" "$sam_bin/sam" build --template template.yaml
echo "sam build took $((SECONDS - step)) s"

echo "--- every function built for arm64"
"$sam_bin/python" - template.yaml .aws-sam/build <<'EOF'
import io, os, sys, zipfile
from samtranslator.yaml_helper import yaml_parse

template, build = sys.argv[1], sys.argv[2]
with open(template) as f:
    resources = yaml_parse(f.read())["Resources"]
functions = {
    logical_id: resource["Metadata"]["BuildProperties"]["Binary"]
    for logical_id, resource in resources.items()
    if resource["Type"] == "AWS::Serverless::Function"
}
print(f"{'function':<14} {'bootstrap':>12} {'zip':>12}")
failed = False
for logical_id, binary in sorted(functions.items(), key=lambda f: f[1]):
    path = os.path.join(build, logical_id, "bootstrap")
    with open(path, "rb") as f:
        header = f.read(20)
    # ELF, 64-bit, little-endian, e_machine 183 (EM_AARCH64)
    if header[:4] != b"\x7fELF" or header[4] != 2 or int.from_bytes(header[18:20], "little") != 183:
        print(f"error: {path} is not an arm64 ELF executable", file=sys.stderr)
        failed = True
        continue
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(path, "bootstrap")
    print(f"{binary:<14} {os.path.getsize(path):>12,} {len(archive.getvalue()):>12,}")
sys.exit(1 if failed or not functions else 0)
EOF

echo "--- every bootstrap boots under qemu-aarch64 and answers an invocation (infra/sam/boot-check.sh)"
step=$SECONDS
infra/sam/boot-check.sh .aws-sam/build
echo "boot check took $((SECONDS - step)) s"

echo "deploy checks passed in $((SECONDS - started)) s"
