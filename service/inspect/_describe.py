"""Describe the records of a state topic and count them: the engine behind ``inspect``.

Nothing here unpickles a payload unless the caller asks for it, and a record that cannot be
decoded becomes a ``bad`` record view instead of an exception, so one corrupt record never
stops a read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from actionstate.serde import (
    CLOUDPICKLE_CODEC,
    JSON_CODEC,
    ActionState,
    CallResult,
    CallStatus,
    Checked,
    RawRecord,
    RecordMeta,
    SerdeError,
    check_key,
    check_record,
    get_codec,
    signature_problem,
)

__all__ = [
    "CallView",
    "PayloadView",
    "RecordView",
    "StatusFilter",
    "Summary",
    "describe_record",
]

_PICKLE_CODEC = CLOUDPICKLE_CODEC.name
_JSON_CODEC = JSON_CODEC.name


class StatusFilter(StrEnum):
    """Which states a listing keeps."""

    PENDING = "pending"  # at least one call slot is PENDING
    INCOMPLETE = "incomplete"  # the action has not completed
    COMPLETED = "completed"

    def admits(self, *, completed: bool, pending_calls: int) -> bool:
        """Whether a state that is ``completed`` with ``pending_calls`` passes this filter."""
        if self is StatusFilter.COMPLETED:
            return completed
        if self is StatusFilter.INCOMPLETE:
            return not completed
        return pending_calls > 0


@dataclass(frozen=True)
class PayloadView:
    """A call's payload as inspect shows it: decoded when that is safe, described otherwise."""

    size: int
    codec: str | None
    decoded: bool = False
    value: Any = None  # the decoded JSON value, or a repr() of an unpickled object
    unpickled: bool = False  # value is the repr() of an unpickled object
    note: str = ""  # why the payload was not decoded, or how it was guessed


@dataclass(frozen=True)
class CallView:
    """One call result of a state record."""

    index: int
    function_id: str
    args_digest: str
    status: CallStatus  # effective status (legacy records infer it)
    legacy: bool  # the record carried no status field
    kind: Literal["result", "exception"] | None
    payload: PayloadView | None


@dataclass(frozen=True)
class RecordView:
    """One record of the topic: a state, a tombstone, or a record that could not be decoded."""

    kind: Literal["state", "tombstone", "bad"]
    partition: int
    offset: int
    timestamp_ms: int | None
    key: str | None
    agent_key: str | None
    seq: int | None
    size: int  # value bytes
    meta: RecordMeta | None = None
    state: ActionState | None = None
    calls: tuple[CallView, ...] = ()
    verified: bool | None = None  # None: no signing secret configured
    error: str = ""

    @property
    def pending_calls(self) -> int:
        """How many call slots of this state are PENDING."""
        return sum(1 for c in self.calls if c.status is CallStatus.PENDING)

    def matches_status(self, status: StatusFilter | None) -> bool:
        """Whether this record passes a ``--status`` filter (bad records always pass)."""
        if status is None or self.kind == "bad":
            return True
        if self.state is None:
            return False
        return status.admits(completed=self.state.completed, pending_calls=self.pending_calls)


def _describe_payload(
    data: bytes,
    codec: str | None,
    *,
    unpickle: bool,
    trusted: bool | None,
) -> PayloadView:
    name = codec
    note = ""
    if name is None:
        # Java writes Jackson JSON and no header; Python writers always name their codec.
        if data[:1] == b"\x80":
            name, note = _PICKLE_CODEC, "no codec header; looks like a pickle"
        else:
            name, note = _JSON_CODEC, "no codec header; read as JSON"
    if name == _PICKLE_CODEC:
        if not unpickle:
            return PayloadView(len(data), codec, note=note or "not unpickled (--unpickle)")
        if trusted is False:
            return PayloadView(len(data), codec, note="not unpickled: signature missing or invalid")
    try:
        value = get_codec(name).decode(data)
    except SerdeError as exc:
        return PayloadView(len(data), codec, note=f"undecodable: {exc}")
    except Exception as exc:  # an unpickled object may raise anything while loading
        return PayloadView(len(data), codec, note=f"undecodable: {type(exc).__name__}: {exc}")
    if name != _JSON_CODEC:
        return PayloadView(
            len(data), codec, decoded=True, value=repr(value), unpickled=True, note=note
        )
    return PayloadView(len(data), codec, decoded=True, value=value, note=note)


