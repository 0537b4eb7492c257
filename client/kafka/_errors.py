"""One mapping from confluent-kafka's errors to the store's: what each code means to a reader,
a writer and the admin helper, and whether trying again can help."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException

from actionstate.client._errors import KafkaConfigError, StoreReadError, StoreWriteError

T = TypeVar("T")

__all__ = [
    "FATAL_READ_CODES",
    "RETRIABLE_CODES",
    "ReadEvent",
    "classify",
    "describe",
    "error_of",
    "kafka_store_error",
    "new_client",
    "read_error",
    "retriable",
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


def write_error(
    topic: str, key: str | bytes | None, err: KafkaError, timeout: float
) -> StoreWriteError:
    """The error for a write the broker did not acknowledge."""
    skey = key if isinstance(key, str) else repr(key)
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
