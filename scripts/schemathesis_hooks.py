"""Schemathesis hooks for scripts/schemathesis: rules that JSON Schema cannot state.

Each drops only *positive* cases that break a rule relative to the current time or between two
parameters; negative cases and everything else are generated and checked as usual.
- `expires_at` of a grant must be in the future (unix seconds, compared with the server's clock).
- `/v1/me/usage`: `from` must be before `to`, at most 366 days apart (each defaults relative
  to now when absent).
"""

import time

import schemathesis

DAY = 86_400
MAX_USAGE_DAYS = 366
SLACK_S = 3_600  # the server's clock may run a little behind ours


def _int(value):
    """An integer as JSON or a query string carries it; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def _positive(case) -> bool:
    meta = getattr(case, "meta", None)
    return meta is None or meta.generation.mode.is_positive


@schemathesis.hook
def filter_case(context, case) -> bool:
    if not _positive(case):
        return True
    operation = case.operation
    if operation.method.upper() == "POST" and operation.path.endswith("/grants"):
        body = case.body if isinstance(case.body, dict) else {}
        at = _int(body.get("expires_at"))
        return at is None or at > time.time() + SLACK_S
    if operation.path == "/v1/me/usage":
        query = case.query or {}
        now = int(time.time())
        to = _int(query.get("to", now + 1))
        start = _int(query.get("from", to - 30 * DAY)) if to is not None else None
        if to is None or start is None:
            return True
        return 0 <= start < to and to - start <= MAX_USAGE_DAYS * DAY
    return True
