"""The sidecar's write path: ``KafkaStore``'s producer, topic rules and offsets, by state key.

The sidecar receives finished records (a state key, the record bytes, their metadata)
rather than ``put`` arguments, so it reaches below ``put`` to the store's acknowledged
write, keeping its guarantees: idempotent producer, ``acks=all``, Flink's partitioner, and
an answer only once the broker acknowledged.
"""

from __future__ import annotations

from typing import cast

from actionstate.client import KafkaStore
from actionstate.client._records import WRITER, Headers
from actionstate.serde import RecordMeta, partition_for

__all__ = ["WRITER", "Journal"]


class Journal(KafkaStore):
    """A ``KafkaStore`` that writes records by state key and reports their offsets.

    Its own view stays empty: the sidecar keeps the materialized view.
    """

    @property
    def partitions(self) -> int:
        """The topic's partition count (records are routed with it)."""
        return self._partition_count()

    def partition_of(self, agent_key: str) -> int:
        """The partition Flink Agents routes ``agent_key`` to."""
        return partition_for(agent_key, self._partition_count())

    async def write(
        self, agent_key: str, skey: str, value: bytes, meta: RecordMeta
    ) -> tuple[int, int]:
        """Append a record; (partition, offset) once the broker acknowledged it.

        Raises ``StoreWriteError`` when it was not acknowledged.
        """
        self._check_open()
        partition = self.partition_of(agent_key)
        headers: Headers = [*meta.to_headers()]
        offset = await self._awrite(partition, skey, value, headers)
        return partition, offset

    async def delete(self, agent_key: str, skey: str, meta: RecordMeta) -> tuple[int, int]:
        """Append a tombstone; (partition, offset) once the broker acknowledged it."""
        self._check_open()
        partition = self.partition_of(agent_key)
        headers: Headers = [*meta.to_headers()]
        # The producer takes None as the value of a tombstone.
        offset = await self._awrite(partition, skey, cast(bytes, None), headers)
        return partition, offset
