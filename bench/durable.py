"""The Kafka store against bare confluent-kafka, on one broker, in one run (issue 3).

    python bench/durable.py [--records 1000000] [--keys 100000] [--puts 2000] [--steps 20000]

Uses ``KAFKA_BOOTSTRAP_SERVERS`` when set, else starts a local broker (and stops it at
the end). Every figure is printed beside a baseline measured in the same run:

- put latency p50/p99 vs a bare ``produce()`` + ``flush()`` of the same bytes with the
  same producer settings (targets 1.2x / 1.5x);
- steps/s with 64 in flight (``aput``, and durable steps through
  ``DurableContext.durable_execute_async``), each awaiting its own acknowledgement, vs
  sequential send-and-flush (target >= 20x);
- rebuild records/s on ``--records`` records / ``--keys`` live keys vs a raw drain that
  only counts bytes (target >= 0.5x, stretch 0.8x);
- rebuild tail (last record received -> rebuild returned) on a compacted topic with
  offset gaps and on an empty topic, vs Flink Agents' poll-until-an-empty-1s-poll
  (target <= 50 ms);
- memory of the rebuilt view per live state (tracemalloc) vs the raw record bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import tracemalloc
import uuid
from dataclasses import dataclass
from typing import Any

from _broker import broker
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from actionstate.client import DurableContext, KafkaStore, KafkaStoreSettings
from actionstate.serde import (
    ActionState,
    CallResult,
    Event,
    MemoryUpdate,
    RecordMeta,
    action_uuid,
    encode_action_state,
    event_uuid,
    partition_for,
    state_key,
)

PARTITIONS = 8
IN_FLIGHT = 64
console = Console(width=None if os.isatty(1) else 130)


@dataclass
class Row:
    measure: str
    ours: float
    baseline: float
    unit: str
    target: str
    # "lower": ours/baseline must be <= limit; "higher": ours/baseline must be >= limit.
    better: str = "lower"
    limit: float | None = None

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline if self.baseline else float("inf")

    @property
    def verdict(self) -> str:
        if self.limit is None:
            return ""
        ok = self.ratio <= self.limit if self.better == "lower" else self.ratio >= self.limit
        return "[green]met[/]" if ok else "[red]missed[/]"


def progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def sample_state(n: int, calls: int = 2) -> ActionState:
    event = Event.input({"order": n, "customer": f"c-{n % 977}", "amount": 12.5})
    return ActionState(
        task_event=event,
        short_term_memory_updates=[MemoryUpdate(path="order.status", value="charging")],
        call_results=[
            CallResult.succeeded(f"shop.payments.step_{i}", f"{i:016x}", os.urandom(96))
            for i in range(calls)
        ],
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- put latency and in-flight throughput ------------------------------------------------


def bench_puts(settings: KafkaStoreSettings, puts: int) -> list[Row]:
    event = Event.input({"order": 42})
    state = sample_state(42)
    value = encode_action_state(state)
    keys = [f"agent-{n}" for n in range(64)]
    skeys = [state_key(k, 1, event_uuid(event.attributes), action_uuid("charge")) for k in keys]
    headers = [*RecordMeta(codec="cloudpickle", writer="bench", schema=1).to_headers()]
    bare = Producer(settings.kafka_config("producer"))
    ours_ms: list[float] = []
    bare_ms: list[float] = []
    with KafkaStore(settings) as store, progress() as bar:
        task = bar.add_task("put latency (interleaved with bare produce+flush)", total=2 * puts)
        for n in range(50):  # warm both connections up
            store.put(keys[n % 64], 1, "charge", event, state)
            bare.produce(settings.topic, value, key=skeys[0], partition=0, headers=headers)
            bare.flush()
        block = 50
        for start in range(0, puts, block):
            for n in range(start, min(puts, start + block)):
                key = keys[n % 64]
                t0 = time.perf_counter()
                store.put(key, 1, "charge", event, state)
                ours_ms.append((time.perf_counter() - t0) * 1000)
            for n in range(start, min(puts, start + block)):
                partition = partition_for(keys[n % 64], PARTITIONS)
                t0 = time.perf_counter()
                bare.produce(
                    settings.topic, value, key=skeys[n % 64], partition=partition, headers=headers
                )
                bare.flush()
                bare_ms.append((time.perf_counter() - t0) * 1000)
            bar.advance(task, 2 * block)
    sequential_rate = 1000 / statistics.fmean(bare_ms)
    return [
        Row(
            "put latency p50",
            percentile(ours_ms, 0.5),
            percentile(bare_ms, 0.5),
            "ms",
            "≤ 1.2×",
            "lower",
            1.2,
        ),
        Row(
            "put latency p99",
            percentile(ours_ms, 0.99),
            percentile(bare_ms, 0.99),
            "ms",
            "≤ 1.5×",
            "lower",
            1.5,
        ),
        Row(
            "sequential send-and-flush", sequential_rate, sequential_rate, "writes/s", "(baseline)"
        ),
    ]


async def durable_steps(store: KafkaStore, steps: int, steps_per_action: int = 8) -> float:
    """Durable steps/s of ``IN_FLIGHT`` actions run concurrently in this process, each
    making ``steps_per_action`` ``durable_execute_async`` calls (bench/fleet.py compares
    its worker processes against this figure)."""
    actions = max(1, steps // (IN_FLIGHT * steps_per_action))

    async def step(n: int) -> int:
        return n

    async def worker(w: int) -> None:
        for a in range(actions):
            event = Event.input({"worker": w, "action": a})
            ctx = DurableContext(store, key=f"d{w}", seq=a, action="bench", event=event)
            for n in range(steps_per_action):
                await ctx.durable_execute_async(step, n)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(IN_FLIGHT)))
    return actions * steps_per_action * IN_FLIGHT / (time.perf_counter() - t0)


def bench_in_flight(settings: KafkaStoreSettings, steps: int, sequential_rate: float) -> list[Row]:
    state = sample_state(7)

    async def aputs(store: KafkaStore) -> float:
        per_writer = steps // IN_FLIGHT

        async def writer(w: int) -> None:
            event = Event.input({"writer": w})
            for n in range(per_writer):
                await store.aput(f"w{w}", n, "bench", event, state)

        t0 = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(IN_FLIGHT)))
        return per_writer * IN_FLIGHT / (time.perf_counter() - t0)

    def bare() -> float:
        # The machine's ceiling: IN_FLIGHT writes kept outstanding on one producer, each
        # followed by the next as soon as its acknowledgement is served, in one thread with
        # no event loop and no store: what librdkafka and the broker allow here.
        producer = Producer(settings.kafka_config("producer"))
        value = encode_action_state(state)
        total = steps // IN_FLIGHT * IN_FLIGHT
        keys = [state_key(f"w{w}", 1, uuid.uuid4(), uuid.uuid4()) for w in range(IN_FLIGHT)]
        counts = {"sent": 0, "acked": 0}

        def send(w: int) -> None:
            counts["sent"] += 1
            producer.produce(
                settings.topic,
                value,
                key=keys[w],
                partition=w % PARTITIONS,
                on_delivery=lambda _err, _msg: acked(w),
            )

        def acked(w: int) -> None:
            counts["acked"] += 1
            if counts["sent"] < total:
                send(w)

        t0 = time.perf_counter()
        for w in range(IN_FLIGHT):
            send(w)
        while counts["acked"] < total:
            producer.poll(0.1)
        return total / (time.perf_counter() - t0)

    with KafkaStore(settings) as store:
        console.print(f"{IN_FLIGHT} writes outstanding: bare produce (the machine's ceiling) ...")
        bare_rate = bare()
        console.print(f"{IN_FLIGHT} writers in flight: aput ...")
        aput_rate = asyncio.run(aputs(store))
        console.print(f"{IN_FLIGHT} actions in flight: durable_execute_async steps ...")
        durable_rate = asyncio.run(durable_steps(store, steps))
    return [
        Row(
            f"bare produce, {IN_FLIGHT} outstanding (ceiling)",
            bare_rate,
            sequential_rate,
            "writes/s",
            "(reference)",
        ),
        Row(
            f"aput, {IN_FLIGHT} in flight ({aput_rate / bare_rate:.2f}× ceiling)",
            aput_rate,
            sequential_rate,
            "writes/s",
            "≥ 20×",
            "higher",
            20,
        ),
        Row(
            f"durable steps, {IN_FLIGHT} in flight ({durable_rate / bare_rate:.2f}× ceiling)",
            durable_rate,
            sequential_rate,
            "steps/s",
            "≥ 20×",
            "higher",
            20,
        ),
    ]


# -- rebuild -----------------------------------------------------------------------------


def populate(settings: KafkaStoreSettings, records: int, keys: int) -> int:
    """Write ``records`` records over ``keys`` state keys; returns the live records' bytes."""
    config = {**settings.kafka_config("producer"), "linger.ms": 20, "batch.size": 1_000_000}
    producer = Producer(config)
    event = Event.input({"order": 1})
    ev, act = event_uuid(event.attributes), action_uuid("charge")
    values = [encode_action_state(sample_state(n, calls=n % 3 + 1)) for n in range(16)]
    headers = [*RecordMeta(codec="cloudpickle", writer="bench", schema=1).to_headers()]
    header_bytes = sum(len(k) + len(v) for k, v in headers)
    agents = [f"agent{n // 4}" for n in range(keys)]
    skeys = [state_key(agents[n], n % 4, ev, act).encode() for n in range(keys)]
    parts = [partition_for(a, PARTITIONS) for a in agents]
    live_bytes = [0] * keys
    with progress() as bar:
        task = bar.add_task(f"writing {records:,} records over {keys:,} keys", total=records)
        for n in range(records):
            k = n % keys
            value = values[n % 16]
            while True:
                try:
                    producer.produce(
                        settings.topic, value, key=skeys[k], partition=parts[k], headers=headers
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
            live_bytes[k] = len(skeys[k]) + len(value) + header_bytes
            if n % 10_000 == 0:
                producer.poll(0)
                bar.update(task, completed=n)
        producer.flush()
    return sum(live_bytes)


def raw_drain(
    config: dict[str, Any], topic: str, partitions: int = PARTITIONS
) -> tuple[int, int, float]:
    """Read every partition to its end offset with a bare consumer of ``config``, counting
    records and key + value bytes only: the floor. (records, bytes, seconds)"""
    t0 = time.perf_counter()
    consumer = Consumer(config)
    ends = {}
    for p in range(partitions):
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
        if high > 0:
            ends[p] = high
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    count = size = 0
    while ends:
        for msg in consumer.consume(10_000, 0.1):
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    ends.pop(msg.partition() or 0, None)
                continue
            p, offset = msg.partition() or 0, msg.offset() or 0
            end = ends.get(p)
            if end is None:
                continue
            size += len(msg.value() or b"") + len(msg.key() or b"")
            count += 1
            if offset >= end - 1:
                del ends[p]
    consumer.close()
    return count, size, time.perf_counter() - t0


def bench_rebuild(settings: KafkaStoreSettings, records: int, keys: int, repeat: int) -> list[Row]:
    with KafkaStore(settings):
        pass  # creates the topic, compacted
    raw_live = populate(settings, records, keys)
    ours: list[float] = []
    raw: list[float] = []
    with progress() as bar:
        task = bar.add_task("rebuild vs raw drain (interleaved)", total=2 * repeat)
        for _ in range(repeat):
            count, _size, seconds = raw_drain(settings.kafka_config("consumer"), settings.topic)
            raw.append(count / seconds)
            bar.advance(task)
            with KafkaStore(settings) as store:
                report = store.rebuild()
            assert report.states_live == keys, report
            ours.append(report.records_read / report.seconds)
            bar.advance(task)
    console.print("measuring the rebuilt view's memory (tracemalloc) ...")
    with KafkaStore(settings) as store:
        tracemalloc.start()
        before, _ = tracemalloc.get_traced_memory()
        report = store.rebuild()
        retained, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    raw_per_state = raw_live / keys
    return [
        Row(
            f"rebuild, {records:,} records / {keys:,} keys",
            max(ours),
            max(raw),
            "records/s",
            "≥ 0.5× (0.8×)",
            "higher",
            0.5,
        ),
        Row(
            "view memory per live state (retained)",
            (retained - before) / keys,
            raw_per_state,
            "bytes",
            "(vs record bytes)",
        ),
        Row(
            "rebuild peak memory per live state",
            (peak - before) / keys,
            raw_per_state,
            "bytes",
            "(vs record bytes)",
        ),
    ]


# -- rebuild tail ------------------------------------------------------------------------


def poll_until_empty(settings: KafkaStoreSettings) -> float:
    """Flink Agents' way: poll until a 1 s poll comes back empty; seconds after the last."""
    consumer = Consumer(settings.kafka_config("consumer"))
    consumer.assign([TopicPartition(settings.topic, p, 0) for p in range(PARTITIONS)])
    last = time.perf_counter()
    while True:
        batch = [m for m in consumer.consume(10_000, 1.0) if m.error() is None]
        if not batch:
            break
        last = time.perf_counter()
    tail = time.perf_counter() - last
    consumer.close()
    return tail


def make_gaps(settings: KafkaStoreSettings, wait: float) -> str:
    """Fill a compacted topic so it has offset gaps: overwritten keys the cleaner removed
    (if it runs within ``wait`` seconds) and transaction markers at the partitions' ends."""
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    with KafkaStore(settings):
        pass
    resource = ConfigResource(
        ResourceType.TOPIC,
        settings.topic,
        incremental_configs=[
            ConfigEntry("segment.ms", "100", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry(
                "min.cleanable.dirty.ratio", "0.01", incremental_operation=AlterConfigOpType.SET
            ),
            ConfigEntry("delete.retention.ms", "100", incremental_operation=AlterConfigOpType.SET),
        ],
    )
    admin.incremental_alter_configs([resource])[resource].result()
    populate(settings, 20_000, 200)
    time.sleep(0.3)  # let the segments roll
    populate(settings, 200, 200)
    producer = Producer(
        {**settings.kafka_config("producer"), "transactional.id": str(uuid.uuid4())}
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    value = encode_action_state(sample_state(1))
    for p in range(PARTITIONS):
        skey = state_key(f"tx{p}", 1, uuid.uuid4(), uuid.uuid4())
        producer.produce(settings.topic, value, key=skey, partition=p)
    producer.commit_transaction(30)
    deadline = time.monotonic() + wait
    with progress() as bar:
        bar.add_task(f"waiting up to {wait:.0f}s for the log cleaner", total=None)
        while time.monotonic() < deadline:
            with KafkaStore(settings) as store:
                report = store.rebuild()
                ends = sum(store.recovery_marker().values())
            if ends - report.records_read > 2 * PARTITIONS:
                return f"compaction removed {ends - report.records_read - PARTITIONS:,} offsets"
            time.sleep(2)
    return "transaction-marker gaps only (the cleaner did not run in time)"


def bench_tail(settings: KafkaStoreSettings, empty: KafkaStoreSettings, wait: float) -> list[Row]:
    gaps = make_gaps(settings, wait)
    console.print(f"gap topic: {gaps}")
    tails = []
    for _ in range(5):
        with KafkaStore(settings) as store:
            tails.append(store.rebuild().tail_seconds * 1000)
    java_tail = poll_until_empty(settings) * 1000
    with KafkaStore(empty) as store:
        empty_ms = statistics.median(store.rebuild().seconds * 1000 for _ in range(5))
    java_empty = poll_until_empty(empty) * 1000
    return [
        Row(
            "rebuild tail, compacted topic with gaps",
            statistics.median(tails),
            java_tail,
            "ms",
            "≤ 50 ms",
        ),
        Row("rebuild of an empty topic", empty_ms, java_empty, "ms", "≤ 50 ms"),
    ]


def show(
    rows: list[Row],
    title: str = "kafka-actionstate store vs bare confluent-kafka (same broker, same run)",
) -> None:
    table = Table(title=title)
    for column in ("measure", "ours", "baseline", "ratio", "target", ""):
        table.add_column(column, justify="left" if column in ("measure", "target") else "right")
    for row in rows:
        ours, base = f"{row.ours:,.2f} {row.unit}", f"{row.baseline:,.2f} {row.unit}"
        verdict = row.verdict
        if row.target.startswith("≤ 50"):
            verdict = "[green]met[/]" if row.ours <= 50 else "[red]missed[/]"
        table.add_row(row.measure, ours, base, f"{row.ratio:.2f}×", row.target, verdict)
    console.print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--puts", type=int, default=2_000)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=2, help="rebuild/drain rounds")
    parser.add_argument("--compaction-wait", type=float, default=60.0)
    parser.add_argument(
        "--only",
        default="puts,inflight,rebuild,tail",
        help="comma-separated phases to run (inflight needs puts for its baseline)",
    )
    args = parser.parse_args(argv)
    phases = {p.strip() for p in args.only.split(",") if p.strip()}
    if "inflight" in phases:
        phases.add("puts")
    run = uuid.uuid4().hex[:8]
    rows: list[Row] = []
    with broker(os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), console.print) as bootstrap:
        topics: list[str] = []

        def settings(name: str) -> KafkaStoreSettings:
            topics.append(f"bench-{name}-{run}")
            return KafkaStoreSettings(
                bootstrap_servers=bootstrap, topic=topics[-1], partitions=PARTITIONS
            )

        try:
            if "puts" in phases:
                put_rows = bench_puts(settings("puts"), args.puts)
                rows += put_rows
            if "inflight" in phases:
                rows += bench_in_flight(settings("inflight"), args.steps, put_rows[2].ours)
            if "rebuild" in phases:
                rows += bench_rebuild(settings("rebuild"), args.records, args.keys, args.repeat)
            if "tail" in phases:
                rows += bench_tail(settings("gaps"), settings("empty"), args.compaction_wait)
        finally:
            admin = AdminClient({"bootstrap.servers": bootstrap})
            for future in admin.delete_topics(topics, operation_timeout=30).values():
                future.exception()
    show(rows)


if __name__ == "__main__":
    main()
