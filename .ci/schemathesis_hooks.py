"""Schemathesis hooks, loaded by .ci/schemathesis.sh: one check beside
Schemathesis' own, and one workaround.

openapi.yaml describes every problem document with one `Problem` schema,
which client generators read, and lists the kinds of problem each response
can carry as that response's examples. This check holds the API to those
lists, as strictly as one schema per kind did: a problem document's `type`
must be one its response's examples name (which, by the schema, fixes its
`status`), and its `status` must be the HTTP status.

If-Match and If-None-Match are one string pattern in openapi.yaml, which
generators read; Schemathesis' coverage phase draws header values from
letters and digits only, so it finds no valid value for that pattern and
sends an invalid one as valid. Loading the document, the hook adds a
`const: "*"` alternative the pattern already accepts: the same set of
values, with one Schemathesis can send.
"""

import json
import re

import schemathesis

PROBLEM = "application/problem+json"


def _resolve(root, item):
    """`item` with local `$ref`s followed, within the document `root`."""
    while isinstance(item, dict) and "$ref" in item:
        target = root
        for part in item["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        item = target
    return item


@schemathesis.hook
def before_load_schema(ctx, raw_schema):
    condition = raw_schema["components"]["schemas"]["EntityTagCondition"]
    pattern = re.compile(condition["pattern"])
    if not pattern.search("*"):
        raise ValueError("EntityTagCondition no longer accepts `*`: revisit this hook")
    condition["anyOf"] = [{"const": "*"}, {"pattern": condition["pattern"]}]


@schemathesis.check
def problem_type_is_documented(ctx, response, case):
    """A problem's type is one its response lists, and its status is the HTTP status."""
    media_type = (response.headers.get("content-type") or [""])[0].split(";")[0].strip()
    if media_type != PROBLEM:
        return None
    root = case.operation.schema.raw_schema
    responses = case.operation.definition.raw.get("responses", {})
    status = str(response.status_code)
    if status not in responses:
        return None  # status_code_conformance reports it
    documented = _resolve(root, responses[status])
    examples = documented.get("content", {}).get(PROBLEM, {}).get("examples", {})
    kinds = {_resolve(root, e).get("value", {}).get("type") for e in examples.values()}
    try:
        body = json.loads(response.content)
    except ValueError:
        return None  # response_schema_conformance reports it
    if not isinstance(body, dict):
        return None
    if body.get("type") not in kinds:
        raise AssertionError(
            f"problem type {body.get('type')!r} is not one the {status} response of "
            f"{case.operation.label} lists: {sorted(k for k in kinds if k)}"
        )
    if body.get("status") != response.status_code:
        raise AssertionError(
            f"problem status {body.get('status')!r} is not the HTTP status {response.status_code}"
        )
    return None
