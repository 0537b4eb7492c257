"""The worker loop: a member of a consumer group on the requests topic that runs each
request's action durably, on the state partitions its request partitions give it.

Two threads. The consumer thread owns the group consumer: it polls, serves rebalances
(fence, rebuild and recover on assignment; drain, commit and release on revocation) and
commits offsets. The event loop runs the actions: one agent key's requests one at a time,
in offset order, different keys concurrently (sync actions in a thread pool).

A request at offset ``o`` runs as sequence number ``o``, so a request delivered again after
a crash finds its completed state and does not run again; its offset is committed only
once that state is acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from actionstate.client._errors import (
    FencedError,
    PartitionNotOwnedError,
    ReconcileLater,
    StoreWriteError,
)
from actionstate.client._locate import partition_of
from actionstate.client._recovery import RecoveryReport, recoverable
from actionstate.client._runs import _Action, _Done, _Run
from actionstate.client.fleet._metrics import FleetMetrics
from actionstate.client.fleet._offsets import OffsetTracker
from actionstate.client.fleet._settings import FleetSettings
from actionstate.client.kafka._group import GroupConsumer
from actionstate.client.kafka._reader import KafkaMessage as Message
from actionstate.client.kafka._settings import KafkaConnection
from actionstate.client.kafka._writer import KafkaWriter
from actionstate.serde import (
    ActionStateError,
    BadRequest,
    Request,
    StateKey,
    dead_letter_headers,
    decode_request,
)

if TYPE_CHECKING:
    from actionstate.client._worker import Worker
    from actionstate.client.kafka._store import KafkaStore

__all__ = ["FleetLoop"]

_log = logging.getLogger("actionstate.fleet")

_POLL_BATCH = 500
_POLL_WAIT_S = 0.1
_DEAD_LETTER_RETRY_S = 1.0
_WRITE_RETRY_S = 0.5
_WRITE_RETRY_MAX_S = 30.0
_WRITE_RETRIES = 8

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Request:
    offset: int
    request: Request
    action: _Action
    msg: Message


@dataclass(frozen=True, slots=True)
class _Recovery:
    run: _Run


_Item = _Request | _Recovery


@dataclass
class _Partition:
    """What the event loop holds for one owned partition."""

    number: int
    offsets: OffsetTracker = field(default_factory=OffsetTracker)
    queues: dict[str, deque[_Item]] = field(default_factory=dict)
    runners: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)  # dead-letter writes
    closed: bool = False


class FleetLoop:
    """Runs ``worker``'s actions for the requests of the partitions the group gives it."""

    def __init__(
        self,
        worker: Worker,
        store: KafkaStore,
        settings: FleetSettings,
        metrics: FleetMetrics | None = None,
    ) -> None:
        self.worker = worker
        self.store = store
        self.settings = settings
        self.metrics = metrics if metrics is not None else FleetMetrics()
        self._stopping = threading.Event()
        self._fatal: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._dead_letters: KafkaWriter | None = None
        self._conn: KafkaConnection = store.settings
        # event loop only
        self._parts: dict[int, _Partition] = {}
        self._in_flight = 0  # read (not written) by the consumer thread for back-pressure
        # consumer thread only
        self._consumer: GroupConsumer | None = None
        self._held: set[int] = set()
        self._paused: set[int] = set()
        self._committed: dict[int, int] = {}
        # written by the event loop, read by the consumer thread
        self._commit_lock = threading.Lock()
        self._to_commit: dict[int, int] = {}

    # -- lifecycle ---------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to stop: finish or drop running work within the grace period,
        commit, leave the group. Safe from any thread and from a signal handler."""
        self._stopping.set()

    async def run(self) -> None:
        """Join the group and work until :meth:`stop`; raises what stopped it otherwise."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        settings = self.settings
        await asyncio.to_thread(self._prepare_topics)
        self.store.own_partitions(
            transactional_id_prefix=(
                settings.transactional_id_prefix if settings.fencing == "transactions" else None
            ),
            on_fenced=self._fenced_from_thread,
        )
        self._pool = ThreadPoolExecutor(
            max_workers=settings.max_in_flight, thread_name_prefix="actionstate-action"
        )
        self._conn = settings.connection(self.store.settings)
        self._dead_letters = KafkaWriter(self._conn, settings.dead_letters)
        done: asyncio.Future[None] = loop.create_future()
        thread = threading.Thread(
            target=self._consume, args=(done,), name="actionstate-consumer", daemon=True
        )
        thread.start()
        try:
            await asyncio.shield(done)
        finally:
            if not done.done():  # cancelled: the consumer thread shuts down on its own
                self.stop()
                await asyncio.to_thread(thread.join)
            self._dead_letters.close()
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _prepare_topics(self) -> None:
        count = self.store.partition_count
        admin = self.store.admin
        rf = self.store.settings.replication_factor
        isr = self.store.settings.min_insync_replicas
        for topic in (self.settings.requests, self.settings.dead_letters):
            admin.ensure_requests_topic(topic, count, rf, min_insync_replicas=isr)

    # -- the consumer thread -----------------------------------------------------------

    def _consume(self, done: asyncio.Future[None]) -> None:
        error: BaseException | None = None
        consumer: GroupConsumer | None = None
        try:
            consumer = GroupConsumer(
                self._conn,
                self.settings.requests,
                self.settings.group,
                on_assign=self._on_assign,
                on_revoke=lambda ps: self._give_up(ps, lost=False),
                on_lost=lambda ps: self._give_up(ps, lost=True),
            )
            self._consumer = consumer
            consumer.subscribe()
            self._poll_until_stopped(consumer)
        except BaseException as exc:
            error = exc
        finally:
            try:
                if consumer is not None:
                    self._give_up(list(self._held), lost=False)
                    consumer.close()
            except BaseException as exc:
                error = error or exc
        error = error or self._fatal
        self._call(_settle, done, error)

    def _poll_until_stopped(self, consumer: GroupConsumer) -> None:
        next_commit = time.monotonic()
        next_report = next_commit + self.settings.progress_interval_s
        while not self._stopping.is_set() and self._fatal is None:
            room = self.settings.max_in_flight - self._in_flight
            self._throttle(consumer, full=room <= 0)
            records = consumer.poll(max(1, min(_POLL_BATCH, room)), _POLL_WAIT_S)
            if records:
                self._call(self._accept, records)
            now = time.monotonic()
            if now >= next_commit:
                self._commit(consumer)
                next_commit = now + self.settings.commit_interval_s
            if now >= next_report:
                self._report(consumer)
                next_report = now + self.settings.progress_interval_s

    def _throttle(self, consumer: GroupConsumer, *, full: bool) -> None:
        if full:
            more = set(consumer.assignment()) - self._paused  # partitions assigned meanwhile
            if more:
                consumer.pause(more)
                self._paused |= more
        elif self._paused:
            consumer.resume(self._paused.intersection(consumer.assignment()))
            self._paused = set()

    def _on_assign(self, partitions: list[int]) -> None:
        new = [p for p in partitions if p not in self._held]
        if not new or self._fatal is not None:
            return
        try:
            started = time.monotonic()
            self.store.claim(new)  # fences every earlier owner before anything is read
            fenced_at = time.monotonic()
            rebuild = self.store.rebuild(partitions=new)
            report = RecoveryReport(rebuild=rebuild)
            count = self.store.partition_count
            chosen = set(new)

            def mine(skey: StateKey) -> bool:
                return partition_of(skey.agent_key, count) in chosen

            runs = list(recoverable(self.store, self.worker._actions.values(), report, mine))
            self._held.update(new)
            self._run_on_loop(self._adopt(new, runs))
        except BaseException as exc:
            self._fatal = exc
            _log.error("taking partitions %s failed: %s", new, exc)
            return
        self.metrics.rebalances.labels("assigned").inc(len(new))
        self.metrics.assigned.set(len(self._held))
        if report.unknown_actions:
            _log.warning(
                "partitions %s: %d unfinished states belong to actions this worker does not "
                "register; left untouched",
                new,
                len(report.unknown_actions),
            )
        _log.info(
            "assigned %s: fenced in %.3fs, rebuilt %d records (%d states, %d bad) in %.3fs, "
            "recovering %d actions; owning %d partitions",
            new,
            fenced_at - started,
            rebuild.records_read,
            rebuild.states_live,
            rebuild.bad_records,
            rebuild.seconds,
            len(runs),
            len(self._held),
        )

    def _give_up(self, partitions: list[int], *, lost: bool) -> None:
        gone = [p for p in partitions if p in self._held]
        if not gone:
            return
        grace = 0.0 if lost else self.settings.grace_s
        offsets, abandoned = self._run_on_loop(self._drain(gone, grace))
        assert self._consumer is not None
        committed = lost or self._consumer.commit(offsets)
        if not committed:
            self.metrics.commit_failures.inc()
        with self._commit_lock:
            for p in gone:
                self._to_commit.pop(p, None)
                self._committed.pop(p, None)
        forgotten = self.store.release(gone)
        self._held.difference_update(gone)
        # librdkafka keeps a partition paused through its revocation: were it assigned here
        # again, it would never be fetched. They are still assigned during this callback.
        assert self._consumer is not None
        self._consumer.resume(self._paused.intersection(gone))
        self._paused.difference_update(gone)
        self.metrics.forget_partitions(gone)
        kind = "lost" if lost else "revoked"
        self.metrics.rebalances.labels(kind).inc(len(gone))
        self.metrics.assigned.set(len(self._held))
        _log.info(
            "%s %s: %d unfinished actions dropped (their journal stays), offsets %s, "
            "%d states forgotten; owning %d partitions",
            kind,
            gone,
            abandoned,
            "not committed (lost)" if lost else ("committed" if committed else "NOT committed"),
            forgotten,
            len(self._held),
        )

    def _commit(self, consumer: GroupConsumer) -> None:
        with self._commit_lock:
            due = {
                p: o
                for p, o in self._to_commit.items()
                if p in self._held and self._committed.get(p) != o
            }
        if not due:
            return
        if consumer.commit(due):
            with self._commit_lock:
                self._committed.update(due)
        else:
            self.metrics.commit_failures.inc()

    def _report(self, consumer: GroupConsumer) -> None:
        lag = consumer.lag()
        self.metrics.set_lag(lag)
        totals = self.metrics.totals
        _log.info(
            "progress: %d partitions, %d in flight, %d completed, %d failed, %d redelivered, "
            "%d dead letters, %d fenced, lag %d",
            len(self._held),
            self._in_flight,
            totals["completed"],
            totals["failed"],
            totals["redelivered"],
            totals["dead_letters"],
            totals["fenced"],
            sum(lag.values()),
        )

    def _fenced_from_thread(self, partition: int) -> None:
        self.metrics.fenced_partition()
        self._call(self._on_fenced, partition)

    # -- crossing between the threads --------------------------------------------------

    def _call(self, func: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(func, *args)

    def _run_on_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    # -- the event loop ----------------------------------------------------------------

    async def _adopt(self, partitions: list[int], runs: list[_Run]) -> None:
        for p in partitions:
            self._parts[p] = _Partition(p)
        count = self.store.partition_count
        for run in runs:
            part = self._parts[partition_of(run.ctx.key, count)]
            self._enqueue(part, run.ctx.key, _Recovery(run))

    def _accept(self, records: list[Message]) -> None:
        actions = self.worker._actions
        for msg in records:
            p, offset = msg.partition(), msg.offset()
            if p is None or offset is None:
                continue
            part = self._parts.get(p)
            if part is None or part.closed:
                continue  # not ours (any more): the owner reads it from the committed offset
            part.offsets.take(offset)
            self._in_flight += 1
            decoded = decode_request(msg.key(), msg.value())
            if isinstance(decoded, BadRequest):
                self._dead_letter(part, msg, decoded.reason.value, decoded.detail)
                continue
            act = actions.get(decoded.action)
            if act is None:
                known = ", ".join(sorted(actions)) or "none"
                self._dead_letter(
                    part, msg, "action", f"no action named {decoded.action!r} (known: {known})"
                )
                continue
            self._enqueue(part, decoded.agent_key, _Request(offset, decoded, act, msg))
        self.metrics.in_flight.set(self._in_flight)

    def _enqueue(self, part: _Partition, key: str, item: _Item) -> None:
        queue = part.queues.get(key)
        if queue is None:
            queue = part.queues[key] = deque()
        queue.append(item)
        if key not in part.runners:
            assert self._loop is not None
            part.runners[key] = self._loop.create_task(self._run_key(part, key))

    async def _run_key(self, part: _Partition, key: str) -> None:
        queue = part.queues[key]
        failed_writes = 0
        try:
            while queue and not part.closed:
                item = queue[0]
                try:
                    await self._run_item(part, item)
                except (FencedError, PartitionNotOwnedError):
                    return  # the partition is gone; whoever owns it now runs this
                except StoreWriteError as exc:
                    if isinstance(item, _Request) and failed_writes < _WRITE_RETRIES:
                        # Not acknowledged: running the request again resumes it from what
                        # the journal holds, so retrying is safe; its offset stays uncommitted.
                        delay = min(_WRITE_RETRY_MAX_S, _WRITE_RETRY_S * 2**failed_writes)
                        failed_writes += 1
                        _log.warning(
                            "partition %d offset %d: a journal write failed (%s); retrying "
                            "in %.1fs",
                            part.number,
                            item.offset,
                            exc.cause or type(exc).__name__,
                            delay,
                        )
                        await asyncio.sleep(delay)
                        continue
                    _log.error(
                        "partition %d, key %s: a journal write failed (%s); giving up on this "
                        "run, its state stays incomplete for the next recovery",
                        part.number,
                        key,
                        exc.cause or type(exc).__name__,
                    )
                    self.metrics.action_done("failed")
                except Exception as exc:
                    # Not the action's doing (that is "failed"): keep the request, dead-lettered.
                    _log.exception("partition %d: internal error running a request", part.number)
                    if isinstance(item, _Request):
                        queue.popleft()
                        self._dead_letter(part, item.msg, "internal", type(exc).__name__)
                        continue
                failed_writes = 0
                if queue and queue[0] is item:
                    queue.popleft()
                    self._finish(part, item)
        finally:
            part.runners.pop(key, None)
            if not queue:
                part.queues.pop(key, None)

    async def _run_item(self, part: _Partition, item: _Item) -> None:
        if isinstance(item, _Recovery):
            outcome = await self._drive(item.run)
            self.metrics.recovered.labels(outcome).inc()
            return
        request = item.request
        begun = self.worker._begin(item.action, request.agent_key, request.data, item.offset)
        if isinstance(begun, _Done):
            outcome = "redelivered"
        else:
            outcome = await self._drive(begun)
            if outcome == "failed":
                _log.warning(
                    "partition %d offset %d: action %r failed; its state stays incomplete "
                    "(the next recovery of the partition resumes it)",
                    part.number,
                    item.offset,
                    item.action.name,
                )
        self.metrics.action_done(outcome)

    async def _drive(self, run: _Run) -> str:
        """Run ``run`` to its end: ``completed``, ``unsettled`` or ``failed``; a lost
        partition's errors propagate."""
        try:
            if run.action.is_async:
                await self.worker._drive_async(run)
            else:
                assert self._loop is not None
                await self._loop.run_in_executor(self._pool, self.worker._drive_sync, run)
        except StoreWriteError:
            raise  # FencedError and PartitionNotOwnedError too: the caller decides
        except ReconcileLater:
            return "unsettled" if run.ctx.unsettled is not None else "failed"
        except Exception as exc:
            if isinstance(exc, ActionStateError):
                _log.warning("state %s: %s", run.ctx.state_key, exc)
            else:
                _log.warning(
                    "state %s: the action raised %s", run.ctx.state_key, type(exc).__name__
                )
            return "failed"
        finally:
            self.metrics.count_calls(run.ctx.counts)
        return "completed"

    def _finish(self, part: _Partition, item: _Item | None, offset: int | None = None) -> None:
        if isinstance(item, _Request):
            offset = item.offset
        if offset is not None:
            part.offsets.finish(offset)
            self._in_flight -= 1
            committable = part.offsets.committable()
            if committable is not None and not part.closed:
                with self._commit_lock:
                    self._to_commit[part.number] = committable
        self.metrics.in_flight.set(self._in_flight)

    def _dead_letter(self, part: _Partition, msg: Message, reason: str, detail: str) -> None:
        assert self._loop is not None
        task = self._loop.create_task(self._write_dead_letter(part, msg, reason, detail))
        part.tasks.add(task)
        task.add_done_callback(part.tasks.discard)

    async def _write_dead_letter(
        self, part: _Partition, msg: Message, reason: str, detail: str
    ) -> None:
        p, offset = part.number, msg.offset() or 0
        _log.warning(
            "request %s:%d:%d is bad (%s: %s); writing it to %s",
            self.settings.requests,
            p,
            offset,
            reason,
            detail,
            self.settings.dead_letters,
        )
        headers = [
            *(msg.headers() or []),
            *dead_letter_headers(reason, detail, self.settings.requests, p, offset),
        ]
        assert self._dead_letters is not None
        while not part.closed:
            try:
                await self._dead_letters.awrite(p, msg.key(), msg.value(), headers)
            except ActionStateError as exc:
                _log.warning("dead letter of %d:%d not written (%s); retrying", p, offset, exc)
                await asyncio.sleep(_DEAD_LETTER_RETRY_S)
                continue
            self.metrics.dead_letter(reason)
            self._finish(part, None, offset)
            return

    def _on_fenced(self, partition: int) -> None:
        part = self._parts.get(partition)
        if part is not None and not part.closed:
            part.closed = True
            for runner in list(part.runners.values()):
                runner.cancel()

    async def _drain(self, partitions: list[int], grace: float) -> tuple[dict[int, int], int]:
        """Stop the work of ``partitions``: queued requests are dropped, running ones get
        ``grace`` seconds; returns the offsets to commit and how many were dropped."""
        parts = [self._parts.pop(p) for p in partitions if p in self._parts]
        for part in parts:
            part.closed = True
        running = [t for part in parts for t in (*part.runners.values(), *part.tasks)]
        if running and grace > 0:
            await asyncio.wait(running, timeout=grace)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        offsets: dict[int, int] = {}
        dropped = 0
        for part in parts:
            left = len(part.offsets)
            recoveries = sum(
                isinstance(item, _Recovery) for queue in part.queues.values() for item in queue
            )
            dropped += left + recoveries
            self._in_flight -= left
            committable = part.offsets.committable()
            if committable is not None:
                offsets[part.number] = committable
        if dropped:
            self.metrics.action_done("abandoned", dropped)
        self.metrics.in_flight.set(self._in_flight)
        return offsets, dropped


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
