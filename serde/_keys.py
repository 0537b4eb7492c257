"""State keys, name-based UUIDs and the partitioner, exactly as Flink Agents' Java computes
them (DESIGN §4)."""

from __future__ import annotations

import hashlib
import re
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import InvalidStateKeyError
from ._jackson import jackson_sorted_json

__all__ = [
    "MAX_SEQ",
    "STATE_KEY_PATTERN",
    "UUID_PATTERN",
    "UUID_PATTERN_ANY_CASE",
    "StateKey",
    "action_uuid",
    "event_uuid",
    "flink_murmur_hash",
    "java_string_hash",
    "name_uuid_from_bytes",
    "parse_state_key",
    "partition_for",
    "split_state_key",
    "state_key",
    "validate_agent_key",
    "validate_seq",
]

_SEP = "_"
_MASK = 0xFFFFFFFF
_UTF16_NATIVE = "utf-16-le" if sys.byteorder == "little" else "utf-16-be"
MAX_SEQ = 2**63 - 1
"""The largest sequence number: Java's ``Long.MAX_VALUE``."""
UUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
"""A lower-case canonical UUID, the form a state key holds (regex, unanchored)."""
UUID_PATTERN_ANY_CASE = UUID_PATTERN.replace("a-f", "a-fA-F")
"""A canonical UUID in either case, the form Jackson's UUID deserializer takes."""
STATE_KEY_PATTERN = rf"^([^_]+)_(0|[1-9][0-9]{{0,18}})_{UUID_PATTERN}_{UUID_PATTERN}$"
"""What :func:`parse_state_key` accepts, as one regex (a seq must also be ≤ ``MAX_SEQ``)."""
_SEQ_RE = re.compile(r"0|[1-9][0-9]*")
_UUID_RE = re.compile(UUID_PATTERN)
# One match for the whole key: it is run on every live record a rebuild or the sidecar reads.
_STATE_KEY_RE = re.compile(STATE_KEY_PATTERN)


def _signed32(h: int) -> int:
    return h - 0x100000000 if h & 0x80000000 else h


def java_string_hash(s: str) -> int:
    """Java's ``String.hashCode``: ``h = 31*h + c`` over UTF-16 code units, signed 32 bits."""
    h = 0
    # memoryview.cast("H") reads the code units; surrogatepass keeps lone surrogates as the
    # single code unit Java would hold.
    for unit in memoryview(s.encode(_UTF16_NATIVE, "surrogatepass")).cast("H"):
        h = (31 * h + unit) & _MASK
    return _signed32(h)


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _MASK


def flink_murmur_hash(code: int) -> int:
    """Flink's ``MathUtils.murmurHash(int)``: never negative (``Integer.MIN_VALUE`` gives 0).

    ``code`` is taken modulo 2**32, like a Java ``int`` cast.
    """
    h = (code & _MASK) * 0xCC9E2D51 & _MASK
    h = _rotl(h, 15)
    h = h * 0x1B873593 & _MASK
    h = _rotl(h, 13)
    h = (h * 5 + 0xE6546B64) & _MASK
    h ^= 4
    h ^= h >> 16
    h = h * 0x85EBCA6B & _MASK
    h ^= h >> 13
    h = h * 0xC2B2AE35 & _MASK
    h ^= h >> 16
    signed = _signed32(h)
    if signed >= 0:
        return signed
    return 0 if signed == -0x80000000 else -signed


def validate_agent_key(agent_key: object) -> str:
    """Return ``agent_key`` if Java can parse it back out of a state key, else raise
    :class:`InvalidStateKeyError` saying why."""
    if not isinstance(agent_key, str):
        raise InvalidStateKeyError(
            f"agent key must be a str, got {type(agent_key).__name__} {agent_key!r}: "
            "convert it yourself (Java's toString would make 1 and '1' the same key)"
        )
    if not agent_key:
        raise InvalidStateKeyError("agent key must not be empty")
    if _SEP in agent_key:
        raise InvalidStateKeyError(
            f"agent key {agent_key!r} contains '_', the state-key separator: Java's key parser "
            "splits on it and could not read the key back; use another character"
        )
    return agent_key


def partition_for(agent_key: str, num_partitions: int) -> int:
    """The partition Flink Agents' ``ActionStateKeyPartitioner`` picks for ``agent_key``."""
    validate_agent_key(agent_key)
    if isinstance(num_partitions, bool) or not isinstance(num_partitions, int):
        raise ValueError(f"num_partitions must be an int, got {type(num_partitions).__name__}")
    if num_partitions < 1:
        raise ValueError(f"num_partitions must be at least 1, got {num_partitions}")
    return flink_murmur_hash(java_string_hash(agent_key)) % num_partitions


