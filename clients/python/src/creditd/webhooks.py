"""Verifies creditd's outbound webhooks (Standard Webhooks).

``webhook-signature`` holds one or more space-separated ``v1,<base64 HMAC-SHA256>`` over
``{webhook-id}.{webhook-timestamp}.{body}``, keyed with the base64-decoded part of the endpoint's
``whsec_…`` secret after the prefix. During a secret rotation both secrets sign.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

DEFAULT_TOLERANCE_S = 300


class WebhookVerificationError(Exception):
    """A delivery that does not verify. ``code``: ``missing_header``, ``bad_secret``,
    ``timestamp_out_of_range``, ``bad_signature`` or ``bad_body``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name and value:
            return value
    raise WebhookVerificationError("missing_header", f"the {name} header is missing")


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _key(secret: str) -> bytes:
    key = _b64(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else None
    if not key:
        raise WebhookVerificationError("bad_secret", "the secret is not a whsec_… secret")
    return key


def verify(
    body: bytes | str,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> dict[str, Any]:
    """Checks a delivery and returns its parsed body (``type``, ``timestamp``, ``data``).

    Pass the body exactly as received (bytes or text, not re-serialized JSON) and the request's
    headers (any case). Raises :class:`WebhookVerificationError` when a header is missing, the
    timestamp is more than ``tolerance`` seconds from ``now``, or no signature matches.
    """
    id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    key = _key(secret)
    current = time.time() if now is None else now
    if not (timestamp.isdigit() and abs(current - int(timestamp)) <= tolerance):
        raise WebhookVerificationError("timestamp_out_of_range", f"webhook-timestamp {timestamp} is too far from now")
    raw = body.encode() if isinstance(body, str) else body
    expected = hmac.new(key, f"{id}.{timestamp}.".encode() + raw, hashlib.sha256).digest()
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        mac = _b64(value) if version == "v1" else None
        if mac is not None and hmac.compare_digest(mac, expected):
            return _parse(raw)
    raise WebhookVerificationError("bad_signature", "no webhook-signature matches the body and the secret")


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        event = json.loads(raw)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        raise WebhookVerificationError("bad_body", "the signed body is not a JSON object")
    return event
