"""Event attributes written as Jackson writes them with ``ORDER_MAP_ENTRIES_BY_KEYS``.

Flink Agents names an event by the UUID of these bytes (DESIGN §4), so they must match
Jackson's output byte for byte: compact, map keys sorted by Java's ``String.compareTo``
(UTF-16 code units) at every depth, BMP characters written raw as UTF-8, control
characters, lone surrogates and characters beyond the BMP (as their surrogate pair)
escaped as ``\\uXXXX`` with upper-case hex (Jackson 2.18's UTF-8 generator), and doubles
in Java's ``Double.toString`` form. The tests check all of it against a real JVM.

Known limit: for doubles this follows JDK 19+ (shortest digits that round-trip, at least
two significant digits). JDK 17's ``Double.toString`` prints more digits than needed for
a few values (for example 2.0E-3 is fine, but 1.0E23 is written ``1.0E23`` on both while
some values such as 2^-44 or 9.8E-322 may differ); those rare values get a different
event UUID than on an older JVM.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from enum import Enum
from typing import Any
from uuid import UUID

from ._errors import SerdeError

__all__ = ["jackson_sorted_json", "java_double_to_string"]

_ESCAPES = {i: f"\\u{i:04X}" for i in range(0x20)}
_ESCAPES.update(
    {
        ord('"'): '\\"',
        ord("\\"): "\\\\",
        0x08: "\\b",
        0x09: "\\t",
        0x0A: "\\n",
        0x0C: "\\f",
        0x0D: "\\r",
    }
)
_MIN_NORMAL = 2.2250738585072014e-308


_NEEDS_ESCAPE = re.compile("[\ud800-\udfff\U00010000-\U0010ffff]")


def _escape_wide(m: re.Match[str]) -> str:
    cp = ord(m.group())
    if cp < 0x10000:  # a lone surrogate
        return f"\\u{cp:04X}"
    cp -= 0x10000
    return f"\\u{0xD800 | (cp >> 10):04X}\\u{0xDC00 | (cp & 0x3FF):04X}"


def _quote(s: str) -> str:
    s = s.translate(_ESCAPES)
    if not s.isascii():
        s = _NEEDS_ESCAPE.sub(_escape_wide, s)
    return '"' + s + '"'


def _utf16_key(s: str) -> bytes:
    # Big-endian UTF-16 bytes order like a sequence of unsigned 16-bit code units,
    # which is exactly Java's String.compareTo.
    return s.encode("utf-16-be", "surrogatepass")


def _digits(x: float) -> tuple[str, int]:
    """Shortest round-trip significant digits of ``x`` > 0 and the decimal exponent
    ``e`` with ``x == 0.DIGITS * 10**e``."""
    mantissa, _, exp = repr(x).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    stripped = digits.lstrip("0")
    point = len(whole) + (int(exp) if exp else 0) - (len(digits) - len(stripped))
    stripped = stripped.rstrip("0")
    if len(stripped) == 1 and x < _MIN_NORMAL:
        # Java prints at least two significant digits and picks the closest two-digit
        # decimal; only subnormals can make that differ from "d.0" (4.9E-324, not 5.0E-324).
        m, _, e = f"{x:.1e}".partition("e")
        stripped = m.replace(".", "").rstrip("0")
        point = int(e) + 1
    return stripped, point


def java_double_to_string(x: float) -> str:
    """``Double.toString(x)`` of a finite double: plain notation in [1e-3, 1e7), else
    computerized scientific notation like ``1.0E7`` or ``4.9E-324``."""
    if x == 0.0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    sign = "-" if x < 0 else ""
    ax = -x if x < 0 else x
    digits, point = _digits(ax)
    if 1e-3 <= ax < 1e7:
        if point <= 0:
            return f"{sign}0.{'0' * -point}{digits}"
        if point >= len(digits):
            return f"{sign}{digits}{'0' * (point - len(digits))}.0"
        return f"{sign}{digits[:point]}.{digits[point:]}"
    frac = digits[1:] or "0"
    return f"{sign}{digits[0]}.{frac}E{point - 1}"


def _write(v: Any, out: list[str], path: str) -> None:
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, str):
        out.append(_quote(v))
    elif isinstance(v, Enum):
        _write(v.value, out, path)
    elif isinstance(v, int):
        out.append(str(int.__index__(v)))
    elif isinstance(v, float):
        if not math.isfinite(v):
            raise SerdeError(f"{v!r} is not a JSON number", path=path)
        out.append(java_double_to_string(v))
    elif isinstance(v, Mapping):
        items = []
        for k in v:
            if not isinstance(k, str):
                raise SerdeError(f"map key {k!r} is not a string", path=path)
            items.append(k)
        items.sort(key=_utf16_key)
        out.append("{")
        for i, k in enumerate(items):
            if i:
                out.append(",")
            out.append(_quote(k) + ":")
            _write(v[k], out, f"{path}.{k}")
        out.append("}")
    elif isinstance(v, list | tuple):
        out.append("[")
        for i, item in enumerate(v):
            if i:
                out.append(",")
            _write(item, out, f"{path}[{i}]")
        out.append("]")
    elif isinstance(v, UUID):
        out.append(f'"{v}"')
    else:
        raise SerdeError(f"{type(v).__name__} is not a JSON value", path=path)


def jackson_sorted_json(attributes: Mapping[str, Any]) -> bytes:
    """The UTF-8 bytes Jackson writes for ``attributes`` with map entries ordered by key;
    raises :class:`SerdeError` for anything that is not a JSON value."""
    out: list[str] = []
    _write(attributes, out, "attributes")
    return "".join(out).encode("utf-8")
