"""The sidecar's HTTP API end to end, against a real broker."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from pydantic import ValidationError

from actionstate.client import (
    KafkaStore,
    KafkaStoreSettings,
    SidecarStore,
    StoreError,
    StoreReadError,
    StoreWriteError,
)
from actionstate.serde import (
    ActionState,
    CallResult,
    Event,
    action_uuid,
    check_record,
    decode_action_state,
    encode_action_state,
    event_uuid,
    partition_for,
    sign_record,
    state_key,
)
from actionstate.service import SidecarSettings
from actionstate.service.local_kafka import LocalKafka, LocalKafkaSettings
from actionstate.service.sidecar._view import MaterializedView
from tests._support import assert_eventually, returns_within
from tests._support.sidecar import SIDECAR_PARTITIONS, RunningSidecar, StartSidecar

EVENT = Event.input({"order": 42})


def skey(agent: str, seq: int = 1, action: str = "charge") -> str:
    return state_key(agent, seq, event_uuid(EVENT.attributes), action_uuid(action))


def state(
    *, pending: bool = False, done: bool = False, payload: bytes = b"\x80\x05N."
) -> ActionState:
    calls = [CallResult.succeeded("shop.reserve", "00000000000000aa", payload)]
    if pending:
        calls.append(CallResult.pending("shop.charge", "00000000000000bb"))
    result = ActionState(task_event=EVENT, call_results=calls)
    if done:
        result.mark_completed()
    return result


def put(sc: RunningSidecar, key: str, st: ActionState, **headers: str) -> httpx.Response:
    return sc.http.put(f"/v1/states/{key}", content=encode_action_state(st), headers=headers)


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"}
    return str(body["error"]) + ": " + str(body["detail"])


# -- health ------------------------------------------------------------------------------


def test_health_and_readiness(sidecar: RunningSidecar) -> None:
    assert sidecar.http.get("/healthz").json() == {"status": "ok"}
    ready = sidecar.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True


def test_readyz_is_503_until_the_view_caught_up(
    kafka_bootstrap: str,
    topic_name: str,
    start_sidecar: StartSidecar,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = KafkaStoreSettings(
        bootstrap_servers=kafka_bootstrap, topic=topic_name, partitions=SIDECAR_PARTITIONS
    )
    with KafkaStore(settings) as store:
        for n in range(5):
            store.put(f"agent{n}", 1, "charge", EVENT, state())
    # Hold the follower at its first record: the view cannot catch up until released.
    gate = threading.Event()
    reached = threading.Event()
    original = MaterializedView.apply_record

    def held(self: MaterializedView, *args: Any) -> None:
        reached.set()
        gate.wait(30)
        original(self, *args)

    monkeypatch.setattr(MaterializedView, "apply_record", held)
    try:
        sc = start_sidecar()
        assert reached.wait(30)
        answer = sc.http.get("/readyz")
        assert answer.status_code == 503
        assert answer.json()["error"] == "not_ready"
        assert sc.http.get("/healthz").status_code == 200
    finally:
        gate.set()
    assert_eventually(lambda: _assert_status(sc.http.get("/readyz"), 200))
    assert _ok(sc.http.get("/v1/status"))["states_live"] == 5


def _assert_status(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text


# -- states ------------------------------------------------------------------------------


def test_put_then_get(sidecar: RunningSidecar) -> None:
    st = state(pending=True)
    key = skey("alice")
    written = put(sidecar, key, st, **{"ActionState-Codec": "cloudpickle"})
    assert written.status_code == 200, written.text
    body = written.json()
    assert body["state_key"] == key
    assert body["partition"] == partition_for("alice", SIDECAR_PARTITIONS)
    assert body["offset"] == 0

    got = sidecar.http.get(f"/v1/states/{key}")
    assert got.status_code == 200
    out = got.json()
    assert (out["agent_key"], out["seq"], out["offset"]) == ("alice", 1, 0)
    assert out["codec"] == "cloudpickle"
    assert out["completed"] is False
    assert out["pending_calls"] == 1
    assert (
        out["record"]["callResults"][0]["resultPayload"] == base64.b64encode(b"\x80\x05N.").decode()
    )
    assert encode_action_state(
        decode_action_state(orjson.dumps(out["record"]))
    ) == encode_action_state(st)


def test_get_of_an_absent_state_is_404(sidecar: RunningSidecar) -> None:
    assert "not_found" in error_of(sidecar.http.get(f"/v1/states/{skey('nobody')}"), 404)


def test_a_put_is_in_the_topic_when_answered(sidecar: RunningSidecar) -> None:
    key = skey("bob")
    assert put(sidecar, key, state(), **{"ActionState-Codec": "json"}).status_code == 200
    consumer = Consumer(
        {"bootstrap.servers": sidecar.bootstrap, "group.id": "t", "enable.partition.eof": False}
    )
    try:
        p = partition_for("bob", SIDECAR_PARTITIONS)
        _low, high = consumer.get_watermark_offsets(TopicPartition(sidecar.topic, p), timeout=10)
        assert high == 1
        consumer.assign([TopicPartition(sidecar.topic, p, 0)])
        msg = assert_eventually(lambda: _one(consumer))
        assert msg.key() == key.encode()
        assert msg.value() == encode_action_state(state())
        assert ("actionstate.codec", b"json") in (msg.headers() or [])
    finally:
        consumer.close()


def _one(consumer: Consumer) -> Any:
    msg = consumer.poll(0.2)
    assert msg is not None
    assert msg.error() is None
    return msg


def test_states_written_by_others_are_followed(sidecar: RunningSidecar) -> None:
    settings = KafkaStoreSettings(
        bootstrap_servers=sidecar.bootstrap, topic=sidecar.topic, partitions=SIDECAR_PARTITIONS
    )
    with KafkaStore(settings) as store:
        store.put("carol", 3, "charge", EVENT, state(done=True))
    got = assert_eventually(lambda: _ok(sidecar.http.get(f"/v1/states/{skey('carol', 3)}")))
    assert got["completed"] is True
    assert got["writer"].startswith("kafka-actionstate")


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def test_delete_writes_a_tombstone(sidecar: RunningSidecar) -> None:
    key = skey("dave")
    put(sidecar, key, state())
    deleted = sidecar.http.delete(f"/v1/states/{key}")
    assert deleted.status_code == 200
    assert deleted.json()["existed"] is True
    assert deleted.json()["offset"] == 1
    assert sidecar.http.get(f"/v1/states/{key}").status_code == 404
    again = sidecar.http.delete(f"/v1/states/{key}")
    assert again.json()["existed"] is False
    # a client rebuilding through the sidecar learns about the deletion
    lines = [orjson.loads(x) for x in sidecar.http.get("/v1/snapshot").text.splitlines()]
    assert lines[0]["records_read"] == 3
    assert [x["kind"] for x in lines[1:]] == ["tombstone"]


def test_listing_pages_in_key_order(sidecar: RunningSidecar) -> None:
    for agent in ("b", "a", "c"):
        for seq in (10, 2, 1):
            put(sidecar, skey(agent, seq), state())
    seen: list[tuple[str, int]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 4}
        if cursor is not None:
            params["cursor"] = cursor
        page = _ok(sidecar.http.get("/v1/states", params=params))
        seen += [(i["agent_key"], i["seq"]) for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [(a, s) for a in "abc" for s in (1, 2, 10)]

    only_b = _ok(sidecar.http.get("/v1/states", params={"agent_key": "b"}))
    assert [i["seq"] for i in only_b["items"]] == [1, 2, 10]
    assert only_b["next_cursor"] is None


def test_listing_filters_by_status(sidecar: RunningSidecar) -> None:
    put(sidecar, skey("p"), state(pending=True))
    put(sidecar, skey("i"), state())
    put(sidecar, skey("c"), state(done=True))

    def agents(status: str) -> list[str]:
        page = _ok(sidecar.http.get("/v1/states", params={"status": status}))
        return [i["agent_key"] for i in page["items"]]

    assert agents("pending") == ["p"]
    assert agents("incomplete") == ["i", "p"]
    assert agents("completed") == ["c"]


def test_prune_tombstones_up_to_seq(sidecar: RunningSidecar) -> None:
    for seq in (1, 2, 3):
        put(sidecar, skey("erin", seq), state(done=True))
    put(sidecar, skey("other", 1), state())
    pruned = sidecar.http.post("/v1/prune", json={"agent_key": "erin", "up_to_seq": 2})
    assert pruned.json() == {"agent_key": "erin", "up_to_seq": 2, "pruned": 2}
    left = _ok(sidecar.http.get("/v1/states"))
    assert [(i["agent_key"], i["seq"]) for i in left["items"]] == [("erin", 3), ("other", 1)]


def test_recovery_marker_is_the_topic_end(sidecar: RunningSidecar) -> None:
    marker = _ok(sidecar.http.get("/v1/recovery-marker"))
    assert marker == {
        "topic": sidecar.topic,
        "offsets": {str(p): 0 for p in range(SIDECAR_PARTITIONS)},
    }
    put(sidecar, skey("frank"), state())
    put(sidecar, skey("frank"), state(done=True))
    offsets = _ok(sidecar.http.get("/v1/recovery-marker"))["offsets"]
    assert offsets[str(partition_for("frank", SIDECAR_PARTITIONS))] == 2
    assert sum(offsets.values()) == 2


def test_bad_records_in_the_topic_are_counted_not_served(sidecar: RunningSidecar) -> None:
    good = skey("gina")
    put(sidecar, good, state())
    producer = Producer({"bootstrap.servers": sidecar.bootstrap})
    partition = partition_for("gina", SIDECAR_PARTITIONS)
    producer.produce(sidecar.topic, b"{garbage", key=good, partition=partition)
    producer.produce(sidecar.topic, b"{}", key=b"not-a-state-key", partition=0)
    assert producer.flush(30) == 0

    def counted() -> Any:
        status = _ok(sidecar.http.get("/v1/status"))
        assert status["bad_records"] == 2
        return status

    status = assert_eventually(counted)
    assert {b["reason"] for b in status["bad_samples"]} == {"value", "key"}
    # The garbage did not replace the good state.
    assert _ok(sidecar.http.get(f"/v1/states/{good}"))["offset"] == 0
    metrics = sidecar.http.get("/metrics").text
    assert "actionstate_bad_records_total 2.0" in metrics


def test_metrics(sidecar: RunningSidecar) -> None:
    put(sidecar, skey("hal"), state(pending=True))
    put(sidecar, skey("ivy"), state(done=True))
    text = sidecar.http.get("/metrics").text
    assert 'actionstate_write_latency_seconds_count{op="put"} 2.0' in text
    assert "actionstate_states_live 2.0" in text
    assert "actionstate_states_pending 1.0" in text
    assert "actionstate_consumer_lag " in text
    assert "actionstate_ready 1.0" in text
    assert_eventually(lambda: _metric_at_least(sidecar, "actionstate_records_read_total", 2))


def _metric_at_least(sc: RunningSidecar, name: str, value: float) -> None:
    for line in sc.http.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            assert float(line.split()[1]) >= value
            return
    raise AssertionError(f"{name} missing")


def test_openapi_document(sidecar: RunningSidecar) -> None:
    doc = _ok(sidecar.http.get("/openapi.json"))
    paths = doc["paths"]
    for path in (
        "/v1/states/{state_key}",
        "/v1/states",
        "/v1/prune",
        "/v1/recovery-marker",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths
    assert set(paths["/v1/states/{state_key}"]) == {"get", "put", "delete"}
    assert "ActionStateRecord" in doc["components"]["schemas"]


# -- bad input: a 4xx naming the problem, never a 500 ------------------------------------

GOOD = encode_action_state(state())


@pytest.mark.parametrize(
    ("key", "body", "headers", "status", "named"),
    [
        (skey("k"), b"{not json", {}, 400, "not JSON"),
        (skey("k"), b"", {}, 400, "empty"),
        (skey("k"), b"[1, 2]", {}, 422, "object"),
        (skey("k"), b'{"callResults": [{"argsDigest": ""}]}', {}, 422, "functionId"),
        (skey("k"), b'{"completed": "yes"}', {}, 422, "completed"),
        (
            skey("k"),
            b'{"callResults": [{"functionId": "f", "argsDigest": "", "status": "DONE"}]}',
            {},
            422,
            "status",
        ),
        ("a_b", GOOD, {}, 422, "invalid_state_key"),
        ("k_1_notauuid_x", GOOD, {}, 422, "invalid_state_key"),
        ("k_01_" + skey("k").split("_", 2)[2], GOOD, {}, 422, "canonical"),
        ("k_x_" + skey("k").split("_", 2)[2], GOOD, {}, 422, "invalid_state_key"),
        (skey("k"), GOOD, {"ActionState-Codec": "yaml"}, 422, "unknown payload codec"),
        (skey("k"), GOOD, {"ActionState-Schema": "one"}, 422, "ActionState-Schema"),
        (skey("k"), GOOD, {"ActionState-Schema": "-1"}, 422, "ActionState-Schema"),
        (skey("k"), GOOD, {"ActionState-Signature": "abc"}, 422, "ActionState-Signature"),
        (skey("k"), GOOD, {"ActionState-Writer": "two words"}, 422, "ActionState-Writer"),
    ],
)
def test_bad_puts_are_4xx_naming_the_problem(
    sidecar: RunningSidecar, key: str, body: bytes, headers: dict[str, str], status: int, named: str
) -> None:
    response = sidecar.http.put(f"/v1/states/{key}", content=body, headers=headers)
    assert named in error_of(response, status)


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"status": "sleeping"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 5000}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "!!!"}, "cursor"),
        ({"cursor": "a_b"}, "cursor"),
        ({"cursor": ""}, "cursor"),
        ({"agent_key": ""}, "agent_key"),
        ({"agent_key": "a_b"}, "agent_key"),  # the schema's pattern, enforced
    ],
)
def test_bad_listing_queries_are_422(
    sidecar: RunningSidecar, params: dict[str, Any], named: str
) -> None:
    assert named in error_of(sidecar.http.get("/v1/states", params=params), 422)


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        (b"{", 400, "not JSON"),
        (b"{}", 422, "agent_key"),
        (b'{"agent_key": "k"}', 422, "up_to_seq"),
        (b'{"agent_key": "k", "up_to_seq": -1}', 422, "up_to_seq"),
        (b'{"agent_key": "a_b", "up_to_seq": 1}', 422, "_"),
        (b'{"agent_key": 7, "up_to_seq": 1}', 422, "agent_key"),
        (b'{"agent_key": "k", "up_to_seq": false}', 422, "up_to_seq"),
        (b'{"agent_key": "k", "up_to_seq": "3"}', 422, "up_to_seq"),
    ],
)
def test_bad_prunes_are_4xx(sidecar: RunningSidecar, body: bytes, status: int, named: str) -> None:
    response = sidecar.http.post(
        "/v1/prune", content=body, headers={"Content-Type": "application/json"}
    )
    assert named in error_of(response, status)


def test_bad_keys_on_get_and_delete_are_422(sidecar: RunningSidecar) -> None:
    assert "invalid_state_key" in error_of(sidecar.http.get("/v1/states/a_b"), 422)
    assert "invalid_state_key" in error_of(sidecar.http.delete("/v1/states/a_b"), 422)


def test_bad_snapshot_starts_are_4xx(sidecar: RunningSidecar) -> None:
    assert "starts" in error_of(sidecar.http.get("/v1/snapshot", params={"starts": "x"}), 422)
    assert "no_such_partition" in error_of(
        sidecar.http.get("/v1/snapshot", params={"starts": "99:0"}), 404
    )


def test_unknown_routes_and_methods(sidecar: RunningSidecar) -> None:
    assert "not_found" in error_of(sidecar.http.get("/v2/nothing"), 404)
    assert "method_not_allowed" in error_of(sidecar.http.post("/v1/states"), 405)


def test_a_signed_put_must_verify_with_the_sidecars_secret(start_sidecar: StartSidecar) -> None:
    sc = start_sidecar(signing_secret="s3cret", token="t0k3n")
    key = skey("kim")
    value = encode_action_state(state())
    forged = sign_record(key, value, b"other", version=7)
    response = sc.http.put(
        f"/v1/states/{key}",
        content=value,
        headers={"ActionState-Signature": forged, "ActionState-Version": "7"},
    )
    assert "bad_signature" in error_of(response, 422)
    response = sc.http.put(
        f"/v1/states/{key}", content=value, headers={"ActionState-Signature": forged}
    )
    assert "missing_version" in error_of(response, 422)
    # unsigned: the sidecar signs it, with a write version
    assert put(sc, key, state()).status_code == 200
    out = _ok(sc.http.get(f"/v1/states/{key}"))
    assert out["version"] > 0
    assert out["signature"] == sign_record(key, value, b"s3cret", version=out["version"])
    # a version not above the key's is refused before it reaches the topic
    old = out["version"]
    stale = sign_record(key, value, b"s3cret", version=old)
    response = sc.http.put(
        f"/v1/states/{key}",
        content=value,
        headers={"ActionState-Signature": stale, "ActionState-Version": str(old)},
    )
    assert "stale_version" in error_of(response, 409)


def test_a_signing_secret_requires_a_token() -> None:
    with pytest.raises(ValidationError, match="token"):
        SidecarSettings(topic="t", signing_secret="s3cret")
    assert SidecarSettings(topic="t", signing_secret="s", token="x").token_value == "x"


def test_a_signing_sidecar_signs_only_for_token_holders(start_sidecar: StartSidecar) -> None:
    sc = start_sidecar(signing_secret="s3cret", token="t0k3n")
    key = skey("nia")
    bare = httpx.Client(base_url=sc.url)
    try:
        assert bare.put(f"/v1/states/{key}", content=GOOD).status_code == 401
        assert bare.delete(f"/v1/states/{key}").status_code == 401
        assert bare.post("/v1/prune", json={"agent_key": "nia", "up_to_seq": 9}).status_code == 401
    finally:
        bare.close()
    assert _ok(sc.http.get("/v1/status"))["states_live"] == 0
    assert put(sc, key, state(done=True)).status_code == 200
    [record] = _topic_records(sc)
    assert check_record(key, record.value(), record.headers(), b"s3cret").reason is None
    with pytest.raises(StoreError, match="token"):
        SidecarStore(sc.url, signing_secret="s3cret")
    with SidecarStore(sc.url, token="t0k3n", signing_secret="s3cret") as store:
        report = store.rebuild()
        assert (report.states_live, report.bad_records) == (1, 0)
        store.put("nia", 2, "charge", EVENT, state())
        assert store.prune("nia", 1) == 1
    with SidecarStore(sc.url, token="t0k3n", signing_secret="s3cret") as reader:
        report = reader.rebuild()
        assert (report.states_live, report.tombstones, report.bad_records) == (1, 1, 0)
        assert reader.get("nia", 2, "charge", EVENT) is not None


def _topic_records(sc: RunningSidecar) -> list[Any]:
    """Every record of the sidecar's topic, in offset order per partition."""
    consumer = Consumer(
        {"bootstrap.servers": sc.bootstrap, "group.id": "t", "enable.partition.eof": True}
    )
    pending = set(range(SIDECAR_PARTITIONS))
    records: list[Any] = []
    try:
        consumer.assign([TopicPartition(sc.topic, p, 0) for p in pending])
        while pending:
            for msg in consumer.consume(100, 1):
                if msg.error() is None:
                    records.append(msg)
                else:
                    pending.discard(msg.partition())
    finally:
        consumer.close()
    return records


