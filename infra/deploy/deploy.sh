#!/usr/bin/env bash
# Deploys the built template (.aws-sam/build/template.yaml) with every
# template parameter given explicitly: a repository variable's value where
# it is set, the template's default elsewhere (parameters.py says why: a
# parameter `sam deploy` is not given keeps the stack's previous value).
# The values go in a parameter file, which SAM reads as they are (its
# `Key=Value` form cannot carry an empty value or a space).
#
# Usage: VARS_JSON='{"AUTH_MODE":"oidc",...}' infra/deploy/deploy.sh \
#          --stack-name NAME --region REGION [more sam deploy arguments]
# Needs `sam` on PATH, from a venv whose python has samtranslator (the
# SAM CLI's own venv does).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
sam="$(command -v sam)"
python="$(dirname "$sam")/python"
values="$(mktemp -t parameters.XXXXXX.yaml)"
trap 'rm -f "$values"' EXIT
"$python" "$root/infra/deploy/parameters.py" "$root/template.yaml" >"$values"
echo "parameters:" && cat "$values"
"$sam" deploy --template-file "$root/.aws-sam/build/template.yaml" \
  --resolve-s3 --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
  --no-confirm-changeset --no-fail-on-empty-changeset \
  --parameter-overrides "file://$values" "$@"
