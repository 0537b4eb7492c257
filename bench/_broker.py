"""The broker a benchmark runs against: the configured one, or a local one it starts and stops."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from actionstate.service.local_kafka import LocalKafka, LocalKafkaSettings


@contextmanager
def broker(configured: str | None, say: Callable[[str], None] = print) -> Iterator[str]:
    """Yield ``configured`` if given, else start a local broker in a temporary folder.

    A broker started here is stopped on the way out, whatever happened in between.
    """
    if configured and configured.strip():
        yield configured.strip()
        return
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as folder:
        kafka = LocalKafka(LocalKafkaSettings(dir=Path(folder)))
        say("no KAFKA_BOOTSTRAP_SERVERS: starting a local Kafka broker ...")
        bootstrap = kafka.start(progress=lambda line: say(f"  {line}"))
        try:
            yield bootstrap
        finally:
            kafka.stop()
