"""Erlang's term order: :func:`compare_terms` and sort keys."""

from __future__ import annotations

from functools import total_ordering

from beaminspect.terms.types import (Atom, BitBinary, ExportFun, ImproperList, LocalFun, Map,
                                     Pid, Port, Reference)

__all__ = ["compare_terms", "term_sort_key", "exact_sort_key"]


def _rank(t) -> int:
    tt = type(t)
    if tt is int or tt is float:
        return 0
    if tt is Atom:
        return 1
    if tt is Reference:
        return 2
    if tt is ExportFun or tt is LocalFun:
        return 3
    if tt is Port:
        return 4
    if tt is Pid:
        return 5
    if tt is tuple:
        return 6
    if tt is Map:
        return 7
    if tt is list or tt is ImproperList:
        return 8 if (tt is list and not t) else 9
    if tt is bytes or tt is BitBinary:
        return 10
    if isinstance(t, Atom):
        return 1
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        return 0
    raise TypeError(f"not an Erlang term: {type(t).__name__}")


def _bits_of(t):
    """(bytes, total bit length) of a binary or bitstring."""
    if type(t) is bytes:
        return t, len(t) * 8
    return t.data, (len(t.data) - 1) * 8 + t.bits


def _cmp_scalar(a, b) -> int:
    return (a > b) - (a < b)


def compare_terms(a, b, *, exact: bool = False) -> int:
    """-1, 0 or 1 as ``a`` sorts before, with, or after ``b`` in Erlang's term order.

    With ``exact``, an integer sorts before a float of the same value (the order of
    map keys); otherwise they compare equal, as ``==`` does in Erlang.
    """
    work = [(a, b)]
    while work:
        x, y = work.pop()
        rx, ry = _rank(x), _rank(y)
        if rx != ry:
            return -1 if rx < ry else 1
        if rx == 0:
            c = _cmp_scalar(x, y)
            if c == 0 and exact and type(x) is not type(y):
                c = -1 if type(x) is int else 1
            if c:
                return c
        elif rx == 1:
            c = _cmp_scalar(str(x), str(y))
            if c:
                return c
        elif rx == 6:
            if len(x) != len(y):
                return -1 if len(x) < len(y) else 1
            for i in range(len(x) - 1, -1, -1):
                work.append((x[i], y[i]))
        elif rx == 9:
            xi, xt = (x, []) if type(x) is list else (x.items, x.tail)
            yi, yt = (y, []) if type(y) is list else (y.items, y.tail)
            m = min(len(xi), len(yi))
            # After the common prefix: the rest of each side (a list, or the tail).
            xr = _rest(xi, xt, m)
            yr = _rest(yi, yt, m)
            work.append((xr, yr))
            for i in range(m - 1, -1, -1):
                work.append((xi[i], yi[i]))
        elif rx == 8:
            continue
        elif rx == 10:
            xd, xn = _bits_of(x)
            yd, yn = _bits_of(y)
            if xd != yd or xn != yn:
                c = _cmp_bits(xd, xn, yd, yn)
                if c:
                    return c
        elif rx == 7:
            if len(x) != len(y):
                return -1 if len(x) < len(y) else 1
            xs = sorted(x.items(), key=lambda kv: _ExactKey(kv[0]))
            ys = sorted(y.items(), key=lambda kv: _ExactKey(kv[0]))
            # Keys (exactly, in order) first, then the values in key order.
            for i in range(len(xs)):
                c = compare_terms(xs[i][0], ys[i][0], exact=True)
                if c:
                    return c
            for i in range(len(xs) - 1, -1, -1):
                work.append((xs[i][1], ys[i][1]))
        elif rx == 5:
            c = _cmp_tuple((str(x.node), x.serial, x.id, x.creation),
                           (str(y.node), y.serial, y.id, y.creation))
            if c:
                return c
        elif rx == 4:
            c = _cmp_tuple((str(x.node), x.id, x.creation), (str(y.node), y.id, y.creation))
            if c:
                return c
        elif rx == 2:
            c = _cmp_tuple((str(x.node), tuple(reversed(x.ids)), x.creation),
                           (str(y.node), tuple(reversed(y.ids)), y.creation))
            if c:
                return c
        elif rx == 3:
            fx, fy = type(x) is ExportFun, type(y) is ExportFun
            if fx != fy:
                return -1 if fy else 1   # local funs sort before export funs
            if fx:
                c = _cmp_tuple((str(x.module), str(x.function), x.arity),
                               (str(y.module), str(y.function), y.arity))
                if c:
                    return c
            else:
                c = _cmp_tuple((str(x.module), x.old_index, x.old_uniq),
                               (str(y.module), y.old_index, y.old_uniq))
                if c:
                    return c
                if len(x.free_vars) != len(y.free_vars):
                    return -1 if len(x.free_vars) < len(y.free_vars) else 1
                for i in range(len(x.free_vars) - 1, -1, -1):
                    work.append((x.free_vars[i], y.free_vars[i]))
    return 0


def _rest(items, tail, m):
    if m >= len(items):
        return tail
    if type(tail) is list and not tail:
        return list(items[m:])
    return ImproperList(tuple(items[m:]), tail)


def _cmp_tuple(a: tuple, b: tuple) -> int:
    return (a > b) - (a < b)


def _cmp_bits(xd: bytes, xn: int, yd: bytes, yn: int) -> int:
    """Compare two bit sequences lexicographically (a prefix sorts first)."""
    n = min(xn, yn)
    nbytes = n // 8
    c = _cmp_scalar(xd[:nbytes], yd[:nbytes])
    if c:
        return c
    rem = n - nbytes * 8
    if rem:
        mask = (0xFF << (8 - rem)) & 0xFF
        c = _cmp_scalar(xd[nbytes] & mask, yd[nbytes] & mask)
        if c:
            return c
    return _cmp_scalar(xn, yn)


@total_ordering
class _SortKey:
    __slots__ = ("term", "exact")

    def __init__(self, term, exact: bool = False) -> None:
        self.term = term
        self.exact = exact

    def __lt__(self, other) -> bool:
        return compare_terms(self.term, other.term, exact=self.exact) < 0

    def __eq__(self, other) -> bool:
        return compare_terms(self.term, other.term, exact=self.exact) == 0

    __hash__ = None  # type: ignore[assignment]


class _ExactKey(_SortKey):
    __slots__ = ()

    def __init__(self, term) -> None:
        super().__init__(term, True)


def term_sort_key(term) -> _SortKey:
    """A key for ``sorted()`` giving Erlang's term order (``lists:sort/1``)."""
    return _SortKey(term)


def exact_sort_key(term) -> _SortKey:
    """A key for ``sorted()`` giving the order of map keys: Erlang's term order, with an
    integer before a float of the same value."""
    return _ExactKey(term)
