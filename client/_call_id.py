"""How a durable call is identified in the journal: its function id and arguments digest.

A journaled call is matched by its function id and the digest of its arguments (the first 16
hex digits of sha256 over ``cloudpickle.dumps((args, kwargs))``). For plain functions,
methods (bound or not), static and class methods and builtins, both are exactly what Flink
Agents' Python runtime computes (``"module.qualname"``), so records written by either side
replay each other's calls. Where that rule gives one id to callables that do different
things, the id here names what they wrap (README, "Function ids"):

- ``functools.partial``: the id of its function; its bound arguments join the call's own,
  so ``partial(charge, 42)`` is journaled as ``charge(42)`` is.
- A callable instance: ``"module.Class.__call__"``; a frozen dataclass's plain fields
  (they cannot change between calls) are folded into the digest.
- A function defined inside another (``<locals>``: decorator wrappers without
  ``functools.wraps``, closures): the ids of the functions its closure holds are appended,
  ``"m.deco.<locals>.wrapper(m.charge)"``. A lambda also gets a fingerprint of its code,
  ``"m.<lambda>#1a2b3c4d"``: not its line, so editing other code leaves it alone. Captured
  values are never digested (they may be incidental: a timestamp would defeat replay).
- ``__main__`` is replaced by the name the file has when imported
  (:func:`_main_module_name`), so running a worker file as a script and importing it
  journal the same ids.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import os
import pickle
import sys
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import cloudpickle

from actionstate.client._errors import FunctionIdCollisionWarning

__all__ = [
    "CallIds",
    "compute_args_digest",
    "compute_function_id",
    "is_async_callable",
    "is_plain_data",
    "validate_reconciler",
]


def compute_function_id(func: Callable[..., Any]) -> str:
    """The journal identity of ``func``: ``"module.qualname"`` as Flink Agents computes it for
    plain functions, methods and builtins; an id naming what they wrap for partials,
    callable instances, lambdas and closures (module docstring)."""
    return _resolve(func, frozenset()).function_id


class _Target(NamedTuple):
    """What a callable resolves to: its id, and what it binds beyond the call's arguments."""

    function_id: str
    key: object
    """Two callables with one id but different keys run different code (the warning)."""
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}  # noqa: RUF012 - never mutated: replaced by _replace
    state: tuple[tuple[str, Any], ...] = ()


def _resolve(func: Any, seen: frozenset[int]) -> _Target:
    if isinstance(func, functools.partial):
        inner = _resolve(func.func, seen)
        return inner._replace(args=inner.args + func.args, kwargs={**inner.kwargs, **func.keywords})
    function = func.__func__ if isinstance(func, types.MethodType) else func
    key = _code_key(function)
    if isinstance(function, types.FunctionType) and "<" in function.__qualname__:
        # <locals>, <lambda>: a qualname its module may hold many functions under
        return _Target(_local_function_id(function, seen), key)
    if not hasattr(func, "__qualname__") and not hasattr(func, "__name__") and callable(func):
        kind = type(func)
        fid = f"{_module_name(kind)}.{kind.__qualname__}.__call__"
        return _Target(fid, key, state=_frozen_state(func))
    return _Target(_upstream_id(func), key)


def _upstream_id(func: Any) -> str:
    qualname = getattr(func, "__qualname__", getattr(func, "__name__", "<unknown>"))
    return f"{_module_name(func)}.{qualname}"


def _module_name(obj: Any) -> object:
    module = inspect.getmodule(obj)
    # Not always a str: a builtin method's __module__ is None, and upstream prints "None".
    name: object = (
        module.__name__ if module is not None else getattr(obj, "__module__", "<unknown>")
    )
    return _main_module_name() if name == "__main__" else name


def _code_key(func: Any) -> object:
    code = getattr(func, "__code__", None)
    if isinstance(code, types.CodeType):
        return _code_fingerprint(code)  # equal for equal code, wherever it was written
    if isinstance(func, type) or not callable(func):
        return func
    if inspect.isroutine(func):
        owner = getattr(func, "__self__", None)
        if owner is not None and not inspect.ismodule(owner):
            # A builtin bound to an object (``items.append``): one callable whatever the object.
            return (type(owner), getattr(func, "__name__", None))
        return func
    return _code_key(type(func).__call__)  # an instance: its class's __call__ is what runs


def _local_function_id(func: types.FunctionType, seen: frozenset[int]) -> str:
    fid = _upstream_id(func)
    if func.__code__.co_name == "<lambda>":
        fid = f"{fid}#{_code_fingerprint(func.__code__)}"
    inner = [
        _resolve(value, seen | {id(func)}).function_id
        for value in _closure_callables(func)
        if id(value) not in seen and value is not func
    ]
    return f"{fid}({','.join(inner)})" if inner else fid


def _closure_callables(func: types.FunctionType) -> list[Any]:
    found = []
    for cell in func.__closure__ or ():
        try:
            value = cell.cell_contents
        except ValueError:  # a cell whose name is not bound yet
            continue
        if inspect.isroutine(value) or isinstance(value, functools.partial):
            found.append(value)
    return found


@functools.lru_cache(maxsize=1024)
def _code_fingerprint(code: types.CodeType) -> str:
    return hashlib.sha256(repr(_code_shape(code)).encode()).hexdigest()[:8]


