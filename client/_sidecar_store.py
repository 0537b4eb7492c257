"""The sidecar store: the journal kept by ``actionstate serve``, reached over HTTP.

Records are built and signed here exactly as the Kafka store builds them; the sidecar
validates them, writes them to its topic and answers once the broker acknowledged. The
view in front of ``get`` is this process's own, loaded by ``rebuild`` from the sidecar's
materialized view (a consistent snapshot of the topic) and by this store's writes.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import httpx
import orjson

from actionstate.serde import (
    DEFAULT_CODEC,
    HTTP_HEADER_CODEC,
    HTTP_HEADER_SCHEMA,
    HTTP_HEADER_SIGNATURE,
    HTTP_HEADER_VERSION,
    HTTP_HEADER_WRITER,
    BadReason,
    HeaderList,
    LogRecord,
    RawRecord,
    RecordMeta,
    validate_agent_key,
    validate_seq,
)

from ._base import ScanResult, ViewStore
from ._errors import RecordTooLargeError, StoreError, StoreReadError, StoreWriteError
from ._store import BadRecord, RebuildReport
from .kafka._settings import DEFAULT_TIMEOUT_S

__all__ = ["SidecarStore"]


def answer_within(sidecar_timeout: float) -> float:
    """How long to wait for the sidecar's answer, given its own ``timeout_s``: a write
    waits up to one timeout for the broker, a snapshot up to two (the topic's end, then
    the view reaching it); one second more leaves room for the answer to arrive."""
    return 2 * sidecar_timeout + 1.0


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
        return f"{response.status_code} {body['error']}: {body['detail']}"
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code} {response.text[:200]}"


def _http_headers(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


class SidecarStore(ViewStore):
    """An ``ActionStateStore`` backed by a sidecar (``actionstate serve``) over HTTP.

    ``SidecarStore("http://127.0.0.1:8080", token=..., signing_secret=...)``. The topic,
    its partition count and the time to wait for an answer (longer than the sidecar's
    own write timeout, so a failed write arrives as the sidecar's error, never as a
    timeout here) come from the sidecar. Like ``KafkaStore``, the view starts empty:
    call ``rebuild()`` to load it. A record the sidecar holds but this store refuses
    (a signature that does not verify with ``signing_secret``) is counted as bad, and the
    key is left out: the sidecar keeps no older versions to fall back on. ``prune``'s
    tombstones are written by the sidecar, signed only if it has the secret too (which
    refusing replayed records in its view needs as well).
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:8080",
        *,
        token: str | None = None,
        signing_secret: str | None = None,
        payload_codec: str = DEFAULT_CODEC,
    ) -> None:
        self.url = url.rstrip("/")
        self._token = token
        # Until the sidecar said its own timeout: what a sidecar uses by default.
        self._timeout = httpx.Timeout(answer_within(DEFAULT_TIMEOUT_S))
        self._client = httpx.Client(
            base_url=self.url, headers=_http_headers(token), timeout=self._timeout
        )
        self._remote_bad: list[BadRecord] = []
        try:
            status = self._status()
            self._timeout = httpx.Timeout(answer_within(float(status["timeout_s"])))
        except BaseException:
            self._client.close()
            raise
        self._client.timeout = self._timeout
        super().__init__(
            topic=str(status["topic"]),
            codec=payload_codec,
            secret=None if signing_secret is None else signing_secret.encode(),
        )
        self._partitions = int(status["partitions"])

    # -- HTTP --------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise StoreReadError(
                f"the sidecar at {self.url} did not answer {method} {path}: {exc!r}; "
                "check that `actionstate serve` runs there"
            ) from exc
        self._check_auth(response)
        return response

    def _check_auth(self, response: httpx.Response) -> None:
        if response.status_code == 401:
            raise StoreError(
                f"the sidecar at {self.url} refused the request ({_detail(response)}); "
                "pass its token as SidecarStore(token=...)"
            )

    def _read_json(self, path: str, **kwargs: Any) -> Any:
        response = self._request("GET", path, **kwargs)
        if response.status_code != 200:
            raise StoreReadError(f"GET {path} at the sidecar failed: {_detail(response)}")
        return response.json()

    def _status(self) -> dict[str, Any]:
        status: dict[str, Any] = self._read_json("/v1/status")
        return status

    @staticmethod
    def _put_headers(headers: HeaderList) -> dict[str, str]:
        meta = RecordMeta.from_headers(headers)
        fields = {
            HTTP_HEADER_CODEC: meta.codec,
            HTTP_HEADER_WRITER: meta.writer,
            HTTP_HEADER_SCHEMA: meta.schema,
            HTTP_HEADER_VERSION: meta.version,
            HTTP_HEADER_SIGNATURE: meta.signature,
        }
        out = {"Content-Type": "application/json"}
        out.update({name: str(value) for name, value in fields.items() if value is not None})
        return out

    def _write_error(self, skey: str, cause: str, *, retriable: bool) -> StoreWriteError:
        error = StoreWriteError(
            f"the state write of key {skey!r} through the sidecar at {self.url} was not "
            f"acknowledged: {cause}. It may or may not have been stored: retry the put, "
            "or rebuild and look.",
            topic=self.topic,
            key=skey,
            cause=cause,
        )
        error.retriable = retriable
        return error

    def _too_large(self, skey: str, response: httpx.Response) -> RecordTooLargeError:
        # The sidecar names the limit and the size in headers too (its _http.too_large_response).
        numbers = [response.headers.get(h, "") for h in ("ActionState-Limit", "ActionState-Size")]
        limit, size = (int(n) if n.isdigit() else 0 for n in numbers)
        return RecordTooLargeError(
            f"the state record of key {skey!r} is too large for the sidecar at {self.url} "
            f"({_detail(response)}); nothing was stored and retrying cannot succeed",
            topic=self.topic,
            key=skey,
            cause=_detail(response),
            limit=limit,
            size=size,
        )

    def _written(self, skey: str, response: httpx.Response) -> int:
        self._check_auth(response)
        if response.status_code == 413:
            raise self._too_large(skey, response)
        if response.status_code != 200:
            retriable = response.status_code >= 500
            raise self._write_error(skey, _detail(response), retriable=retriable)
        return int(response.json()["offset"])

    # -- what a backend provides -------------------------------------------------------

    def _partition_count(self) -> int:
        return self._partitions

    def _write(self, partition: int, skey: str, value: bytes, headers: HeaderList) -> int:
        try:
            response = self._client.put(
                f"/v1/states/{skey}", content=value, headers=self._put_headers(headers)
            )
        except httpx.HTTPError as exc:
            raise self._write_error(skey, repr(exc), retriable=True) from exc
        return self._written(skey, response)

    async def _awrite(self, partition: int, skey: str, value: bytes, headers: HeaderList) -> int:
        # One client per call: an httpx.AsyncClient belongs to the event loop it ran on,
        # and callers may use several loops over the store's life.
        try:
            async with httpx.AsyncClient(
                base_url=self.url, headers=_http_headers(self._token), timeout=self._timeout
            ) as client:
                response = await client.put(
                    f"/v1/states/{skey}", content=value, headers=self._put_headers(headers)
                )
        except httpx.HTTPError as exc:
            raise self._write_error(skey, repr(exc), retriable=True) from exc
        return self._written(skey, response)

    def _write_tombstones(
        self, partition: int, skeys: list[str]
    ) -> tuple[list[str], StoreWriteError | None]:
        acked: list[str] = []
        for skey in skeys:
            try:
                response = self._client.delete(
                    f"/v1/states/{skey}", headers=self._put_headers(self._tombstone_headers(skey))
                )
                self._written(skey, response)
            except httpx.HTTPError as exc:
                return acked, self._write_error(skey, repr(exc), retriable=True)
            except StoreWriteError as exc:
                return acked, exc
            acked.append(skey)
        return acked, None

    def _prepare_rebuild(self) -> None:
        self._partitions = int(self._status()["partitions"])

    def _scan(self, starts: dict[int, int]) -> ScanResult:
        scan = ScanResult()
        self._remote_bad = []
        if not starts:
            return scan
        query = ",".join(f"{p}:{o}" for p, o in sorted(starts.items()))
        try:
            with self._client.stream("GET", "/v1/snapshot", params={"starts": query}) as response:
                self._check_auth(response)
                if response.status_code != 200:
                    response.read()
                    raise StoreReadError(
                        f"the sidecar at {self.url} could not give a snapshot: {_detail(response)}"
                    )
                for line in response.iter_lines():
                    if line:
                        self._scan_line(orjson.loads(line), scan)
        except httpx.HTTPError as exc:
            raise StoreReadError(
                f"reading a snapshot from the sidecar at {self.url} failed: {exc!r}"
            ) from exc
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise StoreReadError(
                f"the sidecar at {self.url} sent a snapshot line this store cannot read: {exc}"
            ) from exc
        return scan

    def _scan_line(self, line: dict[str, Any], scan: ScanResult) -> None:
        kind = line["kind"]
        if kind == "header":
            scan.records_read = int(line["records_read"])
            self._remote_bad = [
                BadRecord(
                    self.topic,
                    int(b["partition"]),
                    int(b["offset"]),
                    BadReason(b["reason"]),
                    b["detail"],
                )
                for b in line["bad"]
            ]
            return
        scan.last_record_at = time.perf_counter()
        key = str(line["key"]).encode()
        value: bytes | None = None
        meta = RecordMeta(
            writer=line["writer"], version=line["version"], signature=line["signature"]
        )
        if kind == "state":
            value = base64.b64decode(line["value"], validate=True)
            meta = replace(meta, codec=line["codec"], schema=line["schema"])
        headers: HeaderList = [*meta.to_headers()]
        scan.latest[key] = LogRecord(
            key, value, headers, int(line["partition"]), int(line["offset"])
        )

    def _reread(self, starts: dict[int, int], partitions: Collection[int]) -> Iterable[RawRecord]:
        return ()  # the sidecar keeps only the latest good record of each key

    def _release(self) -> None:
        self._client.close()

    # -- the contract, where the sidecar does the work -----------------------------------

    def rebuild(
        self,
        recovery_markers: Sequence[Mapping[int, int]] | None = None,
        partitions: Collection[int] | None = None,
    ) -> RebuildReport:
        """Load the sidecar's view of the topic into this store's view.

        As ``KafkaStore.rebuild``: from the lowest marker offset per partition (else the
        beginning), up to the topic's end at the call; records the sidecar skipped as bad
        are counted here too.
        """
        report = super().rebuild(recovery_markers, partitions)
        if self._remote_bad:
            report.bad_records += len(self._remote_bad)
            room = max(0, 100 - len(report.bad_samples))
            report.bad_samples.extend(self._remote_bad[:room])
            self._remote_bad = []
        return report

    def prune(self, key: str, up_to_seq: int) -> int:
        """Delete the states of ``key`` with seq ≤ ``up_to_seq`` known to the sidecar
        (tombstones in the topic); returns how many."""
        self._check_open()
        agent_key = validate_agent_key(key)
        limit = validate_seq(up_to_seq, "up_to_seq")
        try:
            response = self._client.post(
                "/v1/prune", json={"agent_key": agent_key, "up_to_seq": limit}
            )
        except httpx.HTTPError as exc:
            raise self._write_error(f"{agent_key}_*", repr(exc), retriable=True) from exc
        self._check_auth(response)
        if response.status_code != 200:
            raise self._write_error(
                f"{agent_key}_*", _detail(response), retriable=response.status_code >= 500
            )
        self._view.discard(agent_key, self._view.keys_up_to(agent_key, limit))
        return int(response.json()["pruned"])

    def recovery_marker(self) -> dict[int, int]:
        """The topic's end offset per partition, to pass to a later ``rebuild``."""
        self._check_open()
        body = self._read_json("/v1/recovery-marker")
        return {int(p): int(o) for p, o in body["offsets"].items()}
