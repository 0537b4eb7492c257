"""The sidecar's write path: records by state key through the project's Kafka writer.

The sidecar receives finished records (a state key, the record bytes, their metadata)
rather than ``put`` arguments, so it writes them as they are, with the store's guarantees:
the topic checked as ``KafkaStore`` checks it, an idempotent producer with ``acks=all``,
Flink's partitioner, and an answer only once the broker acknowledged.
"""

from __future__ import annotations

from actionstate.client import KafkaStoreSettings, StoreError, StoreReadError
from actionstate.client.kafka import KafkaAdmin, KafkaWriter
from actionstate.serde import HeaderList, RecordMeta, partition_for

__all__ = ["Journal"]


class Journal:
    """Writes records of one topic by state key and reports their offsets.

    The topic is created or checked on construction (``KafkaStore``'s rules).
    """

    def __init__(self, settings: KafkaStoreSettings) -> None:
        self.topic = settings.topic
        self._admin = KafkaAdmin(settings)
        self._partitions = self._admin.ensure_topic(settings)
        self._writer = KafkaWriter(settings, settings.topic)

    @property
    def partitions(self) -> int:
        """The topic's partition count (records are routed with it)."""
        return self._partitions

    def partition_of(self, agent_key: str) -> int:
        """The partition Flink Agents routes ``agent_key`` to."""
        return partition_for(agent_key, self._partitions)

    def recovery_marker(self) -> dict[int, int]:
        """The topic's end offset per partition, from fresh metadata."""
        self._ensure_open()
        count = self._admin.partition_count(self.topic)
        if count is None:
            raise StoreReadError(f"topic {self.topic!r} no longer exists")
        self._partitions = count
        return self._admin.end_offsets(self.topic, list(range(count)))

    async def write(
        self, agent_key: str, skey: str, value: bytes, meta: RecordMeta
    ) -> tuple[int, int]:
        """Append a record; (partition, offset) once the broker acknowledged it.

        Raises ``StoreWriteError`` when it was not acknowledged.
        """
        return await self._append(agent_key, skey, value, meta)

    async def delete(self, agent_key: str, skey: str, meta: RecordMeta) -> tuple[int, int]:
        """Append a tombstone; (partition, offset) once the broker acknowledged it."""
        return await self._append(agent_key, skey, None, meta)

    async def _append(
        self, agent_key: str, skey: str, value: bytes | None, meta: RecordMeta
    ) -> tuple[int, int]:
        self._ensure_open()
        partition = self.partition_of(agent_key)
        headers: HeaderList = [*meta.to_headers()]
        offset = await self._writer.awrite(partition, skey, value, headers)
        return partition, offset

    def _ensure_open(self) -> None:
        if self._writer.closed:
            raise StoreError(f"the store for topic {self.topic!r} is closed; open a new one")

    def close(self) -> None:
        """Wait (up to the timeout) for writes in flight, then stop."""
        self._writer.close()
