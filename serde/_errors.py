"""The root of the project's exception hierarchy and the serde errors.

::

    ActionStateError                 every error this project raises
    ├── SerdeError (ValueError)      a record, header or payload that cannot be decoded/encoded
    │   └── InvalidRequestError      arguments that cannot make a request record (``path``: which)
    └── InvalidStateKeyError (ValueError)
                                     an agent key or state key Java could not parse back

The client and service packages add their own subclasses of ``ActionStateError``.
"""

from __future__ import annotations

__all__ = ["ActionStateError", "InvalidRequestError", "InvalidStateKeyError", "SerdeError"]


class ActionStateError(Exception):
    """Base class of every error raised by kafka-actionstate."""


class SerdeError(ActionStateError, ValueError):
    """A record, header or payload could not be decoded or encoded.

    ``path`` names where in the record the problem is (``callResults[1].resultPayload``),
    empty when the whole input is at fault.
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)

    def __reduce__(self) -> tuple[object, ...]:
        # Keeps the keyword-only ``path`` when the error is pickled as a payload.
        return (_rebuild_serde_error, (type(self), self.args[0], self.path))


def _rebuild_serde_error(cls: type[SerdeError], full: str, path: str) -> SerdeError:
    err = cls.__new__(cls)
    err.path = path
    Exception.__init__(err, full)
    return err


class InvalidStateKeyError(ActionStateError, ValueError):
    """An agent key or state key that Flink Agents' Java key parser could not read back."""


class InvalidRequestError(SerdeError):
    """Arguments that cannot make a request record; ``path`` names the argument at fault
    (``agent_key``, ``action`` or ``data``) and ``problem`` says what is wrong without
    repeating the value."""

    def __init__(self, problem: str, *, path: str = "") -> None:
        self.problem = problem
        super().__init__(problem, path=path)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_request_error, (type(self), self.problem, self.path))


def _rebuild_request_error(
    cls: type[InvalidRequestError], problem: str, path: str
) -> InvalidRequestError:
    return cls(problem, path=path)
