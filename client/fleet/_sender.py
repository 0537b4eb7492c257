"""``RequestSender``: write requests to a fleet's requests topic, and wait for their outcomes.

The Python side of ``actionstate send``. A request goes to the partition Flink Agents'
partitioner gives its agent key, which is also its state's partition, and its id is where it
landed. A worker runs request (p, o) as ``submit(agent_key, data, seq=o, action=action)``,
so the state key of its outcome is known once the request is acknowledged: waiting reads
only that state partition, from its end offset taken before the request was written, until
that key's completed record appears.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import orjson
from pydantic import SecretStr, model_validator

from actionstate.client._errors import RequestError, RequestTimeoutError, StoreWriteError
from actionstate.client._locate import locate
from actionstate.client._runs import stored_output
from actionstate.client.kafka._admin import KafkaAdmin
from actionstate.client.kafka._reader import KafkaMessage, PartitionReader
from actionstate.client.kafka._settings import (
    DEFAULT_TIMEOUT_S,
    KafkaConnection,
    ReplicationFactor,
    TopicName,
)
from actionstate.client.kafka._writer import KafkaWriter
from actionstate.serde import (
    Event,
    InvalidRequestError,
    RequestId,
    check_record,
    encode_request,
    partition_for,
)

__all__ = ["RequestSender", "SenderSettings", "SentRequest"]

_log = logging.getLogger("actionstate.client.fleet")

# Writes of send_many in flight at once: far below librdkafka's queue, which never fills,
# so no write waits for room while a later one is queued before it.
_WINDOW = 1000
_POLL_BATCH = 500
_POLL_WAIT_S = 0.2
_SHOWN_IDS = 10


class SenderSettings(KafkaConnection):
    """Where :class:`RequestSender` (and ``actionstate send``) writes requests and waits for
    their outcomes, on a :class:`KafkaConnection`. Every field can come from an argument or
    from ``ACTIONSTATE_<FIELD>`` in the environment (``ACTIONSTATE_REQUESTS``, ...)."""

    requests: TopicName
    """The requests topic the fleet's workers consume."""
    topic: TopicName | None = None
    """The state topic. Needed to wait for outcomes, and to create a missing requests
    topic (with the state topic's partition count)."""
    signing_secret: SecretStr | None = None
    """The workers' signing secret: state records read while waiting must verify."""
    replication_factor: ReplicationFactor | None = None
    """Replicas of a requests topic created here; None: min(3, brokers in the cluster)."""

    @model_validator(mode="after")
    def _distinct_topics(self) -> SenderSettings:
        if self.topic == self.requests:
            raise ValueError(
                f"requests and topic are both {self.requests!r}: the requests topic must be "
                "another topic than the state topic"
            )
        return self

    @property
    def secret_bytes(self) -> bytes | None:
        """The signing secret as bytes, or None when records are not verified."""
        if self.signing_secret is None:
            return None
        return self.signing_secret.get_secret_value().encode()


@dataclass(frozen=True, slots=True)
class SentRequest:
    """A request the broker acknowledged, and where its outcome will be journaled.

    ``state_key`` is the key of the state a worker journals for it, in partition
    ``state_partition`` of the state topic; ``state_offset`` is that partition's end offset
    taken before the request was written, where waiting starts (None when no state topic
    was configured: nothing can wait for it).
    """

    request_id: RequestId
    agent_key: str
    action: str
    state_key: str
    state_partition: int
    state_offset: int | None


@dataclass(frozen=True, slots=True)
class _Prepared:
    agent_key: str
    action: str
    value: bytes
    partition: int
    event: Event  # the task event a worker will journal: of the data as it reads it back


