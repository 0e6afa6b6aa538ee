"""The synchronous client: ``Creditd(api_key=, base_url=)``."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar

import httpx

from . import _calls as c
from . import _models as m
from . import _platform_calls as p
from ._errors import CreditdError
from ._meter import MeterPlan
from ._sync_pager import Pager
from ._sync_platform import AutoTopup, Budgets, Entitlements, Features, OutboundEvents, WebhookEndpoints
from ._transport import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_S, Amount, SyncTransport

T = TypeVar("T", bound=Any)


class _Resource:
    def __init__(self, t: SyncTransport) -> None:
        self._t = t


class Customers(_Resource):
    def create(
        self,
        id: str,
        *,
        email: str | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> m.Customer:
        return self._t.run(c.create_customer(id, email, metadata, idempotency_key))

    def retrieve(self, id: str) -> m.Customer:
        return self._t.run(c.get_customer(id))

    def update(
        self,
        id: str,
        *,
        email: str | None = p.UNSET,
        metadata: dict[str, Any] | None = p.UNSET,
        low_balance_threshold: Amount | None = p.UNSET,
        idempotency_key: str | None = None,
    ) -> m.Customer:
        """Changes only what is given; ``low_balance_threshold=None`` goes back to the configured default."""
        return self._t.run(p.update_customer(id, email, metadata, low_balance_threshold, idempotency_key))


class Grants(_Resource):
    def create(
        self,
        customer: str,
        *,
        amount: Amount,
        reason: str,
        expires_at: int | None = None,
        priority: int | None = None,
        source: Literal["promotion", "admin"] | None = None,
        idempotency_key: str | None = None,
    ) -> m.Grant:
        return self._t.run(c.create_grant(customer, amount, reason, expires_at, priority, source, idempotency_key))

    def list(self, customer: str, *, limit: int | None = None, starting_after: str | None = None) -> Pager[m.Grant]:
        query = {"limit": limit, "starting_after": starting_after}
        return Pager(self._t, m.Grant, f"/v1/customers/{c.seg(customer)}/grants", query)


class Ledger(_Resource):
    def list(self, customer: str, *, limit: int | None = None, starting_after: str | None = None) -> Pager[m.Entry]:
        query = {"limit": limit, "starting_after": starting_after}
        return Pager(self._t, m.Entry, f"/v1/customers/{c.seg(customer)}/ledger", query)


class UsageResource(_Resource):
    def record(
        self,
        *,
        customer: str,
        feature: str,
        amount: Amount | None = None,
        units: c.Units | None = None,
        budget: str | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> m.Usage:
        """Deducts ``amount``, or ``units`` of a priced feature (``{"input_tokens": 1200}``, priced on its
        rate card). Raises :class:`CreditdError` 402 ``insufficient_credits`` or ``budget_exceeded`` (nothing
        deducted) when credits or the budget fall short."""
        call = c.record_usage(customer, amount, units, feature, budget, metadata, idempotency_key)
        return self._t.run(call)

    def record_batch(
        self, records: Sequence[dict[str, Any]], *, idempotency_key: str | None = None
    ) -> list[m.RecordResult]:
        """Up to 1,000 records (dicts with ``customer``, ``feature``, ``amount`` or ``units``, optionally
        ``metadata``, ``budget``, ``idempotency_key``) in order; one result each. A record without its own key is
        exactly-once by the request's key and its index."""
        return self._t.run(p.record_batch(records, idempotency_key))


