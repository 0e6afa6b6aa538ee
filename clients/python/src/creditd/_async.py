"""The asynchronous client: ``AsyncCreditd(api_key=, base_url=)``, the same resources as :class:`Creditd`."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar

import httpx

from . import _calls as c
from . import _models as m
from . import _platform_calls as p
from ._async_pager import AsyncPager
from ._async_platform import AutoTopup, Budgets, Entitlements, Features, OutboundEvents, WebhookEndpoints
from ._errors import CreditdError
from ._meter import MeterPlan
from ._transport import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_S, Amount, AsyncTransport

T = TypeVar("T", bound=Any)


class _Resource:
    def __init__(self, t: AsyncTransport) -> None:
        self._t = t


class Customers(_Resource):
    async def create(
        self,
        id: str,
        *,
        email: str | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> m.Customer:
        return await self._t.run(c.create_customer(id, email, metadata, idempotency_key))

    async def retrieve(self, id: str) -> m.Customer:
        return await self._t.run(c.get_customer(id))

    async def update(
        self,
        id: str,
        *,
        email: str | None = p.UNSET,
        metadata: dict[str, Any] | None = p.UNSET,
        low_balance_threshold: Amount | None = p.UNSET,
        idempotency_key: str | None = None,
    ) -> m.Customer:
        """Changes only what is given; ``low_balance_threshold=None`` goes back to the configured default."""
        return await self._t.run(p.update_customer(id, email, metadata, low_balance_threshold, idempotency_key))


class Grants(_Resource):
    async def create(
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
        return await self._t.run(
            c.create_grant(customer, amount, reason, expires_at, priority, source, idempotency_key)
        )

    def list(
        self, customer: str, *, limit: int | None = None, starting_after: str | None = None
    ) -> AsyncPager[m.Grant]:
        query = {"limit": limit, "starting_after": starting_after}
        return AsyncPager(self._t, m.Grant, f"/v1/customers/{c.seg(customer)}/grants", query)


class Ledger(_Resource):
    def list(
        self, customer: str, *, limit: int | None = None, starting_after: str | None = None
    ) -> AsyncPager[m.Entry]:
        query = {"limit": limit, "starting_after": starting_after}
        return AsyncPager(self._t, m.Entry, f"/v1/customers/{c.seg(customer)}/ledger", query)


class UsageResource(_Resource):
    async def record(
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
        return await self._t.run(call)

    async def record_batch(
        self, records: Sequence[dict[str, Any]], *, idempotency_key: str | None = None
    ) -> list[m.RecordResult]:
        """Up to 1,000 records (dicts with ``customer``, ``feature``, ``amount`` or ``units``, optionally
        ``metadata``, ``budget``, ``idempotency_key``) in order; one result each. A record without its own key is
        exactly-once by the request's key and its index."""
        return await self._t.run(p.record_batch(records, idempotency_key))


