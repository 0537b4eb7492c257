"""The one rule for what counts as a JSON value here: what comes back from JSON exactly
as it was given (orjson would write nan as null, a datetime as a string, changing it)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["json_problem"]

_MAX_DEPTH = 512  # orjson itself refuses what nests deeper


def json_problem(value: Any, path: str = "value", depth: int = 0) -> str | None:
    """What keeps ``value`` from being a JSON value, naming where (``path`` is its name:
    ``data['x'][1]``), or None. Only ``None``, ``bool``, ``int``, finite ``float``, ``str``,
    lists/tuples of them and dicts with ``str`` keys are."""
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path} is a float JSON cannot hold (nan or inf)"
    if depth > _MAX_DEPTH:
        return None  # orjson refuses what nests this deep, with its own message
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            problem = json_problem(item, f"{path}[{i}]", depth + 1)
            if problem is not None:
                return problem
        return None
    if isinstance(value, dict):
        for k, item in value.items():
            if not isinstance(k, str):
                return f"{path} has a key of type {type(k).__name__}; JSON object keys are str"
            problem = json_problem(item, f"{path}[{k!r}]", depth + 1)
            if problem is not None:
                return problem
        return None
    return (
        f"{path} is of type {type(value).__name__}; use None, bool, int, float, str, list or dict"
    )
