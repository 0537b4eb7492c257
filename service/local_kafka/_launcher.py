"""A real Apache Kafka broker (KRaft, broker+controller in one JVM) on 127.0.0.1, no Docker.

The jars come from Maven Central through Maven, once, into a cache folder; every broker
keeps its configuration, data, logs and pid file under its own folder, so several can run
side by side::

    kafka = LocalKafka(LocalKafkaSettings(dir=Path("/tmp/k1")))
    bootstrap = kafka.start()   # "127.0.0.1:PORT", the broker keeps running
    kafka.stop()

With ``brokers=3`` the folder holds a cluster instead (``_cluster.py``): one sub-folder per
node, each laid out like a single broker's folder.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

import actionstate.service.local_kafka._cluster as cluster_mod
from actionstate.service import _process
from actionstate.service._errors import LocalKafkaError
from actionstate.service.local_kafka._maven import is_installed, resolve_kafka_jars

__all__ = ["BrokerStatus", "LocalKafka", "LocalKafkaError", "LocalKafkaSettings", "Progress"]

Progress = Callable[[str], None]
"""Receives one human-readable line per step of a long operation."""

_MIN_JAVA = 17
_JAVA_HINT = "install a JDK 17+: apt-get install openjdk-17-jre-headless"
_log = logging.getLogger("actionstate.service.local_kafka")


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "actionstate"


class LocalKafkaSettings(BaseSettings):
    """Where and how to run a local broker.

    Environment variables: ``ACTIONSTATE_CACHE_DIR`` (jar cache root) and
    ``ACTIONSTATE_KAFKA_<FIELD>`` for the other fields (``ACTIONSTATE_KAFKA_JAVA`` ...).
    """

    model_config = SettingsConfigDict(
        env_prefix="ACTIONSTATE_KAFKA_",
        frozen=True,
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
    )

    dir: Path = Path(".actionstate")
    """Folder holding this broker's config, data, logs and pid file."""
    version: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$")] = "4.1.1"
    """Apache Kafka version (``org.apache.kafka:kafka_2.13``)."""
    cache_dir: Annotated[Path, Field(validation_alias="ACTIONSTATE_CACHE_DIR")] = Field(
        default_factory=_default_cache_dir
    )
    """Root of the jar cache; jars live in ``<cache_dir>/kafka-<version>/``."""
    java: str = "java"
    """The ``java`` executable (name on PATH or a path)."""
    mvn: str = "mvn"
    """The Maven executable (name on PATH or a path)."""
    heap: Annotated[str | None, Field(pattern=r"^\d+[kKmMgG]?$")] = None
    """Maximum JVM heap of each broker (``-Xmx``); default 512m alone, 384m per cluster node."""
    brokers: Annotated[int, Field(ge=1, le=9)] = 1
    """Nodes to start: 1 is a single broker in ``dir``; more is a KRaft cluster of combined
    broker+controller nodes in ``dir/node-<id>`` (an existing cluster folder keeps its count)."""
    start_timeout: float = 120.0
    """Seconds to wait for the broker to accept connections."""
    stop_timeout: float = 30.0
    """Seconds to wait after SIGTERM before SIGKILL."""

    @property
    def jars_dir(self) -> Path:
        """The folder holding this version's jars."""
        return self.cache_dir.expanduser() / f"kafka-{self.version}"


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    """Whether the broker of a folder runs, and where. For a cluster: ``running`` when every
    node runs, ``bootstrap`` lists the running nodes, ``nodes`` holds each node's status
    (with its ``node_id``) and ``pid`` is None."""

    running: bool
    dir: Path
    pid: int | None = None
    bootstrap: str | None = None
    node_id: int | None = None
    nodes: tuple[BrokerStatus, ...] = ()


@dataclass(frozen=True, slots=True)
class _Ports:
    broker: int
    controller: int


@dataclass(frozen=True, slots=True)
class _Role:
    """A node's place in its cluster: what its server.properties and formatting depend on."""

    node_id: int
    ports: _Ports
    cluster_id: str
    voters: str  # controller.quorum.voters, empty for a single broker
    replicas: int  # replication factor of the internal topics


