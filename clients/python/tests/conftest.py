"""Starts the built creditd (target/debug, Stripe sandbox included) on free ports for the suite."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from creditd import AsyncCreditd, Creditd

REPO = Path(__file__).resolve().parents[3]


def creditd_binary() -> Path:
    candidates = [os.environ.get("CREDITD_BIN")]
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(str(REPO / os.environ["CARGO_TARGET_DIR"] / "debug" / "creditd"))
    candidates.append(str(REPO / "target" / "debug" / "creditd"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise RuntimeError("no creditd binary: run `cargo build -p creditd` first")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class App:
    url: str
    sandbox_url: str
    key: str
    jwt_secret: str
    package: str

    def client(self, **options: object) -> Creditd:
        return Creditd(api_key=self.key, base_url=self.url, **options)  # type: ignore[arg-type]

    def async_client(self, **options: object) -> AsyncCreditd:
        return AsyncCreditd(api_key=self.key, base_url=self.url, **options)  # type: ignore[arg-type]

    def token(self, customer: str, seconds: int = 3600) -> str:
        """An HS256 customer token, as the app's backend signs one for its logged-in user."""
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = _b64(json.dumps({"sub": customer, "exp": int(time.time()) + seconds}).encode())
        unsigned = f"{header}.{claims}"
        signature = hmac.new(self.jwt_secret.encode(), unsigned.encode(), hashlib.sha256).digest()
        return f"{unsigned}.{_b64(signature)}"


@pytest.fixture(scope="session")
def app() -> Iterator[App]:
    binary = creditd_binary()
    with tempfile.TemporaryDirectory(prefix="creditd-python-") as tmp:
        jwt_secret = secrets.token_hex(32)
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite://{tmp}/creditd.db",
            "CREDITD_JWT_HS256_SECRET": jwt_secret,
            "CREDITD_SANDBOX_STATE": f"{tmp}/sandbox.json",
            "CREDITD_LOG": os.environ.get("CREDITD_LOG", "warn"),
        }
        env.pop("CREDITD_CONFIG", None)

        def cli(*args: str) -> str:
            return subprocess.run([str(binary), *args], env=env, check=True, capture_output=True, text=True).stdout

        key = cli("keys", "create", "--name", "python-tests").strip().splitlines()[-1].strip()
        cli("packages", "create", "--name", "Starter", "--credits", "100", "--price", "500", "--currency", "usd")
        package = cli("packages", "list").splitlines()[0].split("\t")[0]
        port, sandbox_port = free_port(), free_port()
        server = subprocess.Popen(
            [str(binary), "serve", "--listen", f"127.0.0.1:{port}", "--sandbox-listen", f"127.0.0.1:{sandbox_port}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                if server.poll() is not None:
                    raise RuntimeError(f"creditd serve exited: {server.stderr.read() if server.stderr else ''!r}")
                try:
                    if httpx.get(f"{url}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            else:
                raise RuntimeError("creditd did not become ready in 30 s")
            yield App(url, f"http://127.0.0.1:{sandbox_port}", key, jwt_secret, package)
        finally:
            server.terminate()
            server.wait(timeout=10)


@pytest.fixture
def customer_id() -> str:
    """A customer id no other test uses."""
    return f"py_{uuid.uuid4().hex[:12]}"
