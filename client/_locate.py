"""From store arguments to a state key and a partition, validated once per action run.

Shared by every backend so the argument errors are the same whichever store is used; the
UUID parts are remembered because they are most of the cost of a ``put``.
"""

from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass

from actionstate.serde import (
    Event,
    action_uuid,
    event_uuid,
    partition_for,
    validate_agent_key,
    validate_seq,
)

from ._call_id import is_plain_data

__all__ = ["Located", "action_part_of", "event_part_of", "locate", "partition_of"]


@dataclass(frozen=True, slots=True)
class Located:
    """Where a state lives: agent key, sequence number and state key."""

    agent_key: str
    seq: int
    state_key: str


def locate(
    key: object, seq: object, action: object, event: object, *, event_part: str | None = None
) -> Located:
    """Validate the arguments shared by ``put`` and ``get`` and compute the state key.

    ``event_part`` is ``str(event_uuid(event.attributes))`` when the caller already has it:
    that UUID is most of the cost, and it does not change during an action run.
    """
    agent_key = validate_agent_key(key)
    checked_seq = validate_seq(seq)
    if not isinstance(action, str) or not action:
        raise TypeError(f"action must be a non-empty str (the action's name), got {action!r}")
    if not isinstance(event, Event):
        raise TypeError(f"event must be an actionstate.serde.Event, got {type(event).__name__}")
    # The parts are validated above, so joining them is what serde's state_key would do.
    if event_part is None:
        event_part = event_part_of(event)
    skey = f"{agent_key}_{checked_seq}_{event_part}_{action_part_of(action)}"
    return Located(agent_key, checked_seq, skey)


_EVENT_PARTS: dict[bytes, str] = {}
_EVENT_PARTS_MAX = 4096
_EVENT_MEMO_MAX_BYTES = 2048


def event_part_of(event: Event) -> str:
    """``str(event_uuid(event.attributes))``, remembered for the attributes seen lately.

    The memo is keyed by the attributes' pickle, not by equality: ``1``, ``1.0`` and
    ``True`` are equal in Python but pickle (and are written by Jackson) differently.
    """
    attributes = event.attributes
    if not is_plain_data(attributes):
        return str(event_uuid(attributes))
    memo_key = pickle.dumps(attributes, protocol=pickle.HIGHEST_PROTOCOL)
    if len(memo_key) > _EVENT_MEMO_MAX_BYTES:
        return str(event_uuid(attributes))
    part = _EVENT_PARTS.get(memo_key)
    if part is None:
        part = str(event_uuid(attributes))
        if len(_EVENT_PARTS) >= _EVENT_PARTS_MAX:
            _EVENT_PARTS.clear()
        _EVENT_PARTS[memo_key] = part
    return part


@functools.lru_cache(maxsize=1024)
def action_part_of(action: str) -> str:
    """``str(action_uuid(action))``, remembered for the action names seen lately."""
    return str(action_uuid(action))


@functools.lru_cache(maxsize=4096)
def partition_of(agent_key: str, num_partitions: int) -> int:
    """``partition_for``, remembered for the agent keys seen lately."""
    return partition_for(agent_key, num_partitions)
