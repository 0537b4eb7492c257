"""The real Apache Flink Agents 0.2.0 classes against ours, in the default run.

The classes come from the flink-agents 0.2.0 wheel on PyPI (``scripts/flink-agents-jars``,
run by ``scripts/bootstrap``): ``ActionStateKeyPartitioner``, ``ActionStateUtil``,
``ActionStateKafkaSeder`` and ``KafkaActionStateStore``, unmodified. One ``check`` JVM
answers every request of this module; the topic test starts one more for the store.

0.2.0 is the format DESIGN §3 calls legacy: call results without ``status``, events without
``type`` and with subclass fields (``input``, ``output``, ``sourceTimestamp``).
"""

from __future__ import annotations

import base64
import json
import os
import random
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from actionstate.client import KafkaStore, Worker
from actionstate.serde import (
    CallStatus,
    action_uuid,
    decode_action_state,
    encode_action_state,
    flink_murmur_hash,
    java_string_hash,
    name_uuid_from_bytes,
    parse_state_key,
    partition_for,
    state_key,
)
from actionstate.service import SidecarServer, SidecarSettings
from actionstate.service.cli import build_app
from tests._support.kafka import delete_topics
from tests.interop._compare import assert_same_document, document
from tests.interop._jvm import Checker, run

pytestmark = [pytest.mark.java, pytest.mark.java020]

INPUT = "org.apache.flink.agents.api.InputEvent"
OUTPUT = "org.apache.flink.agents.api.OutputEvent"
PYTHON = "org.apache.flink.agents.runtime.python.event.PythonEvent"
MIN_INT = -(2**31)
_MASK = 0xFFFFFFFF


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- partitions -----------------------------------------------------------------------------


def _rotr(x: int, r: int) -> int:
    return ((x >> r) | (x << (32 - r))) & _MASK


def _unmix(h: int) -> int:
    """The int whose Flink murmur mix (before the absolute value) is ``h``."""
    h ^= h >> 16
    h = h * pow(0xC2B2AE35, -1, 2**32) & _MASK
    h ^= (h >> 13) ^ (h >> 26)
    h = h * pow(0x85EBCA6B, -1, 2**32) & _MASK
    h ^= h >> 16
    h ^= 4
    h = (h - 0xE6546B64) * pow(5, -1, 2**32) & _MASK
    h = _rotr(h, 13) * pow(0x1B873593, -1, 2**32) & _MASK
    return _rotr(h, 15) * pow(0xCC9E2D51, -1, 2**32) & _MASK


def _string_with_hash(target: int) -> str:
    """Seven CJK characters whose Java ``String.hashCode`` is ``target``."""
    base = 0x4E00
    rest = (target - base * sum(31**k for k in range(7))) & _MASK
    digits = []
    for _ in range(7):
        rest, d = divmod(rest, 31)
        digits.append(d)
    assert rest == 0
    return "".join(chr(base + d) for d in reversed(digits))


# murmur(x) is Integer.MIN_VALUE before its absolute value is taken: Flink maps it to 0
MURMUR_MIN_KEY = _string_with_hash(_unmix(0x80000000))
AGENT_KEYS = [
    "a",
    "user-1",
    "order-42",
    "42",
    "tenant:acme/7",
    "ünïcode-ключ",
    "中文键",
    "😀",  # an astral character: two UTF-16 code units
    "a😀b𝄞c",
    "\U0010ffff",
    "\ud800",  # lone surrogates: Java strings can hold them
    "x\udfffy",
    "\udbff\udbff",
    "polygenelubricants",  # String.hashCode == Integer.MIN_VALUE
    MURMUR_MIN_KEY,
    "k" * 10_000,
    "😀" * 3_000,
    "".join(chr(c) for c in range(0x21, 0x2FF) if chr(c) != "_"),
    " ",
    "\t\n",
]
PARTITION_COUNTS = [1, 2, 3, 7, 8, 16, 64, 100, 1000]
UUID_TAIL = f"{uuid.UUID(int=1)}_{uuid.UUID(int=2)}"


