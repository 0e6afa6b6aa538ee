"""The endpoints of webhooks, outbound events, features, budgets, entitlements, auto top-up, package
sync, plan entitlements and batched usage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import _models as m
from ._calls import items_of, maybe_amount, one, seg, units_of
from ._transport import Amount, Call, amount, clean

UNSET: Any = object()
"""A parameter not given (``None`` is sent as ``null``: e.g. back to the default threshold)."""


def given(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not UNSET}


def update_customer(
    id: str, email: Any, metadata: Any, low_balance_threshold: Any, key: str | None
) -> Call[m.Customer]:
    threshold = low_balance_threshold
    if threshold is not UNSET and threshold is not None:
        threshold = amount(threshold, "low_balance_threshold")
    body = given({"email": email, "metadata": metadata, "low_balance_threshold": threshold})
    return Call("POST", f"/v1/customers/{seg(id)}", one(m.Customer), body, idempotency_key=key)


def record_batch(records: Sequence[dict[str, Any]], key: str | None) -> Call[list[m.RecordResult]]:
    """``records``: dicts with ``customer``, ``feature``, ``amount`` or ``units``, and optionally
    ``metadata``, ``budget``, ``idempotency_key``."""
    wire = [
        clean({**r, "amount": maybe_amount(r.get("amount"), f"records[{i}].amount"), "units": units_of(r.get("units"))})
        for i, r in enumerate(records)
    ]
    return Call("POST", "/v1/usage/batch", items_of(m.RecordResult), {"records": wire}, idempotency_key=key)


def create_endpoint(
    url: str, events: list[str] | None, description: str | None, key: str | None
) -> Call[m.EndpointOut]:
    body = clean({"url": url, "events": events, "description": description})
    return Call("POST", "/v1/webhook-endpoints", one(m.EndpointOut), body, idempotency_key=key)


def list_endpoints() -> Call[list[m.EndpointOut]]:
    return Call("GET", "/v1/webhook-endpoints", items_of(m.EndpointOut))


def get_endpoint(id: str) -> Call[m.EndpointOut]:
    return Call("GET", f"/v1/webhook-endpoints/{seg(id)}", one(m.EndpointOut))


def update_endpoint(id: str, changes: dict[str, Any], key: str | None) -> Call[m.EndpointOut]:
    return Call("POST", f"/v1/webhook-endpoints/{seg(id)}", one(m.EndpointOut), clean(changes), idempotency_key=key)


def delete_endpoint(id: str) -> Call[m.Deleted]:
    return Call("DELETE", f"/v1/webhook-endpoints/{seg(id)}", one(m.Deleted))


def rotate_secret(id: str, key: str | None) -> Call[m.EndpointOut]:
    return Call("POST", f"/v1/webhook-endpoints/{seg(id)}/rotate-secret", one(m.EndpointOut), {}, idempotency_key=key)


def deliveries_path(id: str) -> str:
    return f"/v1/webhook-endpoints/{seg(id)}/deliveries"


def _prices(prices: dict[str, Amount] | None) -> dict[str, str] | None:
    return None if prices is None else {unit: amount(v, f"prices.{unit}") for unit, v in prices.items()}


def create_feature(
    id: str, name: str, per: int | None, prices: dict[str, Amount] | None, key: str | None
) -> Call[m.Feature]:
    body = clean({"id": id, "name": name, "per": per, "prices": _prices(prices)})
    return Call("POST", "/v1/features", one(m.Feature), body, idempotency_key=key)


def list_features() -> Call[list[m.Feature]]:
    return Call("GET", "/v1/features", items_of(m.Feature))


def update_feature(
    id: str, name: str | None, per: int | None, prices: dict[str, Amount] | None, key: str | None
) -> Call[m.Feature]:
    body = clean({"name": name, "per": per, "prices": _prices(prices)})
    return Call("POST", f"/v1/features/{seg(id)}", one(m.Feature), body, idempotency_key=key)


def archive_feature(id: str, key: str | None) -> Call[m.Feature]:
    return Call("POST", f"/v1/features/{seg(id)}/archive", one(m.Feature), {}, idempotency_key=key)


def create_budget(
    customer: str, id: str, limit: Amount, period: str, name: str | None, key: str | None
) -> Call[m.Budget]:
    body = clean({"id": id, "limit": amount(limit, "limit"), "period": period, "name": name})
    return Call("POST", f"/v1/customers/{seg(customer)}/budgets", one(m.Budget), body, idempotency_key=key)


def list_budgets(customer: str) -> Call[list[m.Budget]]:
    return Call("GET", f"/v1/customers/{seg(customer)}/budgets", items_of(m.Budget))


def list_entitlements(customer: str) -> Call[m.EntitlementList]:
    return Call("GET", f"/v1/customers/{seg(customer)}/entitlements", one(m.EntitlementList))


def get_auto_topup(customer: str) -> Call[m.AutoTopupView]:
    return Call("GET", f"/v1/customers/{seg(customer)}/auto-topup", one(m.AutoTopupView))


def update_auto_topup(
    customer: str,
    enabled: bool,
    threshold: Amount,
    package: str,
    quantity: int | None,
    max_per_month: int | None,
    key: str | None,
) -> Call[m.AutoTopupView]:
    body = clean(
        {
            "enabled": enabled,
            "threshold": amount(threshold, "threshold"),
            "package": package,
            "quantity": quantity,
            "max_per_month": max_per_month,
        }
    )
    return Call("POST", f"/v1/customers/{seg(customer)}/auto-topup", one(m.AutoTopupView), body, idempotency_key=key)


def outbound_events_query(customer: str | None, limit: int | None, starting_after: str | None) -> dict[str, Any]:
    return {"customer": customer, "limit": limit, "starting_after": starting_after}


def redeliver(id: str, key: str | None) -> Call[m.Redelivery]:
    return Call("POST", f"/v1/outbound-events/{seg(id)}/redeliver", one(m.Redelivery), {}, idempotency_key=key)


def sync_packages(key: str | None) -> Call[m.SyncReport]:
    return Call("POST", "/v1/packages/sync", one(m.SyncReport), {}, idempotency_key=key)


def update_plan(id: str, features: dict[str, Any], key: str | None) -> Call[m.Plan]:
    body = {"features": features}
    return Call("POST", f"/v1/plans/{seg(id)}", one(m.Plan), body, idempotency_key=key)
