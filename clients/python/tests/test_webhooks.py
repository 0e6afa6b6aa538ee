"""webhooks.verify on real deliveries from the creditd under test, and what it refuses."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from creditd import WebhookVerificationError, webhooks
from tests.conftest import App

Delivery = tuple[str, dict[str, str], bytes]


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[str, list[Delivery]]]:
    received: list[Delivery] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append((self.path, dict(self.headers.items()), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()


def _delivery(received: list[Delivery], path: str, customer: str) -> tuple[dict[str, str], bytes]:
    for _ in range(150):
        for got_path, headers, body in list(received):
            event = json.loads(body)
            if got_path == path and event["type"] == "customer.created" and event["data"]["id"] == customer:
                return headers, body
        time.sleep(0.1)
    raise AssertionError(f"no customer.created delivery for {customer} at {path}")


def _code(code: str, body: bytes | str, headers: dict[str, str], secret: str, **kw: Any) -> None:
    with pytest.raises(WebhookVerificationError) as refused:
        webhooks.verify(body, headers, secret, **kw)
    assert refused.value.code == code


def test_a_real_delivery_verifies_and_a_tampered_one_does_not(
    app: App, receiver: tuple[str, list[Delivery]], customer_id: str
) -> None:
    url, received = receiver
    with app.client() as c:
        endpoint = c.webhook_endpoints.create(url=f"{url}/hooks", events=["customer.created"])
        assert endpoint.secret is not None
        c.customers.create(customer_id)
        headers, body = _delivery(received, "/hooks", customer_id)
        event = webhooks.verify(body, headers, endpoint.secret)
        assert (event["type"], event["data"]["id"], event["data"]["balance"]) == ("customer.created", customer_id, "5")
        lower = {k.lower(): v for k, v in headers.items()}
        assert webhooks.verify(body.decode(), lower, endpoint.secret)["data"]["id"] == customer_id
        _code("bad_signature", body.replace(customer_id.encode(), b"py_tampered"), headers, endpoint.secret)
        _code("bad_signature", body, {**lower, "webhook-id": "msg_other"}, endpoint.secret)
        other = c.webhook_endpoints.create(url="http://127.0.0.1:9/x")
        assert other.secret is not None
        _code("bad_signature", body, headers, other.secret)
        late = int(lower["webhook-timestamp"]) + 301
        _code("timestamp_out_of_range", body, headers, endpoint.secret, now=late)
        assert webhooks.verify(body, headers, endpoint.secret, now=late - 2)["type"] == "customer.created"
        _code("missing_header", body, {k: v for k, v in lower.items() if k != "webhook-signature"}, endpoint.secret)
        _code("bad_secret", body, headers, "not-a-secret")


def test_after_a_rotation_both_secrets_verify(app: App, receiver: tuple[str, list[Delivery]]) -> None:
    url, received = receiver
    customer = f"py_{uuid.uuid4().hex[:12]}"
    with app.client() as c:
        endpoint = c.webhook_endpoints.create(url=f"{url}/rotated", events=["customer.created"])
        rotated = c.webhook_endpoints.rotate_secret(endpoint.id)
        assert endpoint.secret is not None and rotated.secret is not None
        c.customers.create(customer)
        headers, body = _delivery(received, "/rotated", customer)
        signature = {k.lower(): v for k, v in headers.items()}["webhook-signature"]
        assert len(signature.split(" ")) == 2
        assert webhooks.verify(body, headers, rotated.secret)["data"]["id"] == customer
        assert webhooks.verify(body, headers, endpoint.secret)["data"]["id"] == customer
