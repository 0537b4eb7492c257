"""The sidecar under faults and bad input, against a real broker: a follower that stops,
bodies and records too large, 4xx counted, listings that page through many states.

The readiness rule under a broker that stops and comes back runs with a real sidecar
process and a broker of its own: tests/service/cli/test_serve.py.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import httpx
import pytest

from actionstate.client import KafkaStore, KafkaStoreSettings, RecordTooLargeError, SidecarStore
from actionstate.serde import (
    encode_action_state,
)
from tests._support import assert_eventually
from tests._support.kafka import delete_topics, set_topic_config
from tests._support.sidecar import SIDECAR_PARTITIONS, RunningSidecar, StartSidecar
from tests.service.sidecar.test_api import EVENT, skey, state
from tests.service.sidecar.test_limits import raw_request


def error_of(response: httpx.Response, status: int) -> tuple[str, str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"}
    return str(body["error"]), str(body["detail"])


def client_errors(sc: RunningSidecar) -> dict[str, float]:
    """``actionstate_http_client_errors_total`` by status, read through /metrics."""
    text = sc.http.get("/metrics").text
    found = re.findall(
        r'^actionstate_http_client_errors_total\{status="(\d+)"\} (\S+)$', text, re.M
    )
    return {status: float(value) for status, value in found}


# -- a follower that stops -----------------------------------------------------------------


def test_a_deleted_topic_stops_the_follower_and_fails_both_probes(
    kafka_bootstrap: str, start_sidecar: StartSidecar
) -> None:
    sc = start_sidecar(ready_max_lag_s=3)
    assert sc.server.sidecar.follower.wait_ready(30)
    assert sc.http.get("/readyz").status_code == 200
    delete_topics(kafka_bootstrap, sc.topic)

    def stopped() -> None:
        code, detail = error_of(sc.http.get("/readyz"), 503)
        assert code == "follower_stopped"
        assert sc.topic in detail

    assert_eventually(stopped, timeout=60)
    # Liveness fails too: the follower does not come back, the process must restart.
    code, _detail = error_of(sc.http.get("/healthz"), 503)
    assert code == "follower_stopped"
    assert "actionstate_ready 0.0" in sc.http.get("/metrics").text


# -- bodies and records too large ----------------------------------------------------------


@pytest.fixture
def small_body_sidecar(start_sidecar: StartSidecar) -> RunningSidecar:
    sc = start_sidecar(max_body_bytes=64 * 1024)
    assert sc.server.sidecar.follower.wait_ready(30)
    return sc


def test_a_body_over_the_limit_is_a_413_naming_it(small_body_sidecar: RunningSidecar) -> None:
    sc = small_body_sidecar
    big = encode_action_state(state(payload=os.urandom(60 * 1024)))
    answer = sc.http.put(f"/v1/states/{skey('ann')}", content=big)
    code, detail = error_of(answer, 413)
    assert code == "body_too_large"
    assert str(64 * 1024) in detail
    assert answer.headers["ActionState-Limit"] == str(64 * 1024)
    assert answer.headers["ActionState-Size"] == str(len(big))
    assert sc.http.get(f"/v1/states/{skey('ann')}").status_code == 404
    # Under the limit, the same sidecar serves.
    assert sc.http.put(f"/v1/states/{skey('ann')}", content=encode_action_state(state())).is_success


def test_a_streamed_body_over_the_limit_is_a_413_too(small_body_sidecar: RunningSidecar) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * 8192  # no Content-Length: the limit is counted as bytes arrive

    for path, method in ((f"/v1/states/{skey('bo')}", "PUT"), ("/v1/prune", "POST")):
        answer = small_body_sidecar.http.request(method, path, content=chunks())
        code, detail = error_of(answer, 413)
        assert code == "body_too_large", path
        assert str(64 * 1024) in detail


def test_a_record_above_the_topics_limit_is_a_413_not_a_503(start_sidecar: StartSidecar) -> None:
    sc = start_sidecar()
    assert sc.server.sidecar.follower.wait_ready(30)
    set_topic_config(sc.bootstrap, sc.topic, {"max.message.bytes": "20000"})
    # Random bytes: compression cannot bring the record under the topic's limit.
    body = encode_action_state(state(payload=os.urandom(40_000)))

    def refused() -> None:
        answer = sc.http.put(f"/v1/states/{skey('cy')}", content=body)
        code, detail = error_of(answer, 413)
        assert code == "record_too_large"
        assert "20000" in detail
        assert answer.headers["ActionState-Limit"] == "20000"

    assert_eventually(refused, timeout=60)  # the broker applies the new config shortly
    with SidecarStore(sc.url) as store, pytest.raises(RecordTooLargeError) as caught:
        store.put("cy", 1, "charge", EVENT, state(payload=os.urandom(40_000)))
    assert caught.value.limit == 20000
    assert caught.value.size > 40_000
    assert caught.value.retriable is False


def test_the_sidecar_store_turns_a_body_413_into_record_too_large(
    small_body_sidecar: RunningSidecar,
) -> None:
    with SidecarStore(small_body_sidecar.url) as store:
        with pytest.raises(RecordTooLargeError, match="too large") as caught:
            store.put("dee", 1, "charge", EVENT, state(payload=os.urandom(80 * 1024)))
        assert caught.value.limit == 64 * 1024
        assert caught.value.size > 80 * 1024
        assert store.get("dee", 1, "charge", EVENT) is None


# -- 4xx answers are counted ---------------------------------------------------------------


def test_client_errors_are_counted_by_status(small_body_sidecar: RunningSidecar) -> None:
    sc = small_body_sidecar
    assert client_errors(sc) == {}
    assert sc.http.get(f"/v1/states/{skey('nobody')}").status_code == 404
    assert sc.http.get("/v1/states/not-a-key").status_code == 422
    assert sc.http.get("/v1/states/not-a-key").status_code == 422
    assert sc.http.put(f"/v1/states/{skey('x')}", content=b"{").status_code == 400
    assert sc.http.put(f"/v1/states/{skey('x')}", content=b" " * 70_000).status_code == 413
    assert sc.http.get("/v1/status").status_code == 200  # 2xx: not counted
    # Refused by the HTTP layer, before the app: counted too.
    too_long = b"GET /v1/states?cursor=" + b"1" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert raw_request(sc, too_long)[0] == 414
    assert client_errors(sc) == {"404": 1, "422": 2, "400": 1, "413": 1, "414": 1}


def test_refusals_for_a_missing_token_are_counted(start_sidecar: StartSidecar) -> None:
    sc = start_sidecar(token="t0k3n")
    assert httpx.get(f"{sc.url}/v1/status").status_code == 401
    assert client_errors(sc) == {"401": 1}


# -- listings ------------------------------------------------------------------------------


def test_listings_page_through_many_states_in_key_order(
    kafka_bootstrap: str, topic_name: str, start_sidecar: StartSidecar
) -> None:
    settings = KafkaStoreSettings(
        bootstrap_servers=kafka_bootstrap, topic=topic_name, partitions=SIDECAR_PARTITIONS
    )
    written: dict[str, tuple[bool, bool]] = {}  # state key -> (completed, pending)
    with KafkaStore(settings) as store:
        # Agent keys that sort differently as strings and as parts ("a" < "a-b", 9 < 10).
        for agent in ("a", "a-b", "b"):
            for seq in (1, 2, 9, 10, 11, 100):
                done, pending = seq % 2 == 0, seq % 3 == 0
                store.put(agent, seq, "charge", EVENT, state(done=done, pending=pending))
                written[skey(agent, seq)] = (done, pending)
    sc = start_sidecar()
    assert sc.server.sidecar.follower.wait_ready(30)

    def order(k: str) -> tuple[str, int, str]:
        agent, seq, rest = k.split("_", 2)
        return agent, int(seq), rest

    def listed(**query: str | int) -> list[str]:
        keys: list[str] = []
        cursor = None
        while True:
            params = {**query, "limit": 4, **({} if cursor is None else {"cursor": cursor})}
            page = sc.http.get("/v1/states", params=params).json()
            assert len(page["items"]) <= 4
            keys += [item["state_key"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return keys

    everything = sorted(written, key=order)
    assert listed() == everything
    assert listed(agent_key="a") == [k for k in everything if k.startswith("a_")]
    assert listed(status="completed") == [k for k in everything if written[k][0]]
    assert listed(status="incomplete") == [k for k in everything if not written[k][0]]
    assert listed(status="pending") == [k for k in everything if written[k][1]]
    assert listed(agent_key="a-b", status="completed") == [
        k for k in everything if k.startswith("a-b_") and written[k][0]
    ]
    # A cursor is any state key, present or not: the page starts after it.
    absent = skey("a", 5)
    page = sc.http.get("/v1/states", params={"cursor": absent, "limit": 2}).json()
    assert [i["state_key"] for i in page["items"]] == [skey("a", 9), skey("a", 10)]