def name_uuid_from_bytes(data: bytes) -> uuid.UUID:
    """Java's ``UUID.nameUUIDFromBytes``: MD5 of ``data`` with version 3 and IETF variant."""
    md5 = bytearray(hashlib.md5(data, usedforsecurity=False).digest())
    md5[6] = (md5[6] & 0x0F) | 0x30
    md5[8] = (md5[8] & 0x3F) | 0x80
    return uuid.UUID(bytes=bytes(md5))


def event_uuid(attributes: Mapping[str, Any]) -> uuid.UUID:
    """The UUID Flink Agents gives an event: of its attributes as Jackson writes them with
    sorted map keys. Raises :class:`SerdeError` for attributes that are not JSON."""
    return name_uuid_from_bytes(jackson_sorted_json(attributes))


def action_uuid(action_name: str) -> uuid.UUID:
    """A stable UUID for an action from its registered name."""
    if not isinstance(action_name, str) or not action_name:
        raise InvalidStateKeyError(f"action name must be a non-empty str, got {action_name!r}")
    try:
        return name_uuid_from_bytes(action_name.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidStateKeyError(
            f"action name {action_name!r} is not valid Unicode (lone surrogate)"
        ) from None


@dataclass(frozen=True, slots=True)
class StateKey:
    """A parsed state key ``<agentKey>_<seq>_<eventUUID>_<actionUUID>``."""

    agent_key: str
    seq: int
    event_uuid: uuid.UUID
    action_uuid: uuid.UUID

    def __str__(self) -> str:
        return state_key(self.agent_key, self.seq, self.event_uuid, self.action_uuid)


def _uuid_text(value: uuid.UUID | str, what: str) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise InvalidStateKeyError(f"{what} must be a UUID or a UUID string, got {value!r}")


class _SeqTypeError(InvalidStateKeyError, TypeError):
    """A sequence number that is not an int (a TypeError too, as Python's own would be)."""


def validate_seq(seq: object, name: str = "seq") -> int:
    """``seq`` if it is an int in ``[0, MAX_SEQ]``; bools and other types raise an
    :class:`InvalidStateKeyError` that is also a TypeError, values out of range one that
    is a ValueError. ``name`` is how the message names the argument."""
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise _SeqTypeError(f"{name} must be an int, got {type(seq).__name__}: {seq!r}")
    if not 0 <= seq <= MAX_SEQ:
        raise InvalidStateKeyError(f"{name} must be between 0 and 2**63-1 (a Java long), got {seq}")
    return seq


def split_state_key(skey: str) -> tuple[str, int]:
    """Agent key and seq of a state key :func:`parse_state_key` accepts, in one regex match
    (the fast path for records read back); :class:`InvalidStateKeyError` otherwise."""
    match = _STATE_KEY_RE.fullmatch(skey)
    if match is None or int(match.group(2)) > MAX_SEQ:
        raise InvalidStateKeyError("not <agentKey>_<seq>_<eventUUID>_<actionUUID>")
    return match.group(1), int(match.group(2))


def state_key(
    agent_key: str, seq: int, event_uuid: uuid.UUID | str, action_uuid: uuid.UUID | str
) -> str:
    """The record key ``<agentKey>_<seq>_<eventUUID>_<actionUUID>``; raises
    :class:`InvalidStateKeyError` for a part Java could not parse back."""
    return _SEP.join(
        (
            validate_agent_key(agent_key),
            str(validate_seq(seq, "sequence number")),
            _uuid_text(event_uuid, "event UUID"),
            _uuid_text(action_uuid, "action UUID"),
        )
    )


def parse_state_key(s: str) -> StateKey:
    """Split a record key into its four parts, as Java's ``ActionStateUtil.parseKey`` does,
    checking each; raises :class:`InvalidStateKeyError` naming the bad part."""
    if not isinstance(s, str):
        raise InvalidStateKeyError(f"state key must be a str, got {type(s).__name__}")
    parts = s.split(_SEP)
    if len(parts) != 4:
        raise InvalidStateKeyError(
            f"state key {s[:200]!r} has {len(parts)} '_'-separated parts, expected 4 "
            "(agentKey_seq_eventUUID_actionUUID)"
        )
    agent, seq, ev, act = parts
    if not agent:
        raise InvalidStateKeyError(f"state key {s[:200]!r} has an empty agent key")
    if _SEQ_RE.fullmatch(seq) is None or int(seq) > MAX_SEQ:
        raise InvalidStateKeyError(
            f"state key {s[:200]!r}: sequence number {seq!r} is not a canonical non-negative long"
        )
    for part, what in ((ev, "event UUID"), (act, "action UUID")):
        if _UUID_RE.fullmatch(part) is None:
            raise InvalidStateKeyError(
                f"state key {s[:200]!r}: {what} {part!r} is not a lower-case canonical UUID"
            )
    return StateKey(agent, int(seq), uuid.UUID(ev), uuid.UUID(act))
