"""Terms as text: one atom quoter and one printer, in two styles.

* :func:`format_term`: ``io_lib:format("~w", [T])`` as OTP 25 prints it (the text a
  listing or a diff shows);
* :func:`source_text`: consult-readable Erlang source, the text :mod:`~beaminspect.terms.source`
  writes into ``.app``, ``.appup`` and ``sys.config`` files (its ``~p``-like layout is a
  layer over this flat text).

Both share :func:`atom_text` / :func:`quote_codes` and one iterative walker over the
containers, so no term is too deep to print.  The styles differ where the two outputs
do: ``~w`` prints strings as lists of integers, maps in key order, pids, ports, refs and
funs, and keeps Latin-1 text as it is; source text prints printable lists as
``"strings"``, maps in their own order, ``str``/``bool`` Python values, and escapes
everything outside ASCII (``portable``) so any release's ``erl_scan`` reads it back.
"""

from __future__ import annotations

import math
import re

from beaminspect.errors import LimitError
from beaminspect.terms.order import exact_sort_key
from beaminspect.terms.types import (Atom, BitBinary, ExportFun, ImproperList, LocalFun, Map,
                                     Pid, Port, Reference)

__all__ = [
    "format_term", "source_text", "source_scalar_text", "atom_text", "quote_codes",
    "int_text", "float_text", "source_float_text", "RESERVED_WORDS", "SOURCE_MAX_ITEMS",
]

# ---------------------------------------------------------------------------
# Atoms and quoted text
# ---------------------------------------------------------------------------

#: erl_scan:reserved_word/1 on OTP 25 (``maybe``/``else`` only with the maybe feature).
RESERVED_WORDS = frozenset((
    "after begin case try cond catch andalso orelse end fun if let of receive when "
    "bnot not div rem band and bor bxor bsl bsr or xor"
).split())
#: Reserved with the ``maybe`` feature (the default from OTP 27): quoted in portable text.
_MAYBE_WORDS = frozenset(("maybe", "else"))

# Latin-1 letters count as letters in erl_scan; portable text keeps to ASCII.
_LATIN1_ATOM = re.compile("[a-z\xdf-\xf6\xf8-\xff][a-zA-Z0-9_@\xc0-\xd6\xd8-\xf6\xf8-\xff]*")
_ASCII_ATOM = re.compile("[a-z][a-zA-Z0-9_@]*")

_ESCAPES = {10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v", 8: "\\b", 12: "\\f", 27: "\\e",
            92: "\\\\"}
_W_ESCAPES = {**_ESCAPES, 127: "\\d"}

_ATOM_CACHE_MAX = 1 << 16
_ATOM_TEXT: dict = {}            # name -> ~w text
_PORTABLE_ATOM_TEXT: dict = {}   # name -> portable text


def quote_codes(codes, quote: str, *, portable: bool = False) -> str:
    """Code points between ``quote`` characters, escaped for erl_scan.

    ``portable``: only printable ASCII is kept, anything else is ``\\x{H}``; otherwise
    (as ``~w`` on OTP 25) Latin-1 text is kept, DEL is ``\\d`` and other control
    characters are octal.
    """
    q = ord(quote)
    esc = _ESCAPES if portable else _W_ESCAPES
    out = [quote]
    append = out.append
    for c in codes:
        if c == q:
            append("\\" + quote)
            continue
        e = esc.get(c)
        if e is not None:
            append(e)
        elif 32 <= c < 127:
            append(chr(c))
        elif portable or c > 255:
            append(f"\\x{{{c:X}}}")
        elif c >= 160:
            append(chr(c))
        else:
            append(f"\\{c:03o}")
    append(quote)
    return "".join(out)


def atom_text(name: str, *, portable: bool = False) -> str:
    """An atom as Erlang text: bare when erl_scan reads it as an atom, quoted otherwise.

    ``portable``: bare only for ASCII names that no release reserves (``maybe`` and
    ``else`` are quoted); otherwise as ``~w`` prints it on OTP 25.
    """
    cache = _PORTABLE_ATOM_TEXT if portable else _ATOM_TEXT
    s = cache.get(name)
    if s is not None:
        return s
    if portable:
        bare = (_ASCII_ATOM.fullmatch(name) is not None and name not in RESERVED_WORDS
                and name not in _MAYBE_WORDS)
    else:
        bare = _LATIN1_ATOM.fullmatch(name) is not None and name not in RESERVED_WORDS
    s = str(name) if bare else quote_codes(map(ord, name), "'", portable=portable)
    if len(cache) >= _ATOM_CACHE_MAX:
        cache.clear()
    cache[name] = s
    return s


# ---------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------

