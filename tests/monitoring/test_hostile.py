"""Hostile input at the monitoring's public entry points: no raw exception, no hang, no secret.

The entry points are ``setup_monitoring(config, app)`` and the exporter's command line,
``python -m aiohttp_prometheus_monitoring --config FILE --check-config``: run as a subprocess
for a few examples, and in-process for the bulk through ``exporter.main``, the function the
module's ``__main__`` calls with the same arguments. Every property says: success, or the
documented error (``WrongConfiguration``; exit status 1 with one line per problem); within a
time bound; a known password in none of the error's text, its repr, the log lines or the
output, whatever characters it has and wherever it was put; and the error text short.

First, one plain test per failure a fuzz run found (each fixed at its root), then the
properties. The examples are derandomized: CI runs the same ones each time, the whole file
in well under 30 s. As a fuzzer, with random examples for a total of N seconds shared out
between the properties (the count each tried is printed)::

    BOOSTER_FUZZ_SECONDS=600 .venv/bin/python -m pytest -s -k property \\
        tests/monitoring/test_hostile.py
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import inspect
import io
import json
import logging
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _aiohttp_booster.redact import is_secret_key, redact, secrets_of, shown
from _aiohttp_booster.urls import mask_url, mask_url_passwords
from aiohttp_prometheus_monitoring import (
    MONITORING_KEY,
    WrongConfiguration,
    get_monitoring,
    setup_monitoring,
)
from aiohttp_prometheus_monitoring.auth import AUTH_KEYS
from aiohttp_prometheus_monitoring.config import ENTRY_KEYS, TOP_KEYS, load_config
from aiohttp_prometheus_monitoring.exporter import main, read_config_file
from aiohttp_prometheus_monitoring.pushgateway import PUSHGATEWAY_KEYS

ROOT = Path(__file__).resolve().parents[2]
M = "aiohttp_prometheus_monitoring.metrics."
SECRET = "s3cr3t-Pa55word"
#: the passwords the properties hide: each with characters a URL parser trips on
SECRETS = (
    SECRET,
    "pa/ss[wo]rd#x?y",  # '/', brackets, '#' and '?' unencoded: urllib misreads or refuses
    "p@ss:w0rd/1234",  # '@', ':' and a '/' that leaves a valid-looking port
    "1234/p4ssw0rd",  # urllib reads host 'u' and port 1234, the rest as the path
    "pä55 wört's\"q\\",  # non-ASCII, a space, both quotes and a backslash
    "%2Fs3cr%40t99",  # looks percent-encoded: decodes to '/s3cr@t99'
)
SECRET_ENV = "BOOSTER_HOSTILE_SECRET"  # holds the password
URL_ENV = "BOOSTER_HOSTILE_URL"  # a URL holding the password
PLAIN_ENV = "BOOSTER_HOSTILE_PLAIN"  # a value that is no secret (a host)
UNSET_ENV = "BOOSTER_HOSTILE_UNSET"


def environment(secret: str) -> dict[str, str]:
    """The variables ``*_env`` keys name."""
    return {SECRET_ENV: secret, URL_ENV: f"http://u:{quote(secret, safe='')}@127.0.0.1:1/",
            PLAIN_ENV: "127.0.0.1"}  # fmt: skip


def _env_variables(pairs: dict[str, Any]) -> dict[str, Any]:
    """``{key_env: None}`` given the variable that fits the key: the password's for a
    secret-named key, the URL's for ``url`` and ``dsn``, a plain one's for the others."""
    return {
        key: value if value is not None
        else SECRET_ENV if is_secret_key(key.removesuffix("_env"))
        else URL_ENV if key in ("url_env", "dsn_env") else PLAIN_ENV
        for key, value in pairs.items()
    }  # fmt: skip


#: what an error may hold at most, and how long an example may take
MAX_OUTPUT = 20_000
TIME_BOUND = 2.0
FUZZ_SECONDS = float(os.environ.get("BOOSTER_FUZZ_SECONDS") or 0)
BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{b}: &{b} [{','.join([f'*{a}'] * 9)}]"
            for a, b in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)  # a few hundred bytes; expanded, 9**9 strings


def forms(secret: str) -> set[str]:
    """The ways a message could show ``secret``: as it is, escaped by repr, percent-encoded
    or -decoded."""
    found = {secret, repr(secret)[1:-1], quote(secret, safe=""), unquote(secret)}
    return {form for form in found if len(form) >= 6}


def assert_hidden(secret: str, *texts: str) -> None:
    for text in texts:
        for form in forms(secret):
            assert form not in text, f"{form!r} shown in {text[:2000]!r}"


def attempt(call: Callable[[], Any]) -> tuple[Any, WrongConfiguration | None]:
    """What ``call`` returned, or the WrongConfiguration it raised (anything else raises)."""
    try:
        return call(), None
    except WrongConfiguration as exc:
        return None, exc


def wrong_configuration(config: Any) -> WrongConfiguration:
    with pytest.raises(WrongConfiguration) as caught:
        load_config(config)
    return caught.value


def entry(**changes: Any) -> dict[str, Any]:
    """A valid TCP check entry, with ``changes``."""
    base = {"name": "monitoring_x", "description": "Check x", "module": M + "tcp.TcpMetric",
            "sleep_time": 5, "params": {"host": "127.0.0.1", "port": 1}}  # fmt: skip
    return {**base, **changes}


def deep(depth: int, kind: str = "list") -> Any:
    """Containers nested ``depth`` deep, built without recursion."""
    value: Any = 0
    for _ in range(depth):
        value = [value] if kind == "list" else {"x": value} if kind == "dict" else (value,)
    return value


def self_referencing(kind: str = "dict") -> Any:
    if kind == "dict":
        loop: dict[str, Any] = {}
        loop["x"] = loop
        return loop
    looped: list[Any] = []
    looped.append(looped)
    return looped


def run_cli(path: Path, env: dict[str, str] | None = None) -> tuple[int, str, str, float]:
    """``python -m aiohttp_prometheus_monitoring --config path --check-config``: exit
    status, stdout, stderr and how long it took."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "aiohttp_prometheus_monitoring", "--config", str(path),
         "--check-config"],
        capture_output=True, cwd=ROOT, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )  # fmt: skip
    took = time.perf_counter() - started
    return done.returncode, done.stdout.decode(), done.stderr.decode(), took


def run_main(path: Path) -> tuple[int, str, str, float]:
    """The same, in-process: ``exporter.main``, which ``__main__`` calls."""
    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--config", str(path), "--check-config"])
    return code, out.getvalue(), err.getvalue(), time.perf_counter() - started


