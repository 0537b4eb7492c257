"""The public names of actionstate.client."""

from __future__ import annotations

import actionstate.client as client
from tests._support import check_exports

PUBLIC = {
    "ActionStateStore", "BadRecord", "CallCounts", "StoredState", "RebuildReport",
    "KafkaStore", "KafkaStoreSettings", "MemoryLog", "MemoryStore", "SidecarStore",
    "DurableCall", "DurableContext", "ReconcileLater", "validate_reconciler",
    "compute_args_digest", "compute_function_id", "FunctionIdCollisionWarning",
    "Worker", "RecoveryFailure", "RecoveryReport", "UnknownActionState", "UnsettledCall",
    "ClientError", "DurableExecutionError", "ResolvedCallError", "StoreError",
    "StoreReadError", "StoreWriteError", "TopicConfigError", "UntrustedPayloadError",
    "WorkerError", "resolve_call", "StateNotFoundError", "CallNotPendingError",
    "FencedError", "PartitionNotOwnedError", "RequestError", "RequestTimeoutError",
    "KafkaConfigError", "RecordTooLargeError",
}  # fmt: skip


def test_all_is_exactly_the_public_names_and_sorted() -> None:
    check_exports(client, PUBLIC)
