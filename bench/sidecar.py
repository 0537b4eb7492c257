"""Sidecar throughput: HTTP GET and PUT requests/s on loopback beside direct KafkaStore calls.

    python bench/sidecar.py [--seconds 5] [--requests 4000] [--sequential 500]
                            [--concurrency 32] [--no-wrk]

Uses ``KAFKA_BOOTSTRAP_SERVERS`` when set, else starts a local broker (and stops it at the
end). The sidecar runs as its own process (``actionstate serve`` on a free port); the load
generator is ``wrk`` when installed (``apt-get install wrk``; ``--seconds`` a phase), else
httpx (asyncio, ``--requests`` a phase), ``--concurrency`` keep-alive connections either
way; httpx is far slower than the server, so its figures measure the generator. Each
figure is printed beside a baseline measured in the same run on the same topic:

- PUT, ``--concurrency`` in flight: ``PUT /v1/states/{key}`` (answered after the broker's
  ack) vs ``KafkaStore.aput`` (same acks=all, idempotent producer);
- PUT, one at a time: ``SidecarStore.put`` vs ``KafkaStore.put`` (per-write latency);
- GET, ``--concurrency`` in flight: ``GET /v1/states/{key}`` vs ``KafkaStore.get`` (an
  in-process view lookup, the cost the sidecar adds for a worker in another language).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from _broker import broker
from confluent_kafka.admin import AdminClient
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from actionstate.client import KafkaStore, KafkaStoreSettings, SidecarStore
from actionstate.serde import (
    ActionState,
    CallResult,
    Event,
    action_uuid,
    encode_action_state,
    event_uuid,
    state_key,
)

PARTITIONS = 8
console = Console(width=None if os.isatty(1) else 130)
EVENT = Event.input({"order": 42, "amount": "19.99"})
EVENT_UUID = event_uuid(EVENT.attributes)


def make_state(n: int) -> ActionState:
    return ActionState(
        task_event=EVENT,
        call_results=[
            CallResult.succeeded("shop.reserve", "00000000000000aa", b"\x80\x05" + b"r" * 64),
            CallResult.pending("shop.charge", f"{n:016x}"),
        ],
    )


def skey(agent: str, seq: int) -> str:
    return state_key(agent, seq, EVENT_UUID, action_uuid("charge"))


@dataclass
class Result:
    ops: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.ops / self.seconds

    @classmethod
    def of(cls, seconds: float, latencies: list[float]) -> Result:
        ordered = sorted(latencies)

        def pct(q: float) -> float:
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

        return cls(len(ordered), seconds, pct(0.5), pct(0.99))


@dataclass
class Row:
    measure: str
    sidecar: Result
    direct: Result
    baseline: str


@contextmanager
def sidecar_process(bootstrap: str, topic: str) -> Iterator[str]:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "actionstate.service.cli",
            "serve",
            "--topic",
            topic,
            "--port",
            "0",
            "--partitions",
            str(PARTITIONS),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        url = _wait_for_url(proc)
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/readyz").status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("the sidecar did not become ready in 60 s")
            time.sleep(0.05)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def _wait_for_url(proc: subprocess.Popen[str]) -> str:
    assert proc.stderr is not None
    found: list[str] = []
    seen: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line)
            match = re.search(r"listening on (http://[^\s;,()]+)", line)
            if match:
                found.append(match.group(1))
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(120)
    if not found:
        raise RuntimeError(f"the sidecar did not start: {''.join(seen)}")
    # keep draining stderr so the server never blocks on a full pipe
    threading.Thread(target=lambda: [None for _ in proc.stderr or ()], daemon=True).start()
    return found[0]


def run_sequential(n: int, call: Callable[[int], None], progress: Progress, label: str) -> Result:
    task = progress.add_task(label, total=n)
    latencies = []
    started = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        call(i)
        latencies.append(time.perf_counter() - t0)
        progress.advance(task)
    return Result.of(time.perf_counter() - started, latencies)


async def gather_timed(
    n: int,
    concurrency: int,
    call: Callable[[int], Awaitable[None]],
    progress: Progress,
    label: str,
) -> Result:
    """Run ``call(0..n-1)`` from ``concurrency`` tasks on the running loop, timing each."""
    task = progress.add_task(label, total=n)
    latencies: list[float] = []

    async def worker(ids: Iterator[int]) -> None:
        for i in ids:
            t0 = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - t0)
            progress.advance(task)

    ids = iter(range(n))
    started = time.perf_counter()
    await asyncio.gather(*(worker(ids) for _ in range(concurrency)))
    return Result.of(time.perf_counter() - started, latencies)


def run_concurrent(
    n: int,
    concurrency: int,
    call: Callable[[int], Awaitable[None]],
    progress: Progress,
    label: str,
) -> Result:
    return asyncio.run(gather_timed(n, concurrency, call, progress, label))


_WRK_SCRIPT = """
local keys = {%(keys)s}
local body = %(body)s
local i = 0
request = function()
  i = i + 1
  local key = keys[(i %% #keys) + 1]
  if "%(method)s" == "PUT" then
    return wrk.format("PUT", "/v1/states/" .. key,
      {["Content-Type"] = "application/json", ["ActionState-Codec"] = "cloudpickle"}, body)
  end
  return wrk.format("GET", "/v1/states/" .. key)
end
"""


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk_phase(
    url: str, seconds: int, concurrency: int, progress: Progress, label: str, method: str
) -> Result:
    """Drive the sidecar with wrk (a C load generator) for ``seconds``."""
    keys = ",".join(f'"{skey(f"http{k}", k)}"' for k in range(512))
    body = encode_action_state(make_state(0)).decode()
    script = _WRK_SCRIPT % {"keys": keys, "body": "[[" + body + "]]", "method": method}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    task = progress.add_task(label, total=seconds)
    try:
        proc = subprocess.Popen(
            [
                "wrk",
                "-t2",
                f"-c{concurrency}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                handle.name,
                url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started = time.monotonic()
        while proc.poll() is None:
            progress.update(task, completed=min(seconds, time.monotonic() - started))
            time.sleep(0.2)
        out = proc.stdout.read() if proc.stdout is not None else ""
        if proc.stdout is not None:
            proc.stdout.close()
    finally:
        Path(handle.name).unlink()
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if proc.returncode != 0 or failed or "Socket errors" in out:
        raise RuntimeError(f"wrk {method} reported errors:\n{out}")
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m),", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s|m)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s|m)", out)
    if not (done and p50 and p99):
        raise RuntimeError(f"could not read wrk's report:\n{out}")
    elapsed = _ms(done.group(2), done.group(3)) / 1000
    return Result(int(done.group(1)), elapsed, _ms(*p50.groups()), _ms(*p99.groups()))


def http_phase(
    url: str, n: int, concurrency: int, progress: Progress, label: str, method: str
) -> Result:
    bodies = [encode_action_state(make_state(i)) for i in range(min(n, 256))]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def go() -> Result:
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

            async def call(i: int) -> None:
                key = skey(f"http{i % 512}", i)
                if method == "PUT":
                    response = await client.put(
                        f"/v1/states/{key}",
                        content=bodies[i % len(bodies)],
                        headers={"ActionState-Codec": "cloudpickle"},
                    )
                else:
                    k = i % min(n, 512)  # keys the PUT phase wrote
                    response = await client.get(f"/v1/states/{skey(f'http{k}', k)}")
                if response.status_code != 200:
                    raise RuntimeError(f"{method} answered {response.status_code}: {response.text}")

            return await gather_timed(n, concurrency, call, progress, label)

    return asyncio.run(go())


def load(url: str, args: argparse.Namespace, progress: Progress, label: str, method: str) -> Result:
    """HTTP load with wrk when it is installed (and not --no-wrk), else with httpx."""
    if args.generator == "wrk":
        return wrk_phase(url, args.seconds, args.concurrency, progress, label, method)
    return http_phase(url, args.requests, args.concurrency, progress, label, method)


def measure(bootstrap: str, args: argparse.Namespace) -> list[Row]:
    topic = f"bench-sidecar-{uuid.uuid4().hex[:10]}"
    n, seq_n, conc = args.requests, args.sequential, args.concurrency
    settings = KafkaStoreSettings(bootstrap_servers=bootstrap, topic=topic, partitions=PARTITIONS)
    rows: list[Row] = []
    try:
        with sidecar_process(bootstrap, topic) as url, KafkaStore(settings) as direct:
            console.print(f"sidecar at {url}, topic {topic!r} ({PARTITIONS} partitions)")
            states = [make_state(i) for i in range(256)]
            progress = Progress(
                TextColumn("{task.description:<44}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            with progress, SidecarStore(url) as via_http:
                # warm both paths (connections, metadata, the producer's idempotence)
                direct.put("warm", 0, "charge", EVENT, states[0])
                via_http.put("warm", 1, "charge", EVENT, states[0])

                async def aput(i: int) -> None:
                    await direct.aput(f"direct{i % 512}", i, "charge", EVENT, states[i % 256])

                put_direct = run_concurrent(n, conc, aput, progress, f"KafkaStore.aput x{conc}")
                put_http = load(url, args, progress, f"PUT /v1/states x{conc}", "PUT")
                rows.append(Row(f"PUT, {conc} in flight", put_http, put_direct, "KafkaStore.aput"))

                seq_direct = run_sequential(
                    seq_n,
                    lambda i: direct.put(f"dseq{i % 64}", i, "charge", EVENT, states[i % 256]),
                    progress,
                    "KafkaStore.put, one at a time",
                )
                seq_http = run_sequential(
                    seq_n,
                    lambda i: via_http.put(f"hseq{i % 64}", i, "charge", EVENT, states[i % 256]),
                    progress,
                    "SidecarStore.put, one at a time",
                )
                rows.append(Row("PUT, one at a time", seq_http, seq_direct, "KafkaStore.put"))

                # GET the keys the PUT phases wrote: agent http<k> at seq k, direct<k> at k
                for k in range(512):
                    direct.put(f"direct{k}", k, "charge", EVENT, states[k % 256])

                def get(i: int) -> None:
                    k = i % 512
                    if direct.get(f"direct{k}", k, "charge", EVENT) is None:
                        raise RuntimeError("KafkaStore.get missed a state it wrote")

                get_direct = run_sequential(n, get, progress, "KafkaStore.get (in process)")
                get_http = load(url, args, progress, f"GET /v1/states x{conc}", "GET")
                rows.append(Row(f"GET, {conc} in flight", get_http, get_direct, "KafkaStore.get"))
    finally:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.delete_topics([topic], operation_timeout=30).values():
            future.exception()
    return rows


def report(rows: list[Row], args: argparse.Namespace) -> None:
    size = f"{args.seconds} s" if args.generator == "wrk" else f"{args.requests} requests"
    table = Table(
        title=f"sidecar throughput on loopback: HTTP load by {args.generator} ({size} a phase), "
        f"{args.concurrency} connections"
    )
    table.add_column("measure")
    table.add_column("sidecar req/s", justify="right")
    table.add_column("p50 / p99 ms", justify="right")
    table.add_column("baseline")
    table.add_column("baseline ops/s", justify="right")
    table.add_column("p50 / p99 ms", justify="right")
    table.add_column("ratio", justify="right")
    for row in rows:
        s, d = row.sidecar, row.direct
        table.add_row(
            row.measure,
            f"{s.rate:,.0f}",
            f"{s.p50_ms:.2f} / {s.p99_ms:.2f}",
            row.baseline,
            f"{d.rate:,.0f}",
            f"{d.p50_ms:.3f} / {d.p99_ms:.3f}",
            f"{s.rate / d.rate:.2f}x",
        )
    console.print(table)
    console.print(
        "[dim]ratio = sidecar / baseline. The sidecar is its own process; the broker, the "
        f"load generator and the sidecar share this machine's {os.cpu_count()} cores.[/]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--sequential", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk phase")
    parser.add_argument(
        "--no-wrk", action="store_true", help="generate HTTP load with httpx even if wrk exists"
    )
    args = parser.parse_args()
    args.generator = "wrk" if shutil.which("wrk") and not args.no_wrk else "httpx"
    with broker(os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), console.print) as bootstrap:
        rows = measure(bootstrap, args)
    report(rows, args)


if __name__ == "__main__":
    main()
