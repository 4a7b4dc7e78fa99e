"""Drives a running users API through the client openapi-python-client
generates from openapi.yaml: create, conditional get (304), patch with
If-Match, a 409 and a 422 read as typed problems, list with a cursor,
delete. Exits non-zero at the first surprise.

    USERS_API_URL=http://127.0.0.1:3000 USERS_API_TOKEN=... python smoke.py

The generated package, users_api_client, must be importable (on PYTHONPATH).
"""

import os
import sys
import uuid

from users_api_client import AuthenticatedClient
from users_api_client.api.users import (
    create_user,
    delete_user,
    get_user,
    list_users,
    update_user,
)
from users_api_client.models import NewUser, Problem, ProblemType, User, UserPage, UserPatch


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"python client: {message}")


def main() -> None:
    client = AuthenticatedClient(
        base_url=os.environ["USERS_API_URL"],
        token=os.environ["USERS_API_TOKEN"],
        raise_on_unexpected_status=True,
    )
    run = uuid.uuid4().hex[:8]

    # Create.
    created = create_user.sync_detailed(
        client=client, body=NewUser(email=f"py-{run}@example.com", name="Ada Lovelace")
    )
    check(created.status_code == 201, f"create: status {created.status_code}")
    user = created.parsed
    check(isinstance(user, User), f"create: {user!r}")
    assert isinstance(user, User)  # narrows the type for type checkers
    etag = created.headers["ETag"]
    check(user.version == 1, f"create: version {user.version}")

    # Get while current: 304, no body.
    not_modified = get_user.sync_detailed(user.id, client=client, if_none_match=etag)
    check(not_modified.status_code == 304, f"get: status {not_modified.status_code}")

    # Patch that version.
    patched = update_user.sync_detailed(
        user.id, client=client, body=UserPatch(name="Countess of Lovelace"), if_match=etag
    )
    check(patched.status_code == 200, f"patch: status {patched.status_code}")
    check(isinstance(patched.parsed, User), f"patch: {patched.parsed!r}")
    assert isinstance(patched.parsed, User)
    check(patched.parsed.name == "Countess of Lovelace", "patch: name unchanged")
    check(patched.parsed.version == 2, f"patch: version {patched.parsed.version}")
    patched_etag = patched.headers["ETag"]

    # 409: the email address is taken.
    taken = create_user.sync_detailed(
        client=client, body=NewUser(email=user.email, name="Someone Else")
    )
    check(taken.status_code == 409, f"conflict: status {taken.status_code}")
    check(
        isinstance(taken.parsed, Problem) and taken.parsed.type_ == ProblemType.EMAIL_TAKEN,
        f"conflict: {taken.parsed!r}",
    )

    # 422: every invalid field is listed.
    invalid = create_user.sync_detailed(
        client=client, body=NewUser(email="not an address", name="A")
    )
    check(invalid.status_code == 422, f"invalid: status {invalid.status_code}")
    problem = invalid.parsed
    check(
        isinstance(problem, Problem) and problem.type_ == ProblemType.VALIDATION_FAILED,
        f"invalid: {problem!r}",
    )
    assert isinstance(problem, Problem)
    fields = sorted(error.field for error in problem.errors or [])
    check(fields == ["email", "name"], f"invalid: fields {fields}")

    # List page by page until this run's users show up.
    second = create_user.sync_detailed(
        client=client, body=NewUser(email=f"py-{run}-2@example.com", name="Charles Babbage")
    )
    check(isinstance(second.parsed, User), f"second create: {second.parsed!r}")
    assert isinstance(second.parsed, User)
    seen: set[str] = set()
    cursor = None
    pages = 0
    while True:
        page = (
            list_users.sync(client=client, limit=1)
            if cursor is None
            else list_users.sync(client=client, limit=1, cursor=cursor)
        )
        check(isinstance(page, UserPage), f"list: {page!r}")
        assert isinstance(page, UserPage)
        check(len(page.items) <= 1, f"list: {len(page.items)} items for limit 1")
        seen.update(item.id for item in page.items)
        pages += 1
        cursor = page.next_cursor
        if cursor is None or pages >= 1000:
            break
    check(pages >= 2, f"list: {pages} page(s), expected a cursor to follow")
    check({user.id, second.parsed.id} <= seen, "list: this run's users are missing")

    # Delete that version; then it is gone.
    for user_id, version in [(user.id, patched_etag), (second.parsed.id, second.headers["ETag"])]:
        deleted = delete_user.sync_detailed(user_id, client=client, if_match=version)
        check(deleted.status_code == 204, f"delete: status {deleted.status_code}")
    gone = get_user.sync_detailed(user.id, client=client)
    check(gone.status_code == 404, f"get after delete: status {gone.status_code}")
    check(
        isinstance(gone.parsed, Problem) and gone.parsed.type_ == ProblemType.NOT_FOUND,
        f"get after delete: {gone.parsed!r}",
    )

    print(f"python client: all steps passed ({pages} list pages)")


if __name__ == "__main__":
    sys.exit(main())