def test_string_hash_and_partitions_agree_with_the_real_partitioner(
    checker_020: Checker,
) -> None:
    hashes = checker_020.ask_many({"op": "hash", "text": k} for k in AGENT_KEYS)
    assert [r["hash"] for r in hashes] == [java_string_hash(k) for k in AGENT_KEYS]
    assert java_string_hash("polygenelubricants") == MIN_INT
    assert flink_murmur_hash(java_string_hash(MURMUR_MIN_KEY)) == 0

    cases = [(k, n) for k in AGENT_KEYS for n in PARTITION_COUNTS]
    replies = checker_020.ask_many(
        {"op": "partition", "key": f"{k}_0_{UUID_TAIL}", "numPartitions": n} for k, n in cases
    )
    disagree = [
        (k[:20], n, r.get("partition", r.get("error")), partition_for(k, n))
        for (k, n), r in zip(cases, replies, strict=True)
        if not r["ok"] or r["partition"] != partition_for(k, n)
    ]
    assert not disagree, disagree
    assert len(cases) == 180


# --- keys -----------------------------------------------------------------------------------

KEY_AGENTS = ["user-1", "😀", "ключ", "tenant:acme/7", "42", "polygenelubricants", "x\udfffy"]
SEQS = [0, 1, 41, 2**63 - 1]


def _input_event(input_value: Any, attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "@class": INPUT,
        "id": str(uuid.uuid4()),
        "attributes": attributes or {},
        "input": input_value,
    }


def _output_event(value: Any, attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "@class": OUTPUT,
        "id": str(uuid.uuid4()),
        "attributes": attributes or {},
        "output": value,
    }


def _python_event(pickled: bytes) -> dict[str, Any]:
    return {
        "@class": PYTHON,
        "id": str(uuid.uuid4()),
        "attributes": {},
        "event": _b64(pickled),
        "eventType": "myagent.events.OrderEvent",
        "eventJsonStr": '{"order": "o-1"}',
    }


def _event_uuid_020(event: dict[str, Any]) -> uuid.UUID:
    """The event UUID Flink Agents 0.2.0 puts in state keys (``ActionStateUtil`` of 0.2.0),
    for the events of these tests: a PythonEvent names the pickled event's bytes, an
    InputEvent the plain-Jackson JSON of ``[input, attributes]`` (map order as written, not
    sorted), any other event ``attributes.toString()`` (Java's ``{k=v, ...}``)."""
    if event["@class"] == PYTHON:
        return name_uuid_from_bytes(base64.b64decode(event["event"]))
    if event["@class"] == INPUT:
        pair = [event["input"], event["attributes"]]
        text = json.dumps(pair, separators=(",", ":"), ensure_ascii=False)
        return name_uuid_from_bytes(text.encode())
    text = "{" + ", ".join(f"{k}={v}" for k, v in event["attributes"].items()) + "}"
    return name_uuid_from_bytes(text.encode())


KEY_EVENTS = [
    _input_event("hello"),
    _input_event({"order": "o-42", "items": [1, 2, 3], "paid": True}),
    _input_event(7, {"b": "x", "a": None}),
    _output_event("done"),
    _output_event(None, {"z": "1", "a": "2"}),
    _python_event(b"\x80\x05\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01s."),
]


def test_java_generated_keys_parse_in_python_with_the_same_parts(checker_020: Checker) -> None:
    cases = [
        (agent, seq, f"act-{i}", KEY_EVENTS[i % len(KEY_EVENTS)])
        for i, (agent, seq) in enumerate((a, s) for a in KEY_AGENTS for s in SEQS)
    ]
    replies = checker_020.ask_many(
        {"op": "key", "agentKey": a, "seq": s, "action": act, "event": e} for a, s, act, e in cases
    )
    for (agent, seq, _act, event), reply in zip(cases, replies, strict=True):
        assert reply["ok"], reply.get("error")
        java_key = reply["key"]
        parsed = parse_state_key(java_key)
        assert (parsed.agent_key, parsed.seq) == (agent, seq)
        assert str(parsed) == java_key
        # the action part: Java names the action String.valueOf(action.hashCode())
        assert parsed.action_uuid == action_uuid(str(reply["actionHashCode"]))
        # the event part: 0.2.0's own construction, not 0.3's (see the README)
        assert parsed.event_uuid == _event_uuid_020(event), event
    assert len(cases) == 28


