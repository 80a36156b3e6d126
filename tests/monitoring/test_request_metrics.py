"""Request metrics: counted per route template and status, timed, and in progress.

Each scenario runs twice (the ``counting`` fixture): through aiohttp's private hooks, fenced in
``_aiohttp_hooks``, and through the public middleware that serves an aiohttp they are not
tested with; both must count the same requests under the same labels.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import REGISTRY, Counter

from _aiohttp_booster.version import release
from aiohttp_prometheus_monitoring import _aiohttp_hooks
from tests.conftest import promtool_check_metrics
from tests.monitoring.conftest import Served, ServeFactory, poll, samples

Labels = tuple[tuple[str, str], ...]
ITEMS = "/items/{id}"


async def item(request: web.Request) -> web.Response:
    """200 for most ids; 404 and 418 as answers, a raise for 'boom'."""
    item_id = request.match_info["id"]
    if item_id == "missing":
        raise web.HTTPNotFound(text="no such item")
    if item_id == "teapot":
        return web.Response(status=418, text="short and stout")
    if item_id == "boom":
        raise ValueError("a bug in the handler")
    return web.json_response({"id": item_id})


def items_app() -> web.Application:
    app = web.Application()
    app.router.add_get(ITEMS, item)
    return app


def labels(**values: str) -> Labels:
    return tuple(sorted(values.items()))


async def get(served: Served, path: str) -> int:
    async with served.session.get(served.url(path)) as response:
        await response.read()
        return response.status


@pytest.fixture(params=["hooks", "middleware"])
def counting(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """How requests are counted: aiohttp's hooks, or the public middleware (forced here by
    making the fence say its hooks are not available, as it does for an untested aiohttp)."""
    if request.param == "middleware":
        monkeypatch.setattr(_aiohttp_hooks, "hooks_available", lambda: False)
    elif not _aiohttp_hooks.version_tested(aiohttp.__version__):
        pytest.skip(f"aiohttp {aiohttp.__version__} is outside the hooks' tested range")
    else:
        assert _aiohttp_hooks.hooks_available(), "the hooks must work on a tested aiohttp"
    return str(request.param)


@pytest.fixture
def fresh_decision() -> Iterator[None]:
    """hooks_available() decides once per process: forget the decision before and after."""
    _aiohttp_hooks.hooks_available.cache_clear()
    yield
    _aiohttp_hooks.hooks_available.cache_clear()


def assert_counted_by(app: web.Application, counting: str) -> None:
    """The app counts the way ``counting`` says, and only that way."""
    resolve_replaced = "resolve" in vars(app.router)  # the hooks replace it on the instance
    if counting == "hooks":
        assert not app.middlewares  # nothing runs for every request but the wrapped handler
        assert resolve_replaced
    else:
        assert len(app.middlewares) == 1
        assert not resolve_replaced


async def test_a_burst_is_counted_under_the_route_template(
    serve: ServeFactory, counting: str
) -> None:
    """Dashboards group by route: raw paths would explode cardinality, and every status,
    including 404s, 500s from a raising handler, must be counted where it belongs."""
    served = await serve({"request_metrics": True}, items_app())
    paths = [f"/items/{n}" for n in range(60)] + ["/items/missing"] * 5 + ["/items/boom"] * 4
    paths += ["/items/teapot"] * 3 + ["/nowhere", "/also/nowhere"]
    statuses = await asyncio.gather(*(get(served, path) for path in paths))
    assert statuses.count(500) == 4
    assert_counted_by(served.app, counting)
    values = samples(await served.metrics())
    total = "http_requests_total"
    assert values[(total, labels(method="GET", handler=ITEMS, status="200"))] == 60
    assert values[(total, labels(method="GET", handler=ITEMS, status="404"))] == 5
    assert values[(total, labels(method="GET", handler=ITEMS, status="500"))] == 4
    assert values[(total, labels(method="GET", handler=ITEMS, status="418"))] == 3
    assert values[(total, labels(method="GET", handler="unmatched", status="404"))] == 2
    handlers = {dict(key[1]).get("handler") for key in values if key[0].startswith("http_")}
    assert handlers == {ITEMS, "unmatched"}  # no raw path, and /metrics is not counted
    count = ("http_request_duration_seconds_count", labels(method="GET", handler=ITEMS))
    assert values[count] == 72
    inf = ("http_request_duration_seconds_bucket", labels(method="GET", handler=ITEMS, le="+Inf"))
    assert values[inf] == 72
    assert values[("http_requests_in_progress", labels(method="GET", handler=ITEMS))] == 0


async def test_in_progress_counts_requests_being_answered(
    serve: ServeFactory, counting: str
) -> None:
    """A stuck handler shows up as requests in progress, and the gauge returns to 0 after."""
    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        entered.set()
        await release.wait()
        return web.Response(text="done")

    app = web.Application()
    app.router.add_post("/slow", slow)
    served = await serve({"request_metrics": True}, app)
    key = ("http_requests_in_progress", labels(method="POST", handler="/slow"))
    pending = asyncio.ensure_future(served.session.post(served.url("/slow")))
    try:
        async with asyncio.timeout(10):
            await entered.wait()
        assert samples(await served.metrics())[key] == 1
    finally:
        release.set()
        async with await pending as response:
            assert response.status == 200
    assert samples(await served.metrics())[key] == 0
    counted = ("http_requests_total", labels(method="POST", handler="/slow", status="200"))
    assert samples(await served.metrics())[counted] == 1


async def test_buckets_and_monitoring_routes_are_configurable(
    serve: ServeFactory, counting: str
) -> None:
    """Latency targets differ per service; some teams also want their scrapes counted."""
    config: dict[str, Any] = {
        "request_metrics": True,
        "request_metrics_buckets": [0.1, 1],
        "request_metrics_monitoring_routes": True,
    }
    served = await serve(config, items_app())
    assert await get(served, "/items/1") == 200
    await served.metrics()

    async def counted() -> dict[Any, float] | None:
        values = samples(await served.metrics())
        key = ("http_requests_total", labels(method="GET", handler="/metrics", status="200"))
        return values if values.get(key) else None

    values = await poll(counted)
    buckets = {dict(k[1])["le"] for k in values if k[0] == "http_request_duration_seconds_bucket"}
    assert buckets == {"0.1", "1.0", "+Inf"}


async def test_request_metrics_are_off_by_default(serve: ServeFactory, counting: str) -> None:
    """Opt-in: apps that export their own http_requests_total must not get a clash."""
    served = await serve({}, items_app())
    assert await get(served, "/items/1") == 200
    assert "http_requests_total" not in await served.metrics()
    assert not served.app.middlewares  # off means nothing installed, either way
    assert "resolve" not in vars(served.app.router)


async def test_odd_methods_share_one_label(serve: ServeFactory, counting: str) -> None:
    """aiohttp accepts WebDAV and other methods: they must not mint new label values."""
    served = await serve({"request_metrics": True}, items_app())
    for method in ("PROPFIND", "MKCOL"):
        async with served.session.request(method, served.url("/items/1")) as response:
            assert response.status == 405
    values = samples(await served.metrics())
    methods = {dict(k[1])["method"] for k in values if k[0] == "http_requests_total"}
    assert methods == {"other"}
    # no route takes those methods: aiohttp's own 405, counted with the other unmatched
    unmatched = labels(method="other", handler="unmatched", status="405")
    assert values[("http_requests_total", unmatched)] == 2


async def test_sub_app_routes_are_labelled_with_their_prefix(
    serve: ServeFactory, counting: str
) -> None:
    """Sub-apps reuse templates: '/api/items/{id}' and '/items/{id}' must stay apart."""
    app = items_app()
    app.add_subapp("/api", items_app())
    served = await serve({"request_metrics": True}, app)
    assert await get(served, "/api/items/7") == 200
    assert await get(served, "/items/7") == 200
    values = samples(await served.metrics())
    for handler in ("/api/items/{id}", ITEMS):
        key = ("http_requests_total", labels(method="GET", handler=handler, status="200"))
        assert values[key] == 1


async def test_apps_own_default_registry_family_survives_when_off(
    serve: ServeFactory, counting: str
) -> None:
    """Apps that count requests themselves in the default registry keep their series
    unless they switch ours on, and then never get duplicates (Prometheus would reject)."""
    theirs = Counter("http_requests", "The app's own count.", ["path"])  # default registry
    try:
        theirs.labels("/x").inc()
        text = await (await serve({}, items_app())).metrics()
        assert 'http_requests_total{path="/x"} 1.0' in text
        served = await serve({"request_metrics": True}, items_app())
        assert await get(served, "/items/1") == 200
        text = await served.metrics()
        assert 'path="/x"' not in text
        assert text.count("# TYPE http_requests_total counter") == 1
    finally:
        REGISTRY.unregister(theirs)


async def test_promtool_accepts_the_request_families(serve: ServeFactory, counting: str) -> None:
    """The families are rendered by us at scrape time: Prometheus' linter must agree."""
    served = await serve({"request_metrics": True, "include_default_registry": False}, items_app())
    for path in ("/items/1", "/items/boom", "/nowhere"):
        await get(served, path)
    text = await served.metrics()
    assert "http_request_duration_seconds_sum" in text
    await promtool_check_metrics(text)


