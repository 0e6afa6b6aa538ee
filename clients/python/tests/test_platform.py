"""Webhook endpoints, features, budgets, entitlements, auto top-up, customer updates and batched
usage against a real creditd, sync and async."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

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
        on = c.auto_topup.update(customer_id, enabled=True, threshold=Decimal(10), package=app.package, quantity=2)
        assert (on.enabled, on.threshold, on.package, on.quantity) == (True, Decimal(10), app.package, 2)
        assert c.auto_topup.retrieve(customer_id).threshold == Decimal(10)
        assert c.auto_topup.update(customer_id, enabled=False, threshold="10", package=app.package).enabled is False


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_webhook_endpoints_lifecycle_async(app: App, anyio_backend: str) -> None:
    async with app.async_client() as c:
        created = await c.webhook_endpoints.create(url="http://127.0.0.1:9/hooks", events=["customer.created"])
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