def _quiet(_: str) -> None:
    pass


class LocalKafka:
    """Installs, starts, stops and reports on the local broker (or cluster) living in
    ``settings.dir``."""

    def __init__(self, settings: LocalKafkaSettings | None = None) -> None:
        self.settings = settings if settings is not None else LocalKafkaSettings()
        self.dir = self.settings.dir.expanduser().resolve()
        self._proc: subprocess.Popen[bytes] | None = None
        # Set on the nodes a cluster makes; None for a broker of its own.
        self._role: _Role | None = None
        self._cluster_cache: cluster_mod.Cluster | None = None

    # -- files ---------------------------------------------------------------------------
    @property
    def _props(self) -> Path:
        return self.dir / "server.properties"

    @property
    def _data(self) -> Path:
        return self.dir / "data"

    @property
    def _logs(self) -> Path:
        return self.dir / "logs"

    @property
    def _pid_file(self) -> Path:
        return self.dir / "broker.pid"

    @property
    def _state_file(self) -> Path:
        return self.dir / "broker.json"

    @property
    def server_log(self) -> Path:
        """The broker's log4j log file."""
        return self._logs / "server.log"

    @property
    def console_log(self) -> Path:
        """The JVM's stdout/stderr (start-up failures show up here)."""
        return self._logs / "console.log"

    # -- public API ----------------------------------------------------------------------
    def install(self, progress: Progress = _quiet) -> Path:
        """Resolve the Kafka jars into the cache (only the first time) and return their folder."""
        jars = self.settings.jars_dir
        if is_installed(jars):
            return jars
        progress(
            f"resolving Apache Kafka {self.settings.version} jars from Maven Central with "
            f"Maven into {jars} (first run only)"
        )
        return resolve_kafka_jars(jars, kafka_version=self.settings.version, mvn=self.settings.mvn)

    def start(self, progress: Progress = _quiet) -> str:
        """Start the broker (or find it running) and return its bootstrap address.

        On a folder that already holds a broker's data the data is kept, and so are the
        ports when they are still free. Returns once the broker answers a metadata request.
        A cluster returns once every node is in the metadata; its bootstrap address lists
        them all (``127.0.0.1:A,127.0.0.1:B,127.0.0.1:C``).
        """
        cluster = self._cluster()
        if cluster is not None:
            return cluster.start(progress)
        self._refuse_node_folder()
        self.dir.mkdir(parents=True, exist_ok=True)
        # One start or stop at a time per folder, across processes.
        with _process.folder_lock(self.dir / ".lock"):
            current = self.status()
            if current.running and current.bootstrap is not None:
                progress(f"Kafka broker already running in {self.dir} (pid {current.pid})")
                return current.bootstrap
            java = self._java()
            jars = self.install(progress)
            bootstrap = self._spawn(java, jars, progress)
            self._await(bootstrap, progress)
            return bootstrap

    def stop(self, *, kill: bool = False) -> int | None:
        """Stop the broker this folder's pid file names; return its pid, or None if none ran.

        SIGTERM first (a clean shutdown), SIGKILL after ``stop_timeout`` seconds; ``kill``
        sends SIGKILL at once (a crash, for tests). A cluster stops every node and returns
        the pid of the last one stopped.
        """
        cluster = self._cluster()
        if cluster is not None:
            stopped = cluster.stop(kill=kill)
            return stopped[-1][1] if stopped else None
        if not self.dir.is_dir():
            return None
        with _process.folder_lock(self.dir / ".lock"):
            return self._stop(kill=kill)

    def stop_node(self, node_id: int, *, kill: bool = False) -> int | None:
        """Stop one node of this folder's cluster (SIGKILL at once with ``kill``), keeping its
        data and ports; its pid, or None when it was not running."""
        return self._require_cluster().stop_node(node_id, kill=kill)

    def start_node(self, node_id: int, progress: Progress = _quiet) -> str:
        """Start one node of this folder's cluster again (its data and ports kept); returns
        that node's own bootstrap address once it answers."""
        return self._require_cluster().start_node(node_id, progress)

    def status(self) -> BrokerStatus:
        """Whether this folder's broker process runs, with its pid and bootstrap address."""
        cluster = self._cluster()
        if cluster is not None:
            return cluster.status()
        pid = self._running_pid()
        if pid is None:
            return BrokerStatus(running=False, dir=self.dir)
        ports = self._load_state()[1]
        bootstrap = f"127.0.0.1:{ports.broker}" if ports is not None else None
        return BrokerStatus(running=True, dir=self.dir, pid=pid, bootstrap=bootstrap)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the JVM console output and of the broker log."""
        parts = []
        for path in (self.console_log, self.server_log):
            try:
                text = path.read_text(encoding="utf-8", errors="replace").strip()
            except OSError:
                continue
            if text:
                tail = "\n".join(text.splitlines()[-lines:])
                parts.append(f"[{path}]\n{tail}")
        return "\n".join(parts)

    # -- cluster -------------------------------------------------------------------------
    def _cluster(self) -> cluster_mod.Cluster | None:
        if self._role is not None:
            return None
        if self._cluster_cache is None and (
            self.settings.brokers > 1 or cluster_mod.is_cluster_dir(self.dir)
        ):
            self._cluster_cache = cluster_mod.Cluster(self)
        return self._cluster_cache

    def _require_cluster(self) -> cluster_mod.Cluster:
        cluster = self._cluster()
        if cluster is None:
            raise LocalKafkaError(
                f"{self.dir} holds a single broker, not a cluster; start one with --brokers 3"
            )
        return cluster

    def _refuse_node_folder(self) -> None:
        if cluster_mod.node_of(self._state_file) is not None:
            raise LocalKafkaError(
                f"{self.dir} is a node of the cluster in {self.dir.parent}: start it with "
                f"`actionstate kafka start --dir {self.dir.parent} --node N`"
            )

    # -- steps ---------------------------------------------------------------------------
    def _spawn(self, java: str, jars: Path, progress: Progress) -> str:
        """Write the config, format the storage the first time and launch the JVM; returns
        the bootstrap address it will answer on."""
        self._logs.mkdir(parents=True, exist_ok=True)
        cluster_id, ports = self._prepare()
        if not (self._data / "meta.properties").is_file():
            progress(f"formatting KRaft storage in {self._data}")
            self._format(java, jars, cluster_id)
        bootstrap = f"127.0.0.1:{ports.broker}"
        progress(f"starting Kafka {self.settings.version} on {bootstrap} (logs: {self._logs})")
        self._launch(java, jars)
        return bootstrap

    def _await(self, bootstrap: str, progress: Progress) -> None:
        try:
            self._wait_ready(bootstrap, progress)
        except BaseException:
            # Interrupted or failed: never leave a half-started broker behind.
            self._stop()
            raise

    def _java(self) -> str:
        java = shutil.which(self.settings.java)
        if java is None:
            raise LocalKafkaError(
                f"Java ({self.settings.java!r}) was not found; the local Kafka broker runs on "
                f"the JVM: {_JAVA_HINT} (or set ACTIONSTATE_KAFKA_JAVA to a java binary)"
            )
        try:
            out = subprocess.run(
                [java, "-version"], capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise LocalKafkaError(f"could not run {java} -version ({exc}); {_JAVA_HINT}") from exc
        match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
        if match is None:
            raise LocalKafkaError(f"{java} -version gave no version ({_JAVA_HINT})")
        major = int(match[1]) if match[1] != "1" else int(match[2] or 0)
        if major < _MIN_JAVA:
            raise LocalKafkaError(f"{java} is Java {major}; Kafka 4 needs Java 17+: {_JAVA_HINT}")
        return java

    def _prepare(self) -> tuple[str, _Ports]:
        """Write server.properties, the log4j2 config and the state file; keep old ports if free."""
        role = self._role
        cluster_id, ports = self._load_state()
        if role is not None:
            # A cluster's ports are fixed: every node's quorum voters name them.
            cluster_id, ports = role.cluster_id, role.ports
        if cluster_id is None:
            cluster_id = _new_cluster_id()
        if ports is None or not (
            _process.port_free(ports.broker) and _process.port_free(ports.controller)
        ):
            broker, controller = _process.free_ports(2)
            ports = _Ports(broker=broker, controller=controller)
        self._props.write_text(_server_properties(ports, self._data, role), encoding="utf-8")
        log4j = (resources.files("actionstate.service.local_kafka") / "kafka-log4j2.xml").read_text(
            "utf-8"
        )
        (self.dir / "log4j2.xml").write_text(log4j, encoding="utf-8")
        state: dict[str, Any] = {
            "cluster_id": cluster_id,
            "broker_port": ports.broker,
            "controller_port": ports.controller,
            "version": self.settings.version,
        }
        if role is not None:
            state["node_id"] = role.node_id
        self._state_file.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        return cluster_id, ports

    def _load_state(self) -> tuple[str | None, _Ports | None]:
        try:
            state: Any = json.loads(self._state_file.read_text(encoding="utf-8"))
            return str(state["cluster_id"]), _Ports(
                broker=int(state["broker_port"]), controller=int(state["controller_port"])
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None, None

    def _jvm(self, java: str, jars: Path, heap: str) -> list[str]:
        return [
            java,
            f"-Xmx{heap}",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self._logs}",
            f"-Dlog4j2.configurationFile={self.dir / 'log4j2.xml'}",
            "-cp",
            f"{jars}/*",
        ]

    def _format(self, java: str, jars: Path, cluster_id: str) -> None:
        command = [
            *self._jvm(java, jars, "256m"),
            "kafka.tools.StorageTool",
            "format",
            # A static quorum (controller.quorum.voters) is formatted without it.
            *(["--standalone"] if self._role is None else []),
            "-t",
            cluster_id,
            "-c",
            str(self._props),
        ]
        try:
            proc = subprocess.run(
                command, cwd=self.dir, capture_output=True, text=True, timeout=300, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise LocalKafkaError(f"formatting KRaft storage in {self._data} timed out") from exc
        if proc.returncode != 0:
            raise LocalKafkaError(
                f"formatting KRaft storage in {self._data} failed (exit code {proc.returncode})",
                log_tail=(proc.stdout + proc.stderr).strip(),
            )

    def _launch(self, java: str, jars: Path) -> None:
        command = [
            *self._jvm(java, jars, self._heap()),
            "-XX:+UseG1GC",
            "kafka.Kafka",
            str(self._props),
        ]
        with self.console_log.open("ab") as console:
            # Own session: the broker outlives the CLI and ignores the terminal's Ctrl-C.
            self._proc = subprocess.Popen(
                command,
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        _process.write_pid(self._pid_file, self._proc.pid)

    def _heap(self) -> str:
        if self.settings.heap is not None:
            return self.settings.heap
        return "512m" if self._role is None else "384m"

    def _wait_ready(self, bootstrap: str, progress: Progress) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.settings.start_timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                self._pid_file.unlink(missing_ok=True)
                raise LocalKafkaError(
                    f"the Kafka broker in {self.dir} exited with code {code} while starting",
                    log_tail=self.log_tail(),
                )
            if _answers(bootstrap):
                progress(f"Kafka broker ready on {bootstrap} (pid {self._proc.pid})")
                return
            if time.monotonic() >= deadline:
                raise LocalKafkaError(
                    f"the Kafka broker in {self.dir} did not accept connections on {bootstrap} "
                    f"within {self.settings.start_timeout:.0f}s, so it was stopped",
                    log_tail=self.log_tail(),
                )
            time.sleep(0.25)

    def _stop(self, *, kill: bool = False) -> int | None:
        pid = self._signal_stop(kill=kill)
        if pid is not None:
            self._finish_stop(pid)
        return pid

    def _signal_stop(self, *, kill: bool) -> int | None:
        """Signal the broker to stop (SIGTERM, or SIGKILL with ``kill``); its pid, or None."""
        pid = self._running_pid()
        if pid is None:
            self._pid_file.unlink(missing_ok=True)
            return None
        _process.send_signal(pid, signal.SIGKILL if kill else signal.SIGTERM)
        return pid

    def _finish_stop(self, pid: int) -> None:
        """Wait for ``pid`` to exit (SIGKILL after ``stop_timeout``), then drop the pid file."""
        if not self._wait_exit(pid, self.settings.stop_timeout):
            _log.warning("Kafka broker pid %d ignored SIGTERM; killing it", pid)
            _process.send_signal(pid, signal.SIGKILL)
            if not self._wait_exit(pid, 30.0):
                raise LocalKafkaError(f"Kafka broker pid {pid} in {self.dir} did not exit")
        self._pid_file.unlink(missing_ok=True)

    def _running_pid(self) -> int | None:
        """The pid from the pid file if that process is alive and is this folder's broker."""
        pid = _process.read_pid(self._pid_file)
        if pid is None:
            return None
        if self._proc is not None and self._proc.pid == pid:
            return pid if self._proc.poll() is None else None
        if not _process.alive(pid):
            return None
        args = _process.cmdline(pid)
        # Guards against a recycled pid: only a kafka.Kafka JVM started on our config counts.
        if args is not None and ("kafka.Kafka" not in args or str(self._props) not in args):
            return None
        return pid

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        return _process.wait_gone(pid, timeout)


