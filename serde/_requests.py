"""The request record: what ``actionstate send`` writes to a requests topic and a worker reads.

Kafka key: the agent key, UTF-8 (partitioned with :func:`partition_for`, so request
partition p holds the agent keys of state partition p). Value: compact JSON
``{"action": "<registered action name>", "data": <any JSON>}``. A reader ignores fields it
does not know (a newer writer may add some) and reads a missing ``data`` as null. A request
is named by its partition and offset (:class:`RequestId`, ``"3:1042"``); the worker runs
it with the offset as its sequence number. Requests a worker cannot use go to a dead-letter
topic with the ``actionstate.dead-letter.*`` headers.

Nothing here repeats a request's contents in an error or a verdict: requests carry user
data, and verdicts end up in logs and dead-letter headers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Self

import orjson

from ._errors import InvalidRequestError
from ._headers import HeaderList
from ._json_values import json_problem

__all__ = [
    "HEADER_DEAD_LETTER_DETAIL",
    "HEADER_DEAD_LETTER_REASON",
    "HEADER_DEAD_LETTER_SOURCE",
    "BadRequest",
    "Request",
    "RequestId",
    "RequestProblem",
    "dead_letter_headers",
    "decode_request",
    "encode_request",
]

HEADER_DEAD_LETTER_REASON = "actionstate.dead-letter.reason"
"""Why a request was dead-lettered (a :class:`RequestProblem` value, or the worker's own)."""
HEADER_DEAD_LETTER_SOURCE = "actionstate.dead-letter.source"
"""Where the request was read: ``<topic>:<partition>:<offset>``."""
HEADER_DEAD_LETTER_DETAIL = "actionstate.dead-letter.detail"
"""What was wrong, in words (at most 500 characters, never the request's contents)."""

_DETAIL_MAX = 500
_SEP = "_"
# The depth below which data is walked here; deeper data is left to orjson's own limit.
_REQUEST_ID_RE = re.compile(r"([0-9]+):([0-9]+)")


class RequestProblem(StrEnum):
    """Why a request record cannot be used (the values are what dead-letter headers show)."""

    KEY = "key"  # missing, not UTF-8, or not an agent key Java could parse back
    VALUE = "value"  # missing, not JSON, not an object, or no non-empty "action"


@dataclass(frozen=True, slots=True)
class Request:
    """A request read back: run ``action`` with ``data`` under ``agent_key``."""

    agent_key: str
    action: str
    data: Any


@dataclass(frozen=True, slots=True)
class BadRequest:
    """The verdict on a request record that cannot be used; ``detail`` never holds its
    contents."""

    reason: RequestProblem
    detail: str


@dataclass(frozen=True, slots=True, order=True)
class RequestId:
    """A request's place in the requests topic; ``str()`` gives ``"P:O"``."""

    partition: int
    offset: int

    def __post_init__(self) -> None:
        for name in ("partition", "offset"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"a request id's {name} must be an int >= 0, got {value!r}")

    def __str__(self) -> str:
        return f"{self.partition}:{self.offset}"

    @classmethod
    def parse(cls, text: str) -> Self:
        """``RequestId.parse("3:1042")``; a ValueError naming ``text`` when it is not
        ``PARTITION:OFFSET``."""
        match = _REQUEST_ID_RE.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"bad request id {text!r:.60}: write PARTITION:OFFSET, e.g. 3:1042")
        return cls(int(match.group(1)), int(match.group(2)))


def _agent_key_problem(agent_key: object) -> str | None:
    """What keeps ``agent_key`` from being a request's key, without repeating it; None when
    it is one. The rule of ``validate_agent_key``, and the key must be writable as UTF-8."""
    if not isinstance(agent_key, str):
        return (
            f"must be a str, got {type(agent_key).__name__} (convert it yourself: Java's "
            "toString would make 1 and '1' the same key)"
        )
    if not agent_key:
        return "must not be empty"
    if _SEP in agent_key:
        return (
            "must not contain '_', the state-key separator: Java's key parser splits on it "
            "and could not read the key back"
        )
    if not _is_utf8(agent_key):
        return "must be valid Unicode: it holds a lone surrogate, which UTF-8 cannot carry"
    return None


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def encode_request(agent_key: str, action: str, data: Any) -> tuple[bytes, bytes]:
    """The Kafka key and value of a request; :class:`InvalidRequestError` naming the
    argument (``agent_key``, ``action`` or ``data``) that cannot make one."""
    problem = _agent_key_problem(agent_key)
    if problem is not None:
        raise InvalidRequestError(problem, path="agent_key")
    if not isinstance(action, str) or not action:
        got = "an empty str" if action == "" else type(action).__name__
        raise InvalidRequestError(
            f"must be a non-empty str (a registered action's name), got {got}", path="action"
        )
    if not _is_utf8(action):
        raise InvalidRequestError(
            "must be valid Unicode: it holds a lone surrogate, which UTF-8 cannot carry",
            path="action",
        )
    problem = json_problem(data, "data")
    if problem is not None:
        raise InvalidRequestError(problem, path="data")
    try:
        value = orjson.dumps({"action": action, "data": data})
    except orjson.JSONEncodeError as exc:  # an int beyond 64 bits, a lone surrogate, depth
        raise InvalidRequestError(f"cannot be written as JSON: {exc}", path="data") from None
    return agent_key.encode(), value


def _kind(value: Any) -> str:
    """The JSON type of a decoded value, for verdicts that must not show the value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def decode_request(key: bytes | None, value: bytes | None) -> Request | BadRequest:
    """The request a record holds, or the verdict saying why it holds none (never fatal)."""
    if key is None:
        return BadRequest(RequestProblem.KEY, "the record has no key (the agent key)")
    try:
        agent_key = key.decode()
    except UnicodeDecodeError as exc:
        return BadRequest(RequestProblem.KEY, f"the key is not UTF-8 (byte {exc.start})")
    problem = _agent_key_problem(agent_key)
    if problem is not None:
        return BadRequest(RequestProblem.KEY, f"the key is not a valid agent key: it {problem}")
    if value is None:
        return BadRequest(RequestProblem.VALUE, "the record has no value (a tombstone)")
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError as exc:  # orjson's text gives positions, never contents
        return BadRequest(RequestProblem.VALUE, f"the value is not JSON: {exc}")
    if not isinstance(body, dict):
        return BadRequest(RequestProblem.VALUE, f"the value is a JSON {_kind(body)}, not an object")
    if "action" not in body:
        return BadRequest(RequestProblem.VALUE, 'the value has no "action"')
    action = body["action"]
    if not isinstance(action, str):
        return BadRequest(RequestProblem.VALUE, f'"action" is a JSON {_kind(action)}, not a string')
    if not action:
        return BadRequest(RequestProblem.VALUE, '"action" is empty')
    return Request(agent_key, action, body.get("data"))


def dead_letter_headers(
    reason: str, detail: str, topic: str, partition: int, offset: int
) -> HeaderList:
    """The headers of a dead letter: why (``reason``, ``detail`` cut to 500 characters)
    and where the request was read (``<topic>:<partition>:<offset>``). Values are bytes."""
    return [
        (HEADER_DEAD_LETTER_REASON, reason.encode(errors="replace")),
        (HEADER_DEAD_LETTER_SOURCE, f"{topic}:{partition}:{offset}".encode(errors="replace")),
        (HEADER_DEAD_LETTER_DETAIL, detail[:_DETAIL_MAX].encode(errors="replace")),
    ]
