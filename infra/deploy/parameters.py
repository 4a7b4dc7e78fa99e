"""Every parameter of template.yaml with the value a deploy must send.

Prints a YAML (JSON) mapping of *every* template parameter: the repository
variable named after it (AuthMode -> AUTH_MODE, read from the JSON object in
$VARS_JSON, GitHub's `toJSON(vars)`) when that is set and not empty, else the
template's own Default. `sam deploy` sends any parameter it is not given with
UsePreviousValue: true (aws-sam-cli's DeployContext.merge_parameters), so a
variable that was set once and then deleted would otherwise keep its old
value on the stack: an API switched to AuthMode=none would stay open.

Run with the python of the SAM CLI's venv (it brings samtranslator, whose
YAML reader knows CloudFormation's short tags).

Usage: VARS_JSON='{"AUTH_MODE": "oidc"}' python parameters.py template.yaml
"""

import json
import os
import re
import sys

from samtranslator.yaml_helper import yaml_parse


def variable_name(parameter):
    """AuthMode -> AUTH_MODE, LatencyP99ThresholdMs -> LATENCY_P99_THRESHOLD_MS."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", parameter).upper()


def main():
    with open(sys.argv[1]) as f:
        parameters = yaml_parse(f.read())["Parameters"]
    variables = json.loads(os.environ.get("VARS_JSON") or "{}")
    values = {}
    for name, definition in parameters.items():
        value = variables.get(variable_name(name))
        if value in (None, ""):
            if "Default" not in definition:
                sys.exit(f"error: {name} has no Default: set the variable {variable_name(name)}")
            value = definition["Default"]
        values[name] = str(value)
    json.dump(values, sys.stdout, indent=2, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
