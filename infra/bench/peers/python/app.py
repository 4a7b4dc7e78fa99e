"""The seed's Python service, as a benchmark peer: FastAPI + Pydantic on
uvicorn with an in-memory store, serving POST /users and GET /users/{id}
with the same validation, status codes, headers and problem+json errors as
the Rust API (see docs/api.md). One JSON log line per request,
as ours."""

import json
import re
import sys
import time
from datetime import datetime, timezone

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from model import SECURITY_HEADERS, NewUser
from ulid_id import new_ulid

MAX_BODY = 16 * 1024
ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$", re.IGNORECASE)



users: dict[str, dict] = {}
emails: dict[str, str] = {}
app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


def problem(request: Request, status: int, kind: str, title: str, detail: str, errors=None) -> JSONResponse:
    body = {"type": f"/problems/{kind}", "title": title, "status": status, "detail": detail,
            "requestId": request.state.request_id}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type="application/problem+json",
                        headers={"cache-control": "no-store"})


@app.middleware("http")
async def envelope(request: Request, call_next):
    started = time.perf_counter()
    request.state.request_id = new_ulid()
    request.state.user_id = None
    if request.method == "POST":
        essence = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if essence != "application/json":
            response = problem(request, 415, "unsupported-media-type", "Unsupported Media Type",
                               "The request body must be sent as application/json.")
        elif int(request.headers.get("content-length") or 0) > MAX_BODY:
            response = problem(request, 413, "payload-too-large", "Payload Too Large",
                               "The request body must be at most 16384 bytes.")
        else:
            response = await call_next(request)
    else:
        response = await call_next(request)
    response.headers.update(SECURITY_HEADERS)
    response.headers.setdefault("cache-control", "no-store")
    route = request.scope.get("route")
    print(json.dumps({"level": "INFO", "message": "request", "request_id": request.state.request_id,
                      "method": request.method, "route": f"{request.method} {route.path}" if route else "",
                      "status": response.status_code,
                      "latency_us": int((time.perf_counter() - started) * 1e6),
                      "user_id": request.state.user_id}), file=sys.stdout)
    return response


@app.exception_handler(RequestValidationError)
async def invalid(request: Request, error: RequestValidationError):
    problems = error.errors()
    if any(p["type"] == "json_invalid" for p in problems):
        return problem(request, 400, "bad-request", "Bad Request", "The request body is not valid JSON.")
    if any(p["type"] == "model_attributes_type" for p in problems):
        return problem(request, 400, "bad-request", "Bad Request", "The request body must be a JSON object.")
    errors = []
    for p in problems:
        field = str(p["loc"][-1]) if len(p["loc"]) > 1 else "body"
        if p["type"] == "string_type":
            message = "must be a string"
        elif p["type"] == "missing":
            message = "is required"
        elif p["type"] == "extra_forbidden":
            message = "is not a known field"
        else:
            message = str(p.get("ctx", {}).get("error", p["msg"]))
        errors.append({"field": field, "message": message})
    return problem(request, 422, "validation-failed", "Validation Failed", "One or more fields are invalid.", errors)


@app.post("/users", status_code=201)
async def create_user(new: NewUser, request: Request):
    if new.email in emails:
        return problem(request, 409, "email-taken", "Email Taken", "The email address belongs to another user.")
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    user = {"id": new_ulid(), "email": new.email, "name": new.name, "createdAt": now, "updatedAt": now,
            "version": 1}
    users[user["id"]] = user
    emails[new.email] = user["id"]
    request.state.user_id = user["id"]
    return JSONResponse(user, status_code=201, headers={"location": f"/users/{user['id']}", "etag": '"1"'})


@app.get("/users/{id}")
async def get_user(id: str, request: Request):
    if not ULID.match(id):
        return problem(request, 400, "bad-request", "Bad Request", "The id in the path must be a ULID.")
    user = users.get(id.upper())
    if user is None:
        return problem(request, 404, "not-found", "Not Found", "No resource exists at this address.")
    request.state.user_id = user["id"]
    etag = f'"{user["version"]}"'
    headers = {"etag": etag, "cache-control": "private, no-cache"}
    cached = request.headers.get("if-none-match")
    if cached and (cached.strip() == "*" or any(t.strip().removeprefix("W/") == etag for t in cached.split(","))):
        return Response(status_code=304, headers=headers)
    return JSONResponse(user, headers=headers)