class ItemView(web.View):
    """A class-based view: GET answers, DELETE raises, other methods are 405."""

    async def get(self) -> web.Response:
        return web.Response(text=self.request.match_info["id"])

    async def delete(self) -> web.Response:
        raise RuntimeError("a bug in the view")


async def test_class_based_views_and_sub_apps_are_counted_by_template(
    serve: ServeFactory, counting: str
) -> None:
    """Handlers are wrapped when the app starts (or, without the hooks, counted by one
    middleware): views, sub-app routes and the sub-app's unmatched paths must all be counted
    as before."""
    api = web.Application()
    api.router.add_view("/things/{id}", ItemView)
    app = items_app()
    app.add_subapp("/api", api)
    served = await serve({"request_metrics": True}, app)
    assert_counted_by(app, counting)
    calls = [("GET", "/api/things/1"), ("GET", "/api/things/2"), ("DELETE", "/api/things/1"),
             ("PUT", "/api/things/1"), ("GET", "/api/nowhere"), ("GET", "/items/boom")]  # fmt: skip
    for method, path in calls:
        async with served.session.request(method, served.url(path)) as response:
            await response.read()
    values = samples(await served.metrics())
    view = "/api/things/{id}"
    expected = {
        labels(method="GET", handler=view, status="200"): 2,
        labels(method="DELETE", handler=view, status="500"): 1,
        labels(method="PUT", handler=view, status="405"): 1,  # the view's own 405
        labels(method="GET", handler="unmatched", status="404"): 1,
        labels(method="GET", handler=ITEMS, status="500"): 1,
    }
    counted = {key[1]: value for key, value in values.items() if key[0] == "http_requests_total"}
    assert counted == expected