def _code_shape(code: types.CodeType) -> tuple[Any, ...]:
    # What the code does, without where it is: line numbers and file names are left out.
    return (
        code.co_code,
        code.co_flags,
        code.co_argcount,
        code.co_posonlyargcount,
        code.co_kwonlyargcount,
        code.co_names,
        code.co_varnames,
        code.co_freevars,
        code.co_cellvars,
        tuple(_const_shape(const) for const in code.co_consts),
    )


def _const_shape(const: object) -> object:
    if isinstance(const, types.CodeType):
        return _code_shape(const)
    if isinstance(const, frozenset):  # iteration order follows the per-process str hash
        return ("frozenset", tuple(sorted(repr(_const_shape(item)) for item in const)))
    if isinstance(const, tuple):
        return ("tuple", tuple(_const_shape(item) for item in const))
    return const


def _frozen_state(obj: object) -> tuple[tuple[str, Any], ...]:
    params = getattr(type(obj), "__dataclass_params__", None)
    if params is None or not params.frozen:
        return ()  # mutable state may change inside a call, which a replay does not run
    fields = dataclasses.fields(obj)  # type: ignore[arg-type]
    values = ((field.name, getattr(obj, field.name)) for field in fields)
    return tuple((name, value) for name, value in values if is_plain_data(value))


def _main_module_name() -> str:
    """The module name ``__main__``'s file has when imported, as its function ids use.

    ``python -m pkg.app`` gives ``pkg.app`` (its spec's name). ``python pkg/app.py`` gives the
    file's stem, prefixed by the enclosing regular packages (directories with an
    ``__init__.py``): ``pkg.app``. Without a file (``python -c``, a REPL) it stays ``__main__``.
    """
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return _importable_name(getattr(spec, "name", None), getattr(main, "__file__", None))


@functools.lru_cache(maxsize=16)
def _importable_name(spec_name: str | None, file: str | None) -> str:
    if spec_name and spec_name != "__main__":
        return spec_name
    if not file:
        return "__main__"
    path = Path(file).absolute()
    parts = [] if path.stem == "__init__" else [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts) or "__main__"


class CallIds:
    """The function ids of one action run: each call's ``(function id, args digest)``.

    Warns (:class:`FunctionIdCollisionWarning`, once per id and run) when two callables that
    run different code get one id: a replay could not tell their journaled calls apart.
    """

    __slots__ = ("_action", "_keys")

    def __init__(self, action: str) -> None:
        self._action = action
        self._keys: dict[str, object] = {}

    def identify(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        name: str | None = None,
    ) -> tuple[str, str]:
        """``(function id, args digest)`` of ``func(*args, **kwargs)``; ``name`` (if given)
        is the function id instead of the one computed from ``func``."""
        target = _resolve(func, frozenset())
        fid = target.function_id if name is None else _checked_name(name, func)
        known = self._keys.setdefault(fid, target.key)
        if known is not _WARNED and known != target.key:
            self._keys[fid] = _WARNED
            msg = (
                f"action {self._action!r}: two callables running different code share the "
                f"function id {fid!r} in one run, so a replay cannot tell their journaled "
                "calls apart; give each call its own id with name=..."
            )
            warnings.warn(msg, FunctionIdCollisionWarning, stacklevel=_caller_level())
        return fid, _call_digest(target, args, kwargs)


_WARNED = object()
_CLIENT_DIR = str(Path(__file__).parent) + os.sep


def _caller_level() -> int:
    # The warning points at the user's durable call, however deep inside the client it is made.
    level, frame = 1, inspect.currentframe()
    while frame is not None and frame.f_code.co_filename.startswith(_CLIENT_DIR):
        level, frame = level + 1, frame.f_back
    return level - 1


def _checked_name(name: object, func: Callable[..., Any]) -> str:
    if not isinstance(name, str) or not name:
        msg = f"name must be a non-empty str (the call's function id), got {name!r}"
        raise TypeError(msg)
    if _takes_name(func):
        msg = (
            f"name={name!r} is the durable call's function id and is never passed to "
            f"{compute_function_id(func)}, which has a parameter called name; bind that one "
            "with functools.partial(func, name=...) or pass it positionally"
        )
        raise TypeError(msg)
    return name


def _takes_name(func: Callable[..., Any]) -> bool:
    if isinstance(func, functools.partial) and "name" in func.keywords:
        return False  # given to func already: the call's name cannot be meant for it
    try:
        parameter = inspect.signature(func).parameters.get("name")
    except (TypeError, ValueError):  # no signature to read (some builtins)
        return False
    return parameter is not None and parameter.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )


def _call_digest(target: _Target, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    if target.args:
        args = target.args + args
    if target.kwargs:
        kwargs = {**target.kwargs, **kwargs}  # the call's own override them, as partial does
    if target.state:
        return _digest((args, kwargs, target.state))
    return compute_args_digest(args, kwargs)


def compute_args_digest(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """First 16 hex digits of sha256 over ``cloudpickle.dumps((args, kwargs))``, as Flink Agents.

    Arguments cloudpickle cannot serialize fall back to their ``str()``, as upstream does.
    """
    return _digest((args, kwargs))


def _digest(payload: tuple[Any, ...]) -> str:
    try:
        if is_plain_data(payload):
            # cloudpickle pickles plain data with the standard C pickler, byte for byte;
            # calling that directly skips the cost of setting up its own pickler.
            serialized: bytes = pickle.dumps(payload, protocol=cloudpickle.DEFAULT_PROTOCOL)
        else:
            serialized = cloudpickle.dumps(payload)
    except Exception:
        serialized = str(payload).encode()
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
