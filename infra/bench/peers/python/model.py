"""The body of POST /users as the seed validated it: a Pydantic model with
the same rules as the Rust API's Email and UserName."""

import unicodedata
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, StrictStr

SECURITY_HEADERS = {
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
}


def has_control(value: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in value)


def check_email(raw: str) -> str:
    value = raw.strip().lower()
    if len(value) > 254:
        raise ValueError("must be at most 254 characters")
    if any(c.isspace() for c in value) or has_control(value):
        raise ValueError("must not contain whitespace or control characters")
    try:
        validate_email(value, check_deliverability=False, allow_display_name=False, allow_domain_literal=False)
    except EmailNotValidError as error:
        raise ValueError("must be a valid email address such as ada@example.com") from error
    if len(value.split("@")[0]) > 64:
        raise ValueError("must have at most 64 characters before the @")
    return value


def check_name(raw: str) -> str:
    value = raw.strip()
    if has_control(value):
        raise ValueError("must not contain control characters")
    if len(value) < 2:
        raise ValueError("must be at least 2 characters")
    if len(value) > 100:
        raise ValueError("must be at most 100 characters")
    return value


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Annotated[StrictStr, AfterValidator(check_email)]
    name: Annotated[StrictStr, AfterValidator(check_name)]