def test_python_keys_parse_in_java_into_the_same_four_parts(checker_020: Checker) -> None:
    ours = [
        state_key(a, s, uuid.uuid4(), action_uuid(f"act-{s}")) for a in KEY_AGENTS for s in SEQS
    ]
    replies = checker_020.ask_many({"op": "parseKey", "key": k} for k in ours)
    for key, reply in zip(ours, replies, strict=True):
        assert reply["ok"], reply.get("error")
        assert reply["parts"] == key.split("_")
        assert reply["parts"] == list(_parts(parse_state_key(key)))


def _parts(skey: Any) -> tuple[str, str, str, str]:
    return (skey.agent_key, str(skey.seq), str(skey.event_uuid), str(skey.action_uuid))


@pytest.mark.parametrize("key", ["a_b", "a_1_b", f"a_b_1_{UUID_TAIL}", "", "___"], ids=repr)
def test_keys_java_refuses_we_refuse_too(checker_020: Checker, key: str) -> None:
    reply = checker_020.ask({"op": "parseKey", "key": key})
    assert not reply["ok"]
    assert "Invalid key format" in reply["error"]
    with pytest.raises(ValueError, match="state key"):
        parse_state_key(key)


# --- records --------------------------------------------------------------------------------

EVERY_JSON = {
    "null": None,
    "true": True,
    "false": False,
    "zero": 0,
    "int": -42,
    "long": 2**63 - 1,
    "minLong": -(2**63),
    "bigInteger": 2**80 + 1,
    "double": 1.5,
    "tiny": 1e-7,
    "huge": 1e22,
    "tenth": 0.1,
    "negZero": -0.0,
    "string": "plain",
    "unicode": "héllo ключ 中文 😀 \U0010ffff",
    "escapes": 'quote " backslash \\ tab \t nl \n ctrl \x01',
    "emptyString": "",
    "emptyList": [],
    "emptyMap": {},
    "list": [1, "two", 3.0, None, [True], {"k": "v"}],
    "nested": {"a": {"b": {"c": [1, {"d": None}]}}},
}
PICKLED_RESULT = b"\x80\x05\x95\x06\x00\x00\x00\x00\x00\x00\x00\x8c\x02ok\x94."
JSON_RESULT = b'{"amount": 12.5, "currency": "EUR"}'
LARGE = bytes(random.Random(12).randbytes(600 * 1024))


def _call(fid: str, result: bytes | None = None, exception: bytes | None = None) -> dict[str, Any]:
    return {
        "functionId": fid,
        "argsDigest": "" if fid.startswith("java:") else "0123456789abcdef",
        "resultPayload": None if result is None else _b64(result),
        "exceptionPayload": None if exception is None else _b64(exception),
    }


def _state(**fields: Any) -> dict[str, Any]:
    return {
        "taskEvent": None,
        "sensoryMemoryUpdates": [],
        "shortTermMemoryUpdates": [],
        "outputEvents": [],
        "callResults": [],
        "completed": False,
        **fields,
    }