class Holds(_Resource):
    def create(
        self,
        *,
        customer: str,
        amount: Amount | None = None,
        units: c.Units | None = None,
        ttl_seconds: int | None = None,
        feature: str | None = None,
        budget: str | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> m.Hold:
        """Holds ``amount``, or ``units`` of ``feature`` at its current prices."""
        call = c.create_hold(customer, amount, units, ttl_seconds, feature, budget, metadata, idempotency_key)
        return self._t.run(call)

    def retrieve(self, id: str) -> m.Hold:
        return self._t.run(c.get_hold(id))

    def capture(
        self,
        id: str,
        *,
        amount: Amount | None = None,
        units: c.Units | None = None,
        feature: str | None = None,
        idempotency_key: str | None = None,
    ) -> m.Hold:
        """Spends ``amount`` or the price of ``units`` (default: the whole hold)."""
        return self._t.run(c.capture_hold(id, amount, units, feature, idempotency_key))

    def release(self, id: str, *, idempotency_key: str | None = None) -> m.Hold:
        return self._t.run(c.release_hold(id, idempotency_key))


class Packages(_Resource):
    def list(self) -> list[m.Package]:
        return self._t.run(c.list_packages())

    def create(
        self,
        *,
        name: str,
        credits: Amount,
        price: int | None = None,
        currency: str | None = None,
        stripe_price: str | None = None,
        idempotency_key: str | None = None,
    ) -> m.Package:
        return self._t.run(c.create_package(name, credits, price, currency, stripe_price, idempotency_key))

    def archive(self, id: str) -> m.Package:
        return self._t.run(c.archive_package(id))

    def sync(self, *, idempotency_key: str | None = None) -> m.SyncReport:
        """Imports one-time Stripe Prices whose Price or Product has ``credits_amount`` metadata: new ones
        created, changed ones updated, removed ones archived, recurring ones refused by name."""
        return self._t.run(p.sync_packages(idempotency_key))


class Plans(_Resource):
    def list(self) -> list[m.Plan]:
        return self._t.run(c.list_plans())

    def create(
        self,
        *,
        name: str,
        credits: Amount,
        price: int | None = None,
        currency: str | None = None,
        interval: Literal["day", "week", "month", "year"] | None = None,
        rollover_cap: Amount | None = None,
        free: bool | None = None,
        features: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> m.Plan:
        """A paid plan (``price`` and ``currency``) or the free plan (``free=True``, no price).
        ``features``: feature id → ``True``, ``False`` or ``{"limit": 3, "period": "day"}``."""
        call = c.create_plan(name, credits, price, currency, interval, rollover_cap, free, features, idempotency_key)
        return self._t.run(call)

    def update(self, id: str, *, features: dict[str, Any], idempotency_key: str | None = None) -> m.Plan:
        """Replaces what the plan includes; applies to its customers from now on."""
        return self._t.run(p.update_plan(id, features, idempotency_key))


class CheckoutSessions(_Resource):
    def create(
        self,
        *,
        customer: str,
        package: str,
        quantity: int | None = None,
        success_url: str | None = None,
        cancel_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> m.CheckoutOut:
        """Stripe Checkout for a credit package; send the buyer to ``url``."""
        body = {
            "customer": customer,
            "package": package,
            "quantity": quantity,
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        return self._t.run(c.create_checkout(body, idempotency_key))

    def create_subscription(
        self,
        *,
        customer: str,
        plan: str,
        success_url: str | None = None,
        cancel_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> m.SubscriptionCheckoutOut:
        """Stripe Checkout in subscription mode for a plan."""
        body = {"customer": customer, "plan": plan, "success_url": success_url, "cancel_url": cancel_url}
        return self._t.run(c.create_subscription_checkout(body, idempotency_key))

    def fulfill(self, id: str) -> m.Payment:
        return self._t.run(c.fulfill_checkout(id))


class PaymentIntents(_Resource):
    def create(self, *, customer: str, package: str, idempotency_key: str | None = None) -> m.PaymentIntentOut:
        return self._t.run(c.create_payment_intent(customer, package, idempotency_key))


class Payments(_Resource):
    def list(self, *, customer: str, limit: int | None = None, starting_after: str | None = None) -> Pager[m.Payment]:
        query = {"customer": customer, "limit": limit, "starting_after": starting_after}
        return Pager(self._t, m.Payment, "/v1/payments", query)


class BillingPortal(_Resource):
    def create(self, *, customer: str, return_url: str | None = None) -> m.PortalOut:
        return self._t.run(c.create_portal(customer, return_url))


class StripeEvents(_Resource):
    def list(
        self,
        *,
        status: Literal["processing", "processed", "ignored", "failed"] | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> Pager[m.EventOut]:
        query = {"status": status, "limit": limit, "starting_after": starting_after}
        return Pager(self._t, m.EventOut, "/v1/stripe/events", query)

    def retry(self, id: str) -> m.EventOut:
        return self._t.run(c.retry_event(id))


class Me(_Resource):
    """The customer-token endpoints (construct the client with the token as ``api_key``)."""

    def retrieve(self) -> m.Customer:
        return self._t.run(c.get_me())

    def ledger(self, *, limit: int | None = None, starting_after: str | None = None) -> Pager[m.Entry]:
        return Pager(self._t, m.Entry, "/v1/me/ledger", {"limit": limit, "starting_after": starting_after})

    def payments(self, *, limit: int | None = None, starting_after: str | None = None) -> Pager[m.Payment]:
        return Pager(self._t, m.Payment, "/v1/me/payments", {"limit": limit, "starting_after": starting_after})

    def usage(
        self, *, from_: int | None = None, to: int | None = None, group_by: Literal["day", "feature"] | None = None
    ) -> m.UsageSummary:
        return self._t.run(c.my_usage(from_, to, group_by))

    def create_checkout_session(
        self, *, package: str, quantity: int | None = None, idempotency_key: str | None = None
    ) -> m.CheckoutOut:
        return self._t.run(c.my_checkout(package, quantity, idempotency_key))


class Meter:
    """``with creditd.meter(...) as m: …; m.actual = "2.5"``: see :meth:`Creditd.meter`."""

    def __init__(self, holds: Holds, plan: MeterPlan) -> None:
        self._holds, self._plan = holds, plan
        self.actual: Amount | None = None
        self.hold: m.Hold | None = None
        #: A previous run with this ``request_id`` already captured: the block may skip its work.
        self.replayed = False

    def __enter__(self) -> Meter:
        p = self._plan
        hold = self._holds.create(
            customer=p.customer,
            amount=p.estimate,
            feature=p.feature,
            ttl_seconds=p.ttl_seconds,
            metadata=p.metadata,
            idempotency_key=p.key("hold"),
        )
        # A retried meter gets the first answer replayed, as it was then: read what it is now.
        self.hold = p.usable(self._holds.retrieve(hold.id))
        self.replayed = self.hold.status == "captured"
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        hold, p = self._plan.entered(self.hold), self._plan
        if hold.status != "open":
            return
        if kind is not None or self.actual is None:
            # A failed release is left to the hold's TTL; the block's own error matters more.
            with contextlib.suppress(CreditdError):
                self.hold = self._holds.release(hold.id, idempotency_key=p.key("release"))
            return
        self.hold = self._holds.capture(
            hold.id, amount=self.actual, feature=p.feature, idempotency_key=p.key("capture")
        )


class Creditd:
    """creditd's API, synchronously. ``Creditd(api_key="cd_sk_…", base_url="http://127.0.0.1:8080")``."""

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.Client | None = None,
    ) -> None:
        t = SyncTransport(api_key, base_url, timeout, max_retries, http_client)
        self._t = t
        self.customers = Customers(t)
        self.grants = Grants(t)
        self.ledger = Ledger(t)
        self.usage = UsageResource(t)
        self.holds = Holds(t)
        self.packages = Packages(t)
        self.plans = Plans(t)
        self.checkout_sessions = CheckoutSessions(t)
        self.payment_intents = PaymentIntents(t)
        self.payments = Payments(t)
        self.billing_portal = BillingPortal(t)
        self.stripe_events = StripeEvents(t)
        self.webhook_endpoints = WebhookEndpoints(t)
        self.outbound_events = OutboundEvents(t)
        self.features = Features(t)
        self.budgets = Budgets(t)
        self.entitlements = Entitlements(t)
        self.auto_topup = AutoTopup(t)
        self.me = Me(t)

    def check(
        self,
        *,
        customer: str,
        amount: Amount | None = None,
        units: c.Units | None = None,
        feature: str | None = None,
        budget: str | None = None,
    ) -> m.CheckOut:
        """Would ``amount`` (or ``units`` of ``feature``, on ``budget``) be allowed now? Changes nothing;
        ``reason`` says why not."""
        return self._t.run(c.check(customer, amount, units, feature, budget))

    def meter(
        self,
        *,
        customer: str,
        feature: str,
        estimate: Amount,
        request_id: str | None = None,
        ttl_seconds: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Meter:
        """Holds ``estimate`` for the ``with`` block; captures ``m.actual`` on exit, or releases the
        hold when the block raised or set no ``actual``. The hold, capture and release keys derive
        from ``request_id``, so running the same metered call again never charges twice."""
        return Meter(self.holds, MeterPlan.new(customer, feature, estimate, request_id, ttl_seconds, metadata))

    def close(self) -> None:
        self._t.close()

    def __enter__(self) -> Creditd:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