def assert_cli_contract(
    path: Path, result: tuple[int, str, str, float], secret: str, bound: float
) -> None:
    """Exit 0 with SUCCESS, or exit 1 with FAILED, the path, and one line per problem."""
    code, out, err, took = result
    assert took < bound, f"took {took:.2f} s"
    assert "Traceback" not in out + err
    assert len(out) + len(err) < MAX_OUTPUT
    assert_hidden(secret, out, err)
    if code == 0:
        assert out.startswith("SUCCESS: ")
        assert err == ""
        return
    assert code == 1, (code, out, err)
    lines = err.splitlines()
    assert lines[0] == f"FAILED: {str(path).encode('utf-8', 'backslashreplace').decode()}"
    assert re.fullmatch(r"invalid MONITORING configuration \(\d+ problems?\):", lines[1])
    assert lines[2:], err
    assert all(line.startswith("  - ") for line in lines[2:]), err


# ---------------------------------------------------------------------------------------
# Regressions: each failure the fuzz run found, at the entry point it was found at.


@pytest.mark.parametrize(
    ("config", "where"),
    [
        ({"metrics": [entry(sleep_time=10**400)]}, "sleep_time: must be at most 31622400"),
        ({"metrics": [entry(sleep_time=10**5000)]}, "sleep_time: must be at most"),
        ({"metrics": [entry(timeout=10**400)]}, "timeout: must be at most 31622400"),
        ({"metrics": [entry(sleep_time=-(10**400))]}, "sleep_time: must be > 0"),
        ({"metrics": [entry(sleep_time=math.inf)]}, "sleep_time: must be at most"),
        ({"metrics": [entry(sleep_time=math.nan)]}, "sleep_time: expected a number of seconds"),
        ({"metrics": [entry(timeout=1e300)]}, "timeout: must be at most"),
        ({"request_metrics_buckets": [0.1, 10**400]}, "request_metrics_buckets: expected"),
        ({"pushgateway": {"url": "http://gw", "job": "j", "interval": 10**400}},
         "pushgateway: interval: must be at most"),
        ({"pushgateway": {"url": "http://gw", "job": "j", "timeout": 10**400}},
         "pushgateway: timeout: must be at most"),
        ({"metrics": [entry(module=M + "http.HttpMetric",
                            params={"url": "http://h/", "timeout": 10**400})]},
         "params: timeout: must be at most"),
    ],
)  # fmt: skip
async def test_huge_durations_are_a_configuration_error(config: dict[str, Any], where: str) -> None:
    """10**400 where seconds are expected raised OverflowError (int to float); a duration is
    now a number > 0 and at most 366 days, and the message names the key."""
    with pytest.raises(WrongConfiguration, match=re.escape(where)) as caught:
        await setup_monitoring(config, web.Application())
    assert len(str(caught.value)) < 1000


@pytest.mark.parametrize(
    "config",
    [
        {"metrics": [entry(module="tests.monitoring.fakes.AlwaysUp",
                           params={"x": deep(100_000, "dict")})]},
        {"metrics": [entry(module=M + "http.HttpMetric",
                           params={"url": "http://h/", "headers": self_referencing()})]},
        {"metrics": [entry(module=M + "http.HttpMetric",
                           params={"url": self_referencing("list")})]},
        {"metrics": [entry(critical=deep(100_000))]},
        {"metrics": [entry(params={"host": "h", "port": deep(100_000, "dict")})]},
        {deep(100_000, "tuple"): 1},
        {10**5000: 1, "auth": {10**5000: 1}},
        {"route_ping": self_referencing()},
        {"pushgateway": {"url": "http://gw", "job": "j", "grouping_key": self_referencing()}},
    ],
    ids=["deep-params", "self-referencing-headers", "self-referencing-url", "deep-critical",
         "deep-port", "deep-key", "huge-int-keys", "self-referencing-route", "grouping-loop"],
)  # fmt: skip
def test_deep_and_self_referencing_values_are_shown_short(config: dict[str, Any]) -> None:
    """Secret detection and the error text walked values recursively (RecursionError); now
    the walk is iterative and the text shows three levels at most."""
    app = web.Application()
    _, error = attempt(lambda: asyncio.run(setup_monitoring(config, app)))
    if error is not None:
        assert len(str(error)) < 2000
    else:
        (check,) = get_monitoring(app).config.metrics
        assert len(repr(check.check)) < 1000


def test_secrets_of_walks_any_depth_once() -> None:
    """A password under a secret-named key or in a URL is found however deep, in lists too,
    and a value that contains itself is walked once."""
    looped = self_referencing()
    looped["password"] = SECRET
    params = {"a": deep(50_000, "dict"), "b": looped, "urls": [f"amqp://u:{SECRET}x@h/"],
              "nested": {"api-key": [10**5000, SECRET + "y"]}}  # fmt: skip
    found = secrets_of(params)
    assert {SECRET, SECRET + "x", SECRET + "y"} <= set(found)


@pytest.mark.parametrize(
    "url",
    ["http://[::1", "http://u:pa[ss@gw:9091", "http://gw:99999", "http://", "ftp://gw",
     "gw:9091", "http://gw\udcff/"],
)  # fmt: skip
def test_pushgateway_url_urllib_refuses_is_a_configuration_error(url: str) -> None:
    """urlsplit raised ValueError (Invalid IPv6 URL) out of load_config."""
    error = wrong_configuration({"pushgateway": {"url": url, "job": "j"}})
    assert "pushgateway: url: expected an http:// or https:// URL with a host" in str(error)
    assert "pa[ss" not in str(error)


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ({"route_ping": "/{"}, "route_ping: aiohttp refuses '/{' as a route: Invalid path"),
        ({"route_metrics": "/{a:(}"}, "route_metrics: aiohttp refuses '/{a:(}'"),
        ({"route_ready": "/{a:x{99999999999}}"}, "route_ready: aiohttp refuses"),
        ({"route_ready": "/{a}/{a}"}, "route_ready: aiohttp refuses"),
        ({"route_ping": "/\ud800"}, r"route_ping: expected a path of at most 2048 characters"),
        ({"route_ping": "/" + "a" * 5000}, "route_ping: expected a path of at most 2048"),
    ],
)
async def test_routes_are_validated_as_aiohttp_reads_them_before_the_app_is_touched(
    routes: dict[str, str], message: str, tmp_path: Path
) -> None:
    """route_ping "/{" passed validation and --check-config, then aiohttp refused it in
    setup_monitoring with ValueError, after the app was marked as set up."""
    app = web.Application()
    with pytest.raises(WrongConfiguration, match=re.escape(message)):
        await setup_monitoring(routes, app)
    assert MONITORING_KEY not in app
    assert len(app.router.routes()) == 0
    await setup_monitoring({}, app)  # the app can still be set up with a good config
    config = tmp_path / "routes.json"
    config.write_text(json.dumps(routes))
    code, _, err, _ = run_main(config)
    assert code == 1
    assert message in err