def int_text(n: int) -> str:
    """Decimal text of any int (Python's str() refuses very long ints by default)."""
    if -(1 << 12000) < n < (1 << 12000):
        return str(n)
    if n < 0:
        return "-" + int_text(-n)
    # Divide and conquer on powers of ten; depth is log2(digits), so recursion is fine.
    digits = int(n.bit_length() * 0.30103) + 1
    half = digits // 2
    hi, lo = divmod(n, 10 ** half)
    return int_text(hi) + int_text(lo).zfill(half) if hi else int_text(lo)


def float_text(f: float) -> str:
    """``~w`` of a float on OTP 25: shortest round-trip digits, placed as
    io_lib_format:fwrite_g/1 places them."""
    if f == 0.0:
        return "-0.0" if math.copysign(1.0, f) < 0 else "0.0"
    sign = "-" if f < 0 else ""
    mant, _, exp = repr(abs(f)).partition("e")
    ip, _, fp = mant.partition(".")
    digits = ip + fp
    place = len(ip) + (int(exp) if exp else 0)   # value = 0.DIGITS * 10**place
    stripped = digits.lstrip("0")
    place -= len(digits) - len(stripped)
    s = stripped.rstrip("0")
    n = len(s)
    if place == 0:
        return f"{sign}0.{s}"
    if 0 < place < n:
        return f"{sign}{s[:place]}.{s[place:]}"
    exp_text = str(place - 1)
    cost = len(exp_text) + 1 + (2 if n == 1 else 1)
    if place < 0:
        if 2 - place <= cost:
            return f"{sign}0.{'0' * -place}{s}"
    elif place - n + 2 <= cost and abs(f) < 9007199254740992.0:
        return f"{sign}{s}{'0' * (place - n)}.0"
    frac = "0" if n == 1 else s[1:]
    return f"{sign}{s[0]}.{frac}e{exp_text}"


def source_float_text(x: float) -> str:
    """A float as consult-readable text (shortest round-trip digits, always with a
    fraction); NaN and infinities have no Erlang text (``ValueError``)."""
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError(f"{x!r} cannot be written as an Erlang float")
    r = repr(x)
    mantissa, _, exp = r.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return f"{mantissa}e{int(exp)}" if exp else mantissa


# ---------------------------------------------------------------------------
# The walker
# ---------------------------------------------------------------------------

class _Text(str):
    """Literal output in the walker's work list (a plain ``str`` may be a term)."""

    __slots__ = ()


_COMMA = _Text(",")
_CLOSE_TUPLE = _Text("}")
_CLOSE_LIST = _Text("]")
_BAR = _Text("|")
_ARROW = _Text(" => ")


def _write(term, scalars: dict, other, map_pairs, max_items: int | None) -> str:
    """The text of ``term``, without recursion.

    ``scalars`` maps a type to its text function (which may return ``None`` for a
    value to print as a container, a list that is not a string, say); ``other`` gives
    the text of a value of any other type that is not a container, or raises
    ``TypeError``; ``map_pairs`` gives a map's pairs in print order; more than
    ``max_items`` pending items raise :class:`~beaminspect.errors.LimitError`.
    """
    out: list = []
    append = out.append
    work: list = [term]
    pop = work.pop
    push = work.append
    while work:
        t = pop()
        tt = type(t)
        if tt is _Text:
            append(t)
            continue
        f = scalars.get(tt)
        if f is not None:
            s = f(t)
            if s is not None:
                append(s)
                continue
        if max_items is not None and len(work) > max_items:
            raise LimitError("term too large to write")
        if tt is tuple:
            if not t:
                append("{}")
                continue
            append("{")
            push(_CLOSE_TUPLE)
            for i in range(len(t) - 1, 0, -1):
                push(t[i])
                push(_COMMA)
            push(t[0])
        elif tt is list:
            if not t:
                append("[]")
                continue
            append("[")
            push(_CLOSE_LIST)
            for i in range(len(t) - 1, 0, -1):
                push(t[i])
                push(_COMMA)
            push(t[0])
        elif tt is ImproperList:
            append("[")
            push(_CLOSE_LIST)
            push(t.tail)
            push(_BAR)
            items = t.items
            for i in range(len(items) - 1, -1, -1):
                push(items[i])
                if i:
                    push(_COMMA)
        elif tt is Map:
            pairs = map_pairs(t)
            if not pairs:
                append("#{}")
                continue
            append("#{")
            push(_CLOSE_TUPLE)
            for i in range(len(pairs) - 1, -1, -1):
                k, v = pairs[i]
                push(v)
                push(_ARROW)
                push(k)
                if i:
                    push(_COMMA)
        elif isinstance(t, tuple):
            push(tuple(t))
        elif isinstance(t, list):
            push(list(t))
        else:
            append(other(t))
    return "".join(out)


# ---------------------------------------------------------------------------
# ~w
# ---------------------------------------------------------------------------

