"""Webhook endpoints, outbound events, features, budgets, entitlements and auto top-up, synchronously."""

from __future__ import annotations

from typing import Literal

from . import _models as m
from . import _platform_calls as p
from ._sync_pager import Pager
from ._transport import Amount, SyncTransport


class _Resource:
    def __init__(self, t: SyncTransport) -> None:
        self._t = t


class WebhookEndpoints(_Resource):
    def create(
        self,
        *,
        url: str,
        events: list[str] | None = None,
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> m.EndpointOut:
        """The answer carries ``secret`` (``whsec_…``) in full, this once: keep it for ``webhooks.verify``."""
        return self._t.run(p.create_endpoint(url, events, description, idempotency_key))

    def retrieve(self, id: str) -> m.EndpointOut:
        return self._t.run(p.get_endpoint(id))

    def update(
        self,
        id: str,
        *,
        url: str | None = None,
        events: list[str] | None = None,
        description: str | None = None,
        enabled: bool | None = None,
        idempotency_key: str | None = None,
    ) -> m.EndpointOut:
        changes = {"url": url, "events": events, "description": description, "enabled": enabled}
        return self._t.run(p.update_endpoint(id, changes, idempotency_key))

    def delete(self, id: str) -> m.Deleted:
        return self._t.run(p.delete_endpoint(id))

    def rotate_secret(self, id: str, *, idempotency_key: str | None = None) -> m.EndpointOut:
        """A new secret, in full; the previous one keeps signing beside it for a while."""
        return self._t.run(p.rotate_secret(id, idempotency_key))

    def deliveries(
        self, id: str, *, limit: int | None = None, starting_after: str | None = None
    ) -> Pager[m.DeliveryOut]:
        query = {"limit": limit, "starting_after": starting_after}
        return Pager(self._t, m.DeliveryOut, p.deliveries_path(id), query)

    def list(self) -> list[m.EndpointOut]:
        return self._t.run(p.list_endpoints())


class OutboundEvents(_Resource):
    def list(
        self, *, customer: str | None = None, limit: int | None = None, starting_after: str | None = None
    ) -> Pager[m.OutboundEventOut]:
        """Newest first (only ``customer``'s when given), paging itself when iterated."""
        query = p.outbound_events_query(customer, limit, starting_after)
        return Pager(self._t, m.OutboundEventOut, "/v1/outbound-events", query)

    def redeliver(self, id: str, *, idempotency_key: str | None = None) -> m.Redelivery:
        """Sends the event again now, with the same ``webhook-id``, to every endpoint that wants it."""
        return self._t.run(p.redeliver(id, idempotency_key))


class Features(_Resource):
    def create(
        self,
        *,
        id: str,
        name: str,
        per: int | None = None,
        prices: dict[str, Amount] | None = None,
        idempotency_key: str | None = None,
    ) -> m.Feature:
        return self._t.run(p.create_feature(id, name, per, prices, idempotency_key))

    def list(self) -> list[m.Feature]:
        return self._t.run(p.list_features())

    def update(
        self,
        id: str,
        *,
        name: str | None = None,
        per: int | None = None,
        prices: dict[str, Amount] | None = None,
        idempotency_key: str | None = None,
    ) -> m.Feature:
        """Renames or re-prices; past usage keeps the price it was charged at."""
        return self._t.run(p.update_feature(id, name, per, prices, idempotency_key))

    def archive(self, id: str, *, idempotency_key: str | None = None) -> m.Feature:
        return self._t.run(p.archive_feature(id, idempotency_key))


class Budgets(_Resource):
    def create(
        self,
        customer: str,
        *,
        id: str,
        limit: Amount,
        period: Literal["day", "month", "total"],
        name: str | None = None,
        idempotency_key: str | None = None,
    ) -> m.Budget:
        return self._t.run(p.create_budget(customer, id, limit, period, name, idempotency_key))

    def list(self, customer: str) -> list[m.Budget]:
        return self._t.run(p.list_budgets(customer))


class Entitlements(_Resource):
    def list(self, customer: str) -> m.EntitlementList:
        """Every feature as it stands for the customer now, and the ``plan`` that applies."""
        return self._t.run(p.list_entitlements(customer))


class AutoTopup(_Resource):
    def retrieve(self, customer: str) -> m.AutoTopupView:
        return self._t.run(p.get_auto_topup(customer))

    def update(
        self,
        customer: str,
        *,
        enabled: bool,
        threshold: Amount,
        package: str,
        quantity: int | None = None,
        max_per_month: int | None = None,
        idempotency_key: str | None = None,
    ) -> m.AutoTopupView:
        call = p.update_auto_topup(customer, enabled, threshold, package, quantity, max_per_month, idempotency_key)
        return self._t.run(call)
