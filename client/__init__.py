"""Store backends, durable execution and the recovering worker."""

from ._call_id import compute_args_digest, compute_function_id, validate_reconciler
from ._durable import CallCounts, DurableCall, DurableContext
from ._errors import (
    CallNotPendingError,
    ClientError,
    DurableExecutionError,
    FencedError,
    FunctionIdCollisionWarning,
    KafkaConfigError,
    PartitionNotOwnedError,
    ReconcileLater,
    RecordTooLargeError,
    RequestError,
    RequestTimeoutError,
    ResolvedCallError,
    StateNotFoundError,
    StoreError,
    StoreReadError,
    StoreWriteError,
    TopicConfigError,
    UntrustedPayloadError,
    WorkerError,
)
from ._memory_store import MemoryLog, MemoryStore
from ._recovery import RecoveryFailure, RecoveryReport, UnknownActionState, UnsettledCall
from ._resolve import resolve_call
from ._sidecar_store import SidecarStore
from ._store import ActionStateStore, BadRecord, RebuildReport, StoredState
from ._worker import Worker
from .kafka._settings import KafkaStoreSettings
from .kafka._store import KafkaStore

__all__ = [
    "ActionStateStore",
    "BadRecord",
    "CallCounts",
    "CallNotPendingError",
    "ClientError",
    "DurableCall",
    "DurableContext",
    "DurableExecutionError",
    "FencedError",
    "FunctionIdCollisionWarning",
    "KafkaConfigError",
    "KafkaStore",
    "KafkaStoreSettings",
    "MemoryLog",
    "MemoryStore",
    "PartitionNotOwnedError",
    "RebuildReport",
    "ReconcileLater",
    "RecordTooLargeError",
    "RecoveryFailure",
    "RecoveryReport",
    "RequestError",
    "RequestTimeoutError",
    "ResolvedCallError",
    "SidecarStore",
    "StateNotFoundError",
    "StoreError",
    "StoreReadError",
    "StoreWriteError",
    "StoredState",
    "TopicConfigError",
    "UnknownActionState",
    "UnsettledCall",
    "UntrustedPayloadError",
    "Worker",
    "WorkerError",
    "compute_args_digest",
    "compute_function_id",
    "resolve_call",
    "validate_reconciler",
]
