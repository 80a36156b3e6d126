"""Optional protection of the monitoring routes: a bearer token or basic auth."""

from __future__ import annotations

import base64

import pytest

from aiohttp_prometheus_monitoring import WrongConfiguration
from aiohttp_prometheus_monitoring.config import load_config
from tests.monitoring.conftest import Served, ServeFactory

TOKEN = "tok-3x4mple-VERY-secret"


async def status(served: Served, path: str, authorization: str | None = None) -> int:
    headers = {"Authorization": authorization} if authorization is not None else {}
    async with served.session.get(served.url(path), headers=headers) as response:
        await response.read()
        return response.status


async def test_bearer_token_guards_metrics_and_ready(
    serve: ServeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Metrics reveal topology: with a token configured, only its holder may read them;
    liveness probes keep working without it."""
    monkeypatch.setenv("MONITORING_TOKEN", TOKEN)
    auth = {"bearer_token_env": "MONITORING_TOKEN"}
    served = await serve({"route_ready": "/ready", "auth": auth})
    for path in ("/metrics", "/ready"):
        assert await status(served, path) == 401
        assert await status(served, path, "Bearer wrong-token") == 401
        assert await status(served, path, f"Basic {TOKEN}") == 401
        assert await status(served, path, f"Bearer {TOKEN}x") == 401
        assert await status(served, path, f"Bearer {TOKEN}") == 200
        assert await status(served, path, f"bearer {TOKEN}") == 200  # schemes are case-blind
    assert await status(served, "/ping") == 200
    async with served.session.get(served.url("/metrics")) as response:
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="monitoring"'
        assert TOKEN not in await response.text()


async def test_basic_auth_guards_metrics(serve: ServeFactory) -> None:
    """Prometheus' basic_auth is the most common scrape protection: both parts must match."""
    served = await serve({"auth": {"username": "prom", "password": TOKEN}})

    def basic(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    assert await status(served, "/metrics") == 401
    assert await status(served, "/metrics", basic("prom", "nope")) == 401
    assert await status(served, "/metrics", basic("other", TOKEN)) == 401
    assert await status(served, "/metrics", "Basic !!not-base64!!") == 401
    assert await status(served, "/metrics", f"Bearer {TOKEN}") == 401
    assert await status(served, "/metrics", basic("prom", TOKEN)) == 200


def test_auth_config_problems_never_show_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """A misconfigured secret must be reported without printing it."""
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(WrongConfiguration) as caught:
        load_config({"auth": {"bearer_token": TOKEN, "username": "prom", "tokn": 1}})
    message = str(caught.value)
    assert "auth: unknown key 'tokn'" in message
    assert "either a bearer token or a username and password" in message
    assert TOKEN not in message
    with pytest.raises(WrongConfiguration, match="environment variable 'NOT_SET_ANYWHERE' is not"):
        load_config({"auth": {"bearer_token_env": "NOT_SET_ANYWHERE"}})
    with pytest.raises(WrongConfiguration, match=r"auth: expected 'bearer_token'"):
        load_config({"auth": {"username": "prom"}})
    config = load_config({"auth": {"bearer_token": TOKEN}})
    assert TOKEN not in repr(config)
    assert config.auth is not None
    assert TOKEN not in repr(config.auth)
