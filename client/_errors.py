"""Errors raised by the client: stores, durable execution and the worker.

::

    ActionStateError (actionstate.serde)
    └── ClientError
        ├── StoreError                    a store could not do what was asked
        │   ├── StoreWriteError           a write was not acknowledged (topic, key, cause)
        │   │   ├── FencedError           the broker refused it: another worker owns the partition
        │   │   ├── RecordTooLargeError   the record is above a size limit (the limit is named)
        │   │   └── PartitionNotOwnedError  this worker does not own (or gave up) the partition
        │   ├── StoreReadError            the journal could not be read back
        │   ├── KafkaConfigError          librdkafka refused a client's configuration
        │   └── TopicConfigError          the topic exists with the wrong shape
        ├── DurableExecutionError         a durable call could not be journaled or replayed
        │   └── UntrustedPayloadError     a payload failed signature checks; never unpickled
        ├── ReconcileLater                a reconciler's "unknown yet, ask again later"
        ├── ResolvedCallError             a call an operator resolved as failed (`resolve`)
        ├── StateNotFoundError            `resolve`: no live state under the state key
        ├── CallNotPendingError           `resolve`: no such call, or its outcome is journaled
        ├── WorkerError                   the worker was used wrongly (unknown action, ...)
        ├── RequestError                  a request could not be sent or waited for
        │   └── RequestTimeoutError       no completed state of the request within the timeout
        └── FunctionIdCollisionWarning    (also a UserWarning) two callables, one function id

Classes are added here, not in the modules that raise them, so the tree stays in one place.
"""

from __future__ import annotations

from actionstate.serde import ActionStateError

__all__ = [
    "CallNotPendingError",
    "ClientError",
    "DurableExecutionError",
    "FencedError",
    "FunctionIdCollisionWarning",
    "KafkaConfigError",
    "PartitionNotOwnedError",
    "ReconcileLater",
    "RecordTooLargeError",
    "RequestError",
    "RequestTimeoutError",
    "ResolvedCallError",
    "StateNotFoundError",
    "StoreError",
    "StoreReadError",
    "StoreWriteError",
    "TopicConfigError",
    "UntrustedPayloadError",
    "WorkerError",
]


class ClientError(ActionStateError):
    """Base class of the client's errors."""


class StoreError(ClientError):
    """A store could not do what was asked of it."""

    retriable: bool = False


class StoreWriteError(StoreError):
    """A state write was not acknowledged by the broker (or the sidecar).

    The write may or may not have happened; the caller must not assume either.
    """

    def __init__(self, message: str, *, topic: str = "", key: str = "", cause: str = "") -> None:
        self.topic = topic
        self.key = key
        self.cause = cause
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_write_error, (self.args[0], self.topic, self.key, self.cause))


def _rebuild_write_error(message: str, topic: str, key: str, cause: str) -> StoreWriteError:
    return StoreWriteError(message, topic=topic, key=key, cause=cause)


class FencedError(StoreWriteError):
    """The broker refused a write: a newer owner of the partition fenced this writer.

    Nothing of the refused transaction is stored. This worker no longer owns the partition;
    the owner that fenced it recovers the partition's unfinished actions.
    """

    def __init__(
        self, message: str, *, topic: str = "", key: str = "", cause: str = "", partition: int = -1
    ) -> None:
        super().__init__(message, topic=topic, key=key, cause=cause)
        self.partition = partition

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild_fenced_error,
            (self.args[0], self.topic, self.key, self.cause, self.partition),
        )


def _rebuild_fenced_error(
    message: str, topic: str, key: str, cause: str, partition: int
) -> FencedError:
    return FencedError(message, topic=topic, key=key, cause=cause, partition=partition)


class RecordTooLargeError(StoreWriteError):
    """A record is larger than a limit of the producer, the topic or the sidecar; nothing
    was stored. ``limit`` is that limit in bytes (0 when the broker did not say), ``size``
    the record's size; retrying the same record cannot succeed."""

    def __init__(
        self,
        message: str,
        *,
        topic: str = "",
        key: str = "",
        cause: str = "",
        limit: int = 0,
        size: int = 0,
    ) -> None:
        super().__init__(message, topic=topic, key=key, cause=cause)
        self.limit = limit
        self.size = size

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild_too_large_error,
            (self.args[0], (self.topic, self.key, self.cause), self.limit, self.size),
        )


def _rebuild_too_large_error(
    message: str, where: tuple[str, str, str], limit: int, size: int
) -> RecordTooLargeError:
    topic, key, cause = where
    return RecordTooLargeError(message, topic=topic, key=key, cause=cause, limit=limit, size=size)


class PartitionNotOwnedError(StoreWriteError):
    """A write to a partition this worker has not claimed, or has released; nothing was sent."""


class StoreReadError(StoreError):
    """The journal could not be read back (broker unreachable, topic missing...)."""


class KafkaConfigError(StoreError):
    """librdkafka refused the configuration of a Kafka client (an unknown or bad property)."""


class TopicConfigError(StoreError):
    """The state topic exists but has a shape the store refuses to use."""


class DurableExecutionError(ClientError):
    """A durable call could not be journaled or replayed."""


class UntrustedPayloadError(DurableExecutionError):
    """A payload was unsigned or its signature did not verify; it was not unpickled."""


class ReconcileLater(ClientError):
    """Raised by a reconciler that cannot tell yet whether its call happened.

    Nothing is journaled: the slot stays ``PENDING``, the action stops here and stays
    incomplete, and a later ``Worker.recover()`` asks the reconciler again. The durable
    context fills in ``state_key`` and ``call_index`` before the error leaves the call.
    """

    def __init__(self, message: str = "the outcome is not known yet") -> None:
        super().__init__(message)
        self.state_key = ""
        self.call_index = -1


class ResolvedCallError(ClientError):
    """The outcome of a call an operator resolved as failed with ``actionstate resolve``."""


class StateNotFoundError(ClientError):
    """The store holds no live state under the state key (never written, or pruned)."""


class CallNotPendingError(ClientError):
    """The state has no such call, or the call's outcome is journaled already."""


class WorkerError(ClientError):
    """The worker was used wrongly: an unknown action, a duplicate registration, ..."""


class FunctionIdCollisionWarning(ClientError, UserWarning):
    """Two callables running different code got one function id in one action run.

    A replay matches journaled calls by function id and arguments digest, so it cannot tell
    such calls apart; give each its own id with ``durable_execute(..., name=...)``.
    """


class RequestError(ClientError):
    """A request could not be sent or waited for: no requests topic to send to, no state
    topic to wait on, ..."""


class RequestTimeoutError(RequestError):
    """No completed state of the requests within the timeout. ``request_ids`` (``"P:O"``)
    are those still waiting, ``topic`` the state topic. The actions may still be running,
    or may have failed (their states stay incomplete; ``actionstate inspect`` shows them)."""

    def __init__(self, message: str, *, request_ids: tuple[str, ...] = (), topic: str = "") -> None:
        super().__init__(message)
        self.request_ids = request_ids
        self.topic = topic

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_request_timeout, (self.args[0], self.request_ids, self.topic))


def _rebuild_request_timeout(
    message: str, request_ids: tuple[str, ...], topic: str
) -> RequestTimeoutError:
    return RequestTimeoutError(message, request_ids=request_ids, topic=topic)
