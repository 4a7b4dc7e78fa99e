"""The create-user function in Python, as a cold-start peer: the same
validation (Pydantic, as the seed) and the same DynamoDB transaction as the
Rust function (the user and its email claim, each a conditional put), on
boto3 with the client built at init. Run by awslambdaric, the official
runtime interface client: python -m awslambdaric lambda_function.handler"""

import base64
import json
import os
from datetime import datetime, timezone

import boto3
from model import SECURITY_HEADERS, NewUser
from pydantic import ValidationError
from ulid_id import new_ulid

TABLE = os.environ["TABLE_NAME"]
client = boto3.client("dynamodb")


def problem(request_id, status, kind, title, detail, errors=None):
    body = {"type": f"/problems/{kind}", "title": title, "status": status, "detail": detail, "requestId": request_id}
    if errors is not None:
        body["errors"] = errors
    headers = {**SECURITY_HEADERS, "cache-control": "no-store", "content-type": "application/problem+json"}
    return {"statusCode": status, "headers": headers, "body": json.dumps(body)}


def handler(event, context):
    request_id = event.get("requestContext", {}).get("requestId", "")
    essence = event.get("headers", {}).get("content-type", "").split(";")[0].strip().lower()
    if essence != "application/json":
        return problem(request_id, 415, "unsupported-media-type", "Unsupported Media Type",
                       "The request body must be sent as application/json.")
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode()
    if len(raw.encode()) > 16 * 1024:
        return problem(request_id, 413, "payload-too-large", "Payload Too Large",
                       "The request body must be at most 16384 bytes.")
    try:
        body = json.loads(raw)
    except ValueError:
        return problem(request_id, 400, "bad-request", "Bad Request", "The request body is not valid JSON.")
    if not isinstance(body, dict):
        return problem(request_id, 400, "bad-request", "Bad Request", "The request body must be a JSON object.")
    try:
        new = NewUser.model_validate(body)
    except ValidationError as error:
        errors = [{"field": str(e["loc"][0]) if e["loc"] else "body", "message": e["msg"]} for e in error.errors()]
        return problem(request_id, 422, "validation-failed", "Validation Failed", "One or more fields are invalid.",
                       errors)
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    user = {"id": new_ulid(), "email": new.email, "name": new.name, "createdAt": now, "updatedAt": now,
            "version": 1}
    item = {
        "pk": {"S": f"USER#{user['id']}"}, "sk": {"S": "PROFILE"}, "gsi1pk": {"S": "USERS"},
        "gsi1sk": {"S": user["id"]}, "id": {"S": user["id"]}, "email": {"S": user["email"]},
        "name": {"S": user["name"]}, "createdAt": {"S": now}, "updatedAt": {"S": now}, "version": {"N": "1"},
    }
    claim = {"pk": {"S": f"EMAIL#{user['email']}"}, "sk": {"S": "EMAIL"}, "userId": {"S": user["id"]}}
    try:
        client.transact_write_items(TransactItems=[
            {"Put": {"TableName": TABLE, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": TABLE, "Item": claim, "ConditionExpression": "attribute_not_exists(pk)"}},
        ])
    except client.exceptions.TransactionCanceledException as error:
        reasons = error.response.get("CancellationReasons", [])
        if len(reasons) > 1 and reasons[1].get("Code") == "ConditionalCheckFailed":
            return problem(request_id, 409, "email-taken", "Email Taken", "The email address belongs to another user.")
        raise
    print(json.dumps({"level": "INFO", "message": "request", "request_id": request_id, "method": "POST",
                      "route": "POST /users", "status": 201, "user_id": user["id"]}))
    headers = {**SECURITY_HEADERS, "cache-control": "no-store", "content-type": "application/json",
               "location": f"/users/{user['id']}", "etag": '"1"'}
    return {"statusCode": 201, "headers": headers, "body": json.dumps(user)}
