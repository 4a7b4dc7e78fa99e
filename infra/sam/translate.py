"""Translates template.yaml into the plain CloudFormation that SAM deploys.

CloudFormation runs the template's two transforms in order: first
AWS::LanguageExtensions, which resolves every Fn::If whose condition depends
only on parameters (SAM cannot read the API's Auth settings from an
intrinsic), then AWS::Serverless-2016-10-31. This script does the first part
itself, for one set of parameter values per AuthMode, and runs the SAM
translator on the result, with no AWS call. Each mode's output goes to
infra/sam/translated/<mode>.json, sorted and indented so that re-runs are
byte-identical and a change to template.yaml shows as a reviewable diff.

Usage: translate.py [--check] [--template FILE] [--out DIR]
  --check  translate into a temporary directory and exit 1 if the result
           differs from the files in --out (the committed ones).
"""

import argparse
import copy
import difflib
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import boto3
from samtranslator.internal.managed_policies import get_bundled_managed_policy_map
from samtranslator.metrics.metrics import DummyMetricsPublisher, Metrics
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
OUT = Path(__file__).resolve().parent / "translated"
REGION = "us-east-1"
PARTITION = "aws"
REGENERATE = "infra/sam/translate.sh"
# The SHA-256 of the template a translation came from.
DIGEST = "template.sha256"

# One output per AuthMode, and one with the edge on, with the parameter
# values each needs beyond the template's defaults (OIDC's are examples of
# the right shape).
MODES = {
    "cognito": {"AuthMode": "cognito"},
    "oidc": {
        "AuthMode": "oidc",
        "OidcIssuer": "https://issuer.example.com",
        "OidcAudience": "users-api",
    },
    "none": {"AuthMode": "none"},
    # The edge on, with the default AuthMode, as in us-east-1 (where the
    # stack makes its own web ACL; elsewhere it would take WebAclArn).
    "edge": {"Edge": "cloudfront"},
}

LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"
# Properties naming local code or documents that `sam deploy` uploads to its
# artifact bucket, replacing the path by the object's s3:// URI.
PACKAGED = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::Api": "DefinitionUri",
    "AWS::Serverless::HttpApi": "DefinitionUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
}
ARTIFACT_BUCKET = "sam-artifact-bucket"
# Sections LanguageExtensions resolves Fn::If in; Conditions and Rules keep
# their own condition functions for CloudFormation.
RESOLVED_SECTIONS = ("Resources", "Outputs", "Globals", "Metadata")


class Unresolved(Exception):
    """A value that depends on more than parameters (a resource, a pseudo
    parameter): CloudFormation resolves it at deploy time, so it stays."""


class _NoValue:
    """What `Ref: AWS::NoValue` leaves: its key or list item disappears."""


NO_VALUE = _NoValue()


def parameter_values(template, overrides):
    """Each parameter's value (its default unless overridden), as
    CloudFormation passes it: a string, or a list for list types."""
    values = {}
    for name, spec in template.get("Parameters", {}).items():
        if name in overrides:
            value = overrides[name]
        elif "Default" in spec:
            value = spec["Default"]
        else:
            continue
        if is_list_type(spec.get("Type", "String")) and isinstance(value, str):
            value = value.split(",")
        elif not isinstance(value, list):
            value = scalar(value)
        values[name] = value
    unknown = set(overrides) - set(template.get("Parameters", {}))
    if unknown:
        raise SystemExit(f"error: no such parameter in the template: {', '.join(sorted(unknown))}")
    return values


def is_list_type(parameter_type):
    return parameter_type == "CommaDelimitedList" or parameter_type.startswith("List<")


