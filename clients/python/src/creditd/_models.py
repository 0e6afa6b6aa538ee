"""What creditd returns, as typed, frozen objects with attribute access.

Credits are ``Decimal`` (exact; parsed from creditd's decimal strings), never ``float``. Field
names and types follow the OpenAPI document's schemas of the same names; the test suite
checks them against a running creditd's ``/openapi.json``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar, Union

T = TypeVar("T")


@dataclass(frozen=True)
class SubscriptionSummary:
    id: str
    plan: str | None
    status: str
    current_period_start: int | None
    current_period_end: int | None
    cancel_at_period_end: bool


@dataclass(frozen=True)
class AutoTopupView:
    customer: str
    enabled: bool
    threshold: Decimal
    #: None until a package is chosen (a customer who never saved settings has them off).
    package: str | None
    quantity: int
    consecutive_failures: int
    max_per_month: int | None = None
    disabled_reason: str | None = None


@dataclass(frozen=True)
class Priced:
    units: dict[str, int]
    prices: dict[str, str]
    per: int
    amount: Decimal


@dataclass(frozen=True)
class BudgetCheck:
    id: str
    limit: Decimal
    used: Decimal
    remaining: Decimal
    resets_at: int | None = None


@dataclass(frozen=True)
class Customer:
    id: str
    email: str | None
    metadata: dict[str, Any]
    balance: Decimal
    available: Decimal
    held: Decimal
    frozen: Decimal
    debt: Decimal
    created: int
    subscription: SubscriptionSummary | None = None
    auto_topup: AutoTopupView | None = None
    low_balance_threshold: Decimal | None = None


@dataclass(frozen=True)
class Grant:
    id: str
    customer: str
    amount: Decimal
    remaining: Decimal
    priority: int
    expires_at: int | None
    source: str
    reason: str | None
    reference: str | None
    created: int


@dataclass(frozen=True)
class Entry:
    id: str
    customer: str
    grant: str | None
    kind: str
    amount: Decimal
    balance_after: Decimal
    reference: str | None
    feature: str | None
    metadata: dict[str, Any]
    created: int


@dataclass(frozen=True)
class Usage:
    id: str
    customer: str
    amount: Decimal
    feature: str
    balance: Decimal
    available: Decimal
    entries: list[Entry]
    created: int
    priced: Priced | None = None
    budget: str | None = None


@dataclass(frozen=True)
class Hold:
    id: str
    customer: str
    amount: Decimal
    status: str
    captured: Decimal | None
    feature: str | None
    expires_at: int
    created: int
    balance: Decimal
    available: Decimal
    entries: list[Entry]
    priced: Priced | None = None
    budget: str | None = None


@dataclass(frozen=True)
class CheckOut:
    allowed: bool
    balance: Decimal
    available: Decimal
    amount: Decimal | None = None
    reason: str | None = None
    plan: str | None = None
    limit: int | None = None
    used: int | None = None
    resets_at: int | None = None
    budget: BudgetCheck | None = None


@dataclass(frozen=True)
class Package:
    id: str
    name: str
    credits: Decimal
    price: int
    currency: str
    stripe_price: str | None
    active: bool
    created: int


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    credits: Decimal
    price: int
    currency: str
    interval: str
    rollover_cap: Decimal
    stripe_price: str | None
    active: bool
    created: int
    free: bool = False
    features: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class Payment:
    id: str
    customer: str
    package: str
    quantity: int
    credits: Decimal
    amount: int
    currency: str
    status: str
    flow: str
    checkout_session: str | None
    payment_intent: str | None
    grant: str | None
    receipt_url: str | None
    failure_message: str | None
    created: int
    updated: int


@dataclass(frozen=True)
class CheckoutOut:
    id: str
    url: str | None
    payment: Payment


@dataclass(frozen=True)
class SubscriptionCheckoutOut:
    id: str
    url: str | None
    plan: str


@dataclass(frozen=True)
class PaymentIntentOut:
    id: str
    client_secret: str | None
    payment: Payment


@dataclass(frozen=True)
class PortalOut:
    url: str


@dataclass(frozen=True)
class EventOut:
    id: str
    type: str
    status: str
    error: str | None
    attempts: int
    created: int
    received_at: int
    processed_at: int | None


@dataclass(frozen=True)
class UsageRow:
    credits: Decimal
    requests: int
    day: str | None = None
    feature: str | None = None


@dataclass(frozen=True)
class UsageSummary:
    object: str
    from_: int = dataclasses.field(metadata={"json": "from"})
    to: int
    group_by: str
    total: Decimal
    data: list[UsageRow]


@dataclass(frozen=True)
class ErrorDetail:
    code: str
    message: str
    param: str | None = None
    balance: Decimal | None = None
    available: Decimal | None = None


@dataclass(frozen=True)
class RecordResult:
    """One record of ``usage.record_batch``: ``status`` 200 with ``usage``, or the error's status with ``error``."""

    status: int
    usage: Usage | None = None
    error: ErrorDetail | None = None


