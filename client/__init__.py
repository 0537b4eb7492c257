"""Store backends, durable execution and the recovering worker."""

from ._call_id import compute_args_digest, compute_function_id, validate_reconciler
from ._durable import CallCounts, DurableCall, DurableContext
from ._errors import (
    ClientError,
    DurableExecutionError,
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
from ._store import ActionStateStore, BadRecord, RebuildReport
from ._worker import RecoveryFailure, RecoveryReport, UnknownActionState, Worker

__all__ = [
    "ActionStateStore",
    "BadRecord",
    "CallCounts",
    "ClientError",
    "DurableCall",
    "DurableContext",
    "DurableExecutionError",
    "KafkaStore",
    "KafkaStoreSettings",
    "MemoryLog",
    "MemoryStore",
    "RebuildReport",
    "RecoveryFailure",
    "RecoveryReport",
    "SidecarStore",
    "StoreError",
    "StoreReadError",
    "StoreWriteError",
    "TopicConfigError",
    "UnknownActionState",
    "UntrustedPayloadError",
    "Worker",
    "WorkerError",
    "compute_args_digest",
    "compute_function_id",
    "validate_reconciler",
]
