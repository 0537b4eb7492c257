"""The loop rides out a broker that stops answering: journal writes that were not
acknowledged are retried (the offset stays uncommitted meanwhile), and every request
still completes exactly once when the broker answers again."""

from __future__ import annotations

import logging
import os
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from actionstate.client import DurableContext, KafkaStore, KafkaStoreSettings, Worker
from actionstate.client.fleet import FleetMetrics, RequestSender
from actionstate.service.local_kafka import LocalKafka, LocalKafkaSettings
from tests._support import assert_eventually

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def paused_kafka(broker_dirs: Callable[[str], Path]) -> Iterator[LocalKafka]:
    kafka = LocalKafka(LocalKafkaSettings(dir=broker_dirs("paused-kafka"), heap="384m"))
    kafka.start()
    try:
        yield kafka
    finally:
        pid = kafka.status().pid
        if pid is not None:
            os.kill(pid, signal.SIGCONT)  # never leave it stopped, whatever happened
        kafka.stop()


def test_writes_not_acknowledged_are_retried_and_nothing_runs_twice(
    paused_kafka: LocalKafka, caplog: pytest.LogCaptureFixture
) -> None:
    bootstrap = paused_kafka.status().bootstrap
    pid = paused_kafka.status().pid
    assert bootstrap is not None
    assert pid is not None
    sfx = uuid.uuid4().hex[:8]
    state, requests = f"pause-state-{sfx}", f"pause-requests-{sfx}"
    settings = KafkaStoreSettings(
        bootstrap_servers=bootstrap, topic=state, partitions=2, timeout_s=3
    )
    paid: list[int] = []
    gate = threading.Event()
    worker = Worker()

    @worker.action("pay")
    def pay(data: Any, ctx: DurableContext) -> Any:
        if data["n"] >= 10:
            gate.wait(60)  # the later requests start while the broker is stopped

        def charge(n: int) -> int:
            paid.append(n)
            return n

        return ctx.durable_execute(charge, data["n"], reconciler=lambda: data["n"])

    metrics = FleetMetrics()
    KafkaStore(settings).close()
    with RequestSender(bootstrap_servers=bootstrap, requests=requests, topic=state) as sender:
        sender.send_many((f"k{n}", "pay", {"n": n}) for n in range(20))
    caplog.set_level(logging.WARNING, logger="actionstate.fleet")
    thread = threading.Thread(
        target=worker.run,
        kwargs={
            "requests": requests,
            "group": f"pause-{sfx}",
            "store_settings": settings,
            "metrics": metrics,
            "handle_signals": False,
        },
        daemon=True,
    )
    thread.start()
    try:
        assert_eventually(lambda: metrics.totals["completed"] == 10, timeout=90)
        os.kill(pid, signal.SIGSTOP)
        try:
            gate.set()
            assert_eventually(
                lambda: "a journal write failed" in caplog.text, timeout=60, interval=0.2
            )
        finally:
            os.kill(pid, signal.SIGCONT)
        assert_eventually(lambda: metrics.totals["completed"] == 20, timeout=120)
    finally:
        worker.stop()
        thread.join(60)
    assert sorted(paid) == list(range(20))  # each payment ran once, none twice
    assert metrics.totals["failed"] == 0
