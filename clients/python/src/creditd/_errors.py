"""The one error the client raises."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


class CreditdError(Exception):
    """An error answer from creditd, or a failure to reach it (``status`` 0).

    ``code`` is creditd's stable machine code (``insufficient_credits``, ``customer_not_found``,
    …), or ``network_error`` / ``timeout`` when no answer arrived. ``param`` names the request
    field at fault when creditd named one; ``balance`` and ``available`` come with
    ``insufficient_credits``.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        param: str | None = None,
        balance: Decimal | None = None,
        available: Decimal | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.balance = balance
        self.available = available
        self.idempotency_key = idempotency_key
        #: Seconds creditd asked the client to wait (``Retry-After``), when it did.
        self.retry_after: float | None = None

    def __repr__(self) -> str:
        return f"CreditdError(status={self.status}, code={self.code!r}, message={self.message!r})"

    @classmethod
    def from_response(cls, status: int, body: Any, idempotency_key: str | None) -> CreditdError:
        detail = body.get("error") if isinstance(body, dict) else None
        if not isinstance(detail, dict):
            return cls(status, "http_error", f"creditd answered {status}", idempotency_key=idempotency_key)

        def text(name: str) -> str | None:
            value = detail.get(name)
            return value if isinstance(value, str) else None

        balance, available = text("balance"), text("available")
        return cls(
            status,
            text("code") or "http_error",
            text("message") or f"creditd answered {status}",
            param=text("param"),
            balance=Decimal(balance) if balance is not None else None,
            available=Decimal(available) if available is not None else None,
            idempotency_key=idempotency_key,
        )