def _answers(bootstrap: str) -> bool:
    """Whether the broker accepts a TCP connection and answers a metadata request."""
    host, _, port = bootstrap.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            pass
    except OSError:
        return False
    # Imported here: the client package is heavy, and status/stop never need it.
    from actionstate.client.kafka import KafkaAdmin, KafkaConnection

    # model_construct, not the settings constructor: the ACTIONSTATE_* security settings in
    # the environment are for the user's cluster, not for this plaintext loopback broker.
    conn = KafkaConnection.model_construct(bootstrap_servers=bootstrap, timeout_s=5.0)
    # librdkafka's connection chatter while the broker comes up goes to our logger, not stderr.
    return KafkaAdmin(conn, logger=_log).answers()


def _new_cluster_id() -> str:
    # Kafka's own Uuid.randomUuid(): 16 random bytes, URL-safe base64 without padding,
    # never starting with "-" (it would read as a command-line option).
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not cluster_id.startswith("-"):
            return cluster_id


def _server_properties(ports: _Ports, data: Path, role: _Role | None = None) -> str:
    data_dir = str(data).replace("\\", "\\\\")
    if role is not None:
        return _node_properties(ports, data_dir, role)
    return "\n".join(
        [
            "# Written by actionstate.service.local_kafka; rewritten on every start.",
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers=127.0.0.1:{ports.controller}",
            f"listeners=PLAINTEXT://127.0.0.1:{ports.broker},"
            f"CONTROLLER://127.0.0.1:{ports.controller}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{ports.broker}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={data_dir}",
            "num.partitions=1",
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "",
        ]
    )


