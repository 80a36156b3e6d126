"""The skeleton: packaging, optional extras, the services script and the shared fixtures."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import tarfile
import venv
import zipfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pytest

from _aiohttp_booster.optional import require
from aioamqp_ext._amqp import check_aioamqp
from tests.conftest import amqp_connect

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["aioamqp_ext", "aiohttp_prometheus_monitoring"]


@pytest.mark.parametrize("package", PACKAGES)
def test_package_exposes_installed_version(package: str) -> None:
    """Users read __version__ to report bugs; it must match what pip installed."""
    module = importlib.import_module(package)
    assert module.__version__ == version("aiohttp-booster")
    assert module.__all__, "__init__ must declare its public names"


@pytest.mark.parametrize("package", PACKAGES)
def test_package_is_typed(package: str) -> None:
    """py.typed tells type checkers to trust our annotations (PEP 561)."""
    module = importlib.import_module(package)
    assert module.__file__ is not None
    assert (Path(module.__file__).parent / "py.typed").is_file()


def test_missing_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing optional driver tells the user which extra to install."""
    monkeypatch.setitem(sys.modules, "redis", None)  # None in sys.modules makes import fail
    with pytest.raises(ImportError, match=r"pip install 'aiohttp-booster\[redis\]'"):
        require("redis", "redis")


@pytest.mark.parametrize("module", ["aioamqp_ext", "aioamqp_ext.errors", "aioamqp_ext.config"])
@pytest.mark.parametrize("missing", ["aioamqp", "pamqp"])
def test_aioamqp_ext_without_the_amqp_extra_names_the_extra(module: str, missing: str) -> None:
    """Without aioamqp or pamqp, any part of aioamqp_ext says to install the amqp extra, not
    ``No module named 'pamqp'`` (importing it in a process where the driver is missing)."""
    code = (
        f"import sys; sys.modules[{missing!r}] = None\n"
        f"try:\n    import {module}\n"
        "except ImportError as exc:\n    print(exc)\nelse:\n    print('imported')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (
        f"{missing!r} is not installed; install it with: pip install 'aiohttp-booster[amqp]'"
    )


@pytest.mark.parametrize(
    ("version", "accepted"),
    [("0.15.0", True), ("0.15.1", True), ("0.14.0", False), ("0.16.0", False), ("1.0", False),
     ("0.16.0rc1", False), ("unknown", False)],
)  # fmt: skip
def test_aioamqp_outside_the_tested_range_is_refused_at_import(
    version: str, accepted: bool
) -> None:
    """Our private hooks into aioamqp are tested with 0.15 only: another release must fail
    loudly at import, naming what to install, not misbehave later."""
    if accepted:
        check_aioamqp(version)
        return
    with pytest.raises(
        ImportError, match=rf"found aioamqp {version}: pip install 'aioamqp>=0.15,<0.16'"
    ):
        check_aioamqp(version)


