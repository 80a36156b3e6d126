"""The standalone exporter: the same checks, served without an app of the user's.

``python -m aiohttp_prometheus_monitoring --config FILE [--host H] [--port N]`` reads FILE
(TOML, JSON, or YAML when PyYAML is installed) in the MONITORING shape and serves ``/ping``,
``/metrics`` and ``/ready``. Without ``--config`` it watches the local RabbitMQ, Redis and
PostgreSQL on their default ports. ``--check-config`` validates and exits 0 or 1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from _aiohttp_booster.redact import one_line, type_name
from _aiohttp_booster.version import __version__

from .config import load_config
from .errors import MonitoringError, WrongConfiguration
from .web import get_monitoring, setup_monitoring

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "create_app", "main", "read_config_file"]

#: The address the exporter listens on unless told otherwise (``--host``).
DEFAULT_HOST = "127.0.0.1"
#: The port the exporter listens on unless told otherwise (``--port``).
DEFAULT_PORT = 9180
#: the largest configuration file read (a config of a thousand checks is some 200 kB)
MAX_FILE_BYTES = 1 << 20
M = "aiohttp_prometheus_monitoring.metrics."


def _local(name: str, what: str, module: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "description": f"Check {what} on this machine", "module": M + module,
            "sleep_time": 15, "timeout": 5, "params": params}  # fmt: skip


#: what the exporter watches without ``--config``: this machine's services, default ports
DEFAULT_CONFIG: Mapping[str, Any] = {
    "route_ready": "/ready",
    "metrics": [
        _local("monitoring_rabbitmq", "RabbitMQ", "amqp.AmqpMetric",
               {"host": "127.0.0.1", "port": 5672}),
        _local("monitoring_redis", "Redis", "redis.RedisMetric",
               {"host": "127.0.0.1", "port": 6379}),
        # user and database as a fresh install has them; asyncpg reads PGPASSWORD if set
        _local("monitoring_postgres", "PostgreSQL", "postgres.PostgresMetric",
               {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "postgres"}),
    ],
}  # fmt: skip


def _where(path: Path) -> str:
    """A path as messages show it: on one line, printable on any stream (a file name that
    is not UTF-8 reaches us with lone surrogates)."""
    return one_line(str(path), limit=500)


def read_config_file(path: Path) -> dict[str, Any]:
    """The MONITORING dict in ``path``, by its suffix: ``.toml``, ``.json``, ``.yaml``/``.yml``.

    A file whose only top-level key is ``MONITORING`` is unwrapped. The exporter serves
    ``/ready`` unless the file sets ``route_ready`` itself. The file must be UTF-8 and at most
    :data:`MAX_FILE_BYTES` long; YAML anchors and aliases (``&name``, ``*name``) are refused,
    so that no small file expands into a huge configuration. Errors name the file and the
    line and column, never quote a line of it (it may hold a password).

    Raises:
        WrongConfiguration: the file cannot be read or parsed, or is not a table/object.
    """
    where = _where(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json", ".yaml", ".yml"):
        raise WrongConfiguration(
            [f"{where}: unknown format {one_line(repr(suffix), limit=40)}: "
             "use .toml, .json, .yaml or .yml"]
        )  # fmt: skip
    try:
        with path.open("rb") as file:
            content = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        reason = one_line(str(exc.strerror or exc), limit=200)
        raise WrongConfiguration([f"{where}: cannot read: {reason}"]) from None
    if len(content) > MAX_FILE_BYTES:
        raise WrongConfiguration(
            [f"{where}: larger than {MAX_FILE_BYTES} bytes, too large for a configuration file"]
        )
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = content.count(b"\n", 0, exc.start) + 1
        raise WrongConfiguration(
            [f"{where}: not UTF-8 text (byte {exc.start} on line {line} cannot be decoded)"]
        ) from None
    data = _parse(text, suffix, where)
    if isinstance(data, Mapping) and list(data) == ["MONITORING"]:
        data = data["MONITORING"]
    if not isinstance(data, Mapping):
        raise WrongConfiguration([f"{where}: expected a table of settings, got {type_name(data)}"])
    return {"route_ready": "/ready", **data}


def _parse(text: str, suffix: str, where: str) -> Any:
    """The data in ``text``; a parser's error as a one-line problem with its position."""
    kind = "YAML" if suffix in (".yaml", ".yml") else suffix[1:].upper()
    try:
        if suffix == ".toml":
            return tomllib.loads(text)
        if suffix == ".json":
            return json.loads(text)
        return _load_yaml(text, where)
    except WrongConfiguration:
        raise
    except json.JSONDecodeError as exc:
        reason = f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
    except RecursionError:
        reason = "nested too deeply"
    except Exception as exc:  # each parser has its own error class; all mean "not parseable"
        reason = _yaml_reason(exc) or one_line(str(exc), limit=200)
    raise WrongConfiguration([f"{where}: not valid {kind}: {reason}"]) from None


