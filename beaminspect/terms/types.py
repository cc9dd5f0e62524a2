"""The Python types of Erlang terms, and :func:`exact_key`, the hashable form that
matches terms as ``=:=`` does (what :class:`Map` keys use)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "Atom", "ImproperList", "BitBinary", "Map", "Pid", "Port", "Reference", "ExportFun",
    "LocalFun", "exact_key",
]


class Atom(str):
    """An Erlang atom.  Compares equal to the ``str`` of its name."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Atom({str.__repr__(self)})"


@dataclass(frozen=True)
class ImproperList:
    """``[I1, ..., In | Tail]`` where ``Tail`` is not a list."""

    items: tuple
    tail: Any

    def __repr__(self) -> str:
        return f"ImproperList({self.items!r}, {self.tail!r})"


@dataclass(frozen=True)
class BitBinary:
    """A bitstring whose length is not a multiple of 8: ``bits`` (1..7) bits of the last
    byte of ``data`` are used (the high ones); the others are zero."""

    data: bytes
    bits: int

    @property
    def bit_size(self) -> int:
        return (len(self.data) - 1) * 8 + self.bits


@dataclass(frozen=True)
class Pid:
    node: Atom
    id: int
    serial: int
    creation: int


@dataclass(frozen=True)
class Port:
    node: Atom
    id: int
    creation: int


@dataclass(frozen=True)
class Reference:
    node: Atom
    creation: int
    ids: tuple


@dataclass(frozen=True)
class ExportFun:
    """``fun Module:Function/Arity``."""

    module: Atom
    function: Atom
    arity: int


@dataclass(frozen=True)
class LocalFun:
    """A fun bound to a module instance.

    From ``NEW_FUN_EXT``: ``uniq`` and ``md5`` are the 16-byte module MD5, ``index`` the
    index in the module's fun table, ``old_index``/``old_uniq`` the older identifiers
    (what ``~w`` prints).  From the old ``FUN_EXT``: ``arity`` and ``md5`` are ``None``,
    ``uniq``/``old_uniq`` are the integer Uniq and ``index``/``old_index`` the Index.
    """

    module: Atom
    arity: int | None
    uniq: bytes | int
    index: int
    old_index: int
    old_uniq: int
    pid: Pid
    free_vars: tuple
    md5: bytes | None = None


class Map:
    """An immutable Erlang map.

    Keeps its pairs in the order they were given (decode order).  Keys may be any
    term, lists included; keys are matched exactly as Erlang does (``1`` and ``1.0`` are
    different keys).  Equality ignores order; the hash depends on the keys only.
    Built from a ``dict``, a ``Map`` or an iterable of pairs (a repeated key keeps its
    first position and its last value, like ``dict``).
    """

    __slots__ = ("_pairs", "_index", "_hash")

    def __init__(self, pairs=()) -> None:
        if isinstance(pairs, Map):
            self._pairs = pairs._pairs
            self._index = pairs._index
            self._hash = pairs._hash
            return
        if isinstance(pairs, dict):
            pairs = pairs.items()
        keys: list = []
        vals: list = []
        index: dict = {}
        for k, v in pairs:
            fk = exact_key(k)
            i = index.get(fk)
            if i is None:
                index[fk] = len(keys)
                keys.append(k)
                vals.append(v)
            else:
                vals[i] = v
        self._pairs = tuple(zip(keys, vals))
        self._index = index
        self._hash = None

    @classmethod
    def from_flat(cls, flat: list) -> "Map | None":
        """From ``[k1, v1, k2, v2, ...]``; ``None`` when a key repeats."""
        self = cls.__new__(cls)
        keys = flat[0::2]
        index: dict = {}
        for i, k in enumerate(keys):
            t = type(k)
            fk = k if (t is Atom or t is int or t is bytes) else exact_key(k)
            index[fk] = i
        if len(index) != len(keys):
            return None
        self._pairs = tuple(zip(keys, flat[1::2]))
        self._index = index
        self._hash = None
        return self

    def __len__(self) -> int:
        return len(self._pairs)

    def __iter__(self):
        return (k for k, _ in self._pairs)

    def __contains__(self, key) -> bool:
        try:
            return exact_key(key) in self._index
        except TypeError:
            return False

    def __getitem__(self, key):
        return self._pairs[self._index[exact_key(key)]][1]

    def get(self, key, default=None):
        i = self._index.get(exact_key(key))
        return default if i is None else self._pairs[i][1]

    def keys(self) -> tuple:
        return tuple(k for k, _ in self._pairs)

    def values(self) -> tuple:
        return tuple(v for _, v in self._pairs)

    def items(self) -> tuple:
        return self._pairs

    def __eq__(self, other) -> bool:
        if not isinstance(other, Map):
            return NotImplemented
        if len(self._pairs) != len(other._pairs):
            return False
        opairs = other._pairs
        oindex = other._index
        for fk, i in self._index.items():
            j = oindex.get(fk)
            if j is None or not (self._pairs[i][1] == opairs[j][1]):
                return False
        return True

    def __ne__(self, other) -> bool:
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            h = self._hash = hash((Map, frozenset(self._index)))
        return h

    def __repr__(self) -> str:
        return f"Map({list(self._pairs)!r})"



