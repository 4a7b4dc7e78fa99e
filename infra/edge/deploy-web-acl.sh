#!/usr/bin/env bash
# Makes (or updates) the edge's web ACL in us-east-1, where WAF keeps every
# CLOUDFRONT-scope web ACL, for a users API stack in another region. The
# template is cut from template.yaml (web-acl.py), so its rules are the
# ones a us-east-1 stack makes for itself. Prints the ARN to pass as the
# stack's WebAclArn.
#
# Usage: infra/edge/deploy-web-acl.sh STACK_NAME [Parameter=Value ...]
#   e.g. infra/edge/deploy-web-acl.sh users-api-edge EdgeClientRateLimit=600
# Needs the AWS CLI with credentials, and the SAM CLI's python on PATH as
# `python` (or PYTHON set to it). The stack name must start with users-api
# for the deployer policy (infra/deploy/deployer-policy.json) to allow it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
stack="${1:?usage: deploy-web-acl.sh STACK_NAME [Parameter=Value ...]}"
shift
template="$(mktemp -t web-acl.XXXXXX.json)"
trap 'rm -f "$template"' EXIT
"${PYTHON:-python}" "$here/web-acl.py" "$here/../../template.yaml" >"$template"
aws cloudformation deploy --region us-east-1 --stack-name "$stack" \
  --template-file "$template" --no-fail-on-empty-changeset \
  ${1:+--parameter-overrides "$@"}
aws cloudformation describe-stacks --region us-east-1 --stack-name "$stack" \
  --query "Stacks[0].Outputs[?OutputKey=='WebAclArn'].OutputValue" --output text