def _map_display_pairs(m: Map) -> tuple:
    """The pair order ``~w`` shows on OTP 25.

    Maps of up to 32 pairs are flatmaps, printed in map-key term order.  Larger maps
    print in the runtime's hash order, which ``term_to_binary`` writes reversed: a large
    map decoded from OTP output prints in reverse decode order, which matches.
    """
    pairs = m.items()
    if len(pairs) <= 32:
        if len(pairs) < 2:
            return pairs
        return tuple(sorted(pairs, key=lambda kv: exact_sort_key(kv[0])))
    return pairs[::-1]


def _w_bits(t: BitBinary) -> str:
    full = ",".join(map(str, t.data[:-1]))
    last = f"{t.data[-1] >> (8 - t.bits)}:{t.bits}"
    return f"<<{full},{last}>>" if full else f"<<{last}>>"


def _w_other(t) -> str:
    if isinstance(t, Atom):
        return atom_text(t)
    if isinstance(t, bool):
        raise TypeError(f"not an Erlang term: {t!r} (use Atom('true'))")
    if isinstance(t, int):
        return int_text(int(t))
    raise TypeError(f"not an Erlang term: {type(t).__name__}")


_W_SCALARS = {
    Atom: atom_text,
    int: int_text,
    bytes: lambda t: "<<" + ",".join(map(str, t)) + ">>",
    float: float_text,
    BitBinary: _w_bits,
    Pid: lambda t: f"<0.{t.id}.{t.serial}>",
    Port: lambda t: f"#Port<0.{t.id}>",
    Reference: lambda t: "#Ref<0." + ".".join(str(i) for i in reversed(t.ids)) + ">",
    ExportFun: lambda t: f"fun {atom_text(t.module)}:{atom_text(t.function)}/{t.arity}",
    LocalFun: lambda t: f"#Fun<{atom_text(t.module)}.{t.old_index}.{t.old_uniq}>",
}


def format_term(term) -> str:
    """``io_lib:format("~w", [Term])`` as printed by OTP 25.

    Pids, ports and references print with node number 0 (a local term): the node table
    index a running system would show is not part of the data.
    """
    return _write(term, _W_SCALARS, _w_other, _map_display_pairs, None)


# ---------------------------------------------------------------------------
# Source text
# ---------------------------------------------------------------------------

#: Pending items beyond which :func:`source_text` refuses a term (LimitError).
SOURCE_MAX_ITEMS = 4 * 1000 * 1000


def _printable(term: list) -> bool:
    if not term:
        return False
    for c in term:
        if type(c) is not int:
            return False
        if not (32 <= c < 127 or c in (8, 9, 10, 11, 12, 13, 27)
                or 160 <= c < 0xD800 or 0xE000 <= c <= 0xFFFD or 0x10000 <= c <= 0x10FFFF):
            return False
    return True


def _source_binary(b: bytes) -> str:
    if b and all(32 <= c < 127 for c in b):
        return "<<" + quote_codes(b, '"', portable=True) + ">>"
    return "<<" + ",".join(map(str, b)) + ">>"


def _source_bits(t: BitBinary) -> str:
    whole = [str(b) for b in t.data[:-1]]
    last = t.data[-1] >> (8 - t.bits)
    return "<<" + ",".join(whole + [f"{last}:{t.bits}"]) + ">>"


def source_scalar_text(term) -> str | None:
    """Source text of a term without children (a printable list counts as a string),
    or ``None`` for a container; ``TypeError`` for what is not a term."""
    if isinstance(term, Atom):
        return atom_text(str(term), portable=True)
    if isinstance(term, bool):
        return "true" if term else "false"
    if isinstance(term, int):
        return str(term)
    if isinstance(term, float):
        return source_float_text(term)
    if isinstance(term, str):
        return quote_codes(map(ord, term), '"', portable=True)
    if isinstance(term, (bytes, bytearray)):
        return _source_binary(bytes(term))
    if isinstance(term, BitBinary):
        return _source_bits(term)
    if isinstance(term, list) and _printable(term):
        return quote_codes(term, '"', portable=True)
    if isinstance(term, (list, tuple, ImproperList, Map)):
        return None
    raise TypeError(f"cannot write {type(term).__name__} as an Erlang term")


def _source_other(t) -> str:
    s = source_scalar_text(t)
    if s is None:   # a container subclass the walker does not know
        raise TypeError(f"cannot write {type(t).__name__} as an Erlang term")
    return s


_SOURCE_SCALARS = {
    Atom: lambda t: atom_text(str(t), portable=True),
    bool: lambda t: "true" if t else "false",
    int: str,
    float: source_float_text,
    str: lambda t: quote_codes(map(ord, t), '"', portable=True),
    bytes: _source_binary,
    bytearray: lambda t: _source_binary(bytes(t)),
    BitBinary: _source_bits,
    list: lambda t: quote_codes(t, '"', portable=True) if _printable(t) else None,
}


def source_text(term) -> str:
    """A term as one line of consult-readable text (without the final dot)."""
    return _write(term, _SOURCE_SCALARS, _source_other, Map.items, SOURCE_MAX_ITEMS)
