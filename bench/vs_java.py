"""Side by side with Flink Agents 0.3.0's own Java classes, on one broker in one run.

    python bench/vs_java.py [--records 400] [--payload 1024] [--partitions 8] [--seconds 3]

- serde: our decode/encode against the real ``ActionStateKafkaSeder`` on the same record
  bytes (the JVM measured after a warm-up of the same loop);
- put: our ``KafkaStore.put`` against ``KafkaActionStateStore.put``, both acks=all, one
  acknowledged write at a time, same records, each after a warm-up on a scratch topic;
- rebuild: our ``KafkaStore.rebuild`` against ``rebuildState`` on the same topic (the one
  the Java store wrote), each warmed up once, each from a fresh store.

The broker is ``--bootstrap`` or ``KAFKA_BOOTSTRAP_SERVERS``; without either the project's
local launcher starts one and stops it at the end. Topics made here are deleted at the end.
The Java harness is ``interop/java/target/actionstate-interop.jar``, built with
``mvn -q -B -f interop/java/pom.xml package`` (it needs flink-agents 0.3.0 from Maven
Central); without it the benchmark says so at once and exits with status 2.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _broker import broker
from confluent_kafka.admin import AdminClient
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from actionstate.client import KafkaStore
from actionstate.serde import (
    CLOUDPICKLE_CODEC,
    ActionState,
    CallResult,
    Event,
    MemoryUpdate,
    decode_action_state,
    encode_action_state,
)
from actionstate.serde._models import WIRE

# The harness runner lives with the interop tests; the benchmark reuses it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "interop"))
from _jvm import HarnessError, ensure_jar, put_spec
from _jvm import bench as jvm_bench

Record = tuple[str, int, str, Event, ActionState]


def make_records(count: int, payload: int, seed: int = 7) -> list[Record]:
    """Mid-action records as a worker writes them: input event, memory updates, an output
    event, a few calls with ``payload``-byte cloudpickled results, the last one pending."""
    rng = random.Random(seed)
    out: list[Record] = []
    for i in range(count):
        agent = f"user-{i % 50}"
        order = f"order-{rng.randrange(10**6)}"
        event = Event.input({"order_id": order, "amount": round(rng.uniform(1, 500), 2)})
        calls = []
        for c in range(3):
            digest = rng.randbytes(8).hex()
            if c == 2:
                calls.append(CallResult.pending(f"shop.payments.step_{c}", digest))
            else:
                blob = rng.randbytes(payload // 2).hex()[:payload]
                value = CLOUDPICKLE_CODEC.encode({"order": order, "blob": blob})
                calls.append(CallResult.succeeded(f"shop.payments.step_{c}", digest, value))
        state = ActionState(
            task_event=event,
            sensory_memory_updates=[MemoryUpdate(path="session.last_order", value=order)],
            short_term_memory_updates=[MemoryUpdate(path="stm.attempts", value=rng.randint(1, 3))],
            output_events=[Event.output({"order_id": order, "status": "charged"})],
            call_results=calls,
        )
        out.append((agent, i // 50, "charge_payment", event, state))
    return out


def _rate_loop(fn: Callable[[], object], count: int, seconds: float) -> float:
    """Whole passes of ``fn`` (``count`` records each) for at least ``seconds``: records/s."""
    passes = 0
    start = time.perf_counter()
    while True:
        fn()
        passes += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return passes * count / elapsed


def _forget_written_form(state: ActionState) -> None:
    """Drop the JSON objects the codec keeps on decoded models, so the next encode is a
    first write (what the Java seder does every time)."""
    for model in [
        state,
        state.task_event,
        *state.sensory_memory_updates,
        *state.short_term_memory_updates,
        *state.output_events,
        *state.call_results,
    ]:
        if model is not None:
            model.__dict__.pop(WIRE, None)


def _first_write_rate(values: list[bytes], seconds: float) -> float:
    """Encode rate of freshly built states (their decode and cache clearing untimed)."""
    timed, count = 0.0, 0
    while timed < seconds:
        states = [decode_action_state(v) for v in values]
        for state in states:
            _forget_written_form(state)
        start = time.perf_counter()
        for state in states:
            encode_action_state(state)
        timed += time.perf_counter() - start
        count += len(states)
    return count / timed


def python_serde(values: list[bytes], seconds: float) -> dict[str, float]:
    states = [decode_action_state(v) for v in values]

    def decode() -> None:
        for v in values:
            decode_action_state(v)

    def encode() -> None:
        for s in states:
            encode_action_state(s)

    warm = min(seconds, 1.0)
    _rate_loop(decode, len(values), warm)
    _first_write_rate(values, warm)
    return {
        "decode": _rate_loop(decode, len(values), seconds),
        "encode": _first_write_rate(values, seconds),
        "encode_cached": _rate_loop(encode, len(values), seconds),
    }


def python_put(
    bootstrap: str, topic: str, partitions: int, records: list[Record], warmup: int
) -> float:
    with KafkaStore(
        bootstrap_servers=bootstrap, topic=f"{topic}-warmup", partitions=partitions
    ) as store:
        for agent, seq, action, event, state in records[:warmup]:
            store.put(agent, seq, action, event, state)
    with KafkaStore(bootstrap_servers=bootstrap, topic=topic, partitions=partitions) as store:
        start = time.perf_counter()
        for agent, seq, action, event, state in records:
            store.put(agent, seq, action, event, state)
        return len(records) / (time.perf_counter() - start)


def python_rebuild(bootstrap: str, topic: str, partitions: int) -> tuple[float, int]:
    seconds, states = 0.0, 0
    for _ in range(2):  # the first run warms up
        with KafkaStore(bootstrap_servers=bootstrap, topic=topic, partitions=partitions) as store:
            start = time.perf_counter()
            report = store.rebuild()
            seconds = time.perf_counter() - start
            states = report.states_live
    return seconds, states


def delete_topics(bootstrap: str, topics: list[str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = set(admin.list_topics(timeout=10).topics)
    doomed = [t for t in topics if t in existing]
    if doomed:
        for future in admin.delete_topics(doomed, operation_timeout=30).values():
            future.result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=400)
    parser.add_argument("--payload", type=int, default=1024)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0, help="per serde measurement")
    parser.add_argument("--warmup", type=int, default=100, help="puts on a scratch topic first")
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    args = parser.parse_args()
    # a wide table even when the output is not a terminal
    console = Console(width=None if sys.stdout.isatty() else 140)
    try:
        jar = ensure_jar()
    except HarnessError as e:
        Console(stderr=True).print(
            "[bold red]vs_java cannot run:[/]", escape(str(e)), highlight=False
        )
        sys.exit(2)
    console.print(f"Java harness: {jar}", highlight=False)

    records = make_records(args.records, args.payload)
    values = [encode_action_state(r[4]) for r in records]
    puts = "\n".join(
        put_spec(a, s, act, e, v) for (a, s, act, e, _), v in zip(records, values, strict=True)
    )
    run_id = uuid.uuid4().hex[:8]
    ours_topic, java_topic = f"bench-vs-java-ours-{run_id}", f"bench-vs-java-java-{run_id}"
    topics = [ours_topic, java_topic, f"{ours_topic}-warmup", f"{java_topic}-warmup"]
    results: dict[str, Any] = {}

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with (
        broker(args.bootstrap, console.print) as bootstrap,
        Progress(*columns, console=console) as progress,
    ):
        try:

            def phase(name: str, fn: Callable[[], Any]) -> Any:
                task = progress.add_task(name, total=1)
                result = fn()
                progress.update(task, completed=1)
                return result

            results["py_serde"] = phase("serde: ours", lambda: python_serde(values, args.seconds))
            b64 = "\n".join(base64.b64encode(v).decode("ascii") for v in values)
            results["java_serde"] = phase(
                "serde: Java ActionStateKafkaSeder (after warm-up)",
                lambda: jvm_bench("seder", {"warmup": args.seconds, "seconds": args.seconds}, b64),
            )
            results["py_put"] = phase(
                f"put: ours, {args.records} records acks=all",
                lambda: python_put(bootstrap, ours_topic, args.partitions, records, args.warmup),
            )
            results["java_put"] = phase(
                f"put: Java KafkaActionStateStore, {args.records} records acks=all",
                lambda: jvm_bench(
                    "put",
                    {
                        "bootstrap": bootstrap,
                        "topic": java_topic,
                        "partitions": args.partitions,
                        "warmup": args.warmup,
                    },
                    puts,
                ),
            )
            results["py_rebuild"] = phase(
                "rebuild: ours (same topic)",
                lambda: python_rebuild(bootstrap, java_topic, args.partitions),
            )
            results["java_rebuild"] = phase(
                "rebuild: Java rebuildState (same topic)",
                lambda: jvm_bench("rebuild", {"bootstrap": bootstrap, "topic": java_topic}),
            )
        finally:
            delete_topics(bootstrap, topics)

    report(console, args, results)


def report(console: Console, args: argparse.Namespace, r: dict[str, Any]) -> None:
    table = Table(
        title=f"kafka-actionstate vs Flink Agents 0.3.0 (Java) — {args.records} records, "
        f"~{args.payload} B payloads, {args.partitions} partitions"
    )
    table.add_column("measure")
    table.add_column("ours", justify="right")
    table.add_column("Java", justify="right")
    table.add_column("ours ÷ Java", justify="right")
    table.add_column("note")

    def rate_row(name: str, ours: float, java: float, unit: str, note: str = "") -> None:
        table.add_row(
            name, f"{ours:,.0f} {unit}", f"{java:,.0f} {unit}", f"{ours / java:.2f}×", note
        )

    py_serde, java_serde = r["py_serde"], r["java_serde"]
    rate_row("decode", py_serde["decode"], java_serde["decode"]["recordsPerSecond"], "rec/s")
    rate_row(
        "encode (first write)",
        py_serde["encode"],
        java_serde["encode"]["recordsPerSecond"],
        "rec/s",
        f"re-encoding a decoded state unchanged: {py_serde['encode_cached']:,.0f} rec/s",
    )
    rate_row(
        "put (acks=all, one at a time)", r["py_put"], r["java_put"]["recordsPerSecond"], "rec/s"
    )
    py_seconds, py_states = r["py_rebuild"]
    java_rebuild = r["java_rebuild"]["measured"]
    table.add_row(
        "rebuild (time, lower is better)",
        f"{py_seconds:.3f} s",
        f"{java_rebuild['seconds']:.3f} s",
        f"{java_rebuild['seconds'] / py_seconds:.2f}× faster",
        f"states: ours {py_states}, Java {java_rebuild['states']}; Java ends on a 1 s empty poll",
    )
    console.print(table)
    console.print(
        "ratios above 1× mean ours is faster; the JVM was measured after warming up the same loop"
    )


if __name__ == "__main__":
    main()
