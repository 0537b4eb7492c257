"""The golden vectors in ``tests/vectors/seder``, written by Flink Agents 0.3.0's own classes
through the harness (``interop/regen-vectors.sh``): records from ``ActionStateKafkaSeder``
with Java's field dump of each, keys from ``ActionStateUtil.generateKey``, partitions from
``ActionStateKeyPartitioner`` and ``UUID.nameUUIDFromBytes`` samples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = [
    "INDEX",
    "JDK_DEPENDENT_DOUBLES",
    "KEYS",
    "PARTITIONS",
    "RECORDS",
    "UUIDS",
    "VECTORS",
    "ids",
    "record_bytes",
]

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "seder"
INDEX: dict[str, Any] = json.loads((VECTORS / "index.json").read_text(encoding="utf-8"))
RECORDS: list[dict[str, Any]] = INDEX["records"]
KEYS: list[dict[str, Any]] = INDEX["keys"]
PARTITIONS: list[dict[str, Any]] = INDEX["partitions"]
UUIDS: list[dict[str, Any]] = INDEX["uuids"]


def ids(items: list[dict[str, Any]], field: str) -> list[str]:
    """Short test ids from one field of each vector."""
    return [str(item[field])[:40] for item in items]


def record_bytes(record: dict[str, Any]) -> bytes:
    """The bytes the Java seder wrote for one record of the index."""
    path: Path = VECTORS / record["file"]
    return path.read_bytes()


# Upstream hashes Double.toString output into the event UUID; JDK 19 changed it to the
# shortest digits that round-trip (what we write). value -> (JDK 19+, JDK <= 18) spelling.
JDK_DEPENDENT_DOUBLES: dict[float, tuple[str, str]] = {
    1e23: ("1.0E23", "9.999999999999999E22"),
    4.413745329698681e16: ("4.413745329698681E16", "4.4137453296986808E16"),
}