async def test_a_file_that_is_not_utf8_is_a_one_line_error(tmp_path: Path) -> None:
    """A Latin-1 exporter file printed UnicodeDecodeError's traceback; now one line naming
    the file, and the exit status of any configuration error."""
    path = tmp_path / "latin1.toml"
    content = 'route_ping = "/ping"\ndescription = "Caf\xe9"\n'.encode("latin-1")
    path.write_bytes(content)
    code, out, err, _ = run_cli(path)
    assert (code, out) == (1, "")
    assert "Traceback" not in err
    at = content.index(b"\xe9")
    assert err.splitlines() == [
        f"FAILED: {path}", "invalid MONITORING configuration (1 problem):",
        f"  - {path}: not UTF-8 text (byte {at} on line 2 cannot be decoded)",
    ]  # fmt: skip
    with pytest.raises(WrongConfiguration, match="not UTF-8 text"):
        read_config_file(path)


@pytest.mark.parametrize(
    "text",
    ["a" * 1_000_000, "a" * 1_000_000 + "://", "x://" * 250_000, "a:" * 500_000 + "@",
     "http://" + "a" * 1_000_000 + "@" + "b" * 1_000_000, "a" * 500_000 + "://u:" + SECRET],
    ids=["letters", "letters-scheme", "schemes", "colons", "long-userinfo", "letters-password"],
)  # fmt: skip
def test_redaction_is_linear(text: str) -> None:
    """The URL-password regex was quadratic in a run of letters: 1 MB took about 20 min."""
    started = time.perf_counter()
    redact(text, [SECRET])
    mask_url(text)
    mask_url_passwords(text)
    shown(text)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    "config",
    [
        {"metrics": [entry(sleep_time="a" * 1_000_000)]},
        {"metrics": [{"name": "monitoring_x", "url": "a" * 1_000_000}]},
        {"metrics": [{"name": "monitoring_x", "url": "redis://" + "a" * 1_000_000 + ":x"}]},
        {"metrics": [entry(name="a-" * 500_000)]},
        {"route_ping": "a" * 1_000_000},
        {"pushgateway": {"url": "http://" + "a" * 1_000_000 + "@", "job": "j" * 1_000_000}},
        {"metrics": [entry(module="a." * 500_000 + "Check")]},
        {"metrics": [entry(params={"host": "h", "port_env": "A" * 1_000_000})]},
        {"a" * 1_000_000: 1},
        {"metrics": [entry(name=f"n{i}-") for i in range(5000)]},
    ],
    ids=["duration", "url", "url-no-port", "name", "route", "pushgateway", "module", "env",
         "key", "many-problems"],
)  # fmt: skip
async def test_long_values_give_short_errors_fast(config: dict[str, Any]) -> None:
    """A 1 MB string where a duration or a URL is expected ran for about 20 minutes and
    gave a megabyte of message; each value is now shown in about 100 characters and its
    length, and a message lists 40 problems at most."""
    started = time.perf_counter()
    with pytest.raises(WrongConfiguration) as caught:
        await setup_monitoring(config, web.Application())
    assert time.perf_counter() - started < TIME_BOUND
    assert len(str(caught.value)) < MAX_OUTPUT
    assert all(len(problem) <= 400 and "\n" not in problem for problem in caught.value.problems)


def _http(**params: Any) -> dict[str, Any]:
    return {"metrics": [entry(module=M + "http.HttpMetric", params=params)]}


def _compact(url: Any) -> dict[str, Any]:
    return {"metrics": [{"name": "monitoring_x", "url": url}]}


#: each builds a configuration holding the password ``pw`` where it was once shown
PASSWORD_CASES: dict[str, Callable[[str], dict[str, Any]]] = {
    "url-as-list": lambda pw: _http(url=[f"http://u:{pw}@h/"]),
    "url-as-bytes": lambda pw: _http(url=f"http://u:{pw}@h/".encode()),
    "url-as-dict": lambda pw: _compact({"primary": f"redis://u:{pw}@h/"}),
    "compact-url-as-list": lambda pw: _compact([f"redis://u:{pw}@h/"]),
    "no-scheme": lambda pw: _http(url=f"u:{pw}@h/ping"),
    "no-scheme-redis": lambda pw: {"metrics": [entry(module=M + "redis.RedisMetric",
                                                     params={"url": f"u:{pw}@h"})]},
    "no-scheme-dsn": lambda pw: {"metrics": [entry(module=M + "postgres.PostgresMetric",
                                                   params={"dsn": f"u:{pw}@h/d"})]},
    "compact-redis": lambda pw: _compact(f"redis://u:{pw}@h:6379/0"),
    "compact-amqp": lambda pw: _compact(f"amqp://u:{pw}@mq/"),
    "compact-http": lambda pw: _compact(f"http://u:{pw}@127.0.0.1:8080/"),
    "amqp-url": lambda pw: {"metrics": [entry(module=M + "amqp.AmqpMetric",
                                              params={"url": f"amqp://u:{pw}@mq/"})]},
    "amqp-urls": lambda pw: {"metrics": [entry(module=M + "amqp.AmqpMetric",
                                               params={"url": ["amqp://h/", f"amqp://u:{pw}@mq/"]})]},
    "pushgateway-as-string": lambda pw: {"pushgateway": f"http://u:{pw}@gw:9091"},
    "pushgateway-url": lambda pw: {"pushgateway": {"url": f"http://u:{pw}@gw:9091/", "job": 5}},
    "pushgateway-url-as-list": lambda pw: {"pushgateway": {"url": [f"http://u:{pw}@gw"],
                                                           "job": "j"}},
    "route": lambda pw: {"route_ping": f"http://u:{pw}@h/"},
    "wrong-types": lambda pw: {"metrics": [entry(sleep_time=f"http://u:{pw}@h/",
                                                 critical=f"redis://u:{pw}@h".encode())]},
    "password-unexpected": lambda pw: {"metrics": [entry(params={"host": "h", "port": 1,
                                                                 "password": pw})]},
    "password-and-bad-port": lambda pw: {"metrics": [entry(module=M + "redis.RedisMetric",
                                                           params={"password": pw, "port": "x"})]},
    "api-key-header": lambda pw: _http(url="http://h/", headers={"X-Api-Key": pw, "n": 5}),
    "auth-both": lambda pw: {"auth": {"bearer_token": pw, "username": "u"}},
    "auth-wrong-user": lambda pw: {"auth": {"password": pw, "username": ["x"]}},
    "amqp-user-with-slash": lambda pw: {"metrics": [entry(module=M + "amqp.AmqpMetric",
                                                          params={"url": f"amqp://u/x:{pw}@h/"})]},
    "http-user-with-slash": lambda pw: _http(url=f"http://u/x:{pw}@127.0.0.1/", headers=5),
    "dsn-user-with-slash": lambda pw: {"metrics": [entry(module=M + "mysql.MySQLMetric",
                                                         params={"dsn": f"mysql://u/x:{pw}@h/d"})]},
    "dsn-bad-port": lambda pw: {"metrics": [entry(module=M + "postgres.PostgresMetric",
                                                  params={"dsn": f"postgresql://u:{pw}@h:99999/d"})]},
    "password-env": lambda pw: {"metrics": [entry(module=M + "postgres.PostgresMetric",
                                                  params={"password_env": SECRET_ENV, "port": 0})]},
}  # fmt: skip


