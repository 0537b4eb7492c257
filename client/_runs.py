"""What the worker and recovery share about one run of an action (no cycle between them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actionstate.client._durable import DurableContext
from actionstate.serde import ActionState
from actionstate.serde._models import OUTPUT_EVENT_TYPE

__all__ = ["ActionFunc", "check_settled", "stored_output"]

ActionFunc = Callable[[Any, DurableContext], Any]


@dataclass(frozen=True)
class _Action:
    name: str
    func: ActionFunc
    is_async: bool
    uuid: str


@dataclass(frozen=True)
class _Run:
    action: _Action
    ctx: DurableContext
    data: Any
    fresh: bool
    """No state existed: the initial ``ActionState(taskEvent)`` is written first."""


@dataclass(frozen=True)
class _Done:
    output: Any


def check_settled(ctx: DurableContext) -> None:
    """Raise the context's ReconcileLater if an action caught it and returned anyway."""
    # An action that caught its ReconcileLater and returned must not be marked completed.
    if ctx.unsettled is not None:
        raise ctx.unsettled


def stored_output(state: ActionState) -> Any:
    """The output a completed state holds: its last output event's ``output``, or None."""
    for event in reversed(state.output_events):
        if event.type == OUTPUT_EVENT_TYPE and "output" in event.attributes:
            return event.attributes["output"]
    return None