class RequestSender:
    """Writes requests to ``settings.requests`` and waits for their outcomes.

    ``RequestSender(bootstrap_servers=..., requests="orders-requests", topic="orders-state")``
    or ``RequestSender(SenderSettings(...))``; keyword overrides win over the settings. A
    missing requests topic is created with the state topic's partition count when the state
    topic is configured and exists; otherwise it is a :class:`RequestError`. Writes are
    idempotent with ``acks=all``: ``send`` returns once the broker acknowledged the request.
    """

    def __init__(self, settings: SenderSettings | None = None, **overrides: Any) -> None:
        if settings is None:
            settings = SenderSettings(**overrides)
        elif overrides:
            settings = SenderSettings.model_validate(
                {**settings.model_dump(exclude_unset=True), **overrides}
            )
        self.settings = settings
        self.bad_records = 0
        """State records skipped while waiting (undecodable, or failing the signature)."""
        self._secret = settings.secret_bytes
        self._admin = KafkaAdmin(settings)
        self._partitions, self._state_exists = self._requests_topic()
        self._writer = KafkaWriter(settings, settings.requests)

    def _requests_topic(self) -> tuple[int, bool]:
        """The requests topic's partition count, and whether the state topic exists."""
        s = self.settings
        state_count = None if s.topic is None else self._admin.partition_count(s.topic)
        if state_count is not None:
            # Created when missing, refused when its count differs from the state topic's.
            count = self._admin.ensure_requests_topic(s.requests, state_count, s.replication_factor)
            return count, True
        existing = self._admin.partition_count(s.requests)
        if existing is not None:
            return existing, False
        if s.topic is None:
            raise RequestError(
                f"the requests topic {s.requests!r} does not exist; give the state topic "
                "(topic, --topic or ACTIONSTATE_TOPIC) to create it with the state topic's "
                "partition count, or start a worker of the fleet, which creates it"
            )
        raise RequestError(
            f"the requests topic {s.requests!r} does not exist, and neither does the state "
            f"topic {s.topic!r} whose partition count it must have; start a worker of the "
            "fleet (it creates both), or check the topic names"
        )

    @property
    def partitions(self) -> int:
        """The partition count of the requests topic."""
        return self._partitions

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Wait (up to the timeout) for writes in flight, then release the producers."""
        self._writer.close()

    # -- sending ---------------------------------------------------------------------------

    def send(self, agent_key: str, action: str, data: Any) -> SentRequest:
        """Write one request; returns once the broker acknowledged it.

        :class:`~actionstate.serde.InvalidRequestError` names a bad argument (nothing is
        written); ``StoreWriteError`` when the broker did not acknowledge the write.
        """
        item = self._prepare(agent_key, action, data)
        starts = self._state_starts({item.partition})
        offset = self._writer.write(item.partition, item.agent_key, item.value, [])
        return self._sent(item, offset, starts)

    async def asend(self, agent_key: str, action: str, data: Any) -> SentRequest:
        """Async :meth:`send`, without blocking the event loop."""
        item = self._prepare(agent_key, action, data)
        starts = await asyncio.to_thread(self._state_starts, {item.partition})
        offset = await self._writer.awrite(item.partition, item.agent_key, item.value, [])
        return self._sent(item, offset, starts)

    def send_many(self, requests: Iterable[tuple[str, str, Any]]) -> list[SentRequest]:
        """Write ``(agent_key, action, data)`` requests, many in flight at once; their
        results in order. See :meth:`asend_many`."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.asend_many(requests))
        raise RequestError(
            "send_many cannot run inside a running event loop; await asend_many(...) instead"
        )

    async def asend_many(self, requests: Iterable[tuple[str, str, Any]]) -> list[SentRequest]:
        """Write ``(agent_key, action, data)`` requests pipelined, in order (so one agent
        key's requests keep their order); returns their results in that order.

        Every request is checked before anything is written (``InvalidRequestError`` names
        ``requests[i]`` and the argument). When some writes are not acknowledged, the
        others still are: the ``StoreWriteError`` says how many failed.
        """
        items = [self._prepare_item(i, request) for i, request in enumerate(requests)]
        if not items:
            return []
        starts = await asyncio.to_thread(self._state_starts, {it.partition for it in items})
        writes: list[asyncio.Future[int]] = []
        in_flight: set[asyncio.Future[int]] = set()
        for item in items:
            if len(in_flight) >= _WINDOW:
                _, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            write = asyncio.ensure_future(
                self._writer.awrite(item.partition, item.agent_key, item.value, [])
            )
            writes.append(write)
            in_flight.add(write)
            # Let the write run up to its produce() now: the records are queued in order.
            await asyncio.sleep(0)
        outcomes = await asyncio.gather(*writes, return_exceptions=True)
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            first = failed[0]
            if not isinstance(first, StoreWriteError):
                raise first
            raise StoreWriteError(
                f"{len(failed)} of {len(items)} requests were not acknowledged (the first: "
                f"{first}); the other {len(items) - len(failed)} were: sending them all "
                "again would send those twice",
                topic=first.topic,
                key=first.key,
                cause=first.cause,
            ) from first
        return [
            self._sent(item, offset, starts)
            for item, offset in zip(items, outcomes, strict=True)
            if isinstance(offset, int)
        ]

    def _prepare_item(self, index: int, request: Any) -> _Prepared:
        if not isinstance(request, tuple | list) or len(request) != 3:
            raise InvalidRequestError(
                "must be an (agent_key, action, data) tuple", path=f"requests[{index}]"
            )
        try:
            return self._prepare(*request)
        except InvalidRequestError as exc:
            raise InvalidRequestError(exc.problem, path=f"requests[{index}].{exc.path}") from None

    def _prepare(self, agent_key: str, action: str, data: Any) -> _Prepared:
        _, value = encode_request(agent_key, action, data)
        # The data as a worker reads it back names the task event, and so the state key.
        read_back = orjson.loads(value)["data"]
        partition = partition_for(agent_key, self._partitions)
        return _Prepared(agent_key, action, value, partition, Event.input(read_back))

    def _state_starts(self, partitions: set[int]) -> dict[int, int] | None:
        """Where waiting for the requests of ``partitions`` starts: each state partition's
        end offset now (None: no state topic to wait on)."""
        topic = self.settings.topic
        if topic is None:
            return None
        if not self._state_exists:
            return dict.fromkeys(partitions, 0)  # whatever it will hold comes after this
        return self._admin.end_offsets(topic, sorted(partitions))

    def _sent(self, item: _Prepared, offset: int, starts: dict[int, int] | None) -> SentRequest:
        state_key = locate(item.agent_key, offset, item.action, item.event).state_key
        return SentRequest(
            request_id=RequestId(item.partition, offset),
            agent_key=item.agent_key,
            action=item.action,
            state_key=state_key,
            state_partition=item.partition,
            state_offset=None if starts is None else starts[item.partition],
        )

    # -- waiting ---------------------------------------------------------------------------

    def wait(self, sent: SentRequest, timeout_s: float = DEFAULT_TIMEOUT_S) -> Any:
        """The action's (JSON) output, once the completed state of ``sent`` is read.

        Reads only the state partition of its agent key, from where it ended before the
        request was written. :class:`RequestTimeoutError` after ``timeout_s`` seconds: the
        action may still be running, or may have failed (its state stays incomplete).
        """
        [(_, output)] = self.wait_many([sent], timeout_s)
        return output

    async def wait_async(self, sent: SentRequest, timeout_s: float = DEFAULT_TIMEOUT_S) -> Any:
        """Async :meth:`wait`: the read runs in a worker thread."""
        return await asyncio.to_thread(self.wait, sent, timeout_s)

    def wait_many(
        self, sent: Iterable[SentRequest], timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> Iterator[tuple[SentRequest, Any]]:
        """Each request with its action's output, as its completed state is read (in that
        order), with one reader over their state partitions. :class:`RequestTimeoutError`
        naming the requests still waiting when ``timeout_s`` seconds have passed."""
        timeout = _check_timeout(timeout_s)
        deadline = time.monotonic() + timeout
        waiting = {s.state_key.encode(): s for s in sent}
        if not waiting:
            return
        topic = self._wait_topic()
        starts = _read_starts(waiting.values())
        bad = 0
        with PartitionReader(self.settings, topic, purpose="wait") as reader:
            if reader.partitions() is None:
                raise RequestError(
                    f"the state topic {topic!r} does not exist: no worker of the fleet has "
                    "started on it yet; start one, or check the topic name"
                )
            reader.assign(starts)
            while waiting:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self._timed_out(list(waiting.values()), timeout, bad)
                for msg in reader.poll(_POLL_BATCH, min(_POLL_WAIT_S, left)):
                    err = msg.error()
                    if err is not None:
                        reader.on_error(err, msg)  # an end of partition, or raises if fatal
                        continue
                    key = msg.key()
                    pending = None if key is None else waiting.get(key)
                    if key is None or pending is None:
                        continue  # another state of the partition
                    outcome = self._outcome(pending, msg)
                    if outcome is _BAD:
                        bad += 1
                    elif outcome is not _NOT_YET:
                        del waiting[key]
                        yield pending, outcome

    def _wait_topic(self) -> str:
        if self.settings.topic is None:
            raise RequestError(
                "waiting needs the state topic: configure topic (--topic or ACTIONSTATE_TOPIC)"
            )
        return self.settings.topic

    def _outcome(self, sent: SentRequest, msg: KafkaMessage) -> Any:
        """The output of the completed state of ``sent``; ``_NOT_YET`` for another record
        of it, ``_BAD`` for one the record checker refuses (skipped and counted, never
        fatal)."""
        checked = check_record(
            sent.state_key, msg.value(), msg.headers(), self._secret, decode=True
        )
        if checked.reason is not None:
            self.bad_records += 1
            _log.warning(
                "skipped a bad record of state %s at %s[%s] offset %s: %s (%s)",
                sent.state_key,
                self.settings.topic,
                msg.partition(),
                msg.offset(),
                checked.reason.value,
                checked.detail,
            )
            return _BAD
        state = checked.state
        if state is None or not state.completed:
            return _NOT_YET  # a tombstone, or a journal write before the completed one
        return stored_output(state)

    def _timed_out(
        self, pending: list[SentRequest], timeout: float, bad: int
    ) -> RequestTimeoutError:
        topic = self.settings.topic or ""
        pending.sort(key=lambda s: s.request_id)
        ids = tuple(str(s.request_id) for s in pending)
        shown = ", ".join(ids[:_SHOWN_IDS])
        if len(ids) > _SHOWN_IDS:
            shown += f" and {len(ids) - _SHOWN_IDS} more"
        if len(ids) == 1:
            what = f"request {shown} ({pending[0].action!r}) has"
            where = f"`actionstate inspect --topic {topic} --state-key {pending[0].state_key}`"
        else:
            what = f"{len(ids)} requests ({shown}) have"
            where = f"`actionstate inspect --topic {topic} --status incomplete`"
        skipped = (
            f" {bad} records of these states were skipped as bad (see the log)." if bad else ""
        )
        return RequestTimeoutError(
            f"{what} no completed state in topic {topic!r} after {timeout:g}s: the action may "
            f"still be running, or may have failed (its state then stays incomplete; {where} "
            f"shows it), or no worker consumes {self.settings.requests!r}.{skipped}",
            request_ids=ids,
            topic=topic,
        )


_BAD = object()
_NOT_YET = object()


def _check_timeout(timeout_s: object) -> float:
    if (
        isinstance(timeout_s, bool)
        or not isinstance(timeout_s, int | float)
        or not math.isfinite(timeout_s)
        or timeout_s <= 0
    ):
        raise ValueError(f"timeout_s must be a number of seconds > 0, got {timeout_s!r}")
    return float(timeout_s)


def _read_starts(sent: Iterable[SentRequest]) -> dict[int, int]:
    """The offset of each state partition where reading for ``sent`` starts."""
    starts: dict[int, int] = {}
    for s in sent:
        if s.state_offset is None:
            raise RequestError(
                f"request {s.request_id} was sent without a state topic, so where its outcome "
                "is journaled was not noted; configure topic (--topic or ACTIONSTATE_TOPIC) "
                "when sending requests to wait for"
            )
        starts[s.state_partition] = min(
            starts.get(s.state_partition, s.state_offset), s.state_offset
        )
    return starts
