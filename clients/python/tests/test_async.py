"""The asyncio client against a real creditd: the same resources, awaited."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from creditd import AsyncCreditd, CreditdError
from tests.conftest import App

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_customers_usage_and_auto_paging(app: App, customer_id: str) -> None:
    async with app.async_client() as c:
        assert (await c.customers.create(customer_id)).balance == Decimal("5")
        await c.grants.create(customer_id, amount="1", reason="welcome")
        await c.usage.record(customer=customer_id, amount="0.25", feature="chat", metadata={"tokens": 250})
        entries = [e async for e in c.ledger.list(customer_id, limit=1)]
        assert [e.kind for e in entries] == ["usage", "grant", "grant"]
        assert entries[0].metadata == {"tokens": 250}
        assert (await c.customers.retrieve(customer_id)).balance == Decimal("5.75")
        with pytest.raises(CreditdError) as refused:
            await c.usage.record(customer=customer_id, amount="6", feature="chat")
        assert refused.value.code == "insufficient_credits"


async def test_async_meter_captures_or_releases(app: App, customer_id: str) -> None:
    async with app.async_client() as c:
        await c.customers.create(customer_id)
        async with c.meter(customer=customer_id, feature="chat", estimate="2") as m:
            assert (await c.customers.retrieve(customer_id)).available == Decimal("3")
            m.actual = Decimal("0.75")
        assert m.hold is not None and m.hold.captured == Decimal("0.75")
        with pytest.raises(ValueError, match="stream broke"):
            async with c.meter(customer=customer_id, feature="chat", estimate="2") as failed:
                raise ValueError("stream broke")
        assert failed.hold is not None and failed.hold.status == "released"
        assert (await c.customers.retrieve(customer_id)).balance == Decimal("4.25")


async def test_async_retries_keep_the_key(app: App, customer_id: str) -> None:
    keys: list[str] = []
    real = httpx.AsyncHTTPTransport()

    class LosesFirstAnswer(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            keys.append(request.headers["idempotency-key"])
            response = await real.handle_async_request(request)
            await response.aread()
            if len(keys) == 1:
                raise httpx.ReadError("connection reset", request=request)
            return response

    async with AsyncCreditd(
        api_key=app.key, base_url=app.url, http_client=httpx.AsyncClient(transport=LosesFirstAnswer())
    ) as c:
        created = await c.customers.create(customer_id)
    assert created.id == customer_id and len(keys) == 2 and keys[0] == keys[1]


async def test_async_customer_token_api(app: App, customer_id: str) -> None:
    async with app.async_client() as c:
        await c.customers.create(customer_id)
    async with AsyncCreditd(api_key=app.token(customer_id), base_url=app.url) as me:
        assert (await me.me.retrieve()).available == Decimal("5")
        assert len([p async for p in me.me.payments()]) == 0
        assert (await me.me.usage()).group_by == "day"
