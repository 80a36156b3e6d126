"""A RabbitMQ cluster of our own: three nodes beside the machine's broker, on loopback ports.

The nodes run as the ``rabbitmq`` user (so they share the machine's Erlang cookie, which
``rabbitmqctl`` run as root also uses), each with its own node name, AMQP and distribution
ports, data, log, config and plugins files under one directory. Nothing here touches the
machine's own node: every ``rabbitmqctl`` call names one of ours with ``-n``. The cluster is
started once for the tests of this folder and always torn down, leftovers of a crashed run
first; a lock file keeps two test sessions on this machine from using it at once.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.amqp.conftest import broker_answers, rabbitmqctl
from tests.conftest import IN_CI, AmqpNames, amqp_connect

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")  # the Debian package's own launcher
RABBITMQ_HOME = "/var/lib/rabbitmq"  # holds the Erlang cookie of the rabbitmq user
BASE = Path(tempfile.gettempdir()) / "aiohttp-booster-cluster"
LOCK = Path(tempfile.gettempdir()) / "aiohttp-booster-cluster.lock"
# Above the ephemeral port range (32768-60999), away from RabbitMQ's 5672, 15672, 15692,
# 25672 and the CLI tools' 35672-35682: no client socket or other broker takes them.
AMQP_PORTS = (61721, 61722, 61723)
DIST_PORTS = (61731, 61732, 61733)
BOOT_TIMEOUT = 60.0


@dataclass(frozen=True)
class Node:
    """One node of the test cluster."""

    name: str  # the Erlang node name, e.g. aiohttpbooster1@localhost
    amqp_port: int
    dist_port: int
    home: Path

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    def __str__(self) -> str:
        return self.name.partition("@")[0]


@dataclass
class Cluster:
    """Three nodes, their server processes, and how to stop, start and inspect them."""

    nodes: tuple[Node, ...]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    stopped: set[str] = field(default_factory=set)

    def urls(self, first: int) -> list[str]:
        """Every node's URL, starting with node ``first`` (0-based) and going round."""
        order = self.nodes[first:] + self.nodes[:first]
        return [node.url for node in order]

    @property
    def running(self) -> list[Node]:
        return [node for node in self.nodes if node.name not in self.stopped]

    def _environment(self, node: Node) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": RABBITMQ_HOME,
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(node.amqp_port),
            "RABBITMQ_DIST_PORT": str(node.dist_port),
            "RABBITMQ_MNESIA_BASE": str(node.home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(node.home / "log"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(node.home / "plugins-expand"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(node.home / "enabled_plugins"),
            # our own (empty) files instead of /etc/rabbitmq's, which name the machine's node
            # and its listener on 5672
            "RABBITMQ_CONF_ENV_FILE": str(node.home / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(node.home / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(node.home / "advanced.config"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def _prepare(self, node: Node) -> None:
        """The node's directory and empty config, env and plugins files, owned by rabbitmq."""
        node.home.mkdir(parents=True, exist_ok=True)
        for name, text in (("rabbitmq.conf", ""), ("rabbitmq-env.conf", ""),
                           ("advanced.config", "[].\n"), ("enabled_plugins", "[].\n")):  # fmt: skip
            (node.home / name).write_text(text)
        user = pwd.getpwnam("rabbitmq")
        for path in (BASE, *node.home.rglob("*"), node.home):
            os.chown(path, user.pw_uid, user.pw_gid)

    def _spawn(self, node: Node) -> None:
        with (node.home / "server.out").open("ab") as out:
            self.processes[node.name] = subprocess.Popen(
                ["runuser", "-u", "rabbitmq", "--", str(SERVER)],
                env=self._environment(node), cwd=node.home,
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip

    async def _booted(self, node: Node) -> None:
        """Wait until ``node`` answers AMQP; fail at once if its server exits."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BOOT_TIMEOUT
        process = self.processes[node.name]
        while not await broker_answers(node.url):
            if process.poll() is not None:
                tail = (node.home / "server.out").read_text(errors="replace")[-2000:]
                raise AssertionError(f"{node.name} exited with {process.returncode}:\n{tail}")
            assert loop.time() < deadline, f"{node.name} did not boot within {BOOT_TIMEOUT:g} s"
            await asyncio.sleep(0.1)  # polling the port: a booting node has no event to await

    async def start(self, node: Node) -> None:
        """Start a stopped node and wait until it accepts AMQP connections (it rejoins)."""
        self._spawn(node)
        await self._booted(node)
        self.stopped.discard(node.name)

    async def stop(self, node: Node) -> None:
        """Stop ``node`` as an operator would (``rabbitmqctl stop``): the Erlang node exits,
        its clients' connections drop; returns once its server process is gone."""
        self.stopped.add(node.name)
        await rabbitmqctl("-n", node.name, "stop")
        process = self.processes.pop(node.name)
        await asyncio.to_thread(process.wait, 30)

    async def kill(self, node: Node) -> None:
        """Crash ``node``: SIGKILL to its Erlang VM (and launcher), as a lost machine would
        look to its peers and clients, minus the network timeouts; returns once it is gone."""
        self.stopped.add(node.name)
        kill_leftovers([node])
        process = self.processes.pop(node.name)
        await asyncio.to_thread(process.wait, 30)

    async def node_of(self, connection_name: str, timeout: float = 10.0) -> Node:
        """The node a client connection (found by its client-provided name) is open on."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        by_port = {str(node.amqp_port): node for node in self.nodes}
        while True:
            listing = await rabbitmqctl(
                "-n", self.running[0].name, "--no-table-headers",
                "list_connections", "port", "client_properties",
            )  # fmt: skip
            for line in listing.splitlines():
                port, _, properties = line.partition("\t")
                if f'{{"connection_name","{connection_name}"}}' in properties:
                    return by_port[port]
            assert loop.time() < deadline, f"no connection named {connection_name!r}"
            await asyncio.sleep(0.1)  # a new connection is listed once its handshake is done

    async def leader_of(self, queue: str) -> str:
        """The node leading a quorum queue (its name without ``@host``)."""
        listing = await rabbitmqctl(
            "-n", self.running[0].name, "--no-table-headers", "list_queues", "name", "leader"
        )
        for line in listing.splitlines():
            name, _, leader = line.partition("\t")
            if name == queue:
                return leader.partition("@")[0]
        raise AssertionError(f"no queue {queue!r} in the cluster")

    async def boot(self) -> None:
        """Start the three nodes at once, then join the second and third to the first."""
        for node in self.nodes:
            self._prepare(node)
            self._spawn(node)
        await asyncio.gather(*(self._booted(node) for node in self.nodes))
        first = self.nodes[0]
        for node in self.nodes[1:]:
            await rabbitmqctl("-n", node.name, "stop_app")
            await rabbitmqctl("-n", node.name, "join_cluster", first.name)
            await rabbitmqctl("-n", node.name, "start_app")
        status = await rabbitmqctl("-n", first.name, "cluster_status", "--formatter", "json")
        assert all(node.name in status for node in self.nodes), status

    def tear_down(self) -> None:
        """Stop every node (politely, then by force), remove the directories; never raises."""
        stoppers = []
        for node in self.nodes:
            if node.name in self.processes:
                stoppers.append(subprocess.Popen(
                    ["rabbitmqctl", "-q", "-n", node.name, "stop"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                ))  # fmt: skip
        deadline = time.monotonic() + 30
        for process in [*stoppers, *self.processes.values()]:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        kill_leftovers(self.nodes)
        shutil.rmtree(BASE, ignore_errors=True)


def _beams_of(nodes: Sequence[Node]) -> list[int]:
    """Process ids of the Erlang VMs (and their launchers) running one of ``nodes``."""
    wanted = {f"RABBITMQ_NODENAME={node.name}".encode() for node in nodes}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = set((entry / "environ").read_bytes().split(b"\0"))
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if environ & wanted:
            found.append(int(entry.name))
    return found


def kill_leftovers(nodes: Sequence[Node]) -> None:
    """SIGKILL whatever still runs one of our nodes (a crashed run's, or a hung stop)."""
    for pid in _beams_of(nodes):
        with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _beams_of(nodes) and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting for the kernel to reap them; there is no event for it


def _missing() -> str | None:
    """Why this machine cannot run the cluster, or None."""
    if not SERVER.exists() or shutil.which("rabbitmqctl") is None:
        return "RabbitMQ is not installed (rabbitmq-server, rabbitmqctl); run scripts/services"
    if not Path(RABBITMQ_HOME, ".erlang.cookie").exists():
        return f"no Erlang cookie in {RABBITMQ_HOME}: has rabbitmq-server ever run here?"
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        return "the test cluster runs its nodes as the rabbitmq user: run the tests as root"
    return None


@contextlib.contextmanager
def _exclusive(timeout: float) -> Iterator[None]:
    """Hold the machine-wide lock of the cluster's names and ports (another checkout or
    session running these tests waits for it); the kernel releases it if we crash."""
    with LOCK.open("a") as lock:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"another test session held {LOCK} for {timeout:g} s")
                time.sleep(0.5)  # the other session's cluster tests take about 90 s
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="package")
def cluster_session() -> Iterator[Cluster]:
    """The three-node cluster, started once for tests/cluster (as if session-scoped, but
    stopped and removed as soon as its last test is done, not at the end of the suite)."""
    problem = _missing()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"the cluster tests cannot run: {problem}", pytrace=False)
        pytest.skip(problem)
    nodes = tuple(
        Node(f"aiohttpbooster{n}@localhost", amqp, dist, BASE / f"node{n}")
        for n, amqp, dist in zip((1, 2, 3), AMQP_PORTS, DIST_PORTS, strict=True)
    )
    with _exclusive(timeout=240):
        kill_leftovers(nodes)  # a previous run that crashed before its tear-down
        shutil.rmtree(BASE, ignore_errors=True)
        cluster = Cluster(nodes)
        atexit.register(cluster.tear_down)  # also when pytest is interrupted mid-session
        started = time.monotonic()
        try:
            asyncio.run(cluster.boot())
            print(f"\ncluster of {len(nodes)} nodes up in {time.monotonic() - started:.1f} s")
            yield cluster
        finally:
            cluster.tear_down()
            atexit.unregister(cluster.tear_down)


@pytest.fixture
async def cluster(cluster_session: Cluster) -> AsyncIterator[Cluster]:
    """The cluster, every node running again after the test, whatever it stopped."""
    yield cluster_session
    for node in cluster_session.nodes:
        if node.name in cluster_session.stopped:
            await cluster_session.start(node)


@pytest.fixture
async def cluster_names(cluster: Cluster, unique_name: str) -> AsyncIterator[AmqpNames]:
    """Fresh exchange/queue names; deleted from the cluster afterwards."""
    names = AmqpNames(
        exchange=f"{unique_name}.x", queue=f"{unique_name}.q",
        dead_letter_exchange=f"{unique_name}.dlx",
    )  # fmt: skip
    yield names
    transport, protocol = await amqp_connect(cluster.nodes[0].url)
    try:
        channel = await protocol.channel()
        await channel.queue_delete(names.queue)
        await channel.exchange_delete(names.exchange)
    finally:
        await protocol.close()
        transport.close()
