"""Errors raised by the service package.

::

    ActionStateError (actionstate.serde)
    └── ServiceError                 anything the sidecar, CLI or launcher could not do
        ├── LocalKafkaError          the local Kafka broker could not be installed/started/stopped
        └── CommandFailed            a command ends with its exit code (actionstate.service.cli)
"""

from __future__ import annotations

from actionstate.serde._errors import ActionStateError

__all__ = ["LocalKafkaError", "ServiceError"]


class ServiceError(ActionStateError):
    """Base class of the service package's errors."""


class LocalKafkaError(ServiceError):
    """The local Kafka broker could not be installed, started or stopped.

    ``log_tail`` holds the last lines of the broker's (or Maven's) output when there is one.
    """

    def __init__(self, message: str, *, log_tail: str = "") -> None:
        self.log_tail = log_tail
        super().__init__(
            f"{message}\n--- last lines of the log ---\n{log_tail}" if log_tail else message
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.args[0], self.log_tail))


def _rebuild(cls: type[LocalKafkaError], full: str, log_tail: str) -> LocalKafkaError:
    err = cls.__new__(cls)
    err.log_tail = log_tail
    Exception.__init__(err, full)
    return err
