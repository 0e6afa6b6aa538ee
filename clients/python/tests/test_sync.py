"""The synchronous client against a real creditd."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from creditd import CreditdError, Customer, Entry, Hold
from tests.conftest import App


def test_customers_grants_and_the_ledger_page_themselves(app: App, customer_id: str) -> None:
    c = app.client()
    created = c.customers.create(customer_id, email="ada@example.com", metadata={"plan": "pro"})
    assert isinstance(created, Customer)
    assert created.balance == Decimal("5")
    assert c.customers.create(customer_id).email == "ada@example.com"
    for amount in ("1", Decimal("2.5"), "0.000001"):
        c.grants.create(customer_id, amount=amount, reason="top-up")
    assert [g.amount for g in c.grants.list(customer_id, limit=2)] == [
        Decimal("0.000001"),
        Decimal("2.5"),
        Decimal("1"),
        Decimal("5"),
    ]
    entries = list(c.ledger.list(customer_id, limit=1))
    assert len(entries) == 4 and all(isinstance(e, Entry) for e in entries)
    assert entries[0].balance_after == Decimal("8.500001")
    items, has_more = c.ledger.list(customer_id, limit=3).first_page()
    assert (len(items), has_more) == (3, True)
    assert c.customers.retrieve(customer_id).metadata == {"plan": "pro"}


def test_usage_is_charged_once_per_key_and_refused_past_the_balance(app: App, customer_id: str) -> None:
    c = app.client()
    c.customers.create(customer_id)
    first = c.usage.record(customer=customer_id, amount="1.25", feature="chat", idempotency_key=f"{customer_id}-1")
    again = c.usage.record(customer=customer_id, amount="1.25", feature="chat", idempotency_key=f"{customer_id}-1")
    assert again.id == first.id
    assert c.customers.retrieve(customer_id).balance == Decimal("3.75")
    with pytest.raises(CreditdError) as refused:
        c.usage.record(customer=customer_id, amount="10", feature="chat")
    error = refused.value
    assert (error.status, error.code, error.balance, error.available) == (
        402,
        "insufficient_credits",
        Decimal("3.75"),
        Decimal("3.75"),
    )
    with pytest.raises(CreditdError) as bad:
        c.usage.record(customer=customer_id, amount="1.0000001", feature="chat")
    assert (bad.value.status, bad.value.param) == (400, "amount")


def test_amounts_are_never_floats(app: App) -> None:
    with pytest.raises(TypeError, match="never float"):
        app.client().usage.record(customer="x", amount=1.5, feature="chat")  # type: ignore[arg-type]


def test_holds_and_check(app: App, customer_id: str) -> None:
    c = app.client()
    c.customers.create(customer_id)
    hold = c.holds.create(customer=customer_id, amount="2", feature="chat", ttl_seconds=60)
    assert (hold.status, hold.available) == ("open", Decimal("3"))
    assert c.holds.retrieve(hold.id).id == hold.id
    captured = c.holds.capture(hold.id, amount=Decimal("1.5"))
    assert (captured.status, captured.captured, captured.balance) == ("captured", Decimal("1.5"), Decimal("3.5"))
    other = c.holds.create(customer=customer_id, amount=1)
    assert c.holds.release(other.id).status == "released"
    check = c.check(customer=customer_id, amount="3.5")
    assert (check.allowed, check.amount) == (True, Decimal("3.5"))
    assert not c.check(customer=customer_id, amount="3.6").allowed


def test_meter_captures_actual_or_releases(app: App, customer_id: str) -> None:
    c = app.client()
    c.customers.create(customer_id)
    with c.meter(customer=customer_id, feature="chat", estimate="3") as m:
        assert c.customers.retrieve(customer_id).available == Decimal("2")
        m.actual = "1.2"
    assert isinstance(m.hold, Hold)
    assert (m.hold.status, m.hold.captured, m.hold.balance) == ("captured", Decimal("1.2"), Decimal("3.8"))

    with (
        pytest.raises(RuntimeError, match="model overloaded"),
        c.meter(customer=customer_id, feature="chat", estimate="3") as failed,
    ):
        raise RuntimeError("model overloaded")
    assert failed.hold is not None and failed.hold.status == "released"

    with c.meter(customer=customer_id, feature="chat", estimate="1") as unset:
        pass
    assert unset.hold is not None and unset.hold.status == "released"
    assert c.customers.retrieve(customer_id).available == Decimal("3.8")


def test_a_retried_meter_with_the_same_request_id_charges_once(app: App, customer_id: str) -> None:
    c = app.client()
    c.customers.create(customer_id)
    runs = []
    for _ in range(2):
        with c.meter(customer=customer_id, feature="chat", estimate="2", request_id=f"{customer_id}-call") as m:
            runs.append(m.replayed)
            m.actual = "1.5"
    assert runs == [False, True]
    assert m.hold is not None and m.hold.captured == Decimal("1.5")
    assert c.customers.retrieve(customer_id).balance == Decimal("3.5")


def test_a_lost_answer_is_retried_with_the_same_key_and_charged_once(app: App, customer_id: str) -> None:
    app.client().customers.create(customer_id)
    keys: list[str] = []
    real = httpx.HTTPTransport()

    class LosesFirstAnswer(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            keys.append(request.headers["idempotency-key"])
            response = real.handle_request(request)
            response.read()
            if len(keys) == 1:
                raise httpx.ReadError("connection reset", request=request)
            return response

    c = app.client(http_client=httpx.Client(transport=LosesFirstAnswer()))
    usage = c.usage.record(customer=customer_id, amount="2", feature="chat")
    assert len(keys) == 2 and keys[0] == keys[1]
    assert usage.balance == Decimal("3")
    assert app.client().customers.retrieve(customer_id).balance == Decimal("3")


def test_503_and_429_are_retried_after_retry_after_and_404_is_final(app: App, customer_id: str) -> None:
    busy = [503, 429]
    seen: list[str] = []
    real = httpx.HTTPTransport()

    class Busy(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request.headers.get("idempotency-key", ""))
            if busy:
                body = {"error": {"code": "overloaded", "message": "busy"}}
                return httpx.Response(busy.pop(0), json=body, headers={"retry-after": "0"})
            return real.handle_request(request)

    c = app.client(http_client=httpx.Client(transport=Busy()))
    assert c.customers.create(customer_id).id == customer_id
    assert len(seen) == 3 and len(set(seen)) == 1
    seen.clear()
    with pytest.raises(CreditdError) as missing:
        c.customers.retrieve("nobody_here")
    assert (missing.value.status, missing.value.code, len(seen)) == (404, "customer_not_found", 1)


def test_network_failure_gives_up_after_max_retries() -> None:
    from creditd import Creditd

    c = Creditd(api_key="cd_sk_x", base_url=f"http://127.0.0.1:{_closed_port()}", max_retries=1)
    with pytest.raises(CreditdError) as down:
        c.customers.retrieve("x")
    assert (down.value.status, down.value.code) == (0, "network_error")


def _closed_port() -> int:
    from tests.conftest import free_port

    return free_port()


def test_purchases(app: App, customer_id: str) -> None:
    c = app.client()
    c.customers.create(customer_id, email="buyer@example.com")
    assert c.packages.list()[0].credits == Decimal("100")
    session = c.checkout_sessions.create(customer=customer_id, package=app.package, quantity=2)
    assert session.id.startswith("cs_") and session.url is not None and session.url.startswith(app.sandbox_url)
    assert session.payment.credits == Decimal("200")
    intent = c.payment_intents.create(customer=customer_id, package=app.package)
    assert intent.client_secret is not None
    assert len(list(c.payments.list(customer=customer_id))) == 2
    assert c.checkout_sessions.fulfill(session.id).status == "pending"
    made = c.packages.create(name="Big", credits="1000", price=4000, currency="usd")
    assert not c.packages.archive(made.id).active
    with pytest.raises(CreditdError) as archived:
        c.checkout_sessions.create(customer=customer_id, package=made.id)
    assert (archived.value.status, archived.value.code) == (409, "package_archived")
    plan = c.plans.create(name="Pro", credits="500", price=2000, currency="usd", rollover_cap="100")
    assert any(p.id == plan.id for p in c.plans.list())
    subscription = c.checkout_sessions.create_subscription(customer=customer_id, plan=plan.id)
    assert subscription.plan == plan.id
    assert c.billing_portal.create(customer=customer_id).url.startswith(app.sandbox_url)
    assert list(c.stripe_events.list(status="failed")) == []


def test_the_customer_token_api(app: App, customer_id: str) -> None:
    c = app.client()
    c.customers.create(customer_id)
    c.usage.record(customer=customer_id, amount="0.5", feature="chat")
    with app.client().__class__(api_key=app.token(customer_id), base_url=app.url) as me:
        assert me.me.retrieve().balance == Decimal("4.5")
        assert len(list(me.me.ledger())) == 2
        usage = me.me.usage(group_by="feature")
        assert [(r.feature, r.credits) for r in usage.data] == [("chat", Decimal("0.5"))]
        assert usage.total == Decimal("0.5") and usage.from_ < usage.to
        assert me.me.create_checkout_session(package=app.package).payment.customer == customer_id
        assert len(list(me.me.payments())) == 1
        with pytest.raises(CreditdError) as refused:
            me.customers.retrieve(customer_id)
        assert refused.value.status == 401