@pytest.mark.parametrize("case", PASSWORD_CASES)
@pytest.mark.parametrize("secret", SECRETS)
def test_a_password_is_never_shown(case: str, secret: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A password was shown when a URL came as a list, bytes or a dict, had no scheme, had an
    unencoded '/' or brackets (urllib's own message quotes the netloc), or when the
    Pushgateway was a string. Each case with each hostile password."""
    monkeypatch.setenv(SECRET_ENV, secret)
    config = PASSWORD_CASES[case](secret)
    loaded, error = attempt(lambda: load_config(config))
    if error is not None:
        assert_hidden(secret, str(error), repr(error), *error.problems)
    else:
        checks = [repr(check.check) for check in loaded.metrics]
        assert_hidden(secret, repr(loaded), *checks)


@pytest.mark.parametrize("suffix", [".yaml", ".toml", ".json"])
@pytest.mark.parametrize("secret", SECRETS)
def test_a_parser_error_never_quotes_the_line(suffix: str, secret: str, tmp_path: Path) -> None:
    """PyYAML's message quotes the line of a syntax error: the password with it."""
    pytest.importorskip("yaml")
    text = {
        ".yaml": "pushgateway:\n  url: http://u:{s}@gw  job: [\n",
        ".toml": '[pushgateway]\nurl = "http://u:{s}@gw" job\n',
        ".json": '{{"pushgateway": {{"url": "http://u:{s}@gw" "job": 1}}}}',
    }[suffix].format(s=secret.replace("\\", "").replace('"', ""))
    path = tmp_path / f"broken{suffix}"
    path.write_text(text, encoding="utf-8")
    result = run_main(path)
    assert result[0] == 1
    assert re.search(r"not valid (YAML|TOML|JSON): .*line \d+, column \d+", result[2])
    assert_cli_contract(path, result, secret.replace("\\", "").replace('"', ""), TIME_BOUND)


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
async def test_yaml_anchors_are_refused_before_they_expand(suffix: str, tmp_path: Path) -> None:
    """A 356-byte YAML file of nested anchors ("billion laughs") made a 35 MB error
    message. Anchors and aliases are refused whatever they would expand to."""
    pytest.importorskip("yaml")
    path = tmp_path / f"laughs{suffix}"
    path.write_text(BILLION_LAUGHS)
    assert len(BILLION_LAUGHS) < 400
    code, out, err, took = run_cli(path)
    assert (code, out) == (1, "")
    assert "YAML anchors and aliases (&name, *name) are not allowed in a configuration file " \
           "(line 1, column 4)" in err  # fmt: skip
    assert len(err) < 1000
    assert took < 10
    path.write_text("metrics: &none []\nroute_ping: /ping\n")
    with pytest.raises(WrongConfiguration, match="anchors and aliases"):
        read_config_file(path)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("huge.json", b" " * (2 << 20)),
        ("deep.json", b"[" * 100_000),
        ("deep.toml", b"a = " + b"[" * 100_000),
        ("deep.yaml", b"[" * 100_000),
        ("nul.toml", b"a = 1\x00\n"),
        ("bom.json", b"\xef\xbb\xbf{}"),
        ("tag.yaml", b"!!python/object/apply:os.system ['echo pwned']\n"),
        ("merge.yaml", b"a: &x {b: 1}\nc:\n  <<: *x\n"),
        ("big-int.json", b'{"metrics": [{"sleep_time": 1' + b"0" * 5000 + b"}]}"),
        ("list.yaml", b"- 1\n- 2\n"),
        ("config.ini", b"[x]\n"),
        ("no-suffix", b"{}"),
        ("\udcff.json", b"[]"),
    ],
)
def test_hostile_files_give_a_one_line_error(name: str, content: bytes, tmp_path: Path) -> None:
    """Whatever the file holds, the exporter answers with exit status 1 and a line per
    problem, never a traceback, quickly."""
    pytest.importorskip("yaml")
    path = tmp_path / name
    try:
        path.write_bytes(content)
    except (UnicodeEncodeError, OSError):
        pytest.skip("this file system takes no such name")
    result = run_main(path)
    assert result[0] == 1
    assert_cli_contract(path, result, SECRET, TIME_BOUND)


def test_mask_url_masks_what_any_parser_could_take_for_the_password() -> None:
    """From the first ':' after 'scheme://' to the last '@', whatever urllib makes of it."""
    assert mask_url("amqps://u:p%40ss@h/") == "amqps://u:***@h/"
    assert mask_url("amqp://h/") == "amqp://h/"
    assert mask_url("redis://u:pa/ss@h:1/0") == "redis://u:***@h:1/0"  # urllib: port 'pa'
    assert mask_url("redis://u:12/34@h/0") == "redis://u:***@h/0"  # urllib: host u, port 12
    assert mask_url("http://u:p[a]ss@h/") == "http://u:***@h/"  # urllib: Invalid IPv6 URL
    assert mask_url("http://u:p@ss@h/a@b") == "http://u:***@b"  # an '@' in the path too
    assert mask_url("u:pw@h/x") == "u:***@h/x"  # no scheme
    assert mask_url("http://guest@h/") == "http://guest@h/"  # a user, no password
    assert mask_url(b"http://u:pw@h/") == "<bytes, not a URL>"  # type: ignore[arg-type]
    assert mask_url_passwords("refused: 'redis://u:pa ss@h' and http://v:x/y@k.") == (
        "refused: 'redis://u:pa ss@h' and http://v:***@k."
    )  # a password with a space is masked as a known secret, by redact
    assert redact("refused: 'redis://u:pa ss@h'", ["pa ss"]) == "refused: 'redis://u:***@h'"