# ---------------------------------------------------------------------------
# Exact, hashable canonical form (map keys)
# ---------------------------------------------------------------------------

class _Tag:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


_F_FLOAT = _Tag("float")
_F_TUPLE = _Tag("tuple")
_F_LIST = _Tag("list")
_F_IMPROPER = _Tag("improper")
_F_MAP = _Tag("map")
_F_FUN = _Tag("fun")
_F_OTHER = _Tag("other")

_SELF_FROZEN = (Atom, int, bytes, BitBinary, Pid, Port, Reference, ExportFun)


def _children(term):
    """(tag, children) of a container term, for the iterative walkers."""
    t = type(term)
    if t is tuple:
        return _F_TUPLE, term
    if t is list:
        return _F_LIST, term
    if t is ImproperList:
        return _F_IMPROPER, term.items + (term.tail,)
    if t is Map:
        flat = []
        for k, v in term._pairs:
            flat.append(k)
            flat.append(v)
        return _F_MAP, flat
    if t is LocalFun:
        return (_F_FUN, term.module, term.arity, term.uniq, term.index, term.old_index,
                term.old_uniq, term.pid, term.md5), term.free_vars
    return None, None


def exact_key(term):
    """A hashable value equal for two terms exactly when Erlang's ``=:=`` holds (1 and
    1.0 differ, lists and tuples differ).

    Containers become one flat tuple of tokens (pre-order, each container as its tag and
    size), so hashing and comparing it never recurses, however deep the term; a map is
    one token, the frozenset of its (key tokens, value tokens) pairs.
    """
    t = type(term)
    if t in _SELF_FROZEN:
        return term
    if t is float:
        return (_F_FLOAT, term)
    tokens: list = []
    work: list = [term]
    while work:
        node = work.pop()
        t = type(node)
        if t in _SELF_FROZEN:
            tokens.append(node)
        elif t is float:
            tokens.append(_F_FLOAT)
            tokens.append(node)
        elif t is Map:
            tokens.append(_F_MAP)
            tokens.append(frozenset((exact_key(k), exact_key(v)) for k, v in node._pairs))
        elif isinstance(node, _SELF_FROZEN):
            tokens.append(node)
        else:
            tag, kids = _children(node)
            if tag is None:
                tokens.append(_F_OTHER)   # a foreign value: hash it as it is
                tokens.append(node)
                continue
            tokens.append(tag)
            tokens.append(len(kids))
            for i in range(len(kids) - 1, -1, -1):
                work.append(kids[i])
    return tuple(tokens)

