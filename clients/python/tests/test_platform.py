"""Webhook endpoints, outbound events, features and units, budgets, entitlements, plans, package sync,
auto top-up, customer updates and batched usage against a real creditd, sync and async."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from creditd import CreditdError
from tests.conftest import App


def test_customers_update_changes_only_what_is_given(app: App, customer_id: str) -> None:
    with app.client() as c:
        c.customers.create(customer_id, email="old@example.com", metadata={"a": 1})
        updated = c.customers.update(customer_id, low_balance_threshold="2.5")
        assert (updated.email, updated.metadata, updated.low_balance_threshold) == (
            "old@example.com",
            {"a": 1},
            Decimal("2.5"),
        )
        again = c.customers.update(customer_id, email="new@example.com", metadata={"b": 2})
        assert (again.email, again.metadata) == ("new@example.com", {"b": 2})
        with pytest.raises(CreditdError) as bad:
            c.customers.update(customer_id, low_balance_threshold="-1")
        assert bad.value.status == 400


def test_usage_record_batch_answers_per_record_and_replays(app: App, customer_id: str) -> None:
    with app.client() as c:
        c.customers.create(customer_id)
        records: list[dict[str, Any]] = [
            {"customer": customer_id, "amount": Decimal("1.5"), "feature": "chat"},
            {"customer": customer_id, "amount": "100", "feature": "chat"},
            {"customer": customer_id, "amount": 1, "feature": "chat", "idempotency_key": f"{customer_id}-own"},
        ]
        first = c.usage.record_batch(records, idempotency_key=f"{customer_id}-batch")
        assert [r.status for r in first] == [200, 402, 200]
        assert first[1].error is not None and first[1].error.code == "insufficient_credits"
        assert first[2].usage is not None and first[2].usage.balance == Decimal("2.5")
        again = c.usage.record_batch(records, idempotency_key=f"{customer_id}-batch")
        assert again[0].usage is not None and first[0].usage is not None
        assert again[0].usage.id == first[0].usage.id
        assert c.customers.retrieve(customer_id).balance == Decimal("2.5")


def test_features_budgets_entitlements(app: App, customer_id: str) -> None:
    feature = f"feat_{uuid.uuid4().hex[:10]}"
    with app.client() as c:
        created = c.features.create(id=feature, name="GPT", per=1000, prices={"input_tokens": Decimal("2.5")})
        assert (created.prices, created.per, created.active) == ({"input_tokens": "2.5"}, 1000, True)
        assert feature in [f.id for f in c.features.list()]
        updated = c.features.update(feature, name="GPT-4o", prices={"input_tokens": "3"})
        assert (updated.name, updated.prices) == ("GPT-4o", {"input_tokens": "3"})
        c.customers.create(customer_id)
        budget = c.budgets.create(customer_id, id="key_a", limit="2", period="month")
        assert (budget.limit, budget.used, budget.remaining) == (Decimal(2), Decimal(0), Decimal(2))
        (listed,) = c.budgets.list(customer_id)
        assert listed.id == "key_a"
        entitlements = c.entitlements.list(customer_id)
        assert [e.allowed for e in entitlements.data if e.feature == feature] == [True]
        assert c.features.archive(feature).active is False


def test_auto_topup_retrieve_and_update(app: App, customer_id: str) -> None:
    with app.client() as c:
        c.customers.create(customer_id)
        never = c.auto_topup.retrieve(customer_id)
        assert (never.enabled, never.package, never.threshold, never.quantity) == (False, None, Decimal(10), 1)
        on = c.auto_topup.update(customer_id, enabled=True, threshold=Decimal(10), package=app.package, quantity=2)
        assert (on.enabled, on.threshold, on.package, on.quantity) == (True, Decimal(10), app.package, 2)
        assert c.auto_topup.retrieve(customer_id).threshold == Decimal(10)
        assert c.auto_topup.update(customer_id, enabled=False, threshold="10", package=app.package).enabled is False


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_webhook_endpoints_lifecycle_async(app: App, anyio_backend: str) -> None:
    async with app.async_client() as c:
        # An event type no test sends: events recorded just before the endpoint exists are still
        # fanned out to it when the dispatcher gets to them, so a busier type would race.
        created = await c.webhook_endpoints.create(url="http://127.0.0.1:9/hooks", events=["dispute.closed"])
        assert created.secret is not None and created.secret.startswith("whsec_")
        assert created.id in [e.id for e in await c.webhook_endpoints.list()]
        assert (await c.webhook_endpoints.retrieve(created.id)).secret is None
        assert (await c.webhook_endpoints.update(created.id, enabled=False)).enabled is False
        rotated = await c.webhook_endpoints.rotate_secret(created.id)
        assert rotated.secret is not None and rotated.secret != created.secret
        assert [d async for d in c.webhook_endpoints.deliveries(created.id)] == []
        deleted = await c.webhook_endpoints.delete(created.id)
        assert (deleted.id, deleted.deleted) == (created.id, True)
        with pytest.raises(CreditdError) as gone:
            await c.webhook_endpoints.retrieve(created.id)
        assert gone.value.status == 404


def _priced_feature(c: Any) -> str:
    feature = f"feat_{uuid.uuid4().hex[:10]}"
    c.features.create(id=feature, name="GPT", per=1000, prices={"input_tokens": "2.5", "output_tokens": "10"})
    return feature


def test_units_of_a_priced_feature_through_check_usage_and_holds(app: App, customer_id: str) -> None:
    with app.client() as c:
        feature = _priced_feature(c)
        c.customers.create(customer_id)
        check = c.check(customer=customer_id, feature=feature, units={"input_tokens": 1200})
        assert (check.allowed, check.amount) == (True, Decimal(3)), "1200 x 2.5 / 1000"
        short = c.check(customer=customer_id, feature=feature, units={"output_tokens": 600})
        assert (short.allowed, short.reason, short.amount) == (False, "insufficient_credits", Decimal(6))
        used = c.usage.record(customer=customer_id, feature=feature, units={"input_tokens": 400, "output_tokens": 100})
        assert (used.amount, used.balance) == (Decimal(2), Decimal(3))
        assert used.priced is not None and used.priced.units == {"input_tokens": 400, "output_tokens": 100}
        hold = c.holds.create(customer=customer_id, feature=feature, units={"output_tokens": 200})
        assert (hold.amount, hold.available) == (Decimal(2), Decimal(1))
        captured = c.holds.capture(hold.id, units={"output_tokens": 150})
        assert (captured.status, captured.captured, captured.balance) == ("captured", Decimal("1.5"), Decimal("1.5"))
        with pytest.raises(TypeError):
            c.usage.record(customer=customer_id, feature=feature, units={"input_tokens": 1.5})  # type: ignore[dict-item]
        budget = c.budgets.create(customer_id, id="key_b", limit="1", period="day")
        over = c.check(customer=customer_id, amount="1.25", budget=budget.id)
        assert (over.allowed, over.reason) == (False, "budget_exceeded")
        with pytest.raises(CreditdError) as refused:
            c.usage.record(customer=customer_id, feature="chat", amount="1.25", budget=budget.id)
        assert (refused.value.status, refused.value.code) == (402, "budget_exceeded")
        record = {"customer": customer_id, "feature": feature, "units": {"input_tokens": 200}}
        (batched,) = c.usage.record_batch([record])
        assert batched.usage is not None
        assert (batched.usage.amount, batched.usage.balance) == (Decimal("0.5"), Decimal(1))


def test_outbound_events_list_pages_and_redeliver(app: App, customer_id: str) -> None:
    with app.client() as c:
        endpoint = c.webhook_endpoints.create(url="http://127.0.0.1:9/outbound", events=["customer.created"])
        c.customers.create(customer_id)
        c.grants.create(customer_id, amount="3", reason="welcome")
        pager = c.outbound_events.list(customer=customer_id, limit=1)
        first, has_more = pager.first_page()
        assert (len(first), has_more) == (1, True), "one a page, more to come"
        events = list(pager)
        assert len(events) >= 2 and all(e.customer == customer_id and e.id.startswith("msg_") for e in events)
        assert events[-1].type == "customer.created", "newest first: the creation is last"
        again = c.outbound_events.redeliver(events[-1].id)
        assert again.id == events[-1].id and again.queued >= 1
        with pytest.raises(CreditdError) as missing:
            c.outbound_events.redeliver("msg_nothing")
        assert (missing.value.status, missing.value.code) == (404, "event_not_found")
        c.webhook_endpoints.delete(endpoint.id)


def _stripe(app: App, path: str, form: dict[str, str]) -> dict[str, Any]:
    """A form POST to the sandbox's Stripe API, as Stripe's dashboard would make it."""
    reply = httpx.post(
        f"{app.sandbox_url}{path}", data=form, headers={"Authorization": "Bearer sk_test_creditd_sandbox"}
    )
    reply.raise_for_status()
    body: dict[str, Any] = reply.json()
    return body


def test_packages_sync_imports_and_archives_stripe_prices(app: App) -> None:
    product = _stripe(app, "/v1/products", {"name": "Imported", "metadata[credits_amount]": "250"})
    price = _stripe(app, "/v1/prices", {"product": product["id"], "unit_amount": "900", "currency": "usd"})
    with app.client() as c:
        report = c.packages.sync()
        (imported,) = [p for p in report.created if p.stripe_price == price["id"]]
        assert (imported.credits, imported.price, imported.currency) == (Decimal(250), 900, "usd")
        assert imported.id in [p.id for p in c.packages.list()]
        assert imported.id in c.packages.sync().unchanged
        _stripe(app, f"/v1/prices/{price['id']}", {"active": "false"})
        assert imported.id in c.packages.sync().archived


def test_plans_create_with_features_and_update(app: App) -> None:
    feature = f"feat_{uuid.uuid4().hex[:10]}"
    with app.client() as c:
        c.features.create(id=feature, name="Images")
        plan = c.plans.create(name="Team", credits="100", price=1500, currency="usd", features={feature: True})
        assert plan.features == {feature: True}
        limited = c.plans.update(plan.id, features={feature: {"limit": 3, "period": "day"}})
        assert limited.features == {feature: {"limit": 3, "period": "day"}}
        with pytest.raises(CreditdError) as unknown:
            c.plans.update(plan.id, features={"nothing_here": True})
        assert (unknown.value.status, unknown.value.code) == (404, "feature_not_found")


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_new_resources_async(app: App, customer_id: str, anyio_backend: str) -> None:
    async with app.async_client() as c:
        feature = f"feat_{uuid.uuid4().hex[:10]}"
        await c.features.create(id=feature, name="GPT", per=1000, prices={"input_tokens": "2.5"})
        await c.customers.create(customer_id)
        assert (await c.auto_topup.retrieve(customer_id)).package is None
        check = await c.check(customer=customer_id, feature=feature, units={"input_tokens": 1200})
        assert check.amount == Decimal(3)
        used = await c.usage.record(customer=customer_id, feature=feature, units={"input_tokens": 400})
        assert used.balance == Decimal(4)
        hold = await c.holds.create(customer=customer_id, feature=feature, units={"input_tokens": 800})
        captured = await c.holds.capture(hold.id, units={"input_tokens": 400})
        assert (captured.captured, captured.balance) == (Decimal(1), Decimal(3))
        events = [e async for e in c.outbound_events.list(customer=customer_id, limit=1)]
        assert events and events[-1].type == "customer.created"
        with pytest.raises(CreditdError) as missing:
            await c.outbound_events.redeliver("msg_nothing")
        assert missing.value.status == 404
        report = await c.packages.sync()
        assert app.package not in report.archived, "a package made in creditd is not Stripe's to archive"
        plan = await c.plans.create(name="Solo", credits="10", price=500, currency="usd")
        updated = await c.plans.update(plan.id, features={feature: True})
        assert updated.features == {feature: True}
