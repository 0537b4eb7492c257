"""Callables of every kind for the function-id tests, in a module whose name is fixed.

The tests pin literal ids (``"tests.client._call_id_samples.charge"``), so these live here
rather than in the test module, whose ``__name__`` depends on how pytest imports it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def charge(order: int, currency: str = "EUR") -> str:
    return f"charged {order} {currency}"


def refund(order: int, currency: str = "EUR") -> str:
    return f"refunded {order} {currency}"


def greet(name: str) -> str:
    return f"hello {name}"


class Account:
    def charge(self, order: int) -> str:
        return f"account charged {order}"

    @staticmethod
    def fee(order: int) -> int:
        return order // 10

    @classmethod
    def open(cls, owner: str) -> str:
        return f"{cls.__name__} of {owner}"


class Charger:
    """A callable instance: what runs is ``Charger.__call__``."""

    def __init__(self, rate: int) -> None:
        self.rate = rate

    def __call__(self, order: int) -> int:
        return order * self.rate


class Refunder:
    def __call__(self, order: int) -> int:
        return -order


@dataclass(frozen=True)
class Fee:
    """A frozen callable: its fields cannot change, so they take part in the digest."""

    percent: int

    def __call__(self, order: int) -> int:
        return order * self.percent // 100


def unwrapped(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A decorator that forgets ``functools.wraps``: every wrapper has one qualname."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


def wrapped(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A decorator that uses ``functools.wraps``: its wrapper takes the wrapped one's name."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


@wrapped
def pack(order: int) -> str:
    return f"packed {order}"


def countdown_maker() -> Callable[[int], int]:
    """A local function whose closure holds itself."""

    def countdown(n: int) -> int:
        return countdown(n - 1) if n > 0 else 0

    return countdown


@unwrapped
def ship(order: int) -> str:
    return f"shipped {order}"


@unwrapped
def cancel(order: int) -> str:
    return f"cancelled {order}"


# Two lambdas with one qualname (``<lambda>``) doing different things, and a third one
# written like the first (same code, other line): ids that distinguish by code.
first = lambda order: charge(order, currency="USD")  # noqa: E731
second = lambda order: refund(order, currency="USD")  # noqa: E731


third = lambda order: charge(order, currency="USD")  # noqa: E731

# A set literal compiles to a frozenset constant, whose order follows the per-process hash.
member = lambda word: word in {"alpha", "beta", "gamma", "delta"}  # noqa: E731