def _describe_call(
    index: int, call: CallResult, codec: str | None, *, unpickle: bool, trusted: bool | None
) -> CallView:
    kind: Literal["result", "exception"] | None = None
    data: bytes | None = None
    if call.exception_payload is not None:
        kind, data = "exception", call.exception_payload
    elif call.result_payload is not None:
        kind, data = "result", call.result_payload
    payload = (
        None if data is None else _describe_payload(data, codec, unpickle=unpickle, trusted=trusted)
    )
    return CallView(
        index=index,
        function_id=call.function_id,
        args_digest=call.args_digest,
        status=call.effective_status,
        legacy=call.status is None,
        kind=kind,
        payload=payload,
    )


def _shown_key(key: bytes | None) -> tuple[str | None, str | None]:
    """A bad record's key as shown, and the agent key it seems to name."""
    if key is None:
        return None, None
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        return key.decode("utf-8", "replace"), None
    return text, text.split("_", 1)[0]


def describe_record(
    raw: RawRecord, *, unpickle: bool = False, secret: bytes | None = None
) -> RecordView:
    """Describe one raw Kafka record; never raises for bad content.

    With ``secret`` the record's signature is checked, and an unverified cloudpickle payload
    is never unpickled even when ``unpickle`` is set.
    """
    key, value, headers = raw.key(), raw.value(), raw.headers()
    size = 0 if value is None else len(value)
    ts_type, ts = raw.timestamp()
    base: dict[str, Any] = {
        "partition": raw.partition(),
        "offset": raw.offset(),
        "timestamp_ms": ts if ts_type else None,
        "size": size,
    }
    parts = check_key(key)
    if isinstance(parts, Checked):
        text, agent = _shown_key(key)
        return RecordView(
            kind="bad", key=text, agent_key=agent, seq=None, error=parts.detail, **base
        )
    text_key, agent_key, seq = parts
    # The stores' rules; the signature is judged apart, so a bad one is shown, not hidden.
    checked = check_record(text_key, value, headers, None, decode=True)
    if checked.reason is not None:
        return RecordView(
            kind="bad", key=text_key, agent_key=agent_key, seq=seq, error=checked.detail, **base
        )
    if value is None:
        return RecordView(kind="tombstone", key=text_key, agent_key=agent_key, seq=seq, **base)
    meta, state = checked.meta or RecordMeta(), checked.state
    assert state is not None  # decode=True on a value
    trusted = None if secret is None else signature_problem(text_key, value, meta, secret) is None
    calls = tuple(
        _describe_call(i, c, meta.codec, unpickle=unpickle, trusted=trusted)
        for i, c in enumerate(state.call_results)
    )
    return RecordView(
        kind="state",
        key=text_key,
        agent_key=agent_key,
        seq=seq,
        meta=meta,
        state=state,
        calls=calls,
        verified=trusted,
        **base,
    )


@dataclass
class _Counts:
    records: int = 0
    live_keys: int = 0
    tombstones: int = 0
    bad_records: int = 0
    actions_incomplete: int = 0
    calls_pending: int = 0
    bytes: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Summary:
    """Counts over the records read; live-key counts follow the latest record of each key.

    ``status`` narrows the live-key counts (live keys, actions incomplete, calls pending) to
    keys whose latest state passes the filter; the raw record counts are never narrowed.
    """

    status: StatusFilter | None = None
    _raw: dict[int, _Counts] = field(default_factory=dict)
    # latest view per key: (partition, incomplete, pending calls); None for a tombstone
    _latest: dict[str, tuple[int, bool, int] | None] = field(default_factory=dict)

    def add(self, view: RecordView) -> None:
        """Count one record."""
        counts = self._raw.setdefault(view.partition, _Counts())
        counts.records += 1
        counts.bytes += view.size
        if view.kind == "bad":
            counts.bad_records += 1
            return
        assert view.key is not None
        if view.kind == "tombstone":
            counts.tombstones += 1
            self._latest[view.key] = None
        elif view.state is not None:
            if view.matches_status(self.status):
                self._latest[view.key] = (
                    view.partition,
                    not view.state.completed,
                    view.pending_calls,
                )
            else:
                self._latest[view.key] = None

    def partitions(self) -> dict[int, dict[str, int]]:
        """The counts of each partition seen, by partition number."""
        per: dict[int, _Counts] = {p: _Counts(**c.as_dict()) for p, c in self._raw.items()}
        for latest in self._latest.values():
            if latest is None:
                continue
            partition, incomplete, pending = latest
            c = per.setdefault(partition, _Counts())
            c.live_keys += 1
            c.actions_incomplete += int(incomplete)
            c.calls_pending += pending
        return {p: per[p].as_dict() for p in sorted(per)}

    def totals(self) -> dict[str, int]:
        """The counts over every partition."""
        total = _Counts()
        for counts in self.partitions().values():
            for name, n in counts.items():
                setattr(total, name, getattr(total, name) + n)
        return total.as_dict()