async def test_a_client_gone_before_the_answer_is_counted_as_499(
    serve: ServeFactory, counting: str
) -> None:
    """A handler cancelled because its client hung up (the test server cancels handlers then)
    is counted once, as 499, and no longer in progress: not as a 500, not lost."""
    entered = asyncio.Event()
    cancelled = asyncio.Event()

    async def stuck(request: web.Request) -> web.Response:
        entered.set()
        try:
            await asyncio.Event().wait()  # never set: only the client's going cancels it
        finally:
            cancelled.set()
        raise AssertionError("unreachable")

    app = web.Application()
    app.router.add_get("/stuck", stuck)
    served = await serve({"request_metrics": True}, app)
    url = served.server.make_url("/stuck")
    _, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(f"GET /stuck HTTP/1.1\r\nHost: {url.host}\r\n\r\n".encode())
    async with asyncio.timeout(10):
        await entered.wait()
        writer.close()  # the client goes away before the answer
        await writer.wait_closed()
        await cancelled.wait()  # the counting wrapper unwinds in the same step as the handler
    values = samples(await served.metrics())
    stuck_labels = labels(method="GET", handler="/stuck")
    gone = labels(method="GET", handler="/stuck", status="499")
    assert values[("http_requests_total", gone)] == 1
    assert values[("http_requests_in_progress", stuck_labels)] == 0
    assert values[("http_request_duration_seconds_count", stuck_labels)] == 1
    assert_counted_by(app, counting)