def _node_properties(ports: _Ports, data_dir: str, role: _Role) -> str:
    """A cluster node: a static quorum of every node's controller, internal topics (and
    topics created without settings) replicated on ``role.replicas`` nodes, min ISR 2."""
    replicas = role.replicas
    isr = min(2, replicas)
    return "\n".join(
        [
            "# Written by actionstate.service.local_kafka (a cluster node); rewritten on every "
            "start.",
            "process.roles=broker,controller",
            f"node.id={role.node_id}",
            f"controller.quorum.voters={role.voters}",
            f"listeners=PLAINTEXT://127.0.0.1:{ports.broker},"
            f"CONTROLLER://127.0.0.1:{ports.controller}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{ports.broker}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={data_dir}",
            "num.partitions=1",
            f"default.replication.factor={replicas}",
            f"min.insync.replicas={isr}",
            f"offsets.topic.replication.factor={replicas}",
            f"transaction.state.log.replication.factor={replicas}",
            f"transaction.state.log.min.isr={isr}",
            f"share.coordinator.state.topic.replication.factor={replicas}",
            f"share.coordinator.state.topic.min.isr={isr}",
            "group.initial.rebalance.delay.ms=0",
            # A restarted node catches up and leads its partitions again by itself.
            "auto.leader.rebalance.enable=true",
            "leader.imbalance.check.interval.seconds=10",
            "",
        ]
    )
