"""A million states, ten thousand unfinished: rebuild, recover and memory vs the raw records
(issue 11), on one broker, in one run.

    python bench/scale.py [--states 1000000] [--unfinished 10000] [--partitions 32]

Uses ``KAFKA_BOOTSTRAP_SERVERS`` when set, else starts a local broker (and stops it at the
end). The records are written by a bare producer, pre-encoded with ``encode_record``: completed
states, and unfinished ones whose one durable call is PENDING with a reconciler, spread over
``--agents`` agent keys. Every figure is printed beside a baseline of the same run:

- ``KafkaStore.rebuild`` and ``Worker.recover`` (rebuild, then the unfinished actions
  reconciled and completed) vs a raw drain of the same partitions with a bare consumer that
  counts bytes (goal: recover <= 1.5x the drain);
- the worker's RSS per live state, retained and at the rebuild's peak (measured in a child
  process: /proc VmRSS before and after, VmHWM), vs the raw bytes of a record (key, value,
  headers; goal <= 2x);
- ``actionstate serve``'s RSS per live state once ready (the same topic vs an empty one);
- the first write after a rebuild (the producer warmed during the rebuild) vs a cold one.

Every process and topic it starts is stopped or deleted at the end, by pid and by name.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from _broker import broker
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from durable import Row, console, progress, raw_drain, show

from actionstate.client import (
    DurableContext,
    KafkaStore,
    KafkaStoreSettings,
    Worker,
    compute_args_digest,
)
from actionstate.client.kafka import KafkaWriter
from actionstate.serde import (
    ActionState,
    CallResult,
    Event,
    action_uuid,
    encode_record,
    event_uuid,
    partition_for,
    state_key,
)

ACTION = "charge"
CALL = "charge-card"
MARK = 987_654_321  # the order number of the template records, replaced per record


# -- the action recovery re-drives --------------------------------------------------------


def pay(order: int) -> str:
    """The side effect: never run in this benchmark (every call is PENDING, reconciled)."""
    return f"r-{order}"


def paid(order: int) -> str:
    """The reconciler: the payment went through."""
    return f"r-{order}"


async def charge(data: Any, ctx: DurableContext) -> Any:
    order = data["order"]
    receipt = await ctx.durable_execute_async(
        pay, order, reconciler=partial(paid, order), name=CALL
    )
    return {"receipt": receipt}


# -- records -------------------------------------------------------------------------------


def completed_template() -> tuple[bytes, list[tuple[str, Any]]]:
    state = ActionState(task_event=Event.input({"order": MARK, "customer": "c-4711"}))
    state.output_events.append(Event.output({"receipt": f"r-{MARK}"}))
    state.mark_completed()
    value, headers = encode_record("k_0_x_y", state, codec="cloudpickle", secret=None, version=None)
    return value, headers


def unfinished_record(agent: str, seq: int, order: int) -> tuple[bytes, bytes, list[Any]]:
    event = Event.input({"order": order, "customer": "c-4711"})
    skey = state_key(agent, seq, event_uuid(event.attributes), action_uuid(ACTION))
    state = ActionState(
        task_event=event,
        call_results=[CallResult.pending(CALL, compute_args_digest((order,), {}))],
    )
    value, headers = encode_record(skey, state, codec="cloudpickle", secret=None, version=None)
    return skey.encode(), value, headers


def populate(
    bootstrap: str,
    topic: str,
    states: int,
    unfinished: int,
    agents: int,
    partitions: int,
    compression: str,
) -> tuple[int, int]:
    """Write the states; (records written, raw bytes of all of them: key + value + headers)."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 50,
            "batch.size": 1_000_000,
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": compression,
        }
    )
    template, headers = completed_template()
    header_bytes = sum(len(k) + len(v or b"") for k, v in headers)
    marker = b"%d" % MARK
    act = action_uuid(ACTION)
    names = [f"agent{a}" for a in range(agents)]
    parts = [partition_for(name, partitions) for name in names]
    every = max(1, states // unfinished) if unfinished else 0
    raw = 0
    with progress() as bar:
        task = bar.add_task(f"writing {states:,} states ({unfinished:,} unfinished)", total=states)
        for n in range(states):
            a, seq = n % agents, n // agents
            order = 100_000_000 + n
            if every and n % every == 0 and n // every < unfinished:
                key, value, hdrs = unfinished_record(names[a], seq, order)
                size = len(key) + len(value) + sum(len(k) + len(v or b"") for k, v in hdrs)
            else:
                key = f"{names[a]}_{seq}_{uuid.UUID(int=n)}_{act}".encode()
                value, hdrs = template.replace(marker, b"%d" % order), headers
                size = len(key) + len(value) + header_bytes
            while True:
                try:
                    producer.produce(topic, value, key=key, partition=parts[a], headers=hdrs)
                    break
                except BufferError:
                    producer.poll(0.05)
            raw += size
            if n % 10_000 == 0:
                producer.poll(0)
                bar.update(task, completed=n)
        producer.flush()
    return states, raw


def drain_config(bootstrap: str) -> dict[str, Any]:
    """A bare consumer reading by assignment, as the raw drain baseline uses."""
    return {
        "bootstrap.servers": bootstrap,
        "group.id": f"bench-drain-{uuid.uuid4()}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    }


# -- child processes: what a worker process costs -----------------------------------------


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(rest.split()[0]) * 1024
    return out


def child_rebuild(bootstrap: str, topic: str, partitions: int) -> dict[str, Any]:
    store = KafkaStore(bootstrap_servers=bootstrap, topic=topic, partitions=partitions)
    gc.collect()
    before = proc_status()
    report = store.rebuild()
    gc.collect()
    after = proc_status()
    trimmed = after["VmRSS"]
    try:  # how much of the retained RSS is freed heap that glibc keeps (Linux only)
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        trimmed = proc_status()["VmRSS"]
    except (OSError, AttributeError):
        pass
    # The first write after the rebuild (warmed while it ran) vs a cold writer's first.
    event = Event.input({"probe": 1})
    state = ActionState(task_event=event)
    state.mark_completed()  # not for recovery to re-drive
    t0 = time.perf_counter()
    store.put("probe", 0, ACTION, event, state)
    warm = time.perf_counter() - t0
    cold_writer = KafkaWriter(store.settings, topic)
    skey = state_key("probe", 1, event_uuid(event.attributes), action_uuid(ACTION))
    value, headers = encode_record(skey, state, codec="cloudpickle", secret=None, version=None)
    t0 = time.perf_counter()
    cold_writer.write(partition_for("probe", store.partition_count), skey, value, headers)
    cold = time.perf_counter() - t0
    cold_writer.close()
    store.close()
    return {
        "seconds": report.seconds,
        "states": report.states_live,
        "records": report.records_read,
        "bad": report.bad_records,
        "rss_before": before["VmRSS"],
        "rss_after": after["VmRSS"],
        "rss_trimmed": trimmed,
        "hwm": after["VmHWM"],
        "first_write_warm": warm,
        "first_write_cold": cold,
    }


def child_recover(bootstrap: str, topic: str, partitions: int, concurrency: int) -> dict[str, Any]:
    store = KafkaStore(bootstrap_servers=bootstrap, topic=topic, partitions=partitions)
    worker = Worker(store)
    worker.register(ACTION, charge)
    t0 = time.perf_counter()
    report = worker.recover(concurrency=concurrency)
    seconds = time.perf_counter() - t0
    assert report.rebuild is not None
    store.close()
    return {
        "seconds": seconds,
        "rebuild_seconds": report.rebuild.seconds,
        "resumed": report.actions_resumed,
        "completed": report.actions_completed,
        "reconciled": report.calls_reconciled,
        "failures": len(report.failures),
        "unknown": len(report.unknown_actions),
    }


def run_child(kind: str, bootstrap: str, topic: str, *extra: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind, "--bootstrap", bootstrap, "--topic", topic]
    proc = subprocess.Popen([*cmd, *extra], stdout=subprocess.PIPE, text=True)
    try:
        out, _ = proc.communicate(timeout=3600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise SystemExit(f"the {kind} child failed with exit code {proc.returncode}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


# -- the sidecar ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def sidecar_rss(bootstrap: str, topic: str, timeout: float = 1800) -> dict[str, float]:
    """Start ``actionstate serve`` on ``topic``; its RSS once /readyz answers 200."""
    port = free_port()
    exe = Path(sys.executable).with_name("actionstate")
    cmd = [str(exe), "serve", "--bootstrap-servers", bootstrap, "--topic", topic]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"actionstate serve exited with {proc.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"actionstate serve was not ready within {timeout:.0f}s")
            time.sleep(0.2)
        ready = time.perf_counter() - t0
        status = proc_status(proc.pid)
        return {"rss": status["VmRSS"], "hwm": status["VmHWM"], "ready_s": ready}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the run -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--states", type=int, default=1_000_000)
    parser.add_argument("--unfinished", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=32)
    parser.add_argument("--agents", type=int, default=None, help="default: states / 20")
    parser.add_argument("--concurrency", type=int, default=64, help="recover() bound")
    parser.add_argument(
        "--compression", default="lz4", help="compression.type the records are written with"
    )
    parser.add_argument("--no-sidecar", action="store_true", help="skip the sidecar's RSS")
    parser.add_argument("--child", choices=("rebuild", "recover"), help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "rebuild":
        print(json.dumps(child_rebuild(args.bootstrap, args.topic, args.partitions)))
        return
    if args.child == "recover":
        print(
            json.dumps(child_recover(args.bootstrap, args.topic, args.partitions, args.concurrency))
        )
        return
    if not 0 <= args.unfinished <= args.states:
        parser.error("--unfinished must be between 0 and --states")
    agents = args.agents or max(1, args.states // 20)
    run = uuid.uuid4().hex[:8]
    topic, empty = f"bench-scale-{run}", f"bench-scale-empty-{run}"
    with broker(os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), console.print) as bootstrap:
        try:
            rows = measure(args, bootstrap, topic, empty, agents)
        finally:
            admin = AdminClient({"bootstrap.servers": bootstrap})
            for future in admin.delete_topics([topic, empty], operation_timeout=30).values():
                future.exception()
    show(
        rows,
        f"{args.states:,} states, {args.unfinished:,} unfinished, {args.partitions} partitions",
    )


def measure(
    args: argparse.Namespace, bootstrap: str, topic: str, empty: str, agents: int
) -> list[Row]:
    for name in (topic, empty):
        settings = KafkaStoreSettings(
            bootstrap_servers=bootstrap, topic=name, partitions=args.partitions
        )
        with KafkaStore(settings):
            pass  # creates the topic, compacted
    t0 = time.perf_counter()
    records, raw_bytes = populate(
        bootstrap, topic, args.states, args.unfinished, agents, args.partitions, args.compression
    )
    console.print(f"wrote {records:,} records in {time.perf_counter() - t0:.1f}s")
    per_record = raw_bytes / records
    drains = []
    console.print("raw drain ...")
    drains.append(raw_drain(drain_config(bootstrap), topic, args.partitions)[2])
    console.print("rebuild (child process) ...")
    parts = ("--partitions", str(args.partitions))
    rebuilt = run_child("rebuild", bootstrap, topic, *parts)
    drains.append(raw_drain(drain_config(bootstrap), topic, args.partitions)[2])
    drain = min(drains)
    console.print("recover (child process) ...")
    recovered = run_child(
        "recover", bootstrap, topic, *parts, "--concurrency", str(args.concurrency)
    )
    console.print(f"recover: {recovered}")
    states = rebuilt["states"]
    rows = [
        Row(
            f"rebuild, {states:,} states",
            rebuilt["seconds"],
            drain,
            "s",
            "(raw drain)",
        ),
        Row(
            f"recover: rebuild + {recovered['completed']:,} of {args.unfinished:,} reconciled",
            recovered["seconds"],
            drain,
            "s",
            "≤ 1.5× raw drain",
            "lower",
            1.5,
        ),
        Row(
            "worker RSS per live state, retained",
            (rebuilt["rss_after"] - rebuilt["rss_before"]) / states,
            per_record,
            "B",
            "≤ 2× raw record",
            "lower",
            2.0,
        ),
        Row(
            "worker RSS per live state, retained, after malloc_trim(0)",
            (rebuilt["rss_trimmed"] - rebuilt["rss_before"]) / states,
            per_record,
            "B",
            "(what glibc keeps)",
        ),
        Row(
            "worker RSS per live state, rebuild peak",
            (rebuilt["hwm"] - rebuilt["rss_before"]) / states,
            per_record,
            "B",
            "≤ 2× raw record",
            "lower",
            2.0,
        ),
        Row(
            "first write after rebuild (warmed) vs cold",
            rebuilt["first_write_warm"] * 1000,
            rebuilt["first_write_cold"] * 1000,
            "ms",
            "(cold producer)",
        ),
    ]
    if not args.no_sidecar:
        console.print("sidecar on an empty topic, then on the full one ...")
        base = sidecar_rss(bootstrap, empty)
        full = sidecar_rss(bootstrap, topic)
        rows.append(
            Row(
                "sidecar RSS per live state (vs an empty topic's)",
                (full["rss"] - base["rss"]) / states,
                per_record,
                "B",
                "≤ 2× raw record",
                "lower",
                2.0,
            )
        )
        rows.append(Row("sidecar ready (start to /readyz 200)", full["ready_s"], drain, "s", ""))
    if recovered["failures"] or recovered["unknown"]:
        console.print(f"[red]recovery did not complete every state: {recovered}[/]")
    return rows


if __name__ == "__main__":
    main()
