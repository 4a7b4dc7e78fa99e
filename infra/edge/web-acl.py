"""Prints the companion template that makes the edge's web ACL in us-east-1,
for a users API stack in another region (template.yaml's
EdgeOutsideUsEast1NeedsWebAclArn rule). It is cut from template.yaml
itself: the web ACL, its log group and logging configuration, and the
parameters they use, so the rules cannot drift from the in-stack ones.

Run with the python of the SAM CLI's venv (its samtranslator reads
CloudFormation's short tags).

Usage: python web-acl.py template.yaml > web-acl.json
"""

import json
import sys

from samtranslator.yaml_helper import yaml_parse

RESOURCES = ("EdgeWebAcl", "EdgeWafLogGroup", "EdgeWafLogging")


def parameters_used(node, found):
    if isinstance(node, dict):
        if set(node) == {"Ref"} and isinstance(node["Ref"], str):
            found.add(node["Ref"])
        for value in node.values():
            parameters_used(value, found)
    elif isinstance(node, list):
        for value in node:
            parameters_used(value, found)


def main():
    with open(sys.argv[1]) as f:
        template = yaml_parse(f.read())
    resources = {}
    for logical_id in RESOURCES:
        resource = dict(template["Resources"][logical_id])
        # Made unconditionally: this stack exists only for the web ACL.
        resource.pop("Condition", None)
        resources[logical_id] = resource
    used = set()
    parameters_used(resources, used)
    parameters = {name: spec for name, spec in template["Parameters"].items() if name in used}
    companion = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "The users API edge's web ACL (CLOUDFRONT scope, us-east-1), cut from template.yaml by infra/edge/web-acl.py",
        "Parameters": parameters,
        "Resources": resources,
        "Outputs": {
            "WebAclArn": {
                "Description": "Pass as WebAclArn to the users API stack",
                "Value": {"Fn::GetAtt": ["EdgeWebAcl", "Arn"]},
            }
        },
    }
    json.dump(companion, sys.stdout, indent=2, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
