"""Bad requests are never fatal: each goes to the dead-letter topic with why and where in
its headers, its offset is committed, and the requests after it run."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from actionstate.serde import (
    HEADER_DEAD_LETTER_DETAIL,
    HEADER_DEAD_LETTER_REASON,
    HEADER_DEAD_LETTER_SOURCE,
    RawRecord,
    encode_request,
    partition_for,
)
from tests._support import assert_eventually, read_topic
from tests._support.kafka import raw_producer
from tests.fleet._fleet import Fleet, check_outcomes, committed_offsets, end_offsets

pytestmark = pytest.mark.timeout(120)

KEY = "order-7"


def test_bad_requests_go_to_the_dead_letter_topic_and_the_loop_goes_on(fleet: Fleet) -> None:
    fleet.partitions = 2
    fleet.create_topics()
    worker = fleet.start("worker")
    fleet.wait_owned([worker])
    sender = fleet.sender()
    p = partition_for(KEY, fleet.partitions)

    before = sender.send(KEY, "charge", {"order": 1})
    good_key, good_value = encode_request(KEY, "charge", {"order": 2})
    _, unknown_action = encode_request(KEY, "refund", {"order": 3})
    bad = [  # (key, value, the reason the worker must give)
        (good_key, b"{not json", "value"),
        (good_key, b'["charge"]', "value"),  # JSON, not an object
        (good_key, unknown_action, "action"),
        (b"order_8", good_value, "key"),  # Java's key parser could not read it back
        (None, good_value, "key"),
    ]
    producer = raw_producer(fleet.bootstrap)
    for key, value, _ in bad:
        producer.produce(fleet.requests, value, key=key, partition=p)
    assert producer.flush(10) == 0
    after = sender.send(KEY, "charge-async", {"order": 4})
    assert after.request_id.offset == before.request_id.offset + len(bad) + 1

    # The good requests on both sides of the bad ones complete, in the same partition.
    fleet.wait_completed([before, after], timeout=30)
    check_outcomes(fleet, [before, after], shipped_at_most=1)

    # Every bad one is in the dead-letter topic, as it was, with why and where.
    def dead_lettered() -> list[tuple[bytes | None, bytes | None, dict[str, bytes]]]:
        found = [
            (m.key(), m.value(), _headers(m))
            for m in read_topic(fleet.bootstrap, fleet.dead_letters)
        ]
        assert len(found) == len(bad), f"{len(found)} dead letters\n{worker.tail()}"
        return found

    letters = assert_eventually(dead_lettered, timeout=30, interval=0.2)
    first_bad = before.request_id.offset + 1
    for i, ((key, value, reason), (got_key, got_value, headers)) in enumerate(
        zip(bad, sorted(letters, key=_source_offset), strict=True)
    ):
        assert (got_key, got_value) == (key, value)
        assert headers[HEADER_DEAD_LETTER_REASON] == reason.encode()
        assert (
            headers[HEADER_DEAD_LETTER_SOURCE] == f"{fleet.requests}:{p}:{first_bad + i}".encode()
        )
        assert headers[HEADER_DEAD_LETTER_DETAIL]
    for reason in ("value", "action", "key"):
        expected = sum(r == reason for _, _, r in bad)
        assert worker.metric("actionstate_worker_dead_letters_total", reason=reason) == expected
    for i in range(len(bad)):
        worker.wait_log(rf"request {fleet.requests}:{p}:{first_bad + i} is bad")

    # Their offsets are committed with the rest: a restart would not read them again.
    ends = end_offsets(fleet)
    assert_eventually(lambda: _equal(committed_offsets(fleet).get(p), ends[p]), timeout=10)
    assert fleet.terminate_all() == {"worker": 0}
    assert not fleet.problems(), fleet.problems()


def _headers(record: RawRecord) -> dict[str, bytes]:
    headers = record.headers()
    pairs = headers.items() if isinstance(headers, Mapping) else headers or []
    return {k: v for k, v in pairs if isinstance(v, bytes)}


def _source_offset(letter: tuple[bytes | None, bytes | None, dict[str, bytes]]) -> int:
    return int(letter[2][HEADER_DEAD_LETTER_SOURCE].rsplit(b":", 1)[1])


def _equal(committed: int | None, end: int) -> None:
    assert committed == end, (committed, end)