CORPUS: dict[str, dict[str, Any]] = {
    "empty": _state(),
    "empty-completed": _state(completed=True),
    "input-only": _state(taskEvent=_input_event("test input")),
    "input-every-json-type": _state(taskEvent=_input_event(EVERY_JSON, dict(EVERY_JSON))),
    "input-of-each-kind": _state(
        taskEvent=_input_event([None, True, 1, 2.5, "s", [], {}]),
        outputEvents=[_output_event(v) for v in EVERY_JSON.values()],
    ),
    "output-with-attributes": _state(
        taskEvent=_input_event("q"),
        outputEvents=[_output_event({"answer": 42}, dict(EVERY_JSON)), _output_event(None)],
        completed=True,
    ),
    "source-timestamps": _state(
        taskEvent={**_input_event("t"), "sourceTimestamp": 1733011200123},
        outputEvents=[
            {**_output_event("o"), "sourceTimestamp": 0},
            {**_output_event("o"), "sourceTimestamp": -1},
        ],
    ),
    "event-without-id": _state(taskEvent={**_input_event("x"), "id": None}),
    "python-event": _state(taskEvent=_python_event(PICKLED_RESULT)),
    "call-results": _state(
        taskEvent=_input_event("pay"),
        callResults=[
            _call("shop.charge", result=PICKLED_RESULT),
            _call("java:com.shop.Mailer.send", result=JSON_RESULT),
            _call("shop.refund", exception=b"\x80\x05\x95boom"),
            _call("java:com.shop.Ledger.post", exception=b'{"message":"denied"}'),
            _call("shop.noop"),  # neither payload: a call that returned null
            _call("shop.both", result=b"r", exception=b"e"),
            _call("shop.empty", result=b""),
        ],
    ),
    "memory-updates": _state(
        taskEvent=_input_event("m"),
        sensoryMemoryUpdates=[{"path": "sm.k", "value": v} for v in EVERY_JSON.values()],
        shortTermMemoryUpdates=[
            {"path": "stm.total", "value": 12.5},
            {"path": "stm.doc", "value": dict(EVERY_JSON)},
            {"path": "", "value": None},
            {"path": "stm.ключ.😀", "value": "ünï"},
        ],
    ),
    "unicode": _state(
        taskEvent=_input_event("ключ 中文 😀 𝄞 \u2028 \ufeff", {"😀": "𝄞", "ключ": "中文"}),
        callResults=[_call("модуль.функция_😀", result="ответ 😀".encode())],
        shortTermMemoryUpdates=[{"path": "😀", "value": "\x00\x1f"}],
    ),
    "lone-surrogates": _state(taskEvent=_input_event("a\ud800b", {"\udfff": "\udbff"})),
    "large": _state(
        taskEvent=_input_event("é" * 200_000),
        callResults=[_call("shop.big", result=LARGE), _call("shop.big2", exception=LARGE)],
        shortTermMemoryUpdates=[{"path": "big", "value": ["😀" * 1000] * 50}],
    ),
}


@pytest.fixture(scope="module")
def java_records(checker_020: Checker) -> dict[str, bytes]:
    """Every corpus state as the real 0.2.0 seder writes it."""
    replies = checker_020.ask_many({"op": "encode", "state": s} for s in CORPUS.values())
    out = {}
    for name, reply in zip(CORPUS, replies, strict=True):
        assert reply["ok"], f"{name}: {reply.get('error')}"
        out[name] = base64.b64decode(reply["value"])
    return out


def test_the_corpus_covers_what_the_issue_lists(java_records: dict[str, bytes]) -> None:
    assert len(java_records) == 14
    assert max(len(v) for v in java_records.values()) > 2 * 1024 * 1024
    for value in java_records.values():  # 0.2.0 writes neither field
        assert b'"status"' not in value
        assert b'"type"' not in value


@pytest.mark.parametrize("name", list(CORPUS))
def test_records_of_the_real_020_seder_decode_and_java_reads_our_rewrite_back(
    checker_020: Checker, java_records: dict[str, bytes], name: str
) -> None:
    java = java_records[name]
    state = decode_action_state(java)
    spec = CORPUS[name]

    calls = state.call_results
    assert [c.status for c in calls] == [None] * len(spec["callResults"])
    expected = [
        CallStatus.FAILED if c["exceptionPayload"] is not None else CallStatus.SUCCEEDED
        for c in spec["callResults"]
    ]
    assert [c.effective_status for c in calls] == expected
    assert [_b64(c.result_payload) if c.result_payload is not None else None for c in calls] == [
        c["resultPayload"] for c in spec["callResults"]
    ]
    task = state.task_event
    if spec["taskEvent"] is None:
        assert task is None
    else:
        assert task is not None
        assert (task.class_name, task.id, task.type) == (
            spec["taskEvent"]["@class"],
            spec["taskEvent"]["id"],
            None,
        )
        for field in ("input", "event", "eventType"):
            if field in spec["taskEvent"]:
                assert (task.model_extra or {})[field] == spec["taskEvent"][field]
    assert [e.class_name for e in state.output_events] == [
        e["@class"] for e in spec["outputEvents"]
    ]
    assert state.completed is spec["completed"]

    # untouched, and after every nested model was built
    for ours in (encode_action_state(state), _rebuilt(java)):
        assert b'"status"' not in ours
        assert_same_document(document(ours), document(java))
        reply = checker_020.decode(ours, compare=java)
        assert reply["ok"], f"the real 0.2.0 seder refuses our rewrite: {reply.get('error')}"
        assert reply["equal"], "the real 0.2.0 seder reads our rewrite into another ActionState"
        assert reply["success"] == [s is CallStatus.SUCCEEDED for s in expected]


