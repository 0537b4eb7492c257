"""What the memory and Kafka stores share: arguments, view, divergence, prune, rebuild flow.

A backend supplies how records are appended (``_write``/``_awrite``/``_write_tombstones``)
and how partitions are scanned (``_scan``/``_reread``); everything a caller can observe
through the store contract is implemented once, here.
"""

from __future__ import annotations

import ctypes
import gc
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from actionstate.serde import (
    DEFAULT_CODEC,
    ActionState,
    Event,
    HeaderList,
    PayloadCodec,
    RawRecord,
    StateKey,
    encode_record,
    get_codec,
    next_version,
    parse_state_key,
    tombstone_meta,
    validate_agent_key,
    validate_seq,
)

from ._errors import StoreError, StoreWriteError
from ._locate import Located, locate, partition_of
from ._rebuild import finish_rebuild
from ._store import RebuildReport, StoredState
from ._view import Entry, StateView, decode_entry

__all__ = ["ScanResult", "ViewStore", "plan_rebuild"]


@dataclass(slots=True)
class ScanResult:
    """What a backend's scan found: the latest record per key and when the last arrived."""

    latest: dict[bytes, RawRecord] = field(default_factory=dict)
    keyless: list[RawRecord] = field(default_factory=list)
    records_read: int = 0
    last_record_at: float | None = None
    # Keys whose signed write versions did not rise through the scan (VersionWatch).
    regressed: set[bytes] = field(default_factory=set)


def plan_rebuild(
    recovery_markers: Sequence[Mapping[int, int]] | None,
    partitions: Collection[int] | None,
    num_partitions: int,
) -> dict[int, int]:
    """Start offset per partition to read: the smallest marker offset, else 0."""
    if partitions is None:
        chosen = list(range(num_partitions))
    else:
        if isinstance(partitions, str | bytes) or not isinstance(partitions, Collection):
            raise TypeError(f"partitions must be a collection of ints, got {partitions!r}")
        chosen = []
        for p in partitions:
            if isinstance(p, bool) or not isinstance(p, int) or not 0 <= p < num_partitions:
                raise ValueError(
                    f"partitions: {p!r} is not a partition of the topic (0..{num_partitions - 1})"
                )
            chosen.append(p)
    starts = dict.fromkeys(sorted(set(chosen)), 0)
    if recovery_markers is None:
        return starts
    if isinstance(recovery_markers, Mapping) or not isinstance(recovery_markers, Sequence):
        raise TypeError(
            "recovery_markers must be a sequence of {partition: offset} mappings "
            f"(what recovery_marker() returns), got {type(recovery_markers).__name__}"
        )
    lowest: dict[int, int] = {}
    for marker in recovery_markers:
        if not isinstance(marker, Mapping):
            raise TypeError(
                f"recovery_markers: each marker must be a {{partition: offset}} mapping, "
                f"got {type(marker).__name__}"
            )
        for p, offset in marker.items():
            if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
                raise ValueError(f"recovery_markers: offset {offset!r} of partition {p!r}")
            lowest[p] = min(offset, lowest.get(p, offset))
    for p in starts:
        starts[p] = lowest.get(p, 0)
    return starts


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    # A rebuild makes millions of objects that live on and form no cycles: each collection
    # the allocations trigger would walk all of them for nothing (a fifth of the rebuild's
    # time). Reference counting still frees everything; collection resumes afterwards.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _load_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to hand back this way
        return None
    return trim


_MALLOC_TRIM = _load_trim()


