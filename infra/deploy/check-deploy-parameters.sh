#!/usr/bin/env bash
# Checks infra/deploy/deploy.sh the way SAM itself reads it: runs it with a
# stub `sam` that keeps its arguments and parameter file, then hands those
# to the SAM CLI's own parser (CfnParameterOverridesType) and to the
# function that builds CloudFormation's parameter list
# (DeployContext.merge_parameters). With no variable set, every parameter
# must get its template default and none UsePreviousValue; with variables
# set, their values, an empty string and a comma-separated list included.
#
# Usage: infra/deploy/check-deploy-parameters.sh SAM_VENV_BIN
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
sam_bin="$1"
stub="$(mktemp -d)"
trap 'rm -rf "$stub"' EXIT
ln -s "$sam_bin/python" "$stub/python"
cat >"$stub/sam" <<'STUB'
#!/usr/bin/env bash
# Keeps what deploy.sh passed: the arguments, one a line, and the file.
printf '%s\n' "$@" >"$(dirname "$0")/arguments"
for argument in "$@"; do
  case "$argument" in file://*) cp "${argument#file://}" "$(dirname "$0")/parameters.yaml" ;; esac
done
STUB
chmod +x "$stub/sam"

check() {
  local vars="$1" expected="$2"
  VARS_JSON="$vars" PATH="$stub:$PATH" "$root/infra/deploy/deploy.sh" \
    --stack-name users-api --region us-east-1 >/dev/null
  "$sam_bin/python" - "$root/template.yaml" "$stub" "$expected" <<'PY'
import json, sys
from samcli.cli.types import CfnParameterOverridesType
from samcli.commands.deploy.deploy_context import DeployContext
from samtranslator.yaml_helper import yaml_parse

template_path, stub, expected = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
with open(template_path) as f:
    template = yaml_parse(f.read())
arguments = open(f"{stub}/arguments").read().split("\n")[:-1]
given = arguments[arguments.index("--parameter-overrides") + 1]
assert given.startswith("file://"), given
# The file as SAM reads it, from where the stub kept it.
overrides = CfnParameterOverridesType().convert((f"file://{stub}/parameters.yaml",), None, None)
sent = DeployContext.merge_parameters(template, overrides)
failed = False
for parameter in sent:
    name = parameter["ParameterKey"]
    if parameter.get("UsePreviousValue"):
        print(f"error: {name} would keep the stack's previous value", file=sys.stderr)
        failed = True
        continue
    want = expected.get(name, str(template["Parameters"][name].get("Default")))
    if parameter["ParameterValue"] != want:
        print(f"error: {name} is sent as {parameter['ParameterValue']!r}, not {want!r}", file=sys.stderr)
        failed = True
print(f"{len(sent)} parameters, each sent explicitly: {json.dumps({p['ParameterKey']: p['ParameterValue'] for p in sent})}")
sys.exit(1 if failed else 0)
PY
}

echo "no variable set: every parameter at its template default"
check '{}' '{}'
echo "variables set: their values, an empty one at its default"
check '{"AUTH_MODE":"none","CORS_ALLOWED_ORIGINS":"https://a.example,https://b.example","ALARM_EMAIL":"","LATENCY_P99_THRESHOLD_MS":"250","DEPLOYMENT_TYPE":"AllAtOnce","EDGE":"cloudfront","EDGE_CLIENT_RATE_LIMIT":"120","EDGE_RATE_WINDOW_SECONDS":"300","WEB_ACL_ARN":"","STACK_NAME":"not-a-parameter"}' \
  '{"AuthMode":"none","CorsAllowedOrigins":"https://a.example,https://b.example","LatencyP99ThresholdMs":"250","DeploymentType":"AllAtOnce","Edge":"cloudfront","EdgeClientRateLimit":"120","EdgeRateWindowSeconds":"300"}'
