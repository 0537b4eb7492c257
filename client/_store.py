"""The store contract every backend (memory, Kafka, sidecar) implements."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import NamedTuple, Protocol, Self, runtime_checkable

from actionstate.serde import ActionState, BadReason, Event, PayloadCodec, StateKey

__all__ = ["ActionStateStore", "BadRecord", "RebuildReport", "StoredState"]


class StoredState(NamedTuple):
    """A stored state and the payload codec its record names (None: no codec header)."""

    state: ActionState
    codec: str | None


@dataclass(frozen=True, slots=True)
class BadRecord:
    """A record rebuild skipped, located by topic, partition and offset (never its contents).

    ``reason`` says which record rule it broke (a :class:`~actionstate.serde.BadReason`,
    a ``str``): ``key`` (missing or unparseable state key), ``value`` (not an ActionState),
    ``headers`` (malformed project headers), ``signature`` (unsigned or tampered while a
    signing secret is configured; tombstones too) or ``version`` (a signed record whose
    write version is not above its key's last good one: replayed).
    """

    topic: str
    partition: int
    offset: int
    reason: BadReason
    detail: str = ""


@dataclass(slots=True)
class RebuildReport:
    """What a rebuild read and what it kept.

    ``states_live`` counts the live states found in the records read (a rebuild merges
    into the view, like Flink Agents' store) and ``tombstones`` the state keys found
    deleted. ``bad_records`` counts the records skipped (``bad_samples`` locates the
    first ones); a bad record superseded by a later record of its key is never examined.
    ``tail_seconds`` is the time from the last record received to the rebuild returning.
    """

    records_read: int = 0
    states_live: int = 0
    tombstones: int = 0
    bad_records: int = 0
    bad_samples: list[BadRecord] = field(default_factory=list)
    partitions: list[int] = field(default_factory=list)
    seconds: float = 0.0
    tail_seconds: float = 0.0


@runtime_checkable
class ActionStateStore(Protocol):
    """Where action states are journaled: one latest ``ActionState`` per state key.

    ``key`` is the agent key (``str`` without ``_``), ``seq`` the sequence number and
    ``action`` the action's registered name; the state key is
    ``state_key(key, seq, event_uuid(event.attributes), action_uuid(action))``.
    """

    @property
    def payload_codec(self) -> PayloadCodec:
        """The codec call outcomes are written with; every record names it in a header."""
        ...

    def put(self, key: str, seq: int, action: str, event: Event, state: ActionState) -> None:
        """Store ``state``; returns once it is durable, raises ``StoreWriteError`` if not."""
        ...

    async def aput(self, key: str, seq: int, action: str, event: Event, state: ActionState) -> None:
        """Like ``put``, awaiting the acknowledgement without blocking the event loop."""
        ...

    def get(self, key: str, seq: int, action: str, event: Event) -> ActionState | None:
        """The stored state, or None; a newer seq for ``key`` invalidates later states."""
        ...

    def get_stored(self, key: str, seq: int, action: str, event: Event) -> StoredState | None:
        """Like ``get``, with the payload codec the state's record names."""
        ...

    def rebuild(
        self,
        recovery_markers: Sequence[Mapping[int, int]] | None = None,
        partitions: Collection[int] | None = None,
    ) -> RebuildReport:
        """Load the journal into the view and report what was read.

        Each partition (all, or those in ``partitions``) is read from the smallest offset
        the ``recovery_markers`` give it (else from the beginning) up to its end as of the
        start of the rebuild. The latest record of a state key wins, tombstones delete,
        unreadable records are skipped and counted.
        """
        ...

    def prune(self, key: str, up_to_seq: int) -> int:
        """Delete the states of ``key`` with seq ≤ ``up_to_seq``; returns how many."""
        ...

    def recovery_marker(self) -> dict[int, int]:
        """The journal's end offset per partition, to pass to a later ``rebuild``."""
        ...

    def states(self) -> list[tuple[StateKey, ActionState]]:
        """A snapshot of every live state in the view."""
        ...

    def stored_states(self) -> list[tuple[StateKey, StoredState]]:
        """Like ``states``, with the payload codec each state's record names."""
        ...

    def close(self) -> None:
        """Release connections and threads; the store is unusable afterwards."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
