"""HTTP for both clients: requests described once (:class:`Call`), sent by a sync or an async
transport with the same auth, timeout, retry and idempotency rules."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, TypeVar

import httpx

from ._errors import CreditdError

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_RETRIES = 2
MAX_BACKOFF_S = 8.0

Amount = Decimal | str | int
"""Credits: a ``Decimal``, a decimal string or an int. Never a float."""


def amount(value: Amount, name: str = "amount") -> str:
    """The wire form of credits: an exact decimal string."""
    if isinstance(value, (bool, float)):
        raise TypeError(f"{name}: credits are Decimal, str or int, never {type(value).__name__}")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{name}: {value} is not a finite amount")
        return format(value, "f")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    raise TypeError(f"{name}: credits are Decimal, str or int, not {type(value).__name__}")


def clean(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body without parameters left as ``None`` (creditd then applies its defaults)."""
    return {k: v for k, v in body.items() if v is not None}


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API request and how to read its answer."""

    method: str
    path: str
    parse: Callable[[Any], T]
    body: dict[str, Any] | None = None
    query: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None


def _retry_after_s(header: str | None) -> float | None:
    if header is None:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(header).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _retryable(error: CreditdError) -> bool:
    return error.status in (0, 429, 503) or (error.status == 409 and error.code == "idempotency_key_in_use")


def _backoff_s(attempt: int, retry_after: float | None) -> float:
    backoff = min(MAX_BACKOFF_S, 0.25 * 2.0**attempt) * (0.5 + random.random() / 2)
    return max(backoff, retry_after or 0.0)


class _Base:
    def __init__(self, api_key: str, base_url: str, timeout: float, max_retries: int) -> None:
        if not api_key:
            raise ValueError("creditd: api_key is required")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("creditd: base_url must be an http(s) URL")
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.timeout = timeout
        self.headers = {"authorization": f"Bearer {api_key}", "accept": "application/json"}

    def prepare(self, call: Call[Any]) -> tuple[dict[str, str], str | None]:
        headers = dict(self.headers)
        key = None
        if call.method == "POST":
            key = call.idempotency_key or str(uuid.uuid4())
            headers["idempotency-key"] = key
        return headers, key

    @staticmethod
    def outcome(call: Call[T], response: httpx.Response, key: str | None) -> T | CreditdError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success:
            return call.parse(body)
        error = CreditdError.from_response(response.status_code, body, key)
        error.retry_after = _retry_after_s(response.headers.get("retry-after"))
        return error

    @staticmethod
    def network_error(exc: httpx.TransportError, key: str | None) -> CreditdError:
        timed_out = isinstance(exc, httpx.TimeoutException)
        return CreditdError(
            0,
            "timeout" if timed_out else "network_error",
            f"no answer from creditd within the timeout: {exc}" if timed_out else f"could not reach creditd: {exc}",
            idempotency_key=key,
        )

    def give_up(self, attempt: int, error: CreditdError) -> bool:
        return attempt >= self.max_retries or not _retryable(error)


class SyncTransport(_Base):
    def __init__(
        self, api_key: str, base_url: str, timeout: float, max_retries: int, http: httpx.Client | None
    ) -> None:
        super().__init__(api_key, base_url, timeout, max_retries)
        self.http = http or httpx.Client(timeout=timeout)

    def run(self, call: Call[T]) -> T:
        headers, key = self.prepare(call)
        for attempt in range(self.max_retries + 1):
            try:
                response = self.http.request(
                    call.method, self.base_url + call.path, json=call.body, params=clean(call.query), headers=headers
                )
                result = self.outcome(call, response, key)
            except httpx.TransportError as exc:
                result = self.network_error(exc, key)
            if not isinstance(result, CreditdError):
                return result
            if self.give_up(attempt, result):
                raise result
            time.sleep(_backoff_s(attempt, result.retry_after))
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.http.close()


class AsyncTransport(_Base):
    def __init__(
        self, api_key: str, base_url: str, timeout: float, max_retries: int, http: httpx.AsyncClient | None
    ) -> None:
        super().__init__(api_key, base_url, timeout, max_retries)
        self.http = http or httpx.AsyncClient(timeout=timeout)

    async def run(self, call: Call[T]) -> T:
        headers, key = self.prepare(call)
        for attempt in range(self.max_retries + 1):
            try:
                response = await self.http.request(
                    call.method, self.base_url + call.path, json=call.body, params=clean(call.query), headers=headers
                )
                result = self.outcome(call, response, key)
            except httpx.TransportError as exc:
                result = self.network_error(exc, key)
            if not isinstance(result, CreditdError):
                return result
            if self.give_up(attempt, result):
                raise result
            await asyncio.sleep(_backoff_s(attempt, result.retry_after))
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self.http.aclose()
