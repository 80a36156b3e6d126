"""aiohttp's private names, fenced: the only module of the project that touches them.

Request metrics count a request with one wrapped call instead of a middleware: aiohttp runs a
chain of middlewares for every request, which cost a hello-world app about a fifth of its
throughput (with the hooks, an app with request metrics serves 0.96x of one without, with a
middleware 0.86x). The hooks need two private names of aiohttp:

- ``AbstractRoute._handler``: the handler a route calls. aiohttp offers it read-only
  (``route.handler``, which returns it), and the app reads it through that property for every
  request, so wrapping it once the router is frozen wraps every call of the route.
- ``UrlDispatcher.resolve`` replaced on the router instance: a request no route takes gets a
  fresh ``SystemRoute`` of aiohttp's (404 or 405) from each resolution, and resolution is the
  only place to wrap its ``_handler`` before the app calls it. The app looks the method up on
  its router (``self._router.resolve(request)``) for every request.

They are used only when the installed aiohttp is a version they are tested with
(``TESTED_FROM`` <= version < ``TESTED_BELOW``, compared as numbers, releases only) and a real
route and router of it have them; otherwise ``hooks_available()`` is False and request metrics
use a public ``@web.middleware`` instead. ``tox -e deps-oldest,deps-newest`` runs the tests
against the oldest and the newest aiohttp of that range.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractView

from _aiohttp_booster.version import within

# The versions the hooks are tested with: >= TESTED_FROM and < TESTED_BELOW.
TESTED_FROM = (3, 10, 7)
TESTED_BELOW = (3, 15)

# What a route calls (``route._handler`` as aiohttp's annotations have it): a coroutine
# function, or a class-based view (awaitable once built).
Target = Callable[[web.Request], Coroutine[Any, Any, web.StreamResponse]] | type[AbstractView]
# ``wrap(handler, label)``: the handler to call instead of ``handler``, counted under ``label``.
Wrap = Callable[[Target, str], Target]


def version_tested(version: str) -> bool:
    """Whether the hooks are tested with aiohttp ``version`` (a final release in the range)."""
    return within(version, TESTED_FROM, TESTED_BELOW)


def hooks_present() -> bool:
    """Whether a real route and router of the installed aiohttp have what the hooks use: a
    route keeps its handler in ``_handler`` and hands that out as ``route.handler`` (what the
    app calls), and the router's ``resolve`` is a coroutine method that can be replaced on the
    instance."""

    async def handler(request: web.Request) -> web.StreamResponse:  # never called
        raise NotImplementedError

    async def wrapped(request: web.Request) -> web.StreamResponse:  # never called
        raise NotImplementedError

    router = web.Application().router
    try:
        route = router.add_get("/", handler)
        if getattr(route, "_handler", None) is not handler:
            return False
        route._handler = wrapped
        if route.handler is not wrapped:
            return False
        resolve = router.resolve
        if not inspect.iscoroutinefunction(resolve):
            return False
        router.resolve = resolve  # type: ignore[method-assign]
        return router.resolve is resolve
    except (AttributeError, TypeError):  # slots, read-only properties: not usable
        return False


@functools.cache
def hooks_available() -> bool:
    """Whether request metrics may use the hooks with the installed aiohttp; decided once."""
    return version_tested(aiohttp.__version__) and hooks_present()


def _check() -> None:
    if not hooks_available():
        raise RuntimeError(f"aiohttp {aiohttp.__version__}: its private hooks are not usable")


def wrap_route_handlers(app: web.Application, wrap: Wrap) -> None:
    """Replace the handler of each route of ``app`` (its sub-apps' included) by
    ``wrap(handler, template)``, ``template`` being the route's ``resource.canonical``; call it
    once the router is frozen (``on_startup``), when no route can be added any more.

    Private: ``route._handler``, which ``route.handler`` (what the app calls) returns; aiohttp
    has no public way to change a route's handler. Raises RuntimeError without the hooks.
    """
    _check()
    for route in app.router.routes():
        resource = route.resource
        if resource is not None:
            route._handler = wrap(route._handler, resource.canonical)


def count_unmatched(app: web.Application, wrap: Wrap, label: str) -> None:
    """Make the handler of every request no route of ``app`` takes (aiohttp's 404 and 405)
    ``wrap(handler, label)``; call it once, like ``wrap_route_handlers``.

    Private: ``router.resolve`` replaced on the instance, and the ``_handler`` of the fresh
    route aiohttp resolves such a request to (a route without a resource). Raises
    RuntimeError without the hooks.
    """
    _check()
    resolve = app.router.resolve

    async def resolve_wrapping_unmatched(request: web.Request) -> web.UrlMappingMatchInfo:
        match_info = await resolve(request)
        route = match_info.route
        if route.resource is None:  # a 404 or 405 of aiohttp's: a route of its own each time
            route._handler = wrap(route._handler, label)
        return match_info

    app.router.resolve = resolve_wrapping_unmatched  # type: ignore[method-assign]
