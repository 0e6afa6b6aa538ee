"""What the sync and async meters share: derived idempotency keys and the hold's checks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from . import _models as m
from ._errors import CreditdError
from ._transport import Amount


@dataclass(frozen=True)
class MeterPlan:
    customer: str
    feature: str
    estimate: Amount
    request_id: str
    ttl_seconds: int | None
    metadata: dict[str, Any] | None

    @classmethod
    def new(
        cls,
        customer: str,
        feature: str,
        estimate: Amount,
        request_id: str | None,
        ttl_seconds: int | None,
        metadata: dict[str, Any] | None,
    ) -> MeterPlan:
        return cls(customer, feature, estimate, request_id or str(uuid.uuid4()), ttl_seconds, metadata)

    def key(self, step: str) -> str:
        """`<request id>:hold`, `:capture`, `:release`: a retried meter replays each step."""
        return f"{self.request_id}:{step}"

    def usable(self, hold: m.Hold) -> m.Hold:
        """An open hold, or one a previous run with this request id already captured."""
        if hold.status in ("open", "captured"):
            return hold
        raise CreditdError(
            409,
            "hold_not_open",
            f"the hold of request {self.request_id} is already {hold.status}; use a new request_id",
        )

    @staticmethod
    def entered(hold: m.Hold | None) -> m.Hold:
        if hold is None:
            raise RuntimeError("the meter was exited without being entered")
        return hold