@dataclass(frozen=True)
class EndpointOut:
    """A webhook endpoint; ``secret`` (``whsec_…``) is returned in full only on create and rotate."""

    id: str
    object: str
    url: str
    events: list[str]
    enabled: bool
    created: int
    description: str | None = None
    secret: str | None = None
    previous_secret_expires_at: int | None = None


@dataclass(frozen=True)
class DeliveryOut:
    id: str
    event: str
    type: str
    delivery: str
    delivery_status: str
    attempted_at_ms: int
    latency_ms: int
    status_code: int | None = None
    response: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Deleted:
    id: str
    deleted: bool


@dataclass(frozen=True)
class Feature:
    """A feature; ``prices`` maps a unit to credits (a decimal string) per ``per`` units."""

    id: str
    name: str
    prices: dict[str, str]
    per: int
    active: bool
    gated: bool
    created: int
    updated: int


@dataclass(frozen=True)
class Budget:
    id: str
    customer: str
    limit: Decimal
    period: str
    used: Decimal
    remaining: Decimal
    created: int
    name: str | None = None
    resets_at: int | None = None


@dataclass(frozen=True)
class EntitlementView:
    feature: str
    name: str
    allowed: bool
    included: bool
    gated: bool
    limit: int | None = None
    period: str | None = None
    used: int | None = None
    resets_at: int | None = None


@dataclass(frozen=True)
class EntitlementList:
    object: str
    data: list[EntitlementView]
    plan: str | None = None


@dataclass(frozen=True)
class OutboundEventOut:
    """An event creditd sends to the webhook endpoints that want it, with the body they get."""

    id: str
    type: str
    data: dict[str, Any]
    created: int
    customer: str | None = None


@dataclass(frozen=True)
class Redelivery:
    id: str
    #: Deliveries queued again, one per endpoint that wants the event.
    queued: int


@dataclass(frozen=True)
class Refused:
    price: str
    reason: str


@dataclass(frozen=True)
class SyncReport:
    """What ``packages.sync()`` did, package by package."""

    created: list[Package]
    updated: list[Package]
    archived: list[str]
    unchanged: list[str]
    refused: list[Refused]


def _wire_name(field: dataclasses.Field[Any]) -> str:
    name = field.metadata.get("json")
    return name if isinstance(name, str) else field.name


def parse(cls: type[T], data: Any) -> T:
    """Builds ``cls`` from creditd's JSON; unknown fields (from a newer creditd) are ignored."""
    if not isinstance(data, dict):
        raise TypeError(f"expected an object for {cls.__name__}, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        wire = _wire_name(field)
        if wire in data:
            values[field.name] = _convert(hints[field.name], data[wire])
    return cls(**values)


def _convert(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(inner, value)
    if origin is list:
        (item,) = typing.get_args(hint)
        return [_convert(item, v) for v in value]
    if hint is Decimal:
        if not isinstance(value, str):
            raise TypeError(f"expected credits as a decimal string, got {value!r}")
        return Decimal(value)
    if dataclasses.is_dataclass(hint):
        return parse(hint, value)  # type: ignore[arg-type]
    return value


MODELS: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        AutoTopupView,
        Priced,
        BudgetCheck,
        SubscriptionSummary,
        Customer,
        Grant,
        Entry,
        Usage,
        Hold,
        CheckOut,
        Package,
        Plan,
        Payment,
        CheckoutOut,
        SubscriptionCheckoutOut,
        PaymentIntentOut,
        PortalOut,
        EventOut,
        UsageRow,
        UsageSummary,
        ErrorDetail,
        RecordResult,
        EndpointOut,
        DeliveryOut,
        Deleted,
        Feature,
        Budget,
        EntitlementView,
        EntitlementList,
        OutboundEventOut,
        Redelivery,
        Refused,
        SyncReport,
    )
}
"""Each model by its OpenAPI schema name."""
