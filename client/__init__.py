"""Store backends, durable execution and the recovering worker."""

from ._call_id import compute_args_digest, compute_function_id, validate_reconciler
from ._durable import CallCounts, DurableCall, DurableContext
from ._errors import (
    ClientError,
    DurableExecutionError,
    FunctionIdCollisionWarning,
    ReconcileLater,
    ResolvedCallError,
    StoreError,
    StoreReadError,
    StoreWriteError,
    TopicConfigError,
    UntrustedPayloadError,
    WorkerError,
)
from ._kafka_store import KafkaStore
from ._memory_store import MemoryLog, MemoryStore
from ._settings import KafkaStoreSettings
from ._sidecar_store import SidecarStore
from ._store import ActionStateStore, BadRecord, RebuildReport, StoredState
from ._worker import RecoveryFailure, RecoveryReport, UnknownActionState, UnsettledCall, Worker

__all__ = [
    "ActionStateStore",
    "BadRecord",
    "CallCounts",
    "ClientError",
    "DurableCall",
    "DurableContext",
    "DurableExecutionError",
    "FunctionIdCollisionWarning",
    "KafkaStore",
    "KafkaStoreSettings",
    "MemoryLog",
    "MemoryStore",
    "RebuildReport",
    "ReconcileLater",
    "RecoveryFailure",
    "RecoveryReport",
    "ResolvedCallError",
    "SidecarStore",
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
    "validate_reconciler",
]