def test_a_signing_sidecar_refuses_forged_tombstones_and_replays(
    start_sidecar: StartSidecar,
) -> None:
    sc = start_sidecar(signing_secret="s3cret", token="t0k3n")
    key = skey("ola")
    put(sc, key, state(pending=True))
    put(sc, key, state(done=True))
    pending, done = _topic_records(sc)
    producer = Producer({"bootstrap.servers": sc.bootstrap})
    partition = pending.partition()
    producer.produce(sc.topic, None, key=key, partition=partition)  # unsigned tombstone
    producer.produce(
        sc.topic, pending.value(), key=key, partition=partition, headers=pending.headers()
    )  # the older signed record, appended again
    swapped = [*done.headers(), ("actionstate.codec", b"json")]  # a codec the MAC did not cover
    producer.produce(sc.topic, done.value(), key=key, partition=partition, headers=swapped)
    assert producer.flush(30) == 0

    def counted() -> Any:
        status = _ok(sc.http.get("/v1/status"))
        assert status["bad_records"] == 3
        return status

    status = assert_eventually(counted)
    assert sorted(b["reason"] for b in status["bad_samples"]) == [
        "signature",
        "signature",
        "version",
    ]
    out = _ok(sc.http.get(f"/v1/states/{key}"))
    assert (out["offset"], out["completed"]) == (done.offset(), True)
    # A tombstone the sidecar signs (for a token holder) does delete.
    assert _ok(sc.http.delete(f"/v1/states/{key}"))["existed"] is True
    assert sc.http.get(f"/v1/states/{key}").status_code == 404
    with SidecarStore(sc.url, token="t0k3n", signing_secret="s3cret") as store:
        report = store.rebuild()
        assert (report.states_live, report.tombstones) == (0, 1)


