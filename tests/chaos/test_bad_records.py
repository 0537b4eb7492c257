"""Bad records at volume, interleaved with good ones, read by every reader at once.

Thousands of good states (written by a ``KafkaStore``) and, between them, bad records from a
raw producer, chosen by a seeded generator: fuzzed bytes, truncated JSON, JSON of the wrong
types, bad keys, an unreadable codec header, and with signing on unsigned,
tampered and wrongly signed records and unsigned tombstones; some on keys of their own,
some written over a good state (the latest record of its key). Good records with unknown
headers are among the good ones. An ``actionstate serve`` process follows the topic while
it is written; afterwards a fresh ``KafkaStore.rebuild``, ``actionstate inspect`` and a
fleet worker read it. None crashes, each counts every bad record (inspect, which only
shows signatures, counts those it cannot decode), and every good state is kept.

Each bad record is the last record of its key, so that every reader meets it: a rebuild
checks only the latest record of a key (and what lies before a bad latest one).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from confluent_kafka import KafkaError, Producer

from actionstate.client import KafkaStore
from actionstate.serde import (
    DEFAULT_CODEC,
    ActionState,
    CallResult,
    Event,
    HeaderList,
    action_uuid,
    encode_record,
    event_uuid,
    next_version,
    partition_for,
    state_key,
)
from tests._support import assert_eventually
from tests._support.kafka import raw_producer
from tests.chaos._storm import storm_seed
from tests.chaos._summary import Record
from tests.fleet._fleet import Fleet, check_outcomes, keys_per_partition
from tests.service.cli.test_serve import Serve

PARTITIONS = 4
SECRET = "chaos-signing-secret"
TOKEN = "chaos-token"
EVENT = Event.input({"order": 1})
REBUILT = re.compile(r"rebuilt (\d+) records \((\d+) states, (\d+) bad\)")


@dataclass(frozen=True, slots=True)
class Size:
    good_keys: int
    bad: int


CI = Size(good_keys=1500, bad=1000)
LONG = Size(good_keys=15000, bad=10000)


def skey(agent: str) -> str:
    return state_key(agent, 0, event_uuid(EVENT.attributes), action_uuid("charge"))


def good_state(n: int, *, done: bool) -> ActionState:
    calls = [] if done else [CallResult.pending(f"shop.step{n % 7}", f"{n:016x}")]
    out = ActionState(task_event=EVENT, call_results=calls)
    if done:
        out.mark_completed()
    return out


@dataclass(frozen=True, slots=True)
class Bad:
    """One bad record, and what ``inspect`` (which judges no signature) makes of it."""

    kind: str
    key: bytes | None
    value: bytes | None
    headers: HeaderList
    partition: int
    inspect_as: str  # bad, state or tombstone
    over_good: bool


@dataclass
class Plan:
    """What the test wrote: the good states by state key, and the bad records."""

    good: dict[str, ActionState] = field(default_factory=dict)
    bad: list[Bad] = field(default_factory=list)

    def inspect_counts(self) -> tuple[int, int]:
        """(bad records, live keys) as ``inspect --summary`` should count them."""
        bad = sum(b.inspect_as == "bad" for b in self.bad)
        extra = sum(b.inspect_as == "state" and not b.over_good for b in self.bad)
        gone = sum(b.inspect_as == "tombstone" and b.over_good for b in self.bad)
        return bad, len(self.good) + extra - gone


class BadRecords:
    """A seeded generator of bad records (``signed``: the topic has a signing secret)."""

    def __init__(self, rng: random.Random, *, signed: bool) -> None:
        self.rng = rng
        self.signed = signed
        self.secret = SECRET.encode() if signed else None
        self.n = 0
        # No keyless records: the broker refuses them on a compacted topic (and with them
        # the rest of their batch), so no reader ever meets one.
        kinds = [
            "fuzz",
            "truncated",
            "wrong_types",
            "bad_key",
            "bad_codec_header",
            "bad_meta_header",
        ]
        if signed:
            kinds += ["unsigned", "tampered", "wrong_secret"]
        self.kinds = kinds

    def _valid(
        self, skey_: str, *, secret: bytes | None, variant: int = 0
    ) -> tuple[bytes, HeaderList]:
        n = self.n + variant
        return encode_record(
            skey_,
            good_state(n, done=bool(n % 2)),
            codec=DEFAULT_CODEC,
            secret=secret,
            version=None if secret is None else 1 + self.rng.randrange(1000),
        )

    def _value(self, kind: str, skey_: str) -> tuple[bytes | None, HeaderList, str]:
        rng = self.rng
        if kind == "fuzz":
            return rng.randbytes(rng.randrange(0, 300)), [], "bad"
        if kind == "truncated":
            value, headers = self._valid(skey_, secret=self.secret)
            return value[: rng.randrange(1, len(value))], headers, "bad"
        if kind == "wrong_types":
            wrong = rng.choice(
                [
                    {"taskEvent": 5, "callResults": [], "completed": False},
                    {"taskEvent": None, "callResults": "none", "completed": False},
                    {"taskEvent": None, "callResults": [], "completed": "yes"},
                    {"taskEvent": None, "callResults": [{"functionId": 1}], "completed": False},
                    [1, 2, 3],
                    "a string",
                    None,
                ]
            )
            return json.dumps(wrong).encode(), [], "bad"
        if kind == "bad_codec_header":
            value, headers = self._valid(skey_, secret=self.secret)
            return value, [*headers, ("actionstate.codec", b"\xff\xfe")], "bad"
        if kind == "bad_meta_header":
            value, headers = self._valid(skey_, secret=self.secret)
            return value, [*headers, ("actionstate.schema", b"x")], "bad"
        if kind == "unsigned":
            value, headers = self._valid(skey_, secret=None)
            return value, headers, "state"
        if kind == "tampered":
            _, headers = self._valid(skey_, secret=self.secret)
            other, _ = self._valid(skey_, secret=None, variant=1)  # other bytes, same headers
            return other, headers, "state"
        if kind == "wrong_secret":
            value, headers = self._valid(skey_, secret=b"not-the-secret")
            return value, headers, "state"
        raise AssertionError(kind)

    def own_key(self) -> Bad:
        """A bad record on a key no other record has."""
        self.n += 1
        kind = self.rng.choice(self.kinds)
        agent = f"bad-{self.n}"
        partition = partition_for(agent, PARTITIONS)
        if kind == "bad_key":
            value, headers = self._valid(skey(agent), secret=self.secret)
            key = self.rng.choice(
                [
                    self.rng.randbytes(self.rng.randrange(1, 40)),
                    f"not-a-state-key-{self.n}".encode(),
                    f"{agent}_x_y_z".encode(),
                    b"\xff\xfe" + agent.encode(),
                ]
            )
            return Bad(kind, key, value, headers, partition, "bad", over_good=False)
        value, headers, inspect_as = self._value(kind, skey(agent))
        return Bad(kind, skey(agent).encode(), value, headers, partition, inspect_as, False)

    def over(self, agent: str) -> Bad:
        """A bad record written over the good state of ``agent``."""
        self.n += 1
        kinds = ["fuzz", "truncated", "wrong_types", "bad_codec_header", "bad_meta_header"]
        if self.signed:
            kinds += ["unsigned", "tampered", "wrong_secret", "unsigned_tombstone"]
        kind = self.rng.choice(kinds)
        partition = partition_for(agent, PARTITIONS)
        if kind == "unsigned_tombstone":
            return Bad(kind, skey(agent).encode(), None, [], partition, "tombstone", True)
        value, headers, inspect_as = self._value(kind, skey(agent))
        return Bad(kind, skey(agent).encode(), value, headers, partition, inspect_as, True)


def write_interleaved(store: KafkaStore, size: Size, rng: random.Random, signed: bool) -> Plan:
    """Good states (each key written twice: pending, then completed) and bad records in
    one seeded random order; a record over a good state comes after the state's last write."""
    gen = BadRecords(rng, signed=signed)
    producer = raw_producer(store.settings.bootstrap_servers)
    failed: list[str] = []

    def delivered(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            failed.append(err.str())

    plan = Plan()
    queue = iter(f"good-{i}" for i in range(size.good_keys))
    active: list[str] = []  # keys being written: a window, so their writes interleave
    written: dict[str, int] = {}
    ready: list[str] = []  # good keys whose last write is done
    left_bad, left_good = size.bad, 2 * size.good_keys
    while left_bad or left_good:
        while len(active) < 50 and (agent := next(queue, None)) is not None:
            active.append(agent)
        if left_bad and (not left_good or rng.random() < left_bad / (left_bad + left_good)):
            left_bad -= 1
            if ready and rng.random() < 0.3:
                bad = gen.over(ready.pop(rng.randrange(len(ready))))
            else:
                bad = gen.own_key()
            producer.produce(
                store.topic,
                bad.value,
                key=bad.key,
                partition=bad.partition,
                headers=bad.headers,
                on_delivery=delivered,
            )
            producer.poll(0)
            plan.bad.append(bad)
            continue
        left_good -= 1
        agent = rng.choice(active)
        n = written.get(agent, 0)
        state = good_state(left_good, done=n == 1)
        if n == 1 and rng.random() < 0.2:
            write_with_unknown_headers(producer, store, agent, state, rng)
        else:
            store.put(agent, 0, "charge", EVENT, state)
        written[agent] = n + 1
        plan.good[skey(agent)] = state
        if n == 1:
            active.remove(agent)
            ready.append(agent)
    assert producer.flush(30) == 0
    assert not failed, f"{len(failed)} bad records not written: {failed[:3]}"
    return plan


def write_with_unknown_headers(
    producer: Producer, store: KafkaStore, agent: str, state: ActionState, rng: random.Random
) -> None:
    """A good record with headers no reader knows: kept, never counted bad."""
    secret = store.settings.secret_bytes
    value, headers = encode_record(
        skey(agent),
        state,
        codec=DEFAULT_CODEC,
        secret=secret,
        version=None if secret is None else next_version(None),
    )
    extra: HeaderList = [("x-trace-id", rng.randbytes(8)), ("actionstate.future", b"1")]
    producer.produce(
        store.topic,
        value,
        key=skey(agent),
        partition=partition_for(agent, PARTITIONS),
        headers=[*headers, *extra],
    )
    assert producer.flush(30) == 0  # acknowledged before anything is written over it


@pytest.fixture
def serve(fleet: Fleet, request: pytest.FixtureRequest) -> Iterator[tuple[Serve, str]]:
    """An ``actionstate serve`` process on the fleet's state topic (signing as the test)."""
    signed: bool = request.node.callspec.params["signed"]
    env = fleet.env(KAFKA_BOOTSTRAP_SERVERS=fleet.bootstrap, ACTIONSTATE_TOPIC=fleet.state_topic)
    args = ["--port", "0", "--partitions", str(PARTITIONS)]
    if signed:
        env["ACTIONSTATE_SIGNING_SECRET"] = SECRET
        args += ["--token", TOKEN]
    process = Serve(args, env)
    try:
        yield process, process.wait_for_url(60)
    finally:
        assert process.stop() == 0, "".join(process.seen)


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned-topic", "signing-on"])
def test_bad_records_are_counted_by_every_reader_and_good_ones_kept(
    fleet: Fleet,
    serve: tuple[Serve, str],
    signed: bool,
    chaos_long: bool,
    chaos_summary: Record,
    request: pytest.FixtureRequest,
) -> None:
    size = LONG if chaos_long else CI
    seed = storm_seed()
    print(f"\nchaos seed {seed} (CHAOS_SEED={seed} repeats these records)")
    rng = random.Random(seed)
    fleet.partitions = PARTITIONS
    fleet.bad_records = True
    secret = {"signing_secret": SECRET} if signed else {}
    sidecar, url = serve
    http = httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {TOKEN}"} if signed else {}, timeout=30
    )
    request.addfinalizer(http.close)
    with KafkaStore(
        bootstrap_servers=fleet.bootstrap,
        topic=fleet.state_topic,
        partitions=PARTITIONS,
        **secret,  # type: ignore[arg-type]
    ) as writer:
        plan = write_interleaved(writer, size, rng, signed)
    total_bad = len(plan.bad)
    kinds = sorted({b.kind for b in plan.bad})
    print(f"{len(plan.good)} good states, {total_bad} bad records of kinds {kinds}")

    # A fresh rebuild: every bad record counted, every good state kept as written.
    with KafkaStore(
        bootstrap_servers=fleet.bootstrap,
        topic=fleet.state_topic,
        partitions=PARTITIONS,
        **secret,  # type: ignore[arg-type]
    ) as reader:
        report = reader.rebuild()
        assert report.bad_records == total_bad, report
        assert report.states_live == len(plan.good), report
        view = {str(k): s for k, s in reader.states()}
    assert view == plan.good

    # The sidecar followed the topic as it was written: the same counts, the good states.
    def caught_up() -> dict[str, object]:
        status = http.get("/v1/status").json()
        assert status["bad_records"] == total_bad, status
        assert status["states_live"] == len(plan.good), status
        return dict(status)

    assert_eventually(caught_up, timeout=60, interval=0.5)
    over = [b.key.decode() for b in plan.bad if b.over_good and b.key is not None]
    for key in over + rng.sample(sorted(plan.good), 100):
        answer = http.get(f"/v1/states/{key}")
        assert answer.status_code == 200, (key, answer.text)
    assert sidecar.proc.poll() is None, "".join(sidecar.seen)

    # inspect judges no signature: it counts what it cannot decode.
    bad_for_inspect, live_for_inspect = plan.inspect_counts()
    summary = inspect_summary(fleet)
    assert summary["bad_records"] == bad_for_inspect, summary
    assert summary["live_keys"] == live_for_inspect, summary
    assert summary["records"] == total_bad + 2 * len(plan.good), summary

    # A fleet worker rebuilds the topic on assignment, counts the same, and works.
    sender = fleet.sender()  # creates the requests topic
    worker = fleet.start("worker", env={"ACTIONSTATE_SIGNING_SECRET": SECRET} if signed else {})
    fleet.wait_owned([worker], timeout=90)
    rebuilt = [tuple(map(int, m)) for m in REBUILT.findall(worker.log())]
    assert sum(r[2] for r in rebuilt) == total_bad, worker.tail()
    assert sum(r[1] for r in rebuilt) == len(plan.good), worker.tail()
    sent = sender.send_many(
        [(k, "charge", {"order": i}) for i, k in enumerate(keys_per_partition(PARTITIONS, 3))]
    )
    fleet.wait_completed(sent, timeout=60)
    check_outcomes(fleet, sent, shipped_at_most=1)
    assert fleet.terminate_all() == {"worker": 0}, worker.tail()
    assert not fleet.problems(), fleet.problems()
    chaos_summary(bad_records=total_bad, seed=seed)


def inspect_summary(fleet: Fleet) -> dict[str, int]:
    """``actionstate inspect --summary --format json``'s totals."""
    (summary,) = fleet.inspect_json("--summary")
    return dict(summary)