# ---------------------------------------------------------------------------------------
# Properties. Strategies draw specs (small, printable) that are built into the hostile
# values inside the test: deep, self-referencing and huge values print badly as examples.


@dataclass(frozen=True)
class Deep:
    kind: str
    depth: int


@dataclass(frozen=True)
class Loop:
    kind: str


@dataclass(frozen=True)
class Big:
    kind: str


@dataclass(frozen=True)
class Secret:
    """The known password, as it is (only under a secret-named key)."""

    prefix: str = ""


@dataclass(frozen=True)
class SecretUrl:
    """A URL with the known password, raw or percent-encoded."""

    scheme: str
    user: str
    host: str
    tail: str
    encoded: bool = False
    as_bytes: bool = False


def build(value: Any, secret: str) -> Any:
    """The hostile value a spec stands for (specs inside containers built too)."""
    if isinstance(value, Deep):
        return deep(value.depth, value.kind)
    if isinstance(value, Loop):
        return self_referencing(value.kind)
    if isinstance(value, Big):
        return {
            "str": "a" * 1_000_000, "url": "http://" + "a" * 1_000_000, "schemes": "x://" * 250_000,
            "password": "a" * 500_000 + f"://u:{secret}@h", "bytes": b"a" * 1_000_000,
            "list": list(range(100_000)), "int": 10**5000,
        }[value.kind]  # fmt: skip
    if isinstance(value, Secret):
        return value.prefix + secret
    if isinstance(value, SecretUrl):
        password = quote(secret, safe="") if value.encoded else secret
        url = f"{value.scheme}{value.user}:{password}@{value.host}{value.tail}"
        return url.encode("utf-8", "surrogatepass") if value.as_bytes else url
    if isinstance(value, dict):
        return {build(k, secret): build(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [build(item, secret) for item in value]
    if isinstance(value, tuple):
        return tuple(build(item, secret) for item in value)
    return value


MODULES = (
    M + "http.HttpMetric", M + "redis.RedisMetric", M + "amqp.AmqpMetric",
    M + "postgres.PostgresMetric", M + "mysql.MySQLMetric", M + "tcp.TcpMetric",
    "tests.monitoring.fakes.AlwaysUp", "tests.monitoring.fakes.NotABaseMetric",
)  # fmt: skip


def _keywords(path: str) -> list[str]:
    module, _, name = path.rpartition(".")
    cls = getattr(__import__(module, fromlist=[name]), name)
    return [p for p in inspect.signature(cls).parameters if p not in ("self", "params")]


def _required(path: str) -> tuple[str, ...]:
    module, _, name = path.rpartition(".")
    cls = getattr(__import__(module, fromlist=[name]), name)
    parameters = inspect.signature(cls).parameters.values()
    return tuple(
        p.name for p in parameters if p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD
    )


#: the real keyword names of each check class, and those it requires
PARAM_NAMES = {path: _keywords(path) for path in MODULES}
REQUIRED_PARAMS = {path: _required(path) for path in MODULES}
SECRET_KEYS = ("password", "bearer_token", "token", "api_key", "Authorization", "X-Api-Key",
               "client_secret")  # fmt: skip
#: the URL schemes of each check class (the compact form's too), then ones nothing takes
KIND_SCHEMES = {
    "http": ("http://", "https://", "HTTP://"), "redis": ("redis://", "rediss://"),
    "amqp": ("amqp://", "amqps://"), "postgres": ("postgres://", "postgresql://"),
    "mysql": ("mysql://",), "tcp": ("tcp://",),
}  # fmt: skip
ODD_SCHEMES = ("ftp://", "", "://", "h ttp://", "unix://")
GOOD_HOSTS = ("127.0.0.1", "localhost", "h", "[::1]", "h:6379", "h:5672")
ODD_HOSTS = ("[::1", "h:99999", "h:0", "h:x", "", "ho st", "\ud800", "[h]")
GOOD_TAILS = ("", "/", "/0", "/db")
ODD_TAILS = ("/a@b", "?x=1", "#f", "/%zz", "/v/w")
TEXT = st.text(st.characters() | st.characters(categories=["Cs"]), max_size=20)
LETTERS = st.characters(categories=["L", "N", "Zs"])


def _name_of(entry: Any) -> str:
    """What makes entries of one list distinct: their names (shown short)."""
    return shown(entry.get("name")) if isinstance(entry, dict) else repr(type(entry))


def one_of_weighted(*pairs: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each drawn with the chance its weight gives it (``st.one_of``
    gives each about the same chance, however often it is repeated)."""
    chosen = [(weight, strategy) for weight, strategy in pairs if weight > 0]
    indices = [index for index, (weight, _) in enumerate(chosen) for _ in range(weight)]
    return st.sampled_from(indices).flatmap(lambda index: chosen[index][1])


def urls(kind: str | None = None) -> st.SearchStrategy[SecretUrl]:
    """URLs holding the password: mostly well-formed ones for a check ``kind``, some with
    any scheme, host or tail."""
    schemes = KIND_SCHEMES.get(kind or "", ()) or tuple(s for k in KIND_SCHEMES.values() for s in k)
    good = st.builds(
        SecretUrl, st.sampled_from(schemes), st.sampled_from(("u", "guest", "")),
        st.sampled_from(GOOD_HOSTS), st.sampled_from(GOOD_TAILS), st.booleans(),
    )  # fmt: skip
    odd = st.builds(
        SecretUrl, st.sampled_from(schemes + ODD_SCHEMES), st.sampled_from(("u", "", "a b", "u/x")),
        st.sampled_from(GOOD_HOSTS + ODD_HOSTS), st.sampled_from(GOOD_TAILS + ODD_TAILS),
        st.booleans(),
    )  # fmt: skip
    return one_of_weighted((3, good), (1, odd))


@functools.lru_cache
def hostile(*, files: bool) -> st.SearchStrategy[Any]:
    """Values of any type: huge, NaN, deep, self-referencing, long, with lone surrogates,
    with URLs holding the password, and (not in files) bytes, tuples and non-str keys."""
    leaves: list[st.SearchStrategy[Any]] = [
        st.none(), st.booleans(), st.integers(),
        st.sampled_from((10**400, -(10**400), 2**64, 10**20, 0, -1)),
        st.floats(), st.sampled_from((math.nan, math.inf, -math.inf, 1e-320, 1e300)),
        TEXT, urls(), st.sampled_from((Big("str"), Big("url"), Big("password"))),
        st.builds(Deep, st.sampled_from(("list", "dict")), st.integers(1, 60 if files else 3000)),
    ]  # fmt: skip
    keys: st.SearchStrategy[Any] = TEXT | st.sampled_from((*ENTRY_KEYS, *TOP_KEYS))
    if not files:
        leaves += [
            st.binary(max_size=20),
            urls().map(lambda u: dataclasses.replace(u, as_bytes=True)),
            st.builds(Loop, st.sampled_from(("list", "dict"))),
            st.sampled_from((Big("schemes"), Big("bytes"), Big("list"), Big("int"))),
        ]  # fmt: skip
        keys = (
            keys
            | st.integers()
            | st.floats(allow_nan=False)
            | st.none()
            | st.sampled_from((10**400, Deep("tuple", 2000), (1, "a")))
        )
    secret_values = st.dictionaries(st.sampled_from(SECRET_KEYS), st.just(Secret()), max_size=1)

    def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        mixed = st.builds(lambda a, b: {**a, **b}, st.dictionaries(keys, children, max_size=4),
                          secret_values)  # fmt: skip
        return (
            st.lists(children, max_size=4)
            | mixed
            | (st.tuples(children, children) if not files else st.lists(children, max_size=2))
        )

    return st.recursive(st.one_of(leaves), containers, max_leaves=8)


@dataclass(frozen=True)
class Draw:
    """How configurations are drawn: ``files`` (what JSON, TOML and YAML can hold) and
    ``chaos`` (hostile values often, not once in a while)."""

    files: bool
    chaos: bool

    def mostly(
        self, valid: st.SearchStrategy[Any], *odd: st.SearchStrategy[Any]
    ) -> st.SearchStrategy[Any]:
        """``valid``, or now and then (often in chaos) ``odd`` values or hostile ones."""
        weight = 3 if self.chaos else 25
        return one_of_weighted(
            (weight, valid), *((1, strategy) for strategy in odd), (1, hostile(files=self.files))
        )

    def durations(self) -> st.SearchStrategy[Any]:
        odd = st.sampled_from((0, -5, 10**400, 1e300, math.nan, math.inf, 366 * 86_400 + 1))
        return self.mostly(st.floats(0.05, 3600) | st.integers(1, 3600), odd)

    def flag(self) -> st.SearchStrategy[Any]:
        return self.mostly(st.booleans(), st.none())

    def params(self, module: Any) -> st.SearchStrategy[Any]:
        """Params of a check: its real keywords with plausible values (a URL or a password
        holding the secret where it takes one), now and then their ``_env`` forms, unknown
        or secret-named keys and hostile values."""
        names = PARAM_NAMES.get(module, []) if isinstance(module, str) else []
        kind = module.rpartition(".")[2].removesuffix("Metric").lower() if names else None
        plausible: dict[str, st.SearchStrategy[Any]] = {
            "url": urls(kind) | st.lists(urls(kind), min_size=1, max_size=3),
            "dsn": urls(kind), "host": st.sampled_from(("127.0.0.1", "localhost", "h")),
            "port": st.sampled_from((1, 6379, "5432")), "password": st.just(Secret()),
            "user": st.sampled_from(("u", "guest")), "username": st.just("u"),
            "timeout": self.durations(), "method": st.sampled_from(("GET", "HEAD")),
            "headers": st.fixed_dictionaries({}, optional={
                "Authorization": st.just(Secret("Bearer ")), "X-Api-Key": st.just(Secret()),
                "Accept": st.text(max_size=5)}),
            "expected_statuses": st.lists(st.integers(100, 599), max_size=3),
            "db": st.integers(0, 15), "vhost": st.just("/"), "database": st.just("d"),
            "ssl": st.booleans(), "verify_ssl": st.booleans(), "answer": st.booleans(),
        }  # fmt: skip
        odd = {
            "port": st.sampled_from((0, 70000, "six", 10**400, 1.5, True, "1" * 30)),
            "method": st.sampled_from(("G ET", "", "\ud800")),
            "url": urls(), "dsn": urls(), "host": st.sampled_from(("", "\ud800", "h" * 300)),
        }  # fmt: skip
        required = REQUIRED_PARAMS.get(module, ()) if isinstance(module, str) else ()
        valid = (
            st.fixed_dictionaries(
                {n: plausible.get(n, st.none()) for n in required},
                optional={n: plausible.get(n, st.none()) for n in names if n not in required},
            ) if names else st.dictionaries(TEXT, hostile(files=self.files), max_size=3)
        )  # fmt: skip
        names = names or ["url", "host", "port"]
        one = st.sampled_from(names).flatmap(
            lambda name: self.mostly(plausible.get(name, st.none()), odd.get(name, st.none())).map(
                lambda v: {name: v}
            )
        )
        env = st.builds(
            lambda key, odd: {f"{key}_env": odd}, st.sampled_from([*names, "password"]),
            st.none() | st.sampled_from((UNSET_ENV, "", "A=B", "\ud800", "A\x00B", "a-b")),
        ).map(_env_variables)  # fmt: skip
        unknown = st.dictionaries(TEXT, hostile(files=self.files), max_size=2) | st.dictionaries(
            st.sampled_from(SECRET_KEYS),
            st.just(Secret()) | hostile(files=self.files),
            max_size=2,
        )
        changes = st.lists(one_of_weighted((4, one), (1, env), (1, unknown)),
                           max_size=3 if self.chaos else 1)  # fmt: skip
        combined = st.builds(lambda base, more: {k: v for d in [base, *more] for k, v in d.items()},
                             valid, changes)  # fmt: skip
        return self.mostly(combined)

    def entries(self) -> st.SearchStrategy[Any]:
        names = self.mostly(
            st.from_regex(r"[a-z_][a-z0-9_:]{2,15}", fullmatch=True),
            st.sampled_from(("monitoring_check_up", "1x", "a-b", "", "http_requests_total")),
        )
        description = self.mostly(st.text(LETTERS, min_size=1, max_size=20), TEXT, st.just(" "))

        def entry_of(module: Any) -> st.SearchStrategy[Any]:
            required = {"name": names, "description": description, "module": st.just(module),
                        "sleep_time": self.durations()}  # fmt: skip
            optional = {"timeout": self.durations(), "critical": self.flag(),
                        "params": self.params(module),
                        "wait_for_listen": self.mostly(st.sampled_from((None, False)),
                                                       st.just(True))}  # fmt: skip
            assert set(ENTRY_KEYS) <= {*required, *optional, "url"}  # every real key is drawn
            verbose = st.fixed_dictionaries(
                {**required, "params": optional["params"]},
                optional={k: v for k, v in optional.items() if k != "params"},
            )
            kind = st.sampled_from(sorted(KIND_SCHEMES))
            compact = st.fixed_dictionaries(
                {"name": names, "url": self.mostly(kind.flatmap(urls))},
                optional={"sleep_time": self.durations(), "description": description,
                          "critical": self.flag(), "timeout": self.durations()},
            )  # fmt: skip
            odd = st.fixed_dictionaries(
                {}, optional={**required, **optional, "url": urls(), "sleeptime": st.integers(),
                              "module": st.just(module)},
            )  # fmt: skip
            return one_of_weighted((3, verbose), (2, compact), (1 if self.chaos else 0, odd))

        modules = self.mostly(st.sampled_from(MODULES), TEXT, st.just("os.path.join"))
        return modules.flatmap(entry_of)

    def routes(self, *good: str | None) -> st.SearchStrategy[Any]:
        return self.mostly(
            st.sampled_from(good),
            st.sampled_from(("/ping", "/metrics", "/ready", "/health", "/{tail:.*}", "/a/{id}")),
            st.sampled_from(("/{", "/}", "/{a:(}", "/{a:x{99999999999}}", "/{a}/{a}", "",
                             "ping", "/\ud800", "/a b", "/a%20b")),
            TEXT.map(lambda t: "/" + t), st.none(),
        )  # fmt: skip

    def auth(self) -> st.SearchStrategy[Any]:
        secret = self.mostly(st.just(Secret()), st.just(""))
        variable = self.mostly(st.just(SECRET_ENV), st.sampled_from((UNSET_ENV, "", "a-b")))
        forms = one_of_weighted(
            (2, st.fixed_dictionaries({"bearer_token": secret})),
            (2, st.fixed_dictionaries({"bearer_token_env": variable})),
            (2, st.fixed_dictionaries({"username": st.just("prometheus"), "password": secret})),
            (1, st.fixed_dictionaries({"username_env": variable, "password_env": variable})),
            (1, st.fixed_dictionaries({}, optional=dict.fromkeys(AUTH_KEYS, secret))),
        )  # fmt: skip
        return self.mostly(forms)

    def pushgateway(self) -> st.SearchStrategy[Any]:
        values = {
            "url": self.mostly(urls("http"), st.just("http://127.0.0.1:9091")),
            "job": self.mostly(st.text(min_size=1, max_size=10), TEXT),
            "grouping_key": self.mostly(st.dictionaries(
                st.from_regex(r"[a-z_]{1,5}", fullmatch=True), st.text(max_size=5), max_size=2)),
            "interval": self.durations(), "timeout": self.durations(),
        }  # fmt: skip
        assert set(values) == set(PUSHGATEWAY_KEYS)  # the real keys, all of them
        pushgateway = st.fixed_dictionaries(
            {"url": values["url"], "job": values["job"]},
            optional={key: values[key] for key in ("grouping_key", "interval", "timeout")},
        )
        return self.mostly(pushgateway, urls("http"))

    def configs(self) -> st.SearchStrategy[Any]:
        """MONITORING dicts from the real key names and value types, and hostile values."""
        buckets = self.mostly(
            st.lists(st.floats(0.001, 100), min_size=1, max_size=5, unique=True).map(sorted),
            st.lists(st.sampled_from((0.1, 10**400, math.nan, math.inf, -1, True)), max_size=4),
        )
        optional = {
            "route_ping": self.routes("/ping", "/health", "/"),
            "route_metrics": self.routes("/metrics", "/m/{name}"),
            "route_ready": self.routes("/ready", "/r/{tail:.*}", None),
            "metrics": self.mostly(
                st.lists(self.entries(), min_size=1, max_size=3, unique_by=_name_of)
            ),
            "include_default_registry": self.flag(), "request_metrics": self.flag(),
            "request_metrics_buckets": buckets, "request_metrics_monitoring_routes": self.flag(),
            "auth": self.auth(), "pushgateway": self.pushgateway(),
        }  # fmt: skip
        assert set(TOP_KEYS) == set(optional)  # every real key is drawn
        required = {} if self.chaos else {"metrics": optional.pop("metrics")}
        config = st.fixed_dictionaries(required, optional=optional)
        typo = st.fixed_dictionaries({}, optional={"route_metric": st.just("/m"),
                                                   "metrics_": st.just([])})  # fmt: skip
        with_typo = st.builds(lambda a, b: {**a, **b}, config, typo)
        return self.mostly(config, with_typo) if self.chaos else self.mostly(config)


@functools.lru_cache
def monitoring_configs(*, files: bool) -> st.SearchStrategy[Any]:
    """Mostly valid configurations with a hostile value now and then, and chaotic ones."""
    return one_of_weighted(
        (2, Draw(files, chaos=False).configs()), (1, Draw(files, chaos=True).configs())
    )


#: hypothesis settings of the properties: derandomized in CI, random in a fuzz run
BASE = settings(
    database=None, deadline=None, derandomize=True, print_blob=False,
    suppress_health_check=list(HealthCheck),
)  # fmt: skip
COUNTS: dict[str, int] = {}
#: pytest-timeout's limit for a property: the fuzz time it is given, and some
FUZZ_TIMEOUT = pytest.mark.timeout(int(FUZZ_SECONDS) + 300 if FUZZ_SECONDS else 300)


def run_property(
    name: str,
    test: Callable[..., None],
    examples: int,
    share: float,
    **strategies: st.SearchStrategy[Any],
) -> None:
    """``test`` given ``strategies``, on ``examples`` derandomized examples; with
    BOOSTER_FUZZ_SECONDS set, on random examples for that share of the fuzz time (in runs
    of ``examples``, each with a fresh seed)."""
    if not FUZZ_SECONDS:
        settings(BASE, max_examples=examples)(given(**strategies)(test))()
        return
    COUNTS[name] = 0
    started = time.monotonic()
    while time.monotonic() - started < FUZZ_SECONDS * share:
        settings(BASE, max_examples=examples, derandomize=False)(given(**strategies)(test))()
    took = time.monotonic() - started
    print(f"\nfuzz {name}: {COUNTS[name]} examples in {took:.0f} s, no violation")


class Captured(logging.Handler):
    """The log lines of the monitoring, formatted."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def secret_in_environment(secret: str) -> Iterator[Captured]:
    """The password in ``$BOOSTER_HOSTILE_SECRET`` (for ``*_env`` keys), and the log."""
    os.environ.update(environment(secret))
    os.environ.pop(UNSET_ENV, None)
    captured = Captured()
    logger = logging.getLogger("aiohttp_prometheus_monitoring")
    logger.addHandler(captured)
    try:
        yield captured
    finally:
        logger.removeHandler(captured)
        for variable in environment(secret):
            del os.environ[variable]


async def _setup(config: Any) -> web.Application:
    app = web.Application()
    await setup_monitoring(config, app)
    return app


@FUZZ_TIMEOUT
def test_property_setup_monitoring() -> None:
    """``setup_monitoring(config, app)``: set up, or WrongConfiguration, fast, short, and
    never showing the password (in the error, its repr, the config's repr, the log)."""

    def property_(spec: Any, secret: str) -> None:
        COUNTS["setup_monitoring"] = COUNTS.get("setup_monitoring", 0) + 1
        config = build(spec, secret)
        with secret_in_environment(secret) as log:
            started = time.perf_counter()
            app, error = attempt(lambda: asyncio.run(_setup(config)))
            took = time.perf_counter() - started
            if error is not None:
                text = str(error)
                assert len(text) < MAX_OUTPUT
                assert error.problems
                assert all("\n" not in problem for problem in error.problems)
                assert_hidden(secret, text, repr(error), *log.lines)
            else:
                monitoring = get_monitoring(app)
                checks = [repr(check.check) for check in monitoring.config.metrics]
                assert_hidden(secret, repr(monitoring.config), *checks, *log.lines)
        assert took < TIME_BOUND, f"took {took:.2f} s"

    run_property("setup_monitoring", property_, examples=400, share=0.6,
                 spec=monitoring_configs(files=False), secret=st.sampled_from(SECRETS))  # fmt: skip


def write_file(directory: Path, data: Any, suffix: str, damage: tuple[int, bytes] | None) -> Path:
    """``data`` as a file of that format (what the format cannot hold, as JSON), maybe
    with bytes inserted at a position (a syntax error, or bytes that are not UTF-8)."""
    content: bytes
    if suffix == ".toml":
        content = toml(data).encode("utf-8", "surrogatepass")
    elif suffix == ".yaml":
        yaml = pytest.importorskip("yaml")
        try:
            content = yaml.safe_dump(data, allow_unicode=True).encode("utf-8", "surrogatepass")
        except Exception:  # what PyYAML cannot write: JSON is YAML too
            content = json.dumps(data).encode()
    else:
        content = json.dumps(data).encode()
    if damage is not None:
        at = damage[0] % (len(content) + 1)
        content = content[:at] + damage[1] + content[at:]
    path = directory / f"monitoring{suffix}"
    path.write_bytes(content)
    return path


def toml(data: Any) -> str:
    """``data`` as TOML: a table's keys as ``"key" = value`` lines; anything else under the
    key ``MONITORING`` (which the exporter unwraps). None has no TOML form: left out."""
    if not isinstance(data, dict):
        data = {"MONITORING": data}
    return "".join(f"{_toml_string(str(k))} = {_toml_value(v)}\n" for k, v in data.items()
                   if v is not None)  # fmt: skip


def _toml_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}", escaped) + '"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(
            value) else repr(value)  # fmt: skip
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        pairs = (f"{_toml_string(str(k))} = {_toml_value(v)}" for k, v in value.items()
                 if v is not None)  # fmt: skip
        return "{" + ", ".join(pairs) + "}"
    return '""'


RAW_FILES = (
    (".yaml", BILLION_LAUGHS),
    (".yaml", "pushgateway:\n  url: http://u:SECRET@gw\n  job: [\n"),
    (".yml", "a: &x 1\nb: *x\n"),
    (".toml", '[pushgateway]\nurl = "http://u:SECRET@gw" x\n'),
    (".json", '{"pushgateway": {"url": "http://u:SECRET@gw", }'),
    (".json", "[" * 100_000),
    (".yaml", "!!python/object/apply:os.system ['true']\n"),
    (".toml", "metrics = [\n"),
    (".json", ""),
    (".yaml", "---\na: 1\n---\nb: 2\n"),
)


def config_files() -> st.SearchStrategy[Any]:
    """Generated configurations in each format, sometimes damaged, and hostile files."""
    damage = st.tuples(st.integers(0, 10_000), st.binary(min_size=1, max_size=4))
    generated = st.tuples(
        monitoring_configs(files=True), st.sampled_from((".json", ".toml", ".yaml")),
        one_of_weighted((3, st.none()), (1, damage)),
    )  # fmt: skip
    raw = st.sampled_from(RAW_FILES).map(lambda pair: ("raw", *pair))
    return one_of_weighted((8, generated), (1, raw))


def materialize(directory: Path, drawn: Any, secret: str) -> Path:
    if drawn[0] == "raw":
        path = directory / f"raw{drawn[1]}"
        path.write_text(drawn[2].replace("SECRET", secret), encoding="utf-8")
        return path
    spec, suffix, damage = drawn
    return write_file(directory, build(spec, secret), suffix, damage)


@FUZZ_TIMEOUT
def test_property_exporter_in_process() -> None:
    """``exporter.main(["--config", FILE, "--check-config"])``: exit 0 and SUCCESS, or exit
    1 and one line per problem; fast, short, never the password."""
    pytest.importorskip("yaml")

    def property_(drawn: Any, secret: str) -> None:
        COUNTS["exporter in-process"] = COUNTS.get("exporter in-process", 0) + 1
        with tempfile.TemporaryDirectory() as directory, secret_in_environment(secret) as log:
            path = materialize(Path(directory), drawn, secret)
            result = run_main(path)
            assert_cli_contract(path, result, secret, TIME_BOUND)
            assert_hidden(secret, *log.lines)

    run_property("exporter in-process", property_, examples=150, share=0.3,
                 drawn=config_files(), secret=st.sampled_from(SECRETS))  # fmt: skip


@FUZZ_TIMEOUT
def test_property_exporter_subprocess() -> None:
    """The same through ``python -m aiohttp_prometheus_monitoring``: what a user runs, with
    its own stdout and stderr encodings (a few examples: each starts an interpreter)."""
    pytest.importorskip("yaml")

    def property_(drawn: Any, secret: str) -> None:
        COUNTS["exporter subprocess"] = COUNTS.get("exporter subprocess", 0) + 1
        with tempfile.TemporaryDirectory() as directory:
            path = materialize(Path(directory), drawn, secret)
            result = run_cli(path, env=environment(secret))
            assert_cli_contract(path, result, secret, 10 * TIME_BOUND)

    run_property("exporter subprocess", property_, examples=16, share=0.1,
                 drawn=config_files(), secret=st.sampled_from(SECRETS))  # fmt: skip