def test_writes_through_a_sidecar_whose_broker_went_away_fail_within_its_timeout(
    start_sidecar: StartSidecar, broker_dirs: Callable[[str], Path]
) -> None:
    kafka = LocalKafka(LocalKafkaSettings(dir=broker_dirs("sidecar-broker"), heap="384m"))
    try:
        sc = start_sidecar(bootstrap_servers=kafka.start(), timeout_s=3)
        assert sc.server.sidecar.follower.wait_ready(60)
        with SidecarStore(sc.url) as store:
            store.put("pia", 1, "charge", EVENT, state())
            kafka.stop()
            answer = returns_within(90, lambda: put(sc, skey("pia", 2), state()))
            assert "write_failed" in error_of(answer, 503)
            assert "timeout_s=3s" in answer.json()["detail"]
            # The store waits longer than the sidecar: it reports the sidecar's answer.
            for write in (
                lambda: store.put("pia", 3, "charge", EVENT, state()),
                lambda: asyncio.run(store.aput("pia", 4, "charge", EVENT, state())),
            ):
                with pytest.raises(StoreWriteError, match=r"write_failed.*timeout_s=3s"):
                    returns_within(90, write)
            assert store.get("pia", 1, "charge", EVENT) is not None
            assert store.get("pia", 3, "charge", EVENT) is None
    finally:
        kafka.stop()


