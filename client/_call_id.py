"""How a durable call is identified in the journal, exactly as Flink Agents' Python runtime.

A journaled call is matched by its function id (``"module.qualname"``) and the digest of its
arguments (the first 16 hex digits of sha256 over ``cloudpickle.dumps((args, kwargs))``), so
records written by Flink Agents and by this client replay each other's calls.
"""

from __future__ import annotations

import hashlib
import inspect
import pickle
from collections.abc import Callable
from typing import Any

import cloudpickle

__all__ = [
    "compute_args_digest",
    "compute_function_id",
    "is_async_callable",
    "is_plain_data",
    "validate_reconciler",
]


def compute_function_id(func: Callable[..., Any]) -> str:
    """The journal identity of ``func``: ``"module.qualname"``, as Flink Agents computes it."""
    module_obj = inspect.getmodule(func)
    module = (
        module_obj.__name__ if module_obj is not None else getattr(func, "__module__", "<unknown>")
    )
    qualname = getattr(func, "__qualname__", getattr(func, "__name__", "<unknown>"))
    return f"{module}.{qualname}"


def compute_args_digest(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """First 16 hex digits of sha256 over ``cloudpickle.dumps((args, kwargs))``, as Flink Agents.

    Arguments cloudpickle cannot serialize fall back to their ``str()``, as upstream does.
    """
    payload = (args, kwargs)
    try:
        if is_plain_data(payload):
            # cloudpickle pickles plain data with the standard C pickler, byte for byte;
            # calling that directly skips the cost of setting up its own pickler.
            serialized: bytes = pickle.dumps(payload, protocol=cloudpickle.DEFAULT_PROTOCOL)
        else:
            serialized = cloudpickle.dumps(payload)
    except Exception:
        serialized = str((args, kwargs)).encode()
    return hashlib.sha256(serialized).hexdigest()[:16]


_ATOMS = frozenset({type(None), bool, int, float, str, bytes})
_MAX_DEPTH = 8


def is_plain_data(value: object, depth: int = 0) -> bool:
    """Whether ``value`` is built only of exact builtin atoms, tuples, lists and dicts
    (not nested deeper than a few levels): what pickles the same with any pickler."""
    kind = type(value)
    if kind in _ATOMS:
        return True
    if depth >= _MAX_DEPTH:
        return False
    # Atoms are checked inline: they are most of what is walked, and a call each costs more.
    if kind is tuple or kind is list:
        for item in value:  # type: ignore[attr-defined]
            if type(item) not in _ATOMS and not is_plain_data(item, depth + 1):
                return False
        return True
    if kind is dict:
        for k, v in value.items():  # type: ignore[attr-defined]
            if type(k) not in _ATOMS and not is_plain_data(k, depth + 1):
                return False
            if type(v) not in _ATOMS and not is_plain_data(v, depth + 1):
                return False
        return True
    return False


def validate_reconciler(reconciler: object) -> Callable[[], Any] | None:
    """Return ``reconciler`` if it is ``None`` or callable with no arguments, else TypeError."""
    if reconciler is None:
        return None
    if not callable(reconciler):
        msg = (
            f"reconciler must be callable, got {type(reconciler).__name__}; "
            "pass a function of no arguments that asks whether the call happened"
        )
        raise TypeError(msg)
    try:
        inspect.signature(reconciler).bind()
    except (TypeError, ValueError) as exc:  # ValueError: no signature to check, as upstream
        msg = (
            f"reconciler must be a callable that takes no arguments, but {reconciler!r} "
            f"cannot be called without arguments ({exc}); wrap it: reconciler=lambda: check(x)"
        )
        raise TypeError(msg) from None
    return reconciler


def is_async_callable(func: object) -> bool:
    """Whether calling ``func`` gives a coroutine (async def, or an async ``__call__``)."""
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - instances with an async __call__
    )
