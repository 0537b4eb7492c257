"""One mapping from confluent-kafka's errors to the store's: what each code means to a reader,
a writer and the admin helper, and whether trying again can help."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from confluent_kafka import KafkaError, KafkaException

from actionstate.client._errors import (
    KafkaConfigError,
    RecordTooLargeError,
    StoreReadError,
    StoreWriteError,
)
from actionstate.serde import HeaderList

if TYPE_CHECKING:
    from actionstate.client.kafka._settings import KafkaConnection

T = TypeVar("T")

__all__ = [
    "FATAL_READ_CODES",
    "RETRIABLE_CODES",
    "ReadEvent",
    "RecordLimits",
    "classify",
    "describe",
    "error_of",
    "kafka_store_error",
    "new_client",
    "read_error",
    "record_size",
    "retriable",
    "topic_limit_lookup",
    "write_error",
]

# A partition's leadership moving (a new topic, a restarted broker): the request is answered
# again in a moment, so the admin helper retries these until its timeout.
RETRIABLE_CODES = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        # A just-elected leader answers with epoch errors until its metadata settles.
        KafkaError.FENCED_LEADER_EPOCH,
        KafkaError.UNKNOWN_LEADER_EPOCH,
        KafkaError.OFFSET_NOT_AVAILABLE,
        KafkaError.REPLICA_NOT_AVAILABLE,
    }
)

# A reader cannot go on after these: the topic or partition is gone, or it may not read it.
FATAL_READ_CODES = frozenset(
    {
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
    }
)


class ReadEvent(Enum):
    """What an error a consumer hands over means to the reader."""

    EOF = "eof"  # the partition's end was reached (not an error)
    FATAL = "fatal"  # the read cannot go on
    TRANSIENT = "transient"  # librdkafka retries by itself


def classify(err: KafkaError) -> ReadEvent:
    """The meaning of a consumer's error event."""
    code = err.code()
    if code == KafkaError._PARTITION_EOF:
        return ReadEvent.EOF
    if err.fatal() or code in FATAL_READ_CODES:
        return ReadEvent.FATAL
    return ReadEvent.TRANSIENT


def new_client(factory: Callable[[dict[str, Any]], T], config: dict[str, Any]) -> T:
    """``factory(config)`` (a confluent-kafka client class); a configuration librdkafka
    refuses raises ``KafkaConfigError`` with its reason."""
    try:
        return factory(config)
    except KafkaException as exc:
        raise KafkaConfigError(
            f"librdkafka refused the Kafka client configuration: {describe(exc)}; check the "
            "-X properties, client_config / producer_config / consumer_config, or "
            "ACTIONSTATE_CLIENT_CONFIG"
        ) from exc


def error_of(exc: BaseException) -> KafkaError | None:
    """The ``KafkaError`` a ``KafkaException`` carries, if any."""
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return None


def describe(exc: BaseException) -> str:
    """librdkafka's text of an error, else the exception's."""
    kafka_error = error_of(exc)
    return kafka_error.str() if kafka_error is not None else str(exc)


def retriable(err: KafkaError | None) -> bool:
    """Whether the same request may succeed if made again."""
    return err is not None and (err.retriable() or err.code() in RETRIABLE_CODES)


def kafka_store_error(exc: BaseException, message: str, hint: str = "") -> StoreReadError:
    """A ``StoreReadError`` saying ``message``, librdkafka's reason and ``hint``;
    ``retriable`` from the error code."""
    error = StoreReadError(f"{message}: {describe(exc)}" + (f"; {hint}" if hint else ""))
    error.retriable = retriable(error_of(exc))
    return error


def read_error(message: str, err: KafkaError) -> StoreReadError:
    """The error for a fatal consumer event: ``message`` and librdkafka's reason."""
    error = StoreReadError(f"{message}: {err.str()}")
    error.retriable = retriable(err)
    return error


