"""Producer compression on real state records: none vs lz4 vs zstd (issue 11), one broker.

    python bench/compression.py [--records 20000] [--long-steps 2000]

Uses ``KAFKA_BOOTSTRAP_SERVERS`` when set, else starts a local broker (and stops it at the
end). The records are what ``encode_record`` writes: completed states, unfinished ones with
two journaled calls (cloudpickled outcomes), and the last record of a long action (one
``CallResult`` per durable step, ``--long-steps`` of them); each kind cycles through
distinct records (other orders, ids, digests), as a real topic holds. Each kind goes
through a producer per ``compression.type``, measured against ``none`` in the same run:

- bytes on the wire: the producer's own ``tx_bytes`` statistic (what it sent to the broker,
  batches compressed, protocol framing included);
- producer CPU per record: process CPU time (librdkafka's threads included) of producing and
  flushing, divided by the records;
- consumer CPU per record: the same for a bare consumer reading the records back.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from typing import Any

import cloudpickle
from _broker import broker
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from durable import Row, console, show

from actionstate.serde import ActionState, CallResult, Event, encode_record

CODECS = ("none", "lz4", "zstd")
PARTITIONS = 4


def records(long_steps: int, variants: int = 64) -> dict[str, list[tuple[bytes, list[Any]]]]:
    """``variants`` distinct records (and headers) per kind: other orders, event ids, digests
    and outcomes, as the records of many actions differ in a real topic."""

    def encoded(state: ActionState) -> tuple[bytes, list[Any]]:
        return encode_record(
            "a_1_00000000-0000-0000-0000-000000000000_00000000-0000-0000-0000-000000000001",
            state,
            codec="cloudpickle",
            secret=None,
            version=None,
        )

    def completed(n: int) -> ActionState:
        order = {"order": 4711 + n, "customer": f"c-{n * 7919 % 1000}", "amount": 12.5 + n}
        state = ActionState(task_event=Event.input(order))
        state.output_events.append(Event.output({"receipt": f"r-{uuid.uuid4()}"}))
        state.mark_completed()
        return state

    def unfinished(n: int) -> ActionState:
        outcome = cloudpickle.dumps({"receipt": f"r-{uuid.uuid4()}", "at": 1733044800.5 + n})
        return ActionState(
            task_event=Event.input({"order": 4711 + n, "customer": f"c-{n}", "amount": 3.5}),
            call_results=[
                CallResult.succeeded("shop.payments.reserve", os.urandom(8).hex(), outcome),
                CallResult.pending("shop.payments.charge", os.urandom(8).hex()),
            ],
        )

    def steps(n: int) -> ActionState:
        return ActionState(
            task_event=Event.input({"job": n}),
            call_results=[
                CallResult.succeeded(
                    f"shop.pipeline.step_{i % 20}",
                    os.urandom(8).hex(),
                    cloudpickle.dumps({"step": i, "rows": (i * 7 + n) % 9973, "ok": True}),
                )
                for i in range(long_steps)
            ],
        )

    return {
        "completed state": [encoded(completed(n)) for n in range(variants)],
        "unfinished, 2 calls": [encoded(unfinished(n)) for n in range(variants)],
        f"long action, {long_steps:,} steps": [encoded(steps(n)) for n in range(8)],
    }


def produce(
    bootstrap: str, topic: str, codec: str, kinds: list[tuple[bytes, list[Any]]], n: int
) -> dict[str, float]:
    stats: list[dict[str, Any]] = []
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "compression.type": codec,
            "linger.ms": 20,
            "acks": "all",
            "enable.idempotence": True,
            "message.max.bytes": 10_000_000,
            "statistics.interval.ms": 100,
            "stats_cb": lambda text: stats.append(json.loads(text)),
        }
    )
    producer.list_topics(topic, timeout=30)
    producer.poll(0.3)
    base = stats[-1]["tx_bytes"] if stats else 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(n):
        key = f"a{i}_1_00000000-0000-0000-0000-{i:012d}_00000000-0000-0000-0000-000000000001"
        value, headers = kinds[i % len(kinds)]
        while True:
            try:
                producer.produce(topic, value, key=key, partition=i % PARTITIONS, headers=headers)
                break
            except BufferError:
                producer.poll(0.01)
        if i % 1000 == 0:
            producer.poll(0)
    producer.flush(120)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    seen = len(stats)
    while len(stats) < seen + 2:  # a statistics report issued after the last delivery
        producer.poll(0.1)
    return {"wire": stats[-1]["tx_bytes"] - base, "cpu": cpu, "wall": wall}


def consume(bootstrap: str, topic: str, n: int) -> float:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.message.max.bytes": 10_000_000,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    cpu0 = time.process_time()
    seen, done = 0, set()
    while len(done) < PARTITIONS:
        for msg in consumer.consume(1000, 0.2):
            err = msg.error()
            if err is None:
                seen += 1
            elif err.code() == KafkaError._PARTITION_EOF:
                done.add(msg.partition())
    cpu = time.process_time() - cpu0
    consumer.close()
    assert seen == n, (seen, n)
    return cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--long-steps", type=int, default=2_000)
    parser.add_argument("--long-records", type=int, default=200)
    args = parser.parse_args(argv)
    run = uuid.uuid4().hex[:8]
    rows: list[Row] = []
    with broker(os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), console.print) as bootstrap:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        topics: list[str] = []
        try:
            for kind, variants in records(args.long_steps).items():
                size = sum(len(v) for v, _ in variants) // len(variants)
                n = args.long_records if kind.startswith("long") else args.records
                results = {}
                for codec in CODECS:
                    topic = f"bench-compression-{codec}-{len(topics)}-{run}"
                    topics.append(topic)
                    new = NewTopic(topic, PARTITIONS, 1, config={"max.message.bytes": "10485760"})
                    admin.create_topics([new])[topic].result()
                    console.print(f"{kind}: {size:,} B a record, {n:,} records, {codec} ...")
                    result = produce(bootstrap, topic, codec, variants, n)
                    result["read_cpu"] = consume(bootstrap, topic, n)
                    results[codec] = result
                none = results["none"]
                for codec in CODECS[1:]:
                    mine = results[codec]
                    rows.append(
                        Row(
                            f"{kind} ({size:,} B): {codec} bytes on the wire / record",
                            mine["wire"] / n,
                            none["wire"] / n,
                            "B",
                            "(vs none)",
                        )
                    )
                    rows.append(
                        Row(
                            f"{kind}: {codec} producer CPU / record",
                            mine["cpu"] / n * 1e6,
                            none["cpu"] / n * 1e6,
                            "µs",
                            "(vs none)",
                        )
                    )
                    rows.append(
                        Row(
                            f"{kind}: {codec} consumer CPU / record",
                            mine["read_cpu"] / n * 1e6,
                            none["read_cpu"] / n * 1e6,
                            "µs",
                            "(vs none)",
                        )
                    )
        finally:
            for future in admin.delete_topics(topics, operation_timeout=30).values():
                future.exception()
    show(rows, "producer compression on real state records (same broker, same run)")


if __name__ == "__main__":
    main()