def _rebuilt(data: bytes) -> bytes:
    state = decode_action_state(data)
    state.call_results = list(state.call_results)
    state.output_events = list(state.output_events)
    state.sensory_memory_updates = list(state.sensory_memory_updates)
    state.short_term_memory_updates = list(state.short_term_memory_updates)
    state.task_event = None if state.task_event is None else state.task_event.model_copy()
    return encode_action_state(state)


def test_the_real_020_seder_turns_a_null_source_timestamp_into_0(
    checker_020: Checker, java_records: dict[str, bytes]
) -> None:
    """Upstream: ``setSourceTimestamp(long)`` takes a primitive, so Jackson reads
    ``"sourceTimestamp":null`` as 0 and Java's own rewrite says 0. Ours keeps null."""
    java = java_records["input-only"]
    assert b'"sourceTimestamp":null' in java
    reply = checker_020.decode(java)
    assert b'"sourceTimestamp":0' in base64.b64decode(reply["reserialized"])
    assert b'"sourceTimestamp":null' in encode_action_state(decode_action_state(java))


def test_the_real_020_seder_refuses_03_records(checker_020: Checker) -> None:
    """0.2.0 knows neither ``status`` nor ``type``: a 0.2.0 reader cannot read 0.3 records."""
    with_status = b'{"callResults":[{"functionId":"f","argsDigest":"","status":"SUCCEEDED"}]}'
    with_type = (
        b'{"taskEvent":{"@class":"org.apache.flink.agents.api.InputEvent","id":null,'
        b'"attributes":{"input":"x"},"type":"_input_event"}}'
    )
    for value, field in ((with_status, "status"), (with_type, "type")):
        reply = checker_020.decode(value)
        assert not reply["ok"]
        assert f'Unrecognized field "{field}"' in reply["error"]


# --- a topic written by the real KafkaActionStateStore ------------------------------------

TOPIC_PARTITIONS = 4
TOPIC_AGENTS = ["user-1", "order-42", "ключ", "😀", "42", "polygenelubricants"]


def _puts() -> list[dict[str, Any]]:
    puts = []
    names = [n for n in CORPUS if n != "large"]
    for i, name in enumerate(names * 2):
        spec = CORPUS[name]
        if spec["taskEvent"] is None:  # the store keys a state by its task event
            spec = {**spec, "taskEvent": _input_event(f"for {name}")}
        agent = TOPIC_AGENTS[i % len(TOPIC_AGENTS)]
        puts.append({"agentKey": agent, "seq": i, "action": f"java-action-{i % 3}", "state": spec})
    return puts


@pytest.fixture
def java_topic(
    harness_020_command: list[str], kafka_bootstrap: str, topic_name: str
) -> Iterator[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]]:
    """A topic the real 0.2.0 ``KafkaActionStateStore`` wrote: (name, puts, written keys)."""
    puts = _puts()
    stdin = "\n".join(json.dumps(p) for p in puts) + "\n"
    out = run(
        ["store-write", kafka_bootstrap, topic_name, str(TOPIC_PARTITIONS)],
        stdin=stdin,
        harness=harness_020_command,
    )
    written: list[dict[str, Any]] = json.loads(out)["written"]
    try:
        yield topic_name, puts, written
    finally:
        delete_topics(kafka_bootstrap, topic_name)