@pytest.mark.parametrize(
    ("version", "tested"),
    [
        ("3.10.7", True),  # the oldest we allow
        ("3.10.11", True),  # as strings, "3.10.11" < "3.9": the comparison must be numeric
        ("3.14.5", True),
        ("3.14.5.post1", True),
        ("3.14.5+local.1", True),
        ("3.10.6", False),  # older than the floor
        ("3.9.5", False),
        ("3.15.0", False),  # newer than anything tested
        ("3.15", False),
        ("4.0.0", False),
        ("3.100.0", False),
        ("3.14.0rc1", False),  # pre-releases and dev versions: no test has seen them
        ("3.15.0a0", False),
        ("3.14.0.dev0", False),
        ("not-a-version", False),
    ],
)
def test_the_hooks_are_used_only_with_the_aiohttp_versions_they_are_tested_with(
    version: str, tested: bool
) -> None:
    """An aiohttp release outside the tested range, or a pre-release, gets the middleware."""
    assert _aiohttp_hooks.version_tested(version) is tested


def test_versions_are_read_as_numbers() -> None:
    """3.10 is newer than 3.9, which a string comparison gets wrong."""
    assert release("3.10.2") == (3, 10, 2)
    assert release(" 3.9 ") == (3, 9)
    assert release("3.10.0b1") is None


@pytest.mark.usefixtures("fresh_decision")
async def test_an_untested_aiohttp_gets_the_middleware_and_is_counted_the_same(
    serve: ServeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decision itself, not a forced flag: with an aiohttp version outside the range the
    fence refuses its hooks, and set-up puts the middleware in instead, which counts."""
    monkeypatch.setattr(aiohttp, "__version__", "3.15.0")
    assert not _aiohttp_hooks.hooks_available()
    served = await serve({"request_metrics": True}, items_app())
    assert_counted_by(served.app, "middleware")
    statuses = [await get(served, path) for path in ("/items/1", "/items/boom", "/no")]
    assert statuses == [200, 500, 404]
    values = samples(await served.metrics())
    counted = {key[1]: value for key, value in values.items() if key[0] == "http_requests_total"}
    assert counted == {
        labels(method="GET", handler=ITEMS, status="200"): 1,
        labels(method="GET", handler=ITEMS, status="500"): 1,
        labels(method="GET", handler="unmatched", status="404"): 1,
    }


@pytest.mark.usefixtures("fresh_decision")
def test_the_hooks_are_refused_when_a_route_no_longer_works_as_they_expect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Feature detection on a real route: if the handler the app calls were no longer the
    route's ``_handler``, wrapping it would count nothing; the fence must say no."""
    assert _aiohttp_hooks.hooks_present()  # the installed aiohttp, as it is
    monkeypatch.setattr(web.AbstractRoute, "handler", property(lambda route: None))
    assert not _aiohttp_hooks.hooks_present()
    assert not _aiohttp_hooks.hooks_available()


def test_the_hooks_refuse_to_run_when_not_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_aiohttp_hooks, "hooks_available", lambda: False)
    app = items_app()
    with pytest.raises(RuntimeError, match="not usable"):
        _aiohttp_hooks.wrap_route_handlers(app, lambda handler, label: handler)
    with pytest.raises(RuntimeError, match="not usable"):
        _aiohttp_hooks.count_unmatched(app, lambda handler, label: handler, "unmatched")
    assert "resolve" not in vars(app.router)
