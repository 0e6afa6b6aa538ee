"""Every endpoint, described once as a :class:`Call`; the sync and async clients send them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from . import _models as m
from ._transport import Amount, Call, amount, clean

T = TypeVar("T")


def seg(value: str) -> str:
    """One path segment (customer ids may hold `:`, `@`, `+`, `|`, `=`)."""
    return quote(value, safe="")


def one(cls: type[T]) -> Callable[[Any], T]:
    return lambda body: m.parse(cls, body)


def page_of(cls: type[T]) -> Callable[[Any], tuple[list[T], bool]]:
    return lambda body: ([m.parse(cls, item) for item in body["data"]], bool(body.get("has_more")))


def items_of(cls: type[T]) -> Callable[[Any], list[T]]:
    return lambda body: [m.parse(cls, item) for item in body["data"]]


def create_customer(id: str, email: str | None, metadata: dict[str, Any] | None, key: str | None) -> Call[m.Customer]:
    body = clean({"id": id, "email": email, "metadata": metadata})
    return Call("POST", "/v1/customers", one(m.Customer), body, idempotency_key=key)


def get_customer(id: str) -> Call[m.Customer]:
    return Call("GET", f"/v1/customers/{seg(id)}", one(m.Customer))


def create_grant(
    customer: str,
    amount_: Amount,
    reason: str,
    expires_at: int | None,
    priority: int | None,
    source: Literal["promotion", "admin"] | None,
    key: str | None,
) -> Call[m.Grant]:
    body = clean(
        {"amount": amount(amount_), "reason": reason, "expires_at": expires_at, "priority": priority, "source": source}
    )
    return Call("POST", f"/v1/customers/{seg(customer)}/grants", one(m.Grant), body, idempotency_key=key)


Units = dict[str, int]
"""Quantities of a priced feature's units, e.g. ``{"input_tokens": 1200}``: whole numbers."""


def units_of(units: Units | None) -> Units | None:
    if units is not None and not all(type(n) is int for n in units.values()):
        raise TypeError("units: each quantity is an int (a count of units), never a float or bool")
    return units


def maybe_amount(value: Amount | None, name: str = "amount") -> str | None:
    return None if value is None else amount(value, name)


def spend_body(
    customer: str, amount_: Amount | None, units: Units | None, feature: str | None, budget: str | None, **extra: Any
) -> dict[str, Any]:
    """What usage, holds and checks share: the customer, an amount or units, the feature, a budget."""
    body = {"customer": customer, "amount": maybe_amount(amount_), "units": units_of(units), "feature": feature}
    return clean({**body, "budget": budget, **extra})


def record_usage(
    customer: str,
    amount_: Amount | None,
    units: Units | None,
    feature: str,
    budget: str | None,
    metadata: dict[str, Any] | None,
    key: str | None,
) -> Call[m.Usage]:
    body = spend_body(customer, amount_, units, feature, budget, metadata=metadata)
    return Call("POST", "/v1/usage", one(m.Usage), body, idempotency_key=key)


def create_hold(
    customer: str,
    amount_: Amount | None,
    units: Units | None,
    ttl_seconds: int | None,
    feature: str | None,
    budget: str | None,
    metadata: dict[str, Any] | None,
    key: str | None,
) -> Call[m.Hold]:
    body = spend_body(customer, amount_, units, feature, budget, ttl_seconds=ttl_seconds, metadata=metadata)
    return Call("POST", "/v1/holds", one(m.Hold), body, idempotency_key=key)


def get_hold(id: str) -> Call[m.Hold]:
    return Call("GET", f"/v1/holds/{seg(id)}", one(m.Hold))


def capture_hold(
    id: str, amount_: Amount | None, units: Units | None, feature: str | None, key: str | None
) -> Call[m.Hold]:
    body = clean({"amount": maybe_amount(amount_), "units": units_of(units), "feature": feature})
    return Call("POST", f"/v1/holds/{seg(id)}/capture", one(m.Hold), body, idempotency_key=key)