def _trim_heap() -> None:
    # The records a rebuild read and dropped leave freed heap pages that glibc keeps: about
    # 0.8 KB a state at a million states, more than the view itself (bench/scale.py). Hand
    # them back to the system, so the process holds what the view holds.
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class ViewStore:
    """Base of the stores that keep a ``StateView`` in front of an append-only log."""

    topic: str

    def __init__(self, *, topic: str, codec: str = DEFAULT_CODEC, secret: bytes | None) -> None:
        self.topic = topic
        self._payload_codec = get_codec(codec)  # an unknown name is refused, known ones listed
        self._codec = self._payload_codec.name
        self._secret = secret
        self._view = StateView()
        self._closed = False
        self._rebuilding = threading.Lock()  # one rebuild at a time: it owns the reader

    # -- what a backend provides -------------------------------------------------------

    def _partition_count(self) -> int:
        raise NotImplementedError

    def _write(self, partition: int, skey: str, value: bytes, headers: HeaderList) -> int:
        """Append and return the record's offset once durable; raise StoreWriteError."""
        raise NotImplementedError

    async def _awrite(self, partition: int, skey: str, value: bytes, headers: HeaderList) -> int:
        raise NotImplementedError

    def _write_tombstones(
        self, partition: int, skeys: list[str]
    ) -> tuple[list[str], StoreWriteError | None]:
        """Append tombstones; the keys acknowledged, and the first error if any failed."""
        raise NotImplementedError

    def _scan(self, starts: dict[int, int]) -> ScanResult:
        raise NotImplementedError

    def _reread(self, starts: dict[int, int], partitions: Collection[int]) -> Iterable[RawRecord]:
        raise NotImplementedError

    def _prepare_rebuild(self) -> None:
        """Refresh what a rebuild needs to know (the partition count) before planning."""

    def _release(self) -> None:
        """Release the backend's resources (called once by ``close``)."""

    # -- the contract ----------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the store for topic {self.topic!r} is closed; open a new one")

    def put(self, key: str, seq: int, action: str, event: Event, state: ActionState) -> None:
        """Store ``state``; returns once it is durable, raises ``StoreWriteError`` if not."""
        self._check_open()
        self.put_located(locate(key, seq, action, event), state)

    async def aput(self, key: str, seq: int, action: str, event: Event, state: ActionState) -> None:
        """Like ``put``, awaiting the acknowledgement without blocking the event loop."""
        self._check_open()
        await self.aput_located(locate(key, seq, action, event), state)

    # ``locate`` once per action run, then these: what ``put``/``aput`` do after it. The
    # state is encoded before they return or first yield, so the caller may reuse it.

    def put_located(self, loc: Located, state: ActionState) -> None:
        """``put`` under a state key ``locate`` computed earlier."""
        self._check_open()
        value, headers, version = self._encode(loc, state)
        partition = partition_of(loc.agent_key, self._partition_count())
        offset = self._write(partition, loc.state_key, value, headers)
        entry = Entry(value, self._codec, partition, offset, version, state.completed)
        self._view.put(loc.agent_key, loc.seq, loc.state_key, entry)

    async def aput_located(self, loc: Located, state: ActionState) -> None:
        """``aput`` under a state key ``locate`` computed earlier."""
        self._check_open()
        value, headers, version = self._encode(loc, state)
        partition = partition_of(loc.agent_key, self._partition_count())
        offset = await self._awrite(partition, loc.state_key, value, headers)
        entry = Entry(value, self._codec, partition, offset, version, state.completed)
        self._view.put(loc.agent_key, loc.seq, loc.state_key, entry)

    def _next_version(self, skey: str) -> int | None:
        # Only signed records carry a write version: without a secret it proves nothing.
        return None if self._secret is None else next_version(self._view.version(skey))

    def _encode(self, loc: Located, state: ActionState) -> tuple[bytes, HeaderList, int | None]:
        version = self._next_version(loc.state_key)
        value, headers = encode_record(
            loc.state_key, state, codec=self._codec, secret=self._secret, version=version
        )
        return value, headers, version

    def _tombstone_headers(self, skey: str) -> HeaderList:
        """The headers of a tombstone for ``skey`` (signed when the store has a secret)."""
        meta = tombstone_meta(skey, secret=self._secret, version=self._next_version(skey))
        headers: HeaderList = [*meta.to_headers()]
        return headers

    @property
    def payload_codec(self) -> PayloadCodec:
        """The codec call outcomes are written with; every record names it in a header."""
        return self._payload_codec

    def get(self, key: str, seq: int, action: str, event: Event) -> ActionState | None:
        """The stored state, or None; a newer seq for ``key`` invalidates later states."""
        stored = self.get_stored(key, seq, action, event)
        return None if stored is None else stored.state

    def get_stored(self, key: str, seq: int, action: str, event: Event) -> StoredState | None:
        """Like ``get``, with the payload codec the state's record names."""
        self._check_open()
        loc = locate(key, seq, action, event)
        entry = self._view.lookup(loc.agent_key, loc.seq, loc.state_key)
        if entry is None:
            return None
        return self._decoded(loc.state_key, entry)

    def stored(self, skey: str) -> StoredState | None:
        """The state the view holds under the state key ``skey``, with its record's codec."""
        self._check_open()
        entry = self._view.get(skey)
        return None if entry is None else self._decoded(skey, entry)

    def _decoded(self, skey: str, entry: Entry) -> StoredState:
        return StoredState(decode_entry(skey, entry, self.topic), entry.codec)

    def prune(self, key: str, up_to_seq: int) -> int:
        """Delete the states of ``key`` with seq ≤ ``up_to_seq`` (tombstones in the log)."""
        self._check_open()
        agent_key = validate_agent_key(key)
        limit = validate_seq(up_to_seq, "up_to_seq")
        skeys = self._view.keys_up_to(agent_key, limit)
        if not skeys:
            return 0
        partition = partition_of(agent_key, self._partition_count())
        acked, error = self._write_tombstones(partition, skeys)
        self._view.discard(agent_key, acked)
        if error is not None:
            raise error
        return len(acked)

    def rebuild(
        self,
        recovery_markers: Sequence[Mapping[int, int]] | None = None,
        partitions: Collection[int] | None = None,
    ) -> RebuildReport:
        """Load the log into the view: each partition from the lowest marker offset given
        for it (else from the beginning) up to its end as of the start of the rebuild.

        Later records of a key replace earlier ones, tombstones delete, and records that
        cannot be read are skipped and counted; the view is merged into, not cleared.
        """
        self._check_open()
        with self._rebuilding, _no_cyclic_gc():
            started = time.perf_counter()
            self._prepare_rebuild()
            starts = plan_rebuild(recovery_markers, partitions, self._partition_count())
            scan = self._scan(starts)
            result = finish_rebuild(
                scan.latest,
                scan.keyless,
                topic=self.topic,
                secret=self._secret,
                view=self._view,
                reread=lambda chosen: self._reread(starts, chosen),
                regressed=scan.regressed,
            )
            scan.latest.clear()
            _trim_heap()
            ended = time.perf_counter()
        last = scan.last_record_at if scan.last_record_at is not None else started
        return RebuildReport(
            records_read=scan.records_read,
            states_live=result.states_live,
            tombstones=result.tombstones,
            bad_records=result.bad_records,
            bad_samples=result.bad_samples,
            partitions=sorted(starts),
            seconds=ended - started,
            tail_seconds=ended - last,
        )

    def states(self) -> list[tuple[StateKey, ActionState]]:
        """A snapshot of every live state in the view, decoded."""
        return [(skey, stored.state) for skey, stored in self.stored_states()]

    def stored_states(self) -> list[tuple[StateKey, StoredState]]:
        """Like ``states``, with the payload codec each state's record names."""
        self._check_open()
        return [
            (parse_state_key(skey), self._decoded(skey, entry))
            for skey, entry in self._view.snapshot()
        ]

    def unfinished_keys(self, select: Callable[[StateKey], bool] | None = None) -> list[StateKey]:
        """The state keys of the view's unfinished states (those ``select`` accepts), in
        (agent key, seq, action UUID) order, from the view's index: nothing is decoded.
        Read each with :meth:`stored`."""
        self._check_open()
        keys = [parse_state_key(skey) for skey, _entry in self._view.unfinished()]
        if select is not None:
            keys = [k for k in keys if select(k)]
        keys.sort(key=lambda k: (k.agent_key, k.seq, str(k.action_uuid)))
        return keys

    def last_seqs(self) -> dict[str, int]:
        """The highest seq of each agent key in the view, without decoding a state."""
        self._check_open()
        return self._view.last_seqs()

    def close(self) -> None:
        """Release connections and threads; the store is unusable afterwards."""
        if self._closed:
            return
        self._closed = True
        self._release()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
