"""Terms as text: ``io_lib:format("~w", [T])`` as OTP 25 prints it."""

from __future__ import annotations

import math
import re

from beaminspect.terms.order import exact_sort_key
from beaminspect.terms.types import (Atom, BitBinary, ExportFun, ImproperList, LocalFun, Map,
                                     Pid, Port, Reference)

__all__ = ["format_term", "int_text"]

_ATOM_CACHE_MAX = 1 << 16

_RESERVED = frozenset(
    "after and andalso band begin bnot bor bsl bsr bxor case catch cond div end fun if "
    "let not of or orelse receive rem try when xor".split())
_UNQUOTED_ATOM = re.compile("[a-z\xdf-\xf6\xf8-\xff][a-zA-Z0-9_@\xc0-\xd6\xd8-\xf6\xf8-\xff]*")
_CHAR_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v", "\b": "\\b",
                 "\f": "\\f", "\x1b": "\\e", "\x7f": "\\d", "'": "\\'", "\\": "\\\\"}
_ATOM_TEXT: dict = {}


def _format_atom(a: str) -> str:
    s = _ATOM_TEXT.get(a)
    if s is not None:
        return s
    if _UNQUOTED_ATOM.fullmatch(a) and a not in _RESERVED:
        s = str(a)
    else:
        out = ["'"]
        for ch in a:
            o = ord(ch)
            e = _CHAR_ESCAPES.get(ch)
            if e is not None:
                out.append(e)
            elif 32 <= o <= 126 or 160 <= o <= 255:
                out.append(ch)
            elif o > 255:
                out.append(f"\\x{{{o:X}}}")
            else:
                out.append(f"\\{o:03o}")
        out.append("'")
        s = "".join(out)
    if len(_ATOM_TEXT) >= _ATOM_CACHE_MAX:
        _ATOM_TEXT.clear()
    _ATOM_TEXT[a] = s
    return s


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


def _format_float(f: float) -> str:
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


class _Text(str):
    """Literal output in :func:`format_term`'s work list (a plain ``str`` is not a term)."""

    __slots__ = ()


_COMMA = _Text(",")
_CLOSE_TUPLE = _Text("}")
_CLOSE_LIST = _Text("]")
_BAR = _Text("|")
_ARROW = _Text(" => ")


def format_term(term) -> str:
    """``io_lib:format("~w", [Term])`` as printed by OTP 25.

    Pids, ports and references print with node number 0 (a local term): the node table
    index a running system would show is not part of the data.
    """
    out: list = []
    work: list = [term]
    append = out.append
    while work:
        t = work.pop()
        tt = type(t)
        if tt is _Text:
            append(t)
        elif tt is Atom:
            append(_format_atom(t))
        elif tt is int:
            append(int_text(t))
        elif tt is tuple:
            if not t:
                append("{}")
                continue
            append("{")
            work.append(_CLOSE_TUPLE)
            for i in range(len(t) - 1, 0, -1):
                work.append(t[i])
                work.append(_COMMA)
            work.append(t[0])
        elif tt is list:
            if not t:
                append("[]")
                continue
            append("[")
            work.append(_CLOSE_LIST)
            for i in range(len(t) - 1, 0, -1):
                work.append(t[i])
                work.append(_COMMA)
            work.append(t[0])
        elif tt is bytes:
            append("<<" + ",".join(map(str, t)) + ">>")
        elif tt is float:
            append(_format_float(t))
        elif tt is ImproperList:
            append("[")
            work.append(_CLOSE_LIST)
            work.append(t.tail)
            work.append(_BAR)
            items = t.items
            for i in range(len(items) - 1, 0, -1):
                work.append(items[i])
                work.append(_COMMA)
            work.append(items[0])
        elif tt is Map:
            pairs = _map_display_pairs(t)
            if not pairs:
                append("#{}")
                continue
            append("#{")
            work.append(_CLOSE_TUPLE)
            for i in range(len(pairs) - 1, -1, -1):
                k, v = pairs[i]
                work.append(v)
                work.append(_ARROW)
                work.append(k)
                if i:
                    work.append(_COMMA)
        elif tt is BitBinary:
            full = ",".join(map(str, t.data[:-1]))
            last = f"{t.data[-1] >> (8 - t.bits)}:{t.bits}"
            append(f"<<{full},{last}>>" if full else f"<<{last}>>")
        elif tt is Pid:
            append(f"<0.{t.id}.{t.serial}>")
        elif tt is Port:
            append(f"#Port<0.{t.id}>")
        elif tt is Reference:
            append("#Ref<0." + ".".join(str(i) for i in reversed(t.ids)) + ">")
        elif tt is ExportFun:
            append(f"fun {_format_atom(t.module)}:{_format_atom(t.function)}/{t.arity}")
        elif tt is LocalFun:
            append(f"#Fun<{_format_atom(t.module)}.{t.old_index}.{t.old_uniq}>")
        elif isinstance(t, Atom):
            append(_format_atom(t))
        elif isinstance(t, bool):
            raise TypeError(f"not an Erlang term: {t!r} (use Atom('true'))")
        elif isinstance(t, int):
            append(int_text(int(t)))
        else:
            raise TypeError(f"not an Erlang term: {type(t).__name__}")
    return "".join(out)