def release_hold(id: str, key: str | None) -> Call[m.Hold]:
    return Call("POST", f"/v1/holds/{seg(id)}/release", one(m.Hold), {}, idempotency_key=key)


def check(
    customer: str, amount_: Amount | None, units: Units | None, feature: str | None, budget: str | None
) -> Call[m.CheckOut]:
    return Call("POST", "/v1/check", one(m.CheckOut), spend_body(customer, amount_, units, feature, budget))


def list_packages() -> Call[list[m.Package]]:
    return Call("GET", "/v1/packages", items_of(m.Package))


def create_package(
    name: str,
    credits: Amount,
    price: int | None,
    currency: str | None,
    stripe_price: str | None,
    key: str | None,
) -> Call[m.Package]:
    body = clean(
        {
            "name": name,
            "credits": amount(credits, "credits"),
            "price": price,
            "currency": currency,
            "stripe_price": stripe_price,
        }
    )
    return Call("POST", "/v1/packages", one(m.Package), body, idempotency_key=key)


def archive_package(id: str) -> Call[m.Package]:
    return Call("POST", f"/v1/packages/{seg(id)}/archive", one(m.Package), {})


def list_plans() -> Call[list[m.Plan]]:
    return Call("GET", "/v1/plans", items_of(m.Plan))


def create_plan(
    name: str,
    credits: Amount,
    price: int | None,
    currency: str | None,
    interval: Literal["day", "week", "month", "year"] | None,
    rollover_cap: Amount | None,
    free: bool | None,
    features: dict[str, Any] | None,
    key: str | None,
) -> Call[m.Plan]:
    body = clean(
        {
            "name": name,
            "credits": amount(credits, "credits"),
            "price": price,
            "currency": currency,
            "interval": interval,
            "rollover_cap": maybe_amount(rollover_cap, "rollover_cap"),
            "free": free,
            "features": features,
        }
    )
    return Call("POST", "/v1/plans", one(m.Plan), body, idempotency_key=key)


def create_checkout(body: dict[str, Any], key: str | None) -> Call[m.CheckoutOut]:
    return Call("POST", "/v1/checkout-sessions", one(m.CheckoutOut), clean(body), idempotency_key=key)


def create_subscription_checkout(body: dict[str, Any], key: str | None) -> Call[m.SubscriptionCheckoutOut]:
    return Call("POST", "/v1/checkout-sessions", one(m.SubscriptionCheckoutOut), clean(body), idempotency_key=key)


def fulfill_checkout(id: str) -> Call[m.Payment]:
    return Call("POST", f"/v1/checkout-sessions/{seg(id)}/fulfill", one(m.Payment), {})


def create_payment_intent(customer: str, package: str, key: str | None) -> Call[m.PaymentIntentOut]:
    body = {"customer": customer, "package": package}
    return Call("POST", "/v1/payment-intents", one(m.PaymentIntentOut), body, idempotency_key=key)


def create_portal(customer: str, return_url: str | None) -> Call[m.PortalOut]:
    body = clean({"customer": customer, "return_url": return_url})
    return Call("POST", "/v1/billing-portal", one(m.PortalOut), body)


def retry_event(id: str) -> Call[m.EventOut]:
    return Call("POST", f"/v1/stripe/events/{seg(id)}/retry", one(m.EventOut), {})


def get_me() -> Call[m.Customer]:
    return Call("GET", "/v1/me", one(m.Customer))


def my_usage(from_: int | None, to: int | None, group_by: Literal["day", "feature"] | None) -> Call[m.UsageSummary]:
    return Call("GET", "/v1/me/usage", one(m.UsageSummary), query={"from": from_, "to": to, "group_by": group_by})


def my_checkout(package: str, quantity: int | None, key: str | None) -> Call[m.CheckoutOut]:
    body = clean({"package": package, "quantity": quantity})
    return Call("POST", "/v1/me/checkout-sessions", one(m.CheckoutOut), body, idempotency_key=key)


def page(cls: type[T], path: str, query: dict[str, Any]) -> Call[tuple[list[T], bool]]:
    """One page of a list endpoint: its items and ``has_more``."""
    return Call("GET", path, page_of(cls), query=query)