def scalar(value):
    """The string CloudFormation compares: YAML reads 50 as a number and
    true as a boolean, CloudFormation sees "50" and "true"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class LanguageExtensions:
    """The part of AWS::LanguageExtensions this template relies on."""

    def __init__(self, template, parameters):
        self.conditions = template.get("Conditions", {})
        self.parameters = parameters
        self.evaluated = {}

    def condition(self, name):
        """The condition's value, or Unresolved if it depends on more than
        parameters."""
        if name not in self.evaluated:
            if name not in self.conditions:
                raise SystemExit(f"error: Fn::If names condition {name}, which Conditions does not define")
            self.evaluated[name] = None  # a cycle ends as Unresolved
            try:
                self.evaluated[name] = self.truth(self.conditions[name])
            except Unresolved:
                pass
        if self.evaluated[name] is None:
            raise Unresolved(name)
        return self.evaluated[name]

    def truth(self, expression):
        if isinstance(expression, dict) and len(expression) == 1:
            (function, args), = expression.items()
            if function == "Fn::Equals":
                left, right = args
                return self.value(left) == self.value(right)
            if function == "Fn::Not":
                return not self.truth(args[0])
            if function == "Fn::And":
                return all([self.truth(a) for a in args])
            if function == "Fn::Or":
                return any([self.truth(a) for a in args])
            if function == "Condition":
                return self.condition(args)
        raise Unresolved(json.dumps(expression))

    def value(self, expression):
        if isinstance(expression, dict):
            if set(expression) == {"Ref"} and expression["Ref"] in self.parameters:
                return self.parameters[expression["Ref"]]
            raise Unresolved(json.dumps(expression))
        if isinstance(expression, list):
            return [self.value(e) for e in expression]
        return scalar(expression)

    def resolve(self, node):
        """The node with each resolvable Fn::If replaced by its branch and
        AWS::NoValue removed; every other intrinsic stays as written. (A Ref
        to a parameter, even a CommaDelimitedList one such as the HttpApi's
        CORS origins, SAM resolves itself from the parameter values.)"""
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, args), = node.items()
            if key == "Ref" and args == "AWS::NoValue":
                return NO_VALUE
            if key == "Fn::If":
                name, when_true, when_false = args
                try:
                    chosen = when_true if self.condition(name) else when_false
                except Unresolved:
                    return {"Fn::If": [name, self.resolve(when_true), self.resolve(when_false)]}
                return self.resolve(chosen)
        resolved = {key: self.resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not NO_VALUE}


def packaged(template):
    """Local paths replaced by the s3:// URIs `sam deploy` would upload them
    to; the SAM translator accepts nothing else. The object key is the
    resource's logical id (SAM CLI uses a content hash), so the output does
    not change with the code."""
    for logical_id, resource in template.get("Resources", {}).items():
        prop = PACKAGED.get(resource.get("Type"))
        properties = resource.get("Properties", {})
        path = properties.get(prop)
        if prop and isinstance(path, str) and not path.startswith("s3://"):
            properties[prop] = f"s3://{ARTIFACT_BUCKET}/{logical_id}"


def without_language_extensions(template):
    transform = template.get("Transform")
    transforms = transform if isinstance(transform, list) else [transform]
    if LANGUAGE_EXTENSIONS not in transforms:
        raise SystemExit(f"error: the template's Transform does not list {LANGUAGE_EXTENSIONS}")
    rest = [t for t in transforms if t != LANGUAGE_EXTENSIONS]
    template["Transform"] = rest[0] if len(rest) == 1 else rest


def translate(template, overrides):
    template = copy.deepcopy(template)
    parameters = parameter_values(template, overrides)
    extensions = LanguageExtensions(template, parameters)
    for section in RESOLVED_SECTIONS:
        if section in template:
            template[section] = extensions.resolve(template[section])
    without_language_extensions(template)
    packaged(template)
    # The file records the values it was translated with, so deploying it
    # as it is gives the stack it describes.
    for name, value in overrides.items():
        template["Parameters"][name]["Default"] = value

    # The translator times itself into these; publishing them to the dummy
    # publisher discards them (otherwise it warns about them at exit).
    metrics = Metrics("ServerlessTransform", DummyMetricsPublisher())
    session = boto3.session.Session(region_name=REGION)
    translator = Translator(None, Parser(), boto_session=session, metrics=metrics)
    try:
        return translator.translate(
            template,
            parameter_values=dict(parameters),
            # The policy map bundled with the translator: no IAM call.
            get_managed_policy_map=lambda: get_bundled_managed_policy_map(PARTITION),
        )
    except InvalidDocumentException as e:
        causes = "\n".join(f"  {cause.message}" for cause in e.causes)
        raise SystemExit(f"error: SAM rejects the template:\n{causes}") from None
    finally:
        metrics.publish()


def render(template):
    return json.dumps(template, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_all(template, digest, out):
    out.mkdir(parents=True, exist_ok=True)
    for mode, overrides in MODES.items():
        (out / f"{mode}.json").write_text(render(translate(template, overrides)), encoding="utf-8")
    # What the twin checks before it runs a translation (local-api's
    # stack/deployment.rs): the template it came from, byte for byte.
    (out / DIGEST).write_text(f"{digest}  template.yaml\n", encoding="utf-8")


def differences(expected_dir, actual_dir):
    """Unified diffs between the committed files and fresh ones, plus the
    names of files on one side only."""
    def names(folder):
        return {p.name for p in folder.glob("*.json")} | ({DIGEST} & {p.name for p in folder.iterdir()})

    expected = names(expected_dir) if expected_dir.is_dir() else set()
    actual = names(actual_dir)
    lines = []
    for name in sorted(expected | actual):
        old = (expected_dir / name).read_text(encoding="utf-8").splitlines(True) if name in expected else []
        new = (actual_dir / name).read_text(encoding="utf-8").splitlines(True) if name in actual else []
        lines += difflib.unified_diff(old, new, f"committed/{name}", f"translated/{name}")
    return lines


def shown(path):
    """The path as the repository names it, when it is in the repository."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed files are out of date")
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)

    text = args.template.read_bytes()
    digest = hashlib.sha256(text).hexdigest()
    template = yaml_parse(text.decode("utf-8"))
    if not args.check:
        write_all(template, digest, args.out)
        print(f"wrote {', '.join(f'{m}.json' for m in MODES)} to {shown(args.out)}")
        return 0
    with tempfile.TemporaryDirectory() as fresh:
        write_all(template, digest, Path(fresh))
        diff = differences(args.out, Path(fresh))
    if not diff:
        print(f"{shown(args.out)} matches {shown(args.template)} (modes {', '.join(MODES)})")
        return 0
    head = 60
    sys.stdout.writelines(diff[:head])
    if len(diff) > head:
        print(f"... ({len(diff) - head} more diff lines)")
    print(
        f"error: {shown(args.out)} is out of date with {shown(args.template)};"
        f" regenerate with `{REGENERATE}` and commit the result",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
