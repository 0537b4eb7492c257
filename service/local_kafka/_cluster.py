"""A local KRaft cluster: ``brokers`` combined broker+controller nodes with a static quorum.

The cluster's folder holds ``cluster.json`` (the cluster id and every node's ports) and one
folder per node, ``node-<id>``, laid out like a single broker's folder (server.properties,
data, logs, broker.pid, broker.json). So a node can be stopped like any broker, by its
folder, and a cluster whose owner died is still found by its pid files. Ports are fixed
while any node runs (each node's ``controller.quorum.voters`` names every controller); a
cluster started from cold gets new ports only when one of its old ones is taken.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import actionstate.service.local_kafka._launcher as launcher
from actionstate.service import _process
from actionstate.service._errors import LocalKafkaError

if TYPE_CHECKING:
    from actionstate.service.local_kafka._launcher import LocalKafka, Progress

__all__ = ["Cluster", "is_cluster_dir", "node_of"]

_CLUSTER_FILE = "cluster.json"
_MAX_REPLICAS = 3


def is_cluster_dir(folder: Path) -> bool:
    """Whether ``folder`` holds a cluster (its ``cluster.json``)."""
    return (folder / _CLUSTER_FILE).is_file()


def node_of(state_file: Path) -> int | None:
    """The node id a broker folder's state file names, None for a broker of its own."""
    try:
        state: Any = json.loads(state_file.read_text(encoding="utf-8"))
        return int(state["node_id"]) if "node_id" in state else None
    except (OSError, ValueError, TypeError):
        return None


@dataclass(frozen=True, slots=True)
class _Layout:
    cluster_id: str
    ports: dict[int, launcher._Ports]  # node id -> ports, ids 1..n

    @property
    def voters(self) -> str:
        return ",".join(f"{n}@127.0.0.1:{p.controller}" for n, p in sorted(self.ports.items()))

    def to_json(self) -> str:
        nodes = [
            {"node_id": n, "broker_port": p.broker, "controller_port": p.controller}
            for n, p in sorted(self.ports.items())
        ]
        return json.dumps({"cluster_id": self.cluster_id, "nodes": nodes}, indent=2) + "\n"


def _new_ports(count: int) -> dict[int, launcher._Ports]:
    free = _process.free_ports(2 * count)
    return {
        n: launcher._Ports(broker=free[2 * (n - 1)], controller=free[2 * n - 1])
        for n in range(1, count + 1)
    }


