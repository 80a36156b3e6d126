"""Request metrics: counted per route template and status, timed, and in progress."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from prometheus_client import REGISTRY, Counter

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


async def test_a_burst_is_counted_under_the_route_template(serve: ServeFactory) -> None:
    """Dashboards group by route: raw paths would explode cardinality, and every status,
    including 404s, 500s from a raising handler, must be counted where it belongs."""
    served = await serve({"request_metrics": True}, items_app())
    paths = [f"/items/{n}" for n in range(60)] + ["/items/missing"] * 5 + ["/items/boom"] * 4
    paths += ["/items/teapot"] * 3 + ["/nowhere", "/also/nowhere"]
    statuses = await asyncio.gather(*(get(served, path) for path in paths))
    assert statuses.count(500) == 4
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


async def test_in_progress_counts_requests_being_answered(serve: ServeFactory) -> None:
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


async def test_buckets_and_monitoring_routes_are_configurable(serve: ServeFactory) -> None:
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


async def test_request_metrics_are_off_by_default(serve: ServeFactory) -> None:
    """Opt-in: apps that export their own http_requests_total must not get a clash."""
    served = await serve({}, items_app())
    assert await get(served, "/items/1") == 200
    assert "http_requests_total" not in await served.metrics()


async def test_odd_methods_share_one_label(serve: ServeFactory) -> None:
    """aiohttp accepts WebDAV and other methods: they must not mint new label values."""
    served = await serve({"request_metrics": True}, items_app())
    for method in ("PROPFIND", "MKCOL"):
        async with served.session.request(method, served.url("/items/1")) as response:
            assert response.status == 405
    values = samples(await served.metrics())
    methods = {dict(k[1])["method"] for k in values if k[0] == "http_requests_total"}
    assert methods == {"other"}


async def test_sub_app_routes_are_labelled_with_their_prefix(serve: ServeFactory) -> None:
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


async def test_apps_own_default_registry_family_survives_when_off(serve: ServeFactory) -> None:
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


async def test_promtool_accepts_the_request_families(serve: ServeFactory) -> None:
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
    serve: ServeFactory,
) -> None:
    """Handlers are wrapped when the app starts, not run through a middleware: views, sub-app
    routes and the sub-app's unmatched paths must all be counted as before."""
    api = web.Application()
    api.router.add_view("/things/{id}", ItemView)
    app = items_app()
    app.add_subapp("/api", api)
    served = await serve({"request_metrics": True}, app)
    assert not app.middlewares  # nothing runs for every request but the wrapped handler
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