def test_a_topic_of_the_real_020_store_reads_without_a_bad_record(
    kafka_bootstrap: str, java_topic: tuple[str, list[dict[str, Any]], list[dict[str, Any]]]
) -> None:
    topic, puts, written = java_topic
    keys = {w["key"] for w in written}
    assert len(keys) == len(puts) == 26
    for w in written:  # the real partitioner put each record where ours would
        assert w["partition"] == partition_for(parse_state_key(w["key"]).agent_key, 4)

    # our KafkaStore
    with KafkaStore(
        bootstrap_servers=kafka_bootstrap, topic=topic, partitions=TOPIC_PARTITIONS
    ) as store:
        report = store.rebuild()
        assert (report.bad_records, report.records_read, report.states_live) == (0, 26, 26)
        held = {str(k): s for k, s in store.states()}
        assert set(held) == keys
        for put, w in zip(puts, written, strict=True):
            state = held[w["key"]]
            assert [c.status for c in state.call_results] == [None] * len(
                put["state"]["callResults"]
            )
            assert all(c.effective_status is not CallStatus.PENDING for c in state.call_results)

        # The event part of a 0.2.0 key hashes other bytes than 0.3's: looking a state up by
        # (agent, seq, action, event) misses it; it is found by its state key.
        first_put, first = puts[2], written[2]
        assert first_put["state"]["taskEvent"]["input"] == "test input"
        event = held[first["key"]].task_event
        assert event is not None
        java_action = str(first["actionHashCode"])
        assert store.get(first_put["agentKey"], first_put["seq"], java_action, event) is None

        # A Python worker: the states belong to Java actions, so they are reported as states
        # of unknown actions, and left in place, never run or dropped. A Python action
        # registered under a Java action's name (str(hashCode)) cannot resume a 0.2.x state
        # (its input is not in the attributes): a failure of that state, nothing else.
        worker = Worker(store)
        worker.register("python-action", lambda data, _ctx: data)
        worker.register(java_action, lambda data, _ctx: data)
        recovery = worker.recover()
        unfinished = [(p, w) for p, w in zip(puts, written, strict=True) if not _done(p)]
        assert {u.state_key for u in recovery.unknown_actions} == {
            w["key"] for p, w in unfinished if p["action"] != "java-action-2"
        }
        failed = {w["key"] for p, w in unfinished if p["action"] == "java-action-2"}
        assert failed
        assert {f.state_key for f in recovery.failures} == failed
        assert all("has no input task event" in f.message for f in recovery.failures)
        assert recovery.actions_resumed == 0
        assert {str(k) for k, _ in store.states()} == keys

    # actionstate inspect
    result = CliRunner().invoke(
        build_app(),
        ["inspect", "--bootstrap-servers", kafka_bootstrap, "--topic", topic, "--format", "json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    records = [orjson.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [r["kind"] for r in records] == ["state"] * 26, [
        r.get("error") for r in records if r["kind"] != "state"
    ]
    assert {r["key"] for r in records} == keys
    by_key = {r["key"]: r for r in records}
    for put, w in zip(puts, written, strict=True):
        shown = by_key[w["key"]]
        assert shown["task_event"]["class"] == put["state"]["taskEvent"]["@class"]
        assert shown["task_event"]["type"] is None
        assert all(c["legacy_status"] for c in shown["calls"])
        assert shown["pending_calls"] == 0

    # the sidecar
    server = SidecarServer(
        SidecarSettings(
            bootstrap_servers=kafka_bootstrap, topic=topic, partitions=TOPIC_PARTITIONS, port=0
        )
    )
    url = server.start()
    try:
        assert server.sidecar.follower.wait_ready(30)
        with httpx.Client(base_url=url) as http:
            status = http.get("/v1/status").json()
            assert status["bad_records"] == 0, status["bad_samples"]
            listed = http.get("/v1/states", params={"limit": 100}).json()
            assert {i["state_key"] for i in listed["items"]} == keys
            for put, w in zip(puts, written, strict=True):
                got = http.get(f"/v1/states/{w['key']}")
                assert got.status_code == 200, got.text
                record = got.json()["record"]
                task = put["state"]["taskEvent"]
                subclass_order = [k for k in task if k != "sourceTimestamp"]
                assert list(record["taskEvent"]) == [*subclass_order, "sourceTimestamp"]
                for field in ("input", "event", "eventType"):
                    if field in task:
                        assert record["taskEvent"][field] == task[field]
    finally:
        server.stop()


def _done(put: dict[str, Any]) -> bool:
    return bool(put["state"]["completed"])


def test_the_harness_runs_the_020_classes_from_the_cache(harness_020_command: list[str]) -> None:
    classpath = harness_020_command[harness_020_command.index("-cp") + 1].split(os.pathsep)
    assert any(p.endswith("flink-agents-dist-flink-1.20-0.2.0.jar") for p in classpath)
    assert any("flink-core-1.20" in p for p in classpath)