def _load_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load(text)``, refusing anchors and aliases (a "billion laughs" file of a
    few hundred bytes expands into gigabytes): libyaml's events are read first."""
    try:
        yaml: Any = importlib.import_module("yaml")  # optional: for YAML files only
    except ImportError:
        raise WrongConfiguration(
            [f"{where}: YAML needs PyYAML: pip install pyyaml (or use TOML or JSON)"]
        ) from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            mark = event.start_mark
            raise WrongConfiguration(
                [f"{where}: YAML anchors and aliases (&name, *name) are not allowed in a "
                 f"configuration file (line {mark.line + 1}, column {mark.column + 1})"]
            )  # fmt: skip
    return yaml.load(text, Loader=loader)  # a safe loader: CSafeLoader or SafeLoader


def _yaml_reason(exc: Exception) -> str | None:
    """A YAML error in a line of its own words and position, without the snippet of the
    file PyYAML's message quotes (it may hold a password); None for other errors."""
    if not hasattr(exc, "problem_mark") and not hasattr(exc, "context_mark"):
        return None
    words = [text for text in (getattr(exc, "context", None), getattr(exc, "problem", None))
             if isinstance(text, str)]  # fmt: skip
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, column = getattr(mark, "line", None), getattr(mark, "column", None)
    where = f" (line {line + 1}, column {column + 1})" if isinstance(line, int) and isinstance(
        column, int) else ""  # fmt: skip
    return f"{one_line(': '.join(words) or type_name(exc), limit=200)}{where}"


ROUTES_KEY = web.AppKey("aiohttp_prometheus_monitoring.exporter.routes", str)


async def index(request: web.Request) -> web.Response:
    """A landing page naming the routes, as Prometheus' own exporters have."""
    return web.Response(text=request.app[ROUTES_KEY])


async def create_app(config: Mapping[str, Any]) -> web.Application:
    """The exporter's app: the checks of ``config``, and a landing page at ``/``.

    Raises:
        WrongConfiguration: ``config`` has problems.
    """
    app = web.Application()
    await setup_monitoring(config, app)
    settings = get_monitoring(app).config
    routes = [r for r in (settings.route_ping, settings.route_metrics, settings.route_ready) if r]
    app[ROUTES_KEY] = f"aiohttp_prometheus_monitoring exporter {__version__}\n" + "".join(
        f"{route}\n" for route in routes
    )
    if "/" not in routes:
        app.router.add_get("/", index)
    return app


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aiohttp_prometheus_monitoring",
        description="Run health checks and serve them as Prometheus metrics, without an app.",
    )
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="TOML, JSON or YAML file in the MONITORING shape "
                             "(default: the local RabbitMQ, Redis and PostgreSQL)")  # fmt: skip
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"default {DEFAULT_HOST}")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    parser.add_argument("--check-config", action="store_true",
                        help="validate the configuration, print every problem, "
                             "exit 0 or 1")  # fmt: skip
    parser.add_argument("--version", action="version", version=__version__)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: returns the exit status (0, or 1 for a bad configuration)."""
    args = _parser().parse_args(argv)
    source = _where(args.config) if args.config else "the built-in default configuration"
    try:
        config = read_config_file(args.config) if args.config else dict(DEFAULT_CONFIG)
        checks = load_config(config).metrics
    except WrongConfiguration as exc:
        print(f"FAILED: {source}\n{exc}", file=sys.stderr)
        return 1
    if args.check_config:
        print(f"SUCCESS: {source} is valid ({len(checks)} checks)")
        return 0
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("aiohttp.access", "aioamqp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    def announce(line: str) -> None:
        print(f"{line}\n{source}: {len(checks)} checks", flush=True)

    try:
        web.run_app(create_app(config), host=args.host, port=args.port, print=announce)
    except MonitoringError as exc:  # nothing else can go wrong in setup: config was checked
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the address is taken, or not ours to bind
        print(f"FAILED: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0