@dataclass
class RecordLimits:
    """The size limits a record meets on its way: the producer's ``message.max.bytes``
    (checked by librdkafka before compression) and the topic's ``max.message.bytes``
    (checked by the broker after compression), looked up once when first needed."""

    producer: int
    lookup_topic: Callable[[], int | None] = field(default=lambda: None, repr=False)
    _topic: int | None = field(default=None, init=False, repr=False)
    _looked_up: bool = field(default=False, init=False, repr=False)

    def topic(self) -> int | None:
        """The topic's limit in bytes, None when it could not be read."""
        if not self._looked_up:
            self._looked_up = True
            try:
                self._topic = self.lookup_topic()
            except Exception:  # only an error message's detail depends on it
                self._topic = None
        return self._topic


def topic_limit_lookup(conn: KafkaConnection, topic: str) -> Callable[[], int | None]:
    """A lookup of ``topic``'s ``max.message.bytes``, made only if it is called (a record
    the broker refused as too large), through an admin client of ``conn``."""

    def lookup() -> int | None:
        from actionstate.client.kafka._admin import KafkaAdmin  # imports this module

        return KafkaAdmin(conn).topic_shape(topic).max_message_bytes

    return lookup


def record_size(
    key: str | bytes | None, value: bytes | None, headers: HeaderList | None = None
) -> int:
    """A record's bytes before compression: key, value and headers (names and values)."""
    size = len(value or b"") + len(key.encode() if isinstance(key, str) else key or b"")
    for name, header in headers or ():
        size += len(name) + len(header.encode() if isinstance(header, str) else header or b"")
    return size


def _too_large(
    topic: str, skey: str, err: KafkaError, size: int, limits: RecordLimits, *, local: bool
) -> RecordTooLargeError:
    if local:
        limit = limits.producer
        message = (
            f"the state record for key {skey!r} is {size} bytes, more than the producer's "
            f"limit of {limit} bytes (max_record_bytes, checked before compression); nothing "
            "was stored. Raise max_record_bytes (ACTIONSTATE_MAX_RECORD_BYTES) together with "
            f"the topic's max.message.bytes, or keep the action's record smaller (fewer "
            "durable calls per action)."
        )
    else:
        limit = limits.topic() or 0
        named = f"max.message.bytes={limit}" if limit else "max.message.bytes"
        message = (
            f"topic {topic!r} refused the state record for key {skey!r} ({size} bytes before "
            f"compression): it is above the topic's {named} (checked after compression); "
            "nothing was stored. Raise the topic's limit with `kafka-configs --alter "
            f"--entity-type topics --entity-name {topic} --add-config "
            f"max.message.bytes={limits.producer}`, or lower max_record_bytes "
            "(ACTIONSTATE_MAX_RECORD_BYTES) to the topic's limit."
        )
    error = RecordTooLargeError(
        message, topic=topic, key=skey, cause=err.str(), limit=limit, size=size
    )
    error.retriable = False
    return error


def write_error(
    topic: str,
    key: str | bytes | None,
    err: KafkaError,
    timeout: float,
    *,
    size: int = 0,
    limits: RecordLimits | None = None,
    local: bool = False,
) -> StoreWriteError:
    """The error for a write the broker did not acknowledge; a record above a size limit
    (``limits``, the record's ``size``) is a ``RecordTooLargeError`` naming the limit.
    librdkafka gives the same code for its own limit (``local``: ``produce()`` refused the
    record) and for the broker's (a delivery report)."""
    skey = key if isinstance(key, str) else repr(key)
    if limits is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE:
        return _too_large(topic, skey, err, size, limits, local=local)
    within = (
        f" within timeout_s={timeout:g}s (are the brokers reachable?)"
        if err.code() == KafkaError._MSG_TIMED_OUT
        else ""
    )
    error = StoreWriteError(
        f"the state write to topic {topic!r}, key {skey!r} was not acknowledged{within}: "
        f"{err.str()} ({err.name()}). It may or may not have been stored: retry the put, "
        "or rebuild and look.",
        topic=topic,
        key=skey,
        cause=err.str(),
    )
    error.retriable = err.retriable()
    return error