def test_libraries_do_not_import_each_other() -> None:
    """docs/design.md: each library can be used without loading the other."""
    code = (
        "import sys, aioamqp_ext; assert 'aiohttp_prometheus_monitoring' not in sys.modules;"
        "del sys.modules['aioamqp_ext'];"
        "import aiohttp_prometheus_monitoring; assert 'aioamqp_ext' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_services_script_finds_the_local_services() -> None:
    """scripts/services is how a newcomer brings up RabbitMQ, Redis and PostgreSQL."""
    result = subprocess.run(
        [ROOT / "scripts" / "services", "amqp", "redis", "postgres"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [line.split()[:2] for line in result.stdout.splitlines()] == [
        ["ok", "amqp"], ["ok", "redis"], ["ok", "postgres"],
    ]  # fmt: skip


def test_services_script_refuses_non_loopback_targets() -> None:
    """Our scripts never reach beyond loopback, whatever the environment says."""
    env = {**os.environ, "TEST_REDIS_URL": "redis://192.0.2.1:6379/0"}
    result = subprocess.run(
        [ROOT / "scripts" / "services", "redis"],
        capture_output=True, text=True, timeout=30, check=False, env=env,
    )  # fmt: skip
    assert result.returncode != 0
    assert "TEST_REDIS_URL: '192.0.2.1' is not a loopback address" in result.stderr


def test_services_script_reports_a_service_it_cannot_start() -> None:
    """A service on a port nobody listens on is reported in one line, quickly."""
    env = {**os.environ, "TEST_REDIS_URL": "redis://127.0.0.1:1/0"}
    result = subprocess.run(
        [ROOT / "scripts" / "services", "redis"],
        capture_output=True, text=True, timeout=30, check=False, env=env,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "MISSING  redis    nothing answers on 127.0.0.1:1 (TEST_REDIS_URL); start it there"
    ]


async def test_redis_prefix_fixture_gives_a_working_namespace(
    redis_url: str, redis_prefix: str
) -> None:
    """The Redis fixture talks to the real server and hands out a private key prefix."""
    import redis.asyncio as redis

    client = redis.Redis.from_url(redis_url)
    try:
        await client.set(f"{redis_prefix}k", b"v", ex=60)
        assert await client.get(f"{redis_prefix}k") == b"v"
    finally:
        await client.aclose()


async def test_pg_schema_fixture_gives_a_private_schema(pg_dsn: str, pg_schema: str) -> None:
    """The PostgreSQL fixture gives a schema of the test's own on the real server."""
    import asyncpg

    conn = await asyncpg.connect(pg_dsn, timeout=5)
    try:
        await conn.execute(f'CREATE TABLE "{pg_schema}".t (x int)')
        await conn.execute(f'INSERT INTO "{pg_schema}".t VALUES (42)')
        assert await conn.fetchval(f'SELECT x FROM "{pg_schema}".t') == 42
    finally:
        await conn.close()


async def test_amqp_names_fixture_names_are_usable_on_the_broker(amqp_url: str, amqp_names) -> None:
    """The AMQP fixture's names can be declared on the real broker (and are removed afterwards)."""
    transport, protocol = await amqp_connect(amqp_url)
    try:
        channel = await protocol.channel()
        await channel.exchange_declare(amqp_names.exchange, "topic", durable=True)
        result = await channel.queue_declare(amqp_names.queue, durable=True)
        assert result["queue"] == amqp_names.queue
    finally:
        await protocol.close()
        transport.close()


# Run in the venv with the public modules' names as arguments: import each, printing per module
# "ok" or the ImportError's message.
IMPORT_EACH = """
import importlib, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ImportError as exc:
        found[name] = str(exc)
    else:
        found[name] = "ok"
print(json.dumps(found))
"""
# What each module needs beyond the core (aiohttp, prometheus-client): None for nothing.
EXTRA_OF = {
    "aioamqp_ext": "amqp",
    "aiohttp_prometheus_monitoring.metrics.amqp": "amqp",
    "aiohttp_prometheus_monitoring.metrics.redis": "redis",
    "aiohttp_prometheus_monitoring.metrics.postgres": "postgres",
    "aiohttp_prometheus_monitoring.metrics.mysql": "mysql",
}


# The wheel holds the import packages and its metadata, nothing else.
WHEEL_TOP = {"_aiohttp_booster", "aioamqp_ext", "aiohttp_prometheus_monitoring"}
# What a downstream packager builds, tests and documents the release from: every file of these
# directories (as on disk: caches and build output aside), and these files.
SDIST_TREES = ["tests", "docs", "examples", "contrib", "benchmarks", "scripts"]
SDIST_FILES = ["LICENSE", "CHANGES.md", "README.md", "setup.py", "pyproject.toml", "tox.ini",
               "MANIFEST.in"]  # fmt: skip


def files_on_disk(tree: str) -> set[str]:
    """The files of ``tree`` a release carries: not caches, not the built docs."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / tree).rglob("*")
        if path.is_file()
        and not any(part.startswith(".") or part == "__pycache__" for part in path.parts)
        and path.suffix not in {".pyc", ".pyo"}
        and not path.relative_to(ROOT).as_posix().startswith("docs/_build/")
    }


@dataclass(frozen=True)
class Artefacts:
    sdist: Path
    wheel: Path


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Artefacts:
    """The sdist and the wheel, as `python -m build` makes them (the wheel from the sdist)."""
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", dist, ROOT],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    (sdist,) = dist.glob("aiohttp_booster-*.tar.gz")
    (wheel,) = dist.glob("aiohttp_booster-*.whl")
    return Artefacts(sdist, wheel)


@pytest.mark.slow
def test_sdist_holds_what_a_packager_needs(artefacts: Artefacts) -> None:
    """The whole test suite with its conftest files, the docs' sources, the examples and
    contrib the tests run, the scripts they call, LICENSE and CHANGES."""
    with tarfile.open(artefacts.sdist) as sdist:
        prefix = f"aiohttp_booster-{version('aiohttp-booster')}/"
        names = {name.removeprefix(prefix) for name in sdist.getnames()}
    assert {"tests/conftest.py", "tests/amqp/conftest.py", "docs/conf.py", "docs/quickstart.md",
            "examples/worker.py", "contrib/prometheus/alerts.yml"} <= names  # fmt: skip
    assert set(SDIST_FILES) <= names
    for tree in SDIST_TREES:
        assert sorted(files_on_disk(tree) - names) == [], tree
    assert not [n for n in names if n.startswith("docs/_build/") or n.endswith(".pyc")]


@pytest.mark.slow
def test_wheel_holds_the_two_packages_only(artefacts: Artefacts) -> None:
    """Tests, docs and examples stay in the sdist; the metadata is a 1.0's."""
    with zipfile.ZipFile(artefacts.wheel) as wheel:
        names = wheel.namelist()
        info = f"aiohttp_booster-{version('aiohttp-booster')}.dist-info"
        metadata = wheel.read(f"{info}/METADATA").decode()
    assert {name.split("/")[0] for name in names} == WHEEL_TOP | {info}
    assert "Classifier: Development Status :: 5 - Production/Stable" in metadata
    for label in ("Homepage", "Documentation", "Changelog", "Source"):
        assert f"Project-URL: {label}, https://" in metadata
    assert "Author: aiohttp-booster developers" in metadata
    assert "Maintainer: aiohttp-booster maintainers" in metadata
    assert "Keywords: aiohttp,asyncio,rabbitmq" in metadata


@pytest.mark.slow
def test_twine_check_strict_passes_on_both(artefacts: Artefacts) -> None:
    """What PyPI would refuse or render badly (the long description above all) fails here."""
    pytest.importorskip("twine", reason="twine is in the test extra")
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", artefacts.sdist, artefacts.wheel],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2


def test_long_description_has_no_link_that_breaks_on_pypi() -> None:
    """PyPI shows README.md without the repository around it: every link is absolute."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)]+)\)", readme) + re.findall(r"<(https?://[^>]+)>", readme)
    assert targets
    assert [t for t in targets if not t.startswith("https://")] == []


@pytest.mark.slow
def test_wheel_installs_and_imports_in_a_fresh_venv(artefacts: Artefacts, tmp_path: Path) -> None:
    """The wheel carries both packages and py.typed, and installs; without extras every public
    module imports or raises the ImportError naming its extra; with the talk's extras, all
    of it imports, and the 2018 samples and example app run on it unchanged."""
    wheel = artefacts.wheel
    names = zipfile.ZipFile(wheel).namelist()
    assert "aioamqp_ext/py.typed" in names
    assert "aiohttp_prometheus_monitoring/py.typed" in names
    assert "_aiohttp_booster/py.typed" in names
    assert "aioamqp_ext/_amqp/__init__.py" in names
    assert "aiohttp_prometheus_monitoring/metrics/__init__.py" in names
    assert not any(name.startswith("tests/") for name in names)

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"

    def pip_install(requirement: str) -> None:
        subprocess.run(
            [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", requirement],
            check=True, capture_output=True, timeout=600,
        )  # fmt: skip

    pip_install(str(wheel))  # no extras: the core requirements only
    modules = [
        name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for name in names
        if name.endswith(".py") and not name.startswith("_")
    ]
    public = [m for m in modules if not any(part.startswith("_") for part in m.split("."))]
    assert {"aioamqp_ext.errors", "aiohttp_prometheus_monitoring.worker"} <= set(public)
    out = subprocess.run(
        [python, "-c", IMPORT_EACH, *public], check=True, capture_output=True, text=True,
        cwd=tmp_path,
    )  # fmt: skip
    found = json.loads(out.stdout)
    assert set(found) == set(public)
    for module, outcome in found.items():
        extra = next((e for m, e in EXTRA_OF.items() if module.startswith(m)), None)
        if extra is None:
            assert outcome == "ok", f"{module}: {outcome}"
        else:
            assert f"pip install 'aiohttp-booster[{extra}]'" in outcome, f"{module}: {outcome}"

    pip_install(f"{wheel}[amqp,redis,postgres]")
    code = (
        "import aioamqp_ext, aiohttp_prometheus_monitoring, aioamqp, redis.asyncio, asyncpg;"
        "import aiohttp_prometheus_monitoring.metrics.amqp;"
        "print(aioamqp_ext.__version__)"
    )
    out = subprocess.run(
        [python, "-c", code], check=True, capture_output=True, text=True, cwd=tmp_path
    )
    assert out.stdout.strip() == version("aiohttp-booster")

    # The 2018 samples and example app, run by the installed wheel (not this tree): the
    # compatibility tests again, their scripts under this venv's Python. The README's sample
    # config has a MySQL check, which needed the mysql extra in 2018 too.
    pip_install(f"{wheel}[amqp,redis,postgres,mysql]")
    compat = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/compat"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "BOOSTER_SAMPLES_PYTHON": str(python)},
    )  # fmt: skip
    assert compat.returncode == 0, compat.stdout[-3000:] + compat.stderr[-2000:]
