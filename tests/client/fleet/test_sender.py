"""``RequestSender`` against the real broker: where requests land, the requests topic it
creates or refuses, and waiting for the outcome a worker journals.

The worker loop is simulated the way it runs a request (partition p, offset o): it reads
the request back and calls ``Worker.submit(agent_key, data, seq=o, action=action)``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pydantic
import pytest

from actionstate.client import (
    DurableContext,
    KafkaStore,
    RequestError,
    RequestTimeoutError,
    TopicConfigError,
    Worker,
)
from actionstate.client.fleet import RequestSender, SenderSettings, SentRequest
from actionstate.client.kafka import KafkaAdmin, KafkaConnection
from actionstate.serde import (
    Event,
    InvalidRequestError,
    Request,
    action_uuid,
    decode_request,
    event_uuid,
    partition_for,
    state_key,
)
from tests._support import read_topic, returns_within
from tests._support.kafka import delete_topics

PARTITIONS = 4
SECRET = "sender-test-secret"
KEYS = ["order-1", "order-2", "order-3", "order-42", "ü-key", "x"]


@pytest.fixture
def topics(kafka_bootstrap: str, topic_name: str) -> Iterator[tuple[str, str]]:
    """A state topic and a requests topic, neither created yet."""
    state, requests = f"{topic_name}-state", f"{topic_name}-requests"
    yield state, requests
    delete_topics(kafka_bootstrap, state, requests)


def open_store(bootstrap: str, topic: str, **extra: Any) -> KafkaStore:
    return KafkaStore(bootstrap_servers=bootstrap, topic=topic, partitions=PARTITIONS, **extra)


def open_sender(bootstrap: str, requests: str, topic: str | None, **extra: Any) -> RequestSender:
    return RequestSender(bootstrap_servers=bootstrap, requests=requests, topic=topic, **extra)


def build_worker(store: KafkaStore, *, fail: bool = False) -> Worker:
    worker = Worker(store)

    def charge_card(order: Any) -> str:
        return f"receipt-{order}"

    @worker.action("charge")
    def charge(data: Any, ctx: DurableContext) -> Any:
        receipt = ctx.durable_execute(charge_card, data["order"])
        if fail:
            raise RuntimeError("the action failed after its call")
        return {"receipt": receipt, "order": data["order"]}

    return worker


def request_at(bootstrap: str, requests: str, sent: SentRequest) -> Request:
    """The request as the broker stored it, read back as a worker reads it."""
    [record] = [
        r
        for r in read_topic(bootstrap, requests)
        if (r.partition(), r.offset()) == (sent.request_id.partition, sent.request_id.offset)
    ]
    request = decode_request(record.key(), record.value())
    assert isinstance(request, Request), request
    return request


def run_as_the_loop(worker: Worker, bootstrap: str, requests: str, sent: SentRequest) -> Any:
    request = request_at(bootstrap, requests, sent)
    return worker.submit(
        request.agent_key, request.data, seq=sent.request_id.offset, action=request.action
    )


def raises(error: type[BaseException], call: Callable[[], Any]) -> BaseException:
    with pytest.raises(error) as caught:
        call()
    return caught.value


# -- sending -------------------------------------------------------------------------------


def test_send_lands_at_the_java_partition_with_key_and_value(
    kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    state, requests = topics
    open_store(kafka_bootstrap, state).close()
    with open_sender(kafka_bootstrap, requests, state) as sender:
        assert sender.partitions == PARTITIONS
        sent = [sender.send(key, "charge", {"order": i}) for i, key in enumerate(KEYS)]
    for i, (key, one) in enumerate(zip(KEYS, sent, strict=True)):
        assert one.request_id.partition == partition_for(key, PARTITIONS)
        assert one.state_partition == one.request_id.partition
        assert (one.agent_key, one.action, one.state_offset) == (key, "charge", 0)
        event = Event.input({"order": i})
        assert one.state_key == state_key(
            key, one.request_id.offset, event_uuid(event.attributes), action_uuid("charge")
        )
    records = read_topic(kafka_bootstrap, requests)
    assert len(records) == len(KEYS)
    for record in records:
        key = record.key()
        assert key is not None
        one = sent[KEYS.index(key.decode())]
        assert (record.partition(), record.offset()) == (
            one.request_id.partition,
            one.request_id.offset,
        )
        assert record.value() == b'{"action":"charge","data":{"order":%d}}' % KEYS.index(
            key.decode()
        )


def test_send_many_keeps_the_order_and_returns_results_in_order(
    kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    state, requests = topics
    open_store(kafka_bootstrap, state).close()
    batch = [(KEYS[i % 3], "charge", {"n": i}) for i in range(60)]
    with open_sender(kafka_bootstrap, requests, state) as sender:
        sent = sender.send_many(batch)
        assert sender.send_many([]) == []
    assert [(s.agent_key, s.action) for s in sent] == [(k, a) for k, a, _ in batch]
    stored = {(r.partition(), r.offset()): r for r in read_topic(kafka_bootstrap, requests)}
    last: dict[int, int] = {}
    for (key, _, data), one in zip(batch, sent, strict=True):
        p, o = one.request_id.partition, one.request_id.offset
        assert p == partition_for(key, PARTITIONS)
        assert o > last.get(p, -1)  # in input order within each partition
        last[p] = o
        assert decode_request(stored[p, o].key(), stored[p, o].value()) == Request(
            key, "charge", data
        )


def test_asend_writes_without_blocking_the_loop(
    kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    state, requests = topics
    open_store(kafka_bootstrap, state).close()

    async def main(sender: RequestSender) -> list[SentRequest]:
        one = await sender.asend("order-1", "charge", {"order": 1})
        with pytest.raises(RequestError, match="await asend_many"):
            sender.send_many([("order-2", "charge", None)])
        return [one, *await sender.asend_many([("order-2", "charge", None)])]

    with open_sender(kafka_bootstrap, requests, state) as sender:
        sent = asyncio.run(main(sender))
    assert [s.agent_key for s in sent] == ["order-1", "order-2"]
    assert len(read_topic(kafka_bootstrap, requests)) == 2


# -- the requests topic --------------------------------------------------------------------


def test_a_missing_requests_topic_is_created_with_the_state_topics_count(
    kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    state, requests = topics
    KafkaStore(bootstrap_servers=kafka_bootstrap, topic=state, partitions=3).close()
    with open_sender(kafka_bootstrap, requests, state) as sender:
        assert sender.partitions == 3
        sender.send("order-1", "charge", None)
    admin = KafkaAdmin(KafkaConnection(bootstrap_servers=kafka_bootstrap))
    assert admin.partition_count(requests) == 3


def test_a_missing_requests_topic_without_a_state_topic_is_an_error(
    kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    state, requests = topics
    err = raises(RequestError, lambda: open_sender(kafka_bootstrap, requests, None))
    assert f"the requests topic {requests!r} does not exist; give the state topic" in str(err)
    err = raises(RequestError, lambda: open_sender(kafka_bootstrap, requests, state))
    assert f"neither does the state topic {state!r}" in str(err)
    admin = KafkaAdmin(KafkaConnection(bootstrap_servers=kafka_bootstrap))
    assert admin.partition_count(requests) is None
    assert admin.partition_count(state) is None


def test_a_requests_topic_of_another_count_is_refused(
    kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    state, requests = topics
    open_store(kafka_bootstrap, state).close()
    admin = KafkaAdmin(KafkaConnection(bootstrap_servers=kafka_bootstrap))
    admin.ensure_requests_topic(requests, 2)
    err = raises(TopicConfigError, lambda: open_sender(kafka_bootstrap, requests, state))
    assert "must hold the same agent keys" in str(err)


def test_without_a_state_topic_requests_are_sent_but_not_waited_for(
    kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    _, requests = topics
    KafkaAdmin(KafkaConnection(bootstrap_servers=kafka_bootstrap)).ensure_requests_topic(
        requests, 2
    )
    with open_sender(kafka_bootstrap, requests, None) as sender:
        sent = sender.send("order-1", "charge", 1)
        assert sent.state_offset is None
        assert sent.request_id.partition == partition_for("order-1", 2)
        err = raises(RequestError, lambda: sender.wait(sent, 1))
    assert "configure topic" in str(err)


# -- waiting -------------------------------------------------------------------------------


def test_wait_returns_the_output_of_the_completed_state(
    kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    state, requests = topics
    with (
        open_store(kafka_bootstrap, state) as store,
        open_sender(kafka_bootstrap, requests, state) as sender,
        ThreadPoolExecutor(1) as pool,
    ):
        worker = build_worker(store)
        earlier = sender.send("order-42", "charge", {"order": 41})
        run_as_the_loop(worker, kafka_bootstrap, requests, earlier)
        sent = sender.send("order-42", "charge", {"order": 42})
        assert sent.state_offset is not None
        assert sent.state_offset > 0
        waiting = pool.submit(sender.wait, sent, 60)  # reads on while the worker runs
        output = run_as_the_loop(worker, kafka_bootstrap, requests, sent)
        assert output == {"receipt": "receipt-42", "order": 42}
        assert waiting.result(timeout=60) == output
        # waiting again reads the partition from the same offset: the outcome is still there
        assert returns_within(60, lambda: sender.wait(sent, 30)) == output
        assert sender.bad_records == 0


def test_wait_many_gives_each_request_its_output(
    kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    state, requests = topics
    with (
        open_store(kafka_bootstrap, state) as store,
        open_sender(kafka_bootstrap, requests, state) as sender,
    ):
        worker = build_worker(store)
        sent = sender.send_many([(key, "charge", {"order": i}) for i, key in enumerate(KEYS)])
        for one in reversed(sent):
            run_as_the_loop(worker, kafka_bootstrap, requests, one)
        got = returns_within(60, lambda: dict(sender.wait_many(sent, 30)))
    assert got == {one: {"receipt": f"receipt-{i}", "order": i} for i, one in enumerate(sent)}


def test_wait_async(kafka_bootstrap: str, topics: tuple[str, str]) -> None:
    state, requests = topics
    with (
        open_store(kafka_bootstrap, state) as store,
        open_sender(kafka_bootstrap, requests, state) as sender,
    ):
        worker = build_worker(store)

        async def main() -> Any:
            sent = await sender.asend("order-1", "charge", {"order": 1})
            run_as_the_loop(worker, kafka_bootstrap, requests, sent)
            return await sender.wait_async(sent, 30)

        assert returns_within(60, lambda: asyncio.run(main())) == {
            "receipt": "receipt-1",
            "order": 1,
        }


def test_wait_times_out_when_nothing_runs_the_request(
    kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    state, requests = topics
    open_store(kafka_bootstrap, state).close()
    with open_sender(kafka_bootstrap, requests, state) as sender:
        sent = sender.send("order-1", "charge", {"order": 1})
        err = returns_within(30, lambda: raises(RequestTimeoutError, lambda: sender.wait(sent, 1)))
    assert isinstance(err, RequestTimeoutError)
    message = str(err)
    assert f"request {sent.request_id} ('charge') has no completed state" in message
    assert f"in topic {state!r} after 1s" in message
    assert "may still be running, or may have failed" in message
    assert f"actionstate inspect --topic {state} --state-key {sent.state_key}" in message
    assert (err.request_ids, err.topic) == ((str(sent.request_id),), state)


def test_a_failed_action_times_out_and_says_so(
    kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    state, requests = topics
    with (
        open_store(kafka_bootstrap, state) as store,
        open_sender(kafka_bootstrap, requests, state) as sender,
    ):
        sent = sender.send("order-1", "charge", {"order": 1})
        failing = build_worker(store, fail=True)
        with pytest.raises(RuntimeError):
            run_as_the_loop(failing, kafka_bootstrap, requests, sent)
        more = sender.send("order-2", "charge", {"order": 2})
        err = returns_within(
            30, lambda: raises(RequestTimeoutError, lambda: list(sender.wait_many([sent, more], 1)))
        )
    assert "2 requests (" in str(err)
    assert "may have failed" in str(err)
    assert "--status incomplete" in str(err)


def test_bad_state_records_are_skipped_and_counted(
    kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    state, requests = topics
    with (
        open_store(kafka_bootstrap, state) as unsigned,
        open_sender(kafka_bootstrap, requests, state, signing_secret=SECRET) as sender,
    ):
        sent = sender.send("order-1", "charge", {"order": 1})
        run_as_the_loop(build_worker(unsigned), kafka_bootstrap, requests, sent)
        err = returns_within(30, lambda: raises(RequestTimeoutError, lambda: sender.wait(sent, 1)))
        assert "skipped as bad" in str(err)
        assert sender.bad_records >= 2  # the journal writes and the completed state

        with open_store(kafka_bootstrap, state, signing_secret=SECRET) as signed:
            # a fresh view: the signed worker runs the request again, signing what it writes
            output = run_as_the_loop(build_worker(signed), kafka_bootstrap, requests, sent)
        assert returns_within(60, lambda: sender.wait(sent, 30)) == output


# -- bad arguments -------------------------------------------------------------------------


def test_bad_arguments_raise_naming_the_argument(
    kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    state, requests = topics
    open_store(kafka_bootstrap, state).close()
    with open_sender(kafka_bootstrap, requests, state) as sender:
        cases: list[tuple[Callable[[], Any], str]] = [
            (lambda: sender.send(1, "charge", None), "agent_key"),  # type: ignore[arg-type]
            (lambda: sender.send("a_b", "charge", None), "agent_key"),
            (lambda: sender.send("k", "", None), "action"),
            (lambda: sender.send("k", "charge", math.nan), "data"),
            (lambda: sender.send_many([("k", "a", 1), ("a_b", "a", 1)]), "requests[1].agent_key"),
            (lambda: sender.send_many([("k", "a")]), "requests[0]"),  # type: ignore[list-item]
        ]
        for call, argument in cases:
            err = raises(InvalidRequestError, call)
            assert isinstance(err, InvalidRequestError)
            assert err.path == argument
            assert str(err).startswith(f"{argument}: ")
        sent = sender.send("k", "charge", None)
        for bad in (0, -1, math.inf, "5"):
            err = raises(ValueError, lambda: sender.wait(sent, bad))  # type: ignore[arg-type]  # noqa: B023
            assert "timeout_s must be a number of seconds > 0" in str(err)
    assert len(read_topic(kafka_bootstrap, requests)) == 1  # only the good one


def test_bad_settings_are_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="must be another topic"):
        SenderSettings(requests="same", topic="same")
    with pytest.raises(pydantic.ValidationError, match="requests"):
        SenderSettings()  # type: ignore[call-arg]
    with pytest.raises(pydantic.ValidationError, match="cannot be overridden"):
        SenderSettings(requests="r", client_config={"acks": "0"})


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIONSTATE_REQUESTS", "orders-requests")
    monkeypatch.setenv("ACTIONSTATE_TOPIC", "orders-state")
    monkeypatch.setenv("ACTIONSTATE_SIGNING_SECRET", "s3cret")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:9092")
    settings = SenderSettings()  # type: ignore[call-arg]
    assert (settings.requests, settings.topic, settings.bootstrap_servers) == (
        "orders-requests",
        "orders-state",
        "broker:9092",
    )
    assert settings.secret_bytes == b"s3cret"


def test_the_timeout_error_survives_pickling() -> None:
    import pickle

    err = RequestTimeoutError("no outcome", request_ids=("0:1", "2:3"), topic="orders-state")
    again = pickle.loads(pickle.dumps(err))
    assert isinstance(again, RequestTimeoutError)
    assert isinstance(again, RequestError)
    assert (str(again), again.request_ids, again.topic) == (
        "no outcome",
        ("0:1", "2:3"),
        "orders-state",
    )
