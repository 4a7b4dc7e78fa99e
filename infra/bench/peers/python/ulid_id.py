"""ULIDs (time-ordered, Crockford base 32), as the Rust API's ids."""

import os
import time

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_ulid() -> str:
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(ALPHABET[(value >> shift) & 31] for shift in range(125, -1, -5))