# -- the token rule -----------------------------------------------------------------------


def test_a_token_is_required_off_loopback() -> None:
    with pytest.raises(ValidationError, match="token"):
        SidecarSettings(host="0.0.0.0", topic="t")
    with pytest.raises(ValidationError, match="token"):
        SidecarSettings(host="192.168.1.5", topic="t", token="")
    assert SidecarSettings(host="0.0.0.0", topic="t", token="x").token_value == "x"
    assert SidecarSettings(host="::1", topic="t").token_value is None


def test_with_a_token_every_request_needs_it(start_sidecar: StartSidecar) -> None:
    sc = start_sidecar(token="let-me-in")
    bare = httpx.Client(base_url=sc.url)
    try:
        for path in (
            "/healthz",
            "/readyz",
            "/metrics",
            "/openapi.json",
            "/v1/states",
            f"/v1/states/{skey('x')}",
        ):
            answer = bare.get(path)
            assert answer.status_code == 401, path
            assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert bare.put(f"/v1/states/{skey('x')}", content=GOOD).status_code == 401
        wrong = bare.get("/healthz", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert sc.http.get("/healthz").status_code == 200
        assert put(sc, skey("x"), state()).status_code == 200
    finally:
        bare.close()


# -- SidecarStore against the sidecar's edges ----------------------------------------------


def test_a_signed_put_is_stored_exactly_as_sent(sidecar: RunningSidecar) -> None:
    key = skey("lee")
    body = b'{"completed": false,  "callResults": []}'  # not what encode_action_state writes
    signature = sign_record(key, body, b"k", version=5)
    written = sidecar.http.put(
        f"/v1/states/{key}",
        content=body,
        headers={"ActionState-Signature": signature, "ActionState-Version": "5"},
    )
    assert written.status_code == 200, written.text
    lines = [orjson.loads(x) for x in sidecar.http.get("/v1/snapshot").text.splitlines()]
    assert base64.b64decode(lines[1]["value"]) == body
    with SidecarStore(sidecar.url, signing_secret="k") as store:
        report = store.rebuild()
        assert (report.states_live, report.bad_records) == (1, 0)
        assert store.get("lee", 1, "charge", EVENT) is not None
    with SidecarStore(sidecar.url, signing_secret="other") as store:
        report = store.rebuild()
        assert (report.states_live, report.bad_records) == (0, 1)
        assert report.bad_samples[0].reason == "signature"


def test_the_sidecar_store_needs_the_token(start_sidecar: StartSidecar) -> None:
    sc = start_sidecar(token="t0k3n")
    with pytest.raises(StoreError, match="token"):
        SidecarStore(sc.url)
    with SidecarStore(sc.url, token="t0k3n") as store:
        store.put("kim", 1, "charge", EVENT, state())
        assert store.get("kim", 1, "charge", EVENT) is not None


def test_the_sidecar_store_reports_an_unreachable_sidecar() -> None:
    with pytest.raises(StoreReadError, match="did not answer"):
        SidecarStore("http://127.0.0.1:1")


def test_bad_records_the_sidecar_skipped_count_in_a_rebuild(sidecar: RunningSidecar) -> None:
    producer = Producer({"bootstrap.servers": sidecar.bootstrap})
    producer.produce(sidecar.topic, b"[]", key=skey("max"), partition=0)
    assert producer.flush(30) == 0
    with SidecarStore(sidecar.url) as store:
        report = store.rebuild()
    assert report.records_read == 1
    assert report.bad_records == 1
    assert report.bad_samples[0].reason == "value"
    assert report.bad_samples[0].partition == 0
