"""Packaging for aiohttp-booster: one distribution, two import packages.

Tool settings live in pyproject.toml; the package metadata lives here.
"""

from pathlib import Path

from setuptools import setup

HERE = Path(__file__).parent
# Where the project lives (README.md says so too): the repository, and the documentation built
# from its docs/ on every release.
REPOSITORY = "https://github.com/aiohttp-booster/aiohttp-booster"
DOCUMENTATION = "https://aiohttp-booster.readthedocs.io/en/stable/"
KEYWORDS = ["aiohttp", "asyncio", "rabbitmq", "amqp", "aioamqp", "consumer", "producer", "worker",
            "prometheus", "monitoring", "health check", "readiness", "metrics"]  # fmt: skip

# Upper bounds only where we use a dependency's internals or encode its wire format ("Dependency
# bounds" in docs/development.md says which and why): aioamqp (private hooks, fenced in
# aioamqp_ext/_amqp), pamqp (frames encoded by hand beside its own), prometheus-client (its text
# format, reproduced byte for byte in _aiohttp_booster/prometheus.py). aiohttp's internals are
# used only behind a version check with a public fallback, so it has no upper bound.
EXTRAS = {
    "amqp": ["aioamqp>=0.15,<0.16", "pamqp>=3.1,<5"],
    "redis": ["redis>=5.0"],
    "postgres": ["asyncpg>=0.29"],
    "mysql": ["aiomysql>=0.2"],
    "msgpack": ["msgpack>=1.0"],
    # tracing of publishes and handler runs: the API only; the SDK is the application's choice
    "otel": ["opentelemetry-api>=1.20"],
}
EXTRAS["all"] = sorted({req for reqs in EXTRAS.values() for req in reqs})
EXTRAS["test"] = [
    *EXTRAS["all"],
    "pytest>=8",
    "pytest-asyncio>=0.24",
    "pytest-aiohttp>=1.0.5",  # its AiohttpClient type, which the testing examples use
    "pytest-timeout>=2.3",
    "build>=1.0",
    "twine>=5.0",  # twine check --strict on the built sdist and wheel (tests/test_foundation.py)
    "pyyaml>=6.0",
    "hypothesis>=6.100",
    # the tracing tests: the real SDK, and the instrumentations our spans must join
    "opentelemetry-sdk>=1.20",
    "opentelemetry-instrumentation-aiohttp-server>=0.45b0",
    # (aio-pika itself comes with the bench extra, which scripts/test installs too: in the test
    # extra it would clash with the oldest pamqp the dependency-range run pins)
    "opentelemetry-instrumentation-aio-pika>=0.45b0",
]
# The benchmarks' contenders and profilers (python -m benchmarks, scripts/bench).
EXTRAS["bench"] = ["aio-pika>=9.4", "faststream[rabbit]>=0.5", "py-spy>=0.3", "pyinstrument>=4.6",
                   "opentelemetry-sdk>=1.20"]  # fmt: skip
EXTRAS["lint"] = ["ruff>=0.6", "mypy>=1.11", "tox>=4"]  # tox: the dependency-range envs
EXTRAS["docs"] = ["sphinx>=7.2", "myst-parser>=3.0", "furo>=2024.1"]
EXTRAS["dev"] = sorted({*EXTRAS["test"], *EXTRAS["lint"], *EXTRAS["docs"], "tox>=4"})

setup(
    name="aiohttp-booster",
    version="1.0.0",
    description=(
        "Booster for aiohttp services: RabbitMQ producer/consumer base classes (aioamqp_ext) "
        "and Prometheus health-check monitoring (aiohttp_prometheus_monitoring)"
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    author="aiohttp-booster developers",  # as in LICENSE
    # a placeholder address until the project has a public one: replace before uploading
    maintainer="aiohttp-booster maintainers",
    maintainer_email="maintainers@aiohttp-booster.invalid",
    url=REPOSITORY,
    project_urls={
        "Homepage": REPOSITORY,
        "Documentation": DOCUMENTATION,
        "Changelog": f"{DOCUMENTATION}changes.html",
        "Source": REPOSITORY,
        "Issues": f"{REPOSITORY}/issues",
    },
    keywords=KEYWORDS,
    python_requires=">=3.11",
    packages=[
        "_aiohttp_booster",
        "aioamqp_ext",
        "aioamqp_ext._amqp",
        "aiohttp_prometheus_monitoring",
        "aiohttp_prometheus_monitoring.metrics",
    ],
    package_data={
        "_aiohttp_booster": ["py.typed"],
        "aioamqp_ext": ["py.typed"],
        "aiohttp_prometheus_monitoring": ["py.typed"],
    },
    install_requires=["aiohttp>=3.10.7", "prometheus-client>=0.24,<0.27"],
    extras_require=EXTRAS,
    # the fixtures of aioamqp_ext.testing (amqp_harness), inert unless a test asks for one
    entry_points={"pytest11": ["aiohttp_booster = _aiohttp_booster.pytest_plugin"]},
    classifiers=[
        "Development Status :: 5 - Production/Stable",
        "Framework :: AsyncIO",
        "Framework :: aiohttp",
        "Framework :: Pytest",
        "Intended Audience :: Developers",
        "Operating System :: OS Independent",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Topic :: Internet :: WWW/HTTP",
        "Topic :: System :: Monitoring",
        "Topic :: System :: Networking",
        "Typing :: Typed",
    ],
    zip_safe=False,
)
