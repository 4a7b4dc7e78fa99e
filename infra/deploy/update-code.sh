#!/usr/bin/env bash
# The fast inner loop for a stack already deployed with `sam deploy`: builds
# the functions with cargo-lambda (arm64, release) and uploads each one's
# code straight to its Lambda function with `cargo lambda deploy`, without
# CloudFormation. Only code changes; configuration, permissions and routes
# stay as the stack made them (change those with `sam deploy`).
#
# API Gateway and the stream invoke each function's `live` alias
# (template.yaml, AutoPublishAlias), not $LATEST, which is what `cargo
# lambda deploy` updates. So each upload is then published as a version
# and the alias moved to it at once: no canary, no rollback alarm, no
# CodeDeploy (docs/deploying.md, "Updating code quickly"). It refuses while an alias is mid-shift
# (a CodeDeploy deployment in progress). The stack still records its own
# version: the next `sam deploy` that changes the function shifts from
# that one, and one that does not leaves the alias where this put it.
#
# Usage: infra/deploy/update-code.sh [--region REGION] [--profile PROFILE] STACK [BINARY...]
#
# Function names come from the stack's outputs named <Binary>FunctionName
# (CreateUserFunctionName is create-user's function). With BINARY names,
# only those functions are updated. AWS_REGION and AWS_PROFILE work too.
# Needs the AWS CLI, and cargo-lambda with zig on PATH (docs/deploying.md, "Prerequisites").
#
# Runs under bash 3.2 (macOS's /bin/bash): no mapfile, associative arrays or
# ${var,,}; and an array that may be empty is expanded as
# ${arr[@]+"${arr[@]}"}, since bash before 4.4 calls an empty "${arr[@]}"
# an unbound variable under set -u.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

usage() {
  echo "usage: $0 [--region REGION] [--profile PROFILE] STACK [BINARY...]" >&2
  exit 2
}

aws_args=()
stack=""
only=()
while [ $# -gt 0 ]; do
  case "$1" in
    --region | --profile)
      [ $# -ge 2 ] || usage
      aws_args+=("$1" "$2")
      shift 2
      ;;
    -h | --help) usage ;;
    -*) echo "error: unknown option $1" >&2; usage ;;
    *)
      if [ -z "$stack" ]; then stack="$1"; else only+=("$1"); fi
      shift
      ;;
  esac
done
[ -n "$stack" ] || usage

for tool in aws cargo-lambda; do
  if ! command -v "$tool" >/dev/null; then
    echo "error: $tool is not on PATH (docs/deploying.md, \"Prerequisites\", lists the prerequisites)" >&2
    exit 1
  fi
done

# "<OutputKey>\t<OutputValue>" for every *FunctionName output.
outputs="$(aws cloudformation describe-stacks ${aws_args[@]+"${aws_args[@]}"} --stack-name "$stack" \
  --query "Stacks[0].Outputs[?ends_with(OutputKey, 'FunctionName')].[OutputKey,OutputValue]" \
  --output text)"
if [ -z "$outputs" ]; then
  echo "error: stack $stack has no *FunctionName outputs" >&2
  exit 1
fi

binaries=()
functions=()
while IFS=$'\t' read -r key function; do
  # CreateUserFunctionName -> create-user
  binary="$(printf '%s' "${key%FunctionName}" | sed -E 's/([a-z0-9])([A-Z])/\1-\2/g' | tr '[:upper:]' '[:lower:]')"
  if [ ! -f "$root/functions/$binary/Cargo.toml" ]; then
    echo "error: output $key names binary $binary, which is no crate under functions/" >&2
    exit 1
  fi
  if [ ${#only[@]} -gt 0 ] && [[ " ${only[*]} " != *" $binary "* ]]; then
    continue
  fi
  binaries+=("$binary")
  functions+=("$function")
done <<<"$outputs"

for wanted in ${only[@]+"${only[@]}"}; do
  if [[ " ${binaries[*]+${binaries[*]}} " != *" $wanted "* ]]; then
    echo "error: stack $stack has no function for binary $wanted" >&2
    exit 1
  fi
done

# binaries cannot be empty here (outputs was not, and every wanted binary
# was found); saying so lets the expansions below stay plain under set -u.
[ ${#binaries[@]} -gt 0 ] || { echo "error: stack $stack selects no function" >&2; exit 1; }

# template.yaml's AutoPublishAlias.
alias="live"
i=0
while [ "$i" -lt ${#binaries[@]} ]; do
  function="${functions[$i]}"
  i=$((i + 1))
  # cargo lambda deploy creates a function (and a role) when the name does
  # not exist; only ever update the stack's own.
  aws lambda get-function-configuration ${aws_args[@]+"${aws_args[@]}"} --function-name "$function" \
    --query FunctionName --output text >/dev/null
  weights="$(aws lambda get-alias ${aws_args[@]+"${aws_args[@]}"} --function-name "$function" --name "$alias" \
    --query 'RoutingConfig.AdditionalVersionWeights' --output text)"
  if [ -n "$weights" ] && [ "$weights" != "None" ]; then
    echo "error: $function's alias $alias is shifting between versions ($weights): a CodeDeploy deployment is in progress (aws deploy list-deployments)" >&2
    exit 1
  fi
done

# The same selection as `sam build` (--bin, no --package), so both paths
# resolve the same features and share one build cache.
bin_args=()
for binary in "${binaries[@]}"; do bin_args+=(--bin "$binary"); done
echo "--- cargo lambda build --release --arm64 ${bin_args[*]}" >&2
(cd "$root" && cargo lambda build --release --arm64 "${bin_args[@]}")

i=0
while [ "$i" -lt ${#binaries[@]} ]; do
  binary="${binaries[$i]}"
  function="${functions[$i]}"
  i=$((i + 1))
  echo "--- $binary -> $function" >&2
  (cd "$root" && cargo lambda deploy ${aws_args[@]+"${aws_args[@]}"} --binary-name "$binary" "$function")
  aws lambda wait function-updated ${aws_args[@]+"${aws_args[@]}"} --function-name "$function"
  version="$(aws lambda publish-version ${aws_args[@]+"${aws_args[@]}"} --function-name "$function" \
    --description "infra/deploy/update-code.sh" --query Version --output text)"
  aws lambda update-alias ${aws_args[@]+"${aws_args[@]}"} --function-name "$function" --name "$alias" \
    --function-version "$version" --query FunctionVersion --output text >/dev/null
  echo "--- $function:$alias -> version $version" >&2
done