class Cluster:
    """The nodes of the cluster in ``owner.dir``: start, stop and report on all or one."""

    def __init__(self, owner: LocalKafka) -> None:
        self._owner = owner
        self.dir = owner.dir
        self.settings = owner.settings
        self._nodes: dict[int, LocalKafka] = {}

    # -- layout --------------------------------------------------------------------------
    def _load(self) -> _Layout | None:
        try:
            state: Any = json.loads((self.dir / _CLUSTER_FILE).read_text(encoding="utf-8"))
            ports = {
                int(node["node_id"]): launcher._Ports(
                    broker=int(node["broker_port"]), controller=int(node["controller_port"])
                )
                for node in state["nodes"]
            }
            return _Layout(cluster_id=str(state["cluster_id"]), ports=ports)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _save(self, layout: _Layout) -> None:
        tmp = self.dir / f".{_CLUSTER_FILE}.tmp"
        tmp.write_text(layout.to_json(), encoding="utf-8")
        tmp.replace(self.dir / _CLUSTER_FILE)

    def _node(self, node_id: int, layout: _Layout) -> LocalKafka:
        node = self._nodes.get(node_id)
        if node is None:
            settings = self.settings.model_copy(
                update={"dir": self.dir / f"node-{node_id}", "brokers": 1}
            )
            node = launcher.LocalKafka(settings)
            self._nodes[node_id] = node
        node._role = launcher._Role(
            node_id=node_id,
            ports=layout.ports[node_id],
            cluster_id=layout.cluster_id,
            voters=layout.voters,
            replicas=min(_MAX_REPLICAS, len(layout.ports)),
        )
        return node

    def _layout(self) -> _Layout:
        layout = self._load()
        if layout is None:
            raise LocalKafkaError(f"no cluster in {self.dir}; start one with --brokers 3")
        return layout

    # -- whole cluster -------------------------------------------------------------------
    def start(self, progress: Progress) -> str:
        """Start every node that does not run; the bootstrap of all once all are in the
        metadata."""
        if (self.dir / "broker.json").is_file():
            raise LocalKafkaError(
                f"{self.dir} holds a single broker; use another folder for a cluster"
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        with _process.folder_lock(self.dir / ".lock"):
            layout = self._load()
            wanted = self.settings.brokers
            if layout is not None and wanted > 1 and wanted != len(layout.ports):
                raise LocalKafkaError(
                    f"{self.dir} holds a cluster of {len(layout.ports)} nodes, not {wanted}; "
                    "use another folder for a cluster of another size"
                )
            if layout is None:
                layout = _Layout(cluster_id=launcher._new_cluster_id(), ports=_new_ports(wanted))
            down = [n for n in layout.ports if not self._node(n, layout).status().running]
            if len(down) == len(layout.ports) and not _ports_free(layout):
                # Nothing runs: every node can take new ports together.
                layout = _Layout(cluster_id=layout.cluster_id, ports=_new_ports(len(layout.ports)))
            self._save(layout)
            bootstrap = _bootstrap(layout)
            if not down:
                progress(f"Kafka cluster already running in {self.dir}")
                return bootstrap
            java = self._owner._java()
            jars = self._owner.install(progress)
            started: list[LocalKafka] = []
            try:
                for n in down:
                    node = self._node(n, layout)
                    self._check_ports(n, layout)
                    # Every node launches before any is awaited: none answers without a quorum.
                    node._spawn(java, jars, progress)
                    started.append(node)
                for n, node in zip(down, started, strict=True):
                    node._wait_ready(f"127.0.0.1:{layout.ports[n].broker}", progress)
                self._wait_brokers(bootstrap, len(layout.ports), progress)
            except BaseException:
                for node in started:
                    node._stop(kill=True)
                raise
            return bootstrap

    def stop(self, *, kill: bool) -> list[tuple[int, int]]:
        """Stop every node (signalled together, so none waits for a quorum already gone);
        the (node id, pid) of each node stopped."""
        layout = self._load()
        if layout is None:
            return []
        with _process.folder_lock(self.dir / ".lock"):
            signalled = []
            for n in sorted(layout.ports):
                node = self._node(n, layout)
                pid = node._signal_stop(kill=kill)
                if pid is not None:
                    signalled.append((n, pid, node))
            for _, pid, node in signalled:
                node._finish_stop(pid)
            return [(n, pid) for n, pid, _ in signalled]

    def status(self) -> launcher.BrokerStatus:
        """Every node's status; running when all run."""
        layout = self._load()
        if layout is None:
            return launcher.BrokerStatus(running=False, dir=self.dir)
        nodes = []
        for n in sorted(layout.ports):
            node = self._node(n, layout).status()
            nodes.append(
                launcher.BrokerStatus(
                    running=node.running,
                    dir=node.dir,
                    pid=node.pid,
                    bootstrap=f"127.0.0.1:{layout.ports[n].broker}",
                    node_id=n,
                )
            )
        live = [s.bootstrap for s in nodes if s.running and s.bootstrap]
        return launcher.BrokerStatus(
            running=len(live) == len(nodes),
            dir=self.dir,
            bootstrap=",".join(live) if live else None,
            nodes=tuple(nodes),
        )

    # -- one node ------------------------------------------------------------------------
    def stop_node(self, node_id: int, *, kill: bool) -> int | None:
        """Stop node ``node_id``; its pid, or None when it did not run."""
        layout = self._layout()
        self._check_id(node_id, layout)
        with _process.folder_lock(self.dir / ".lock"):
            return self._node(node_id, layout)._stop(kill=kill)

    def start_node(self, node_id: int, progress: Progress) -> str:
        """Start node ``node_id`` on its old ports; its bootstrap once it answers."""
        layout = self._layout()
        self._check_id(node_id, layout)
        with _process.folder_lock(self.dir / ".lock"):
            node = self._node(node_id, layout)
            bootstrap = f"127.0.0.1:{layout.ports[node_id].broker}"
            current = node.status()
            if current.running:
                progress(f"node {node_id} already running in {node.dir} (pid {current.pid})")
                return bootstrap
            java = self._owner._java()
            jars = self._owner.install(progress)
            self._check_ports(node_id, layout)
            node._spawn(java, jars, progress)
            node._await(bootstrap, progress)
            return bootstrap

    # -- checks --------------------------------------------------------------------------
    def _check_id(self, node_id: int, layout: _Layout) -> None:
        if node_id not in layout.ports:
            raise LocalKafkaError(
                f"the cluster in {self.dir} has nodes {sorted(layout.ports)}, not {node_id}"
            )

    def _check_ports(self, node_id: int, layout: _Layout) -> None:
        ports = layout.ports[node_id]
        for port in (ports.broker, ports.controller):
            if not _process.port_free(port):
                raise LocalKafkaError(
                    f"port {port} of node {node_id} in {self.dir} is taken by another "
                    "process; the other nodes' quorum names it, so the node cannot move. Free "
                    "the port, or stop the whole cluster and start it again (new ports)"
                )

    def _wait_brokers(self, bootstrap: str, count: int, progress: Progress) -> None:
        # Imported here: the client package is heavy, and status/stop never need it.
        from actionstate.client.kafka import KafkaAdmin, KafkaConnection

        conn = KafkaConnection.model_construct(bootstrap_servers=bootstrap, timeout_s=5.0)
        admin = KafkaAdmin(conn, logger=launcher._log)
        deadline = time.monotonic() + self.settings.start_timeout
        while True:
            try:
                seen = len(admin.broker_ids())
            except Exception:  # the cluster is still coming up; the deadline decides
                seen = 0
            if seen >= count:
                progress(f"Kafka cluster of {count} nodes ready on {bootstrap}")
                return
            if time.monotonic() >= deadline:
                raise LocalKafkaError(
                    f"the Kafka cluster in {self.dir} showed {seen} of {count} brokers within "
                    f"{self.settings.start_timeout:.0f}s, so it was stopped"
                )
            time.sleep(0.25)


def _bootstrap(layout: _Layout) -> str:
    return ",".join(f"127.0.0.1:{p.broker}" for _, p in sorted(layout.ports.items()))


def _ports_free(layout: _Layout) -> bool:
    return all(
        _process.port_free(p.broker) and _process.port_free(p.controller)
        for p in layout.ports.values()
    )