class Holds(_Resource):
    async def create(
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
        return await self._t.run(call)

    async def retrieve(self, id: str) -> m.Hold:
        return await self._t.run(c.get_hold(id))

    async def capture(
        self,
        id: str,
        *,
        amount: Amount | None = None,
        units: c.Units | None = None,
        feature: str | None = None,
        idempotency_key: str | None = None,
    ) -> m.Hold:
        """Spends ``amount`` or the price of ``units`` (default: the whole hold)."""
        return await self._t.run(c.capture_hold(id, amount, units, feature, idempotency_key))

    async def release(self, id: str, *, idempotency_key: str | None = None) -> m.Hold:
        return await self._t.run(c.release_hold(id, idempotency_key))


class Packages(_Resource):
    async def list(self) -> list[m.Package]:
        return await self._t.run(c.list_packages())

    async def create(
        self,
        *,
        name: str,
        credits: Amount,
        price: int | None = None,
        currency: str | None = None,
        stripe_price: str | None = None,
        idempotency_key: str | None = None,
    ) -> m.Package:
        return await self._t.run(c.create_package(name, credits, price, currency, stripe_price, idempotency_key))

    async def archive(self, id: str) -> m.Package:
        return await self._t.run(c.archive_package(id))

    async def sync(self, *, idempotency_key: str | None = None) -> m.SyncReport:
        """Imports one-time Stripe Prices whose Price or Product has ``credits_amount`` metadata: new ones
        created, changed ones updated, removed ones archived, recurring ones refused by name."""
        return await self._t.run(p.sync_packages(idempotency_key))


class Plans(_Resource):
    async def list(self) -> list[m.Plan]:
        return await self._t.run(c.list_plans())

    async def create(
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
        return await self._t.run(call)

    async def update(self, id: str, *, features: dict[str, Any], idempotency_key: str | None = None) -> m.Plan:
        """Replaces what the plan includes; applies to its customers from now on."""
        return await self._t.run(p.update_plan(id, features, idempotency_key))


class CheckoutSessions(_Resource):
    async def create(
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
        return await self._t.run(c.create_checkout(body, idempotency_key))

    async def create_subscription(
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
        return await self._t.run(c.create_subscription_checkout(body, idempotency_key))

    async def fulfill(self, id: str) -> m.Payment:
        return await self._t.run(c.fulfill_checkout(id))


class PaymentIntents(_Resource):
    async def create(self, *, customer: str, package: str, idempotency_key: str | None = None) -> m.PaymentIntentOut:
        return await self._t.run(c.create_payment_intent(customer, package, idempotency_key))


class Payments(_Resource):
    def list(
        self, *, customer: str, limit: int | None = None, starting_after: str | None = None
    ) -> AsyncPager[m.Payment]:
        query = {"customer": customer, "limit": limit, "starting_after": starting_after}
        return AsyncPager(self._t, m.Payment, "/v1/payments", query)


class BillingPortal(_Resource):
    async def create(self, *, customer: str, return_url: str | None = None) -> m.PortalOut:
        return await self._t.run(c.create_portal(customer, return_url))


class StripeEvents(_Resource):
    def list(
        self,
        *,
        status: Literal["processing", "processed", "ignored", "failed"] | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> AsyncPager[m.EventOut]:
        query = {"status": status, "limit": limit, "starting_after": starting_after}
        return AsyncPager(self._t, m.EventOut, "/v1/stripe/events", query)

    async def retry(self, id: str) -> m.EventOut:
        return await self._t.run(c.retry_event(id))


class Me(_Resource):
    """The customer-token endpoints (construct the client with the token as ``api_key``)."""

    async def retrieve(self) -> m.Customer:
        return await self._t.run(c.get_me())

    def ledger(self, *, limit: int | None = None, starting_after: str | None = None) -> AsyncPager[m.Entry]:
        return AsyncPager(self._t, m.Entry, "/v1/me/ledger", {"limit": limit, "starting_after": starting_after})

    def payments(self, *, limit: int | None = None, starting_after: str | None = None) -> AsyncPager[m.Payment]:
        return AsyncPager(self._t, m.Payment, "/v1/me/payments", {"limit": limit, "starting_after": starting_after})

    async def usage(
        self, *, from_: int | None = None, to: int | None = None, group_by: Literal["day", "feature"] | None = None
    ) -> m.UsageSummary:
        return await self._t.run(c.my_usage(from_, to, group_by))

    async def create_checkout_session(
        self, *, package: str, quantity: int | None = None, idempotency_key: str | None = None
    ) -> m.CheckoutOut:
        return await self._t.run(c.my_checkout(package, quantity, idempotency_key))


class AsyncMeter:
    """``async with creditd.meter(...) as m: …; m.actual = "2.5"``: see :meth:`AsyncCreditd.meter`."""

    def __init__(self, holds: Holds, plan: MeterPlan) -> None:
        self._holds, self._plan = holds, plan
        self.actual: Amount | None = None
        self.hold: m.Hold | None = None
        #: A previous run with this ``request_id`` already captured: the block may skip its work.
        self.replayed = False

    async def __aenter__(self) -> AsyncMeter:
        p = self._plan
        hold = await self._holds.create(
            customer=p.customer,
            amount=p.estimate,
            feature=p.feature,
            ttl_seconds=p.ttl_seconds,
            metadata=p.metadata,
            idempotency_key=p.key("hold"),
        )
        # A retried meter gets the first answer replayed, as it was then: read what it is now.
        self.hold = p.usable(await self._holds.retrieve(hold.id))
        self.replayed = self.hold.status == "captured"
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        hold, p = self._plan.entered(self.hold), self._plan
        if hold.status != "open":
            return
        if kind is not None or self.actual is None:
            # A failed release is left to the hold's TTL; the block's own error matters more.
            with contextlib.suppress(CreditdError):
                self.hold = await self._holds.release(hold.id, idempotency_key=p.key("release"))
            return
        self.hold = await self._holds.capture(
            hold.id, amount=self.actual, feature=p.feature, idempotency_key=p.key("capture")
        )


class AsyncCreditd:
    """creditd's API for asyncio. ``AsyncCreditd(api_key="cd_sk_…", base_url="http://127.0.0.1:8080")``."""

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        t = AsyncTransport(api_key, base_url, timeout, max_retries, http_client)
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

    async def check(
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
        return await self._t.run(c.check(customer, amount, units, feature, budget))

    def meter(
        self,
        *,
        customer: str,
        feature: str,
        estimate: Amount,
        request_id: str | None = None,
        ttl_seconds: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> AsyncMeter:
        """Holds ``estimate`` for the ``async with`` block; captures ``m.actual`` on exit, or releases the
        hold when the block raised or set no ``actual``. The hold, capture and release keys derive
        from ``request_id``, so running the same metered call again never charges twice."""
        return AsyncMeter(self.holds, MeterPlan.new(customer, feature, estimate, request_id, ttl_seconds, metadata))

    async def close(self) -> None:
        await self._t.close()

    async def __aenter__(self) -> AsyncCreditd:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()
