"""Schemathesis hooks for scripts/fuzz.py (loaded through SCHEMATHESIS_HOOKS).

An `Idempotency-Key` names one logical request: a client sends a fresh one per request, and a
repeat with the same key replays the first answer (or, with another body, is a 422). Generated
values repeat (`0`, `A`, ...), which would turn unrelated requests into retries of each other,
so every well-formed key of a valid request is made unique just before it is sent. Invalid
requests keep their keys as generated, so a malformed key's 422 is still checked; replays and
reuse are tested in tests/api/idempotency.rs.
"""

import re
import uuid

import schemathesis

WELL_FORMED = re.compile(r"^[!-~]{1,255}$")


@schemathesis.hook
def before_call(context, case, kwargs):
    meta = getattr(case, "meta", None)
    if meta is not None and meta.generation.mode.is_negative:
        return
    headers = case.headers or {}
    for name, value in list(headers.items()):
        if name.lower() == "idempotency-key" and isinstance(value, str) and WELL_FORMED.match(value):
            headers[name] = f"{value[:200]}-{uuid.uuid4().hex}"
