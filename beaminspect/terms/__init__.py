"""Erlang external term format (ETF): a bounds-checked decoder, printing and ordering.

Reading
=======
:func:`decode` reads a whole ``term_to_binary`` result (version byte 131, optionally the
compressed form ``131, 80, u32 size, zlib``); :func:`decode_at` reads one term body (no
version byte) at a position, for callers that walk tables of terms.  Every problem in
the input raises a :class:`~beaminspect.errors.BeamError` subclass carrying the chunk
and the offset (``base_offset`` + the position in the data): ``TruncatedError`` when
bytes are missing, ``FormatError`` for invalid values, ``LimitError`` for nesting deeper
than ``max_depth`` or a compressed size above ``max_size``, ``UnsupportedError`` for
``LOCAL_EXT``.  The decoder is iterative (no Python recursion) and checks every length
and count against the bytes left before allocating anything.  For inputs above 256 KiB
the cyclic garbage collector is paused while decoding (it would otherwise rescan the
many new, acyclic containers over and over).

Python types
============
==========================  ===========================================================
Erlang                      Python
==========================  ===========================================================
atom                        :class:`Atom` (a ``str`` subclass; ``true`` is ``Atom("true")``)
integer                     ``int``
float                       ``float``
tuple                       ``tuple``
proper list, string, ``[]`` ``list`` (a string is a list of ints, as in Erlang)
improper list               :class:`ImproperList` (``items`` tuple, non-list ``tail``)
binary                      ``bytes``
bitstring                   :class:`BitBinary` (``bits`` used in the last byte, 1..7)
map                         :class:`Map` (immutable, keeps decode order)
pid, port, reference        :class:`Pid`, :class:`Port`, :class:`Reference`
``fun M:F/A``               :class:`ExportFun`
local fun                   :class:`LocalFun`
==========================  ===========================================================

A list whose tail is itself a list is flattened (``[1|[2]]`` is ``[1, 2]``); a
bitstring with 8 bits in its last byte is a binary; unused bits of a bitstring's last
byte are cleared.

JSON mapping (:func:`to_json`)
==============================
One JSON value per term, lossless, with a single tag key for everything that is not a
list, an atom or a number:

- integer -> JSON number when ``-(2**53 - 1) <= n <= 2**53 - 1``, else
  ``{"int": "<decimal digits>"}``
- float -> JSON number (always finite)
- atom -> JSON string (``true``/``false``/``undefined`` stay strings)
- list -> JSON array (a string is an array of numbers)
- improper list -> ``{"improper_list": [items...], "tail": <tail>}``
- tuple -> ``{"tuple": [elements...]}``
- map -> ``{"map": [[key, value], ...]}`` in decode order
- binary -> ``{"binary": "<text>", "encoding": "utf8"}`` when the bytes are valid UTF-8,
  else ``{"binary": "<base64>", "encoding": "base64"}``
- bitstring -> ``{"bitstring": "<base64 of the bytes>", "bits": <bits in last byte>}``
- pid -> ``{"pid": {"node": "<atom>", "id": n, "serial": n, "creation": n}}``
- port -> ``{"port": {"node": "<atom>", "id": n, "creation": n}}``
- reference -> ``{"reference": {"node": "<atom>", "creation": n, "ids": [n, ...]}}``
- ``fun M:F/A`` -> ``{"fun": {"module": "<atom>", "function": "<atom>", "arity": n}}``
- local fun -> ``{"fun": {"module": ..., "arity": n|null, "index": n, "uniq": "<hex>"|n,
  "old_index": n, "old_uniq": n, "md5": "<hex>"|null, "pid": {pid object},
  "free_vars": [terms...]}}`` (told apart from an export fun by the absent ``"function"``)

Text and order
==============
:func:`format_term` prints a term as ``io_lib:format("~w", [T])`` does on OTP 25: atoms
quoted and escaped as ``~w`` does, floats in the shortest form that reads back, strings
as lists of integers, maps of up to 32 pairs in map-key order and larger maps in reverse
decode order (``term_to_binary`` writes a large map's hash order reversed), pids, ports
and references with node number 0 (the node table index is not in the data).
:func:`term_sort_key` (and :func:`compare_terms`) give Erlang's term order: number <
atom < reference < fun < port < pid < tuple < map < nil < list < bitstring.
"""

from __future__ import annotations

import base64
import gc
import math
import re
import struct
import zlib
from dataclasses import dataclass
from functools import total_ordering
from typing import Any

from beaminspect.errors import FormatError, LimitError, TruncatedError, UnsupportedError

__all__ = [
    "Atom", "ImproperList", "BitBinary", "Map", "Pid", "Port", "Reference", "ExportFun",
    "LocalFun", "decode", "decode_at", "format_term", "to_json", "term_sort_key",
    "compare_terms", "exact_key", "VERSION_MAGIC", "DEFAULT_MAX_DEPTH", "DEFAULT_MAX_SIZE",
]

VERSION_MAGIC = 131
DEFAULT_MAX_DEPTH = 10_000
DEFAULT_MAX_SIZE = 64 * 2**20

# Tags (erts/doc "External Term Format").
COMPRESSED = 80
NEW_FLOAT_EXT = 70
BIT_BINARY_EXT = 77
ATOM_CACHE_REF = 82
NEW_PID_EXT = 88
NEW_PORT_EXT = 89
NEWER_REFERENCE_EXT = 90
SMALL_INTEGER_EXT = 97
INTEGER_EXT = 98
FLOAT_EXT = 99
ATOM_EXT = 100
REFERENCE_EXT = 101
PORT_EXT = 102
PID_EXT = 103
SMALL_TUPLE_EXT = 104
LARGE_TUPLE_EXT = 105
NIL_EXT = 106
STRING_EXT = 107
LIST_EXT = 108
BINARY_EXT = 109
SMALL_BIG_EXT = 110
LARGE_BIG_EXT = 111
NEW_FUN_EXT = 112
EXPORT_EXT = 113
NEW_REFERENCE_EXT = 114
SMALL_ATOM_EXT = 115
MAP_EXT = 116
FUN_EXT = 117
ATOM_UTF8_EXT = 118
SMALL_ATOM_UTF8_EXT = 119
V4_PORT_EXT = 120
LOCAL_EXT = 121

MAX_ATOM_CHARACTERS = 255

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_U64 = struct.Struct(">Q")
_F64 = struct.Struct(">d")


# ---------------------------------------------------------------------------
# Term types
# ---------------------------------------------------------------------------

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
            fk = _freeze(k)
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
    def _from_flat(cls, flat: list) -> "Map | None":
        """From ``[k1, v1, k2, v2, ...]``; ``None`` when a key repeats."""
        self = cls.__new__(cls)
        keys = flat[0::2]
        index: dict = {}
        for i, k in enumerate(keys):
            t = type(k)
            fk = k if (t is Atom or t is int or t is bytes) else _freeze(k)
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
            return _freeze(key) in self._index
        except TypeError:
            return False

    def __getitem__(self, key):
        return self._pairs[self._index[_freeze(key)]][1]

    def get(self, key, default=None):
        i = self._index.get(_freeze(key))
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


def _freeze(term):
    """A hashable value equal for two terms exactly when Erlang's ``=:=`` holds.

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
            tokens.append(frozenset((_freeze(k), _freeze(v)) for k, v in node._pairs))
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


#: A hashable key equal for two terms exactly when ``=:=`` holds (1 and 1.0 differ,
#: lists and tuples differ); it never recurses, however deep the term.
exact_key = _freeze


# ---------------------------------------------------------------------------
# Decoder
# ---------------------------------------------------------------------------

_LATIN1_ATOMS: dict = {}   # raw bytes -> Atom, for ATOM_EXT / SMALL_ATOM_EXT
_UTF8_ATOMS: dict = {}     # raw bytes -> Atom, for the UTF-8 forms
_ATOM_CACHE_MAX = 1 << 16
_FLOAT_TEXT = re.compile(rb" *[+-]?[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?")

_K_TUPLE = 0
_K_LIST = 1
_K_MAP = 2
_K_FUN = 3


def decode(data, *, file: str | None = None, chunk: str | None = None, base_offset: int = 0,
           max_depth: int = DEFAULT_MAX_DEPTH, max_size: int = DEFAULT_MAX_SIZE):
    """Decode a complete external term (``term_to_binary`` output) from ``data``.

    ``data`` must start with the version byte 131 and hold exactly one term.
    """
    n = len(data)
    if n < 1:
        raise TruncatedError("external term: no data", file=file, chunk=chunk,
                             offset=base_offset)
    if data[0] != VERSION_MAGIC:
        raise FormatError(f"external term: version byte is {data[0]}, expected 131",
                          file=file, chunk=chunk, offset=base_offset)
    if type(data) is not bytes:
        data = bytes(data)
    if n >= 2 and data[1] == COMPRESSED:
        return _decode_compressed(data, file, chunk, base_offset, max_depth, max_size)
    term, end = _decode_large(data, 1, n, max_depth, file, chunk, base_offset)
    if end != n:
        raise FormatError(f"external term: {n - end} bytes after the term", file=file,
                          chunk=chunk, offset=base_offset + end)
    return term


def decode_at(buf, pos: int = 0, *, file: str | None = None, chunk: str | None = None,
              base_offset: int = 0, max_depth: int = DEFAULT_MAX_DEPTH,
              end: int | None = None):
    """Decode one term body (no version byte) at ``buf[pos]``; return ``(term, end_pos)``.

    ``end`` bounds the read (default: the end of ``buf``).  Offsets in errors are
    ``base_offset`` + positions in ``buf``.  ``bytes`` are read in place; any other
    buffer (``memoryview``, ``bytearray``) has ``buf[pos:end]`` copied first, so pass
    ``end`` (or bytes) when walking a large buffer term by term.
    """
    stop = len(buf) if end is None else min(end, len(buf))
    if pos < 0 or pos > stop:
        raise TruncatedError(f"external term: position {pos} outside the data", file=file,
                             chunk=chunk, offset=base_offset + pos)
    if type(buf) is not bytes:
        term, used = _decode_large(bytes(buf[pos:stop]), 0, stop - pos, max_depth, file,
                                   chunk, base_offset + pos)
        return term, pos + used
    return _decode_large(buf, pos, stop, max_depth, file, chunk, base_offset)


_GC_PAUSE_BYTES = 256 * 1024


def _decode_large(buf, pos, end, max_depth, file, chunk, base):
    """:func:`_decode_body`, with the cyclic garbage collector paused for big inputs.

    Decoding builds only acyclic containers, yet their sheer number makes the collector
    run over and over (about a third of the time on a few MB of debug info).
    """
    if end - pos < _GC_PAUSE_BYTES or not gc.isenabled():
        return _decode_body(buf, pos, end, max_depth, file, chunk, base)
    gc.disable()
    try:
        return _decode_body(buf, pos, end, max_depth, file, chunk, base)
    finally:
        gc.enable()


def _decode_compressed(data, file, chunk, base, max_depth, max_size):
    n = len(data)
    if n < 6:
        raise TruncatedError("compressed term: size field needs 4 bytes", file=file,
                             chunk=chunk, offset=base + 2)
    size = _U32.unpack_from(data, 2)[0]
    if size > max_size:
        raise LimitError(f"compressed term: uncompressed size {size} exceeds the limit "
                         f"{max_size}", file=file, chunk=chunk, offset=base + 2)
    if size == 0:
        raise FormatError("compressed term: uncompressed size is 0", file=file, chunk=chunk,
                          offset=base + 2)
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(data[6:], size)
    except zlib.error as exc:
        raise FormatError(f"compressed term: invalid zlib data ({exc})", file=file,
                          chunk=chunk, offset=base + 6) from None
    if len(raw) < size or not inflater.eof:
        if len(raw) == size and inflater.unconsumed_tail:
            raise FormatError(f"compressed term: inflates to more than the declared {size}"
                              " bytes", file=file, chunk=chunk, offset=base + 6)
        raise TruncatedError(f"compressed term: inflates to {len(raw)} bytes, declared "
                             f"{size} (stream incomplete)", file=file, chunk=chunk,
                             offset=base + 6)
    if inflater.unused_data:
        raise FormatError(f"compressed term: {len(inflater.unused_data)} bytes after the "
                          "zlib stream", file=file, chunk=chunk, offset=base + n
                          - len(inflater.unused_data))
    try:
        term, end = _decode_large(raw, 0, size, max_depth, file, chunk, 0)
    except (TruncatedError, FormatError, LimitError, UnsupportedError) as exc:
        exc.reason = f"{exc.reason} (at offset {exc.offset} of the inflated data)"
        exc.args = (exc.reason,)
        exc.offset = base + 6
        raise
    if end != size:
        raise FormatError(f"compressed term: {size - end} bytes after the term in the "
                          "inflated data", file=file, chunk=chunk, offset=base + 6)
    return term


def _truncated(what, need, have, pos, file, chunk, base):
    return TruncatedError(f"{what} needs {need} bytes, {max(have, 0)} left", file=file,
                          chunk=chunk, offset=base + pos)


def _new_atom(raw: bytes, utf8: bool, pos, file, chunk, base) -> Atom:
    """Make (and cache) the atom whose text is ``raw``; ``pos`` is its tag's offset."""
    if utf8:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(f"atom: invalid UTF-8 ({exc.reason} at byte {exc.start})",
                              file=file, chunk=chunk, offset=base + pos) from None
    else:
        text = raw.decode("latin-1")
    if len(text) > MAX_ATOM_CHARACTERS:
        raise FormatError(f"atom: {len(text)} characters, the limit is "
                          f"{MAX_ATOM_CHARACTERS}", file=file, chunk=chunk, offset=base + pos)
    a = Atom(text)
    cache = _UTF8_ATOMS if utf8 else _LATIN1_ATOMS
    if len(cache) >= _ATOM_CACHE_MAX:
        cache.clear()
    cache[raw] = a
    return a


def _read_atom(buf, pos, end, file, chunk, base):
    """An atom in a fixed position (node names, fun modules): ``(atom, new_pos)``."""
    if pos >= end:
        raise _truncated("atom", 1, 0, pos, file, chunk, base)
    tag = buf[pos]
    if tag == ATOM_EXT or tag == ATOM_UTF8_EXT:
        if pos + 3 > end:
            raise _truncated("atom length", 2, end - pos - 1, pos + 1, file, chunk, base)
        n = _U16.unpack_from(buf, pos + 1)[0]
        start = pos + 3
    elif tag == SMALL_ATOM_EXT or tag == SMALL_ATOM_UTF8_EXT:
        if pos + 2 > end:
            raise _truncated("atom length", 1, 0, pos + 1, file, chunk, base)
        n = buf[pos + 1]
        start = pos + 2
    elif tag == ATOM_CACHE_REF:
        raise FormatError("ATOM_CACHE_REF is only valid in the distribution protocol",
                          file=file, chunk=chunk, offset=base + pos)
    else:
        raise FormatError(f"expected an atom, found tag {tag}", file=file, chunk=chunk,
                          offset=base + pos)
    if start + n > end:
        raise _truncated("atom", n, end - start, start, file, chunk, base)
    utf8 = tag == ATOM_UTF8_EXT or tag == SMALL_ATOM_UTF8_EXT
    raw = buf[start:start + n]
    a = (_UTF8_ATOMS if utf8 else _LATIN1_ATOMS).get(raw)
    if a is None:
        a = _new_atom(raw, utf8, pos, file, chunk, base)
    return a, start + n


def _read_int(buf, pos, end, file, chunk, base):
    """A small integer in a fixed position (fun index/uniq, export arity)."""
    if pos >= end:
        raise _truncated("integer", 1, 0, pos, file, chunk, base)
    tag = buf[pos]
    if tag == SMALL_INTEGER_EXT:
        if pos + 2 > end:
            raise _truncated("integer", 1, 0, pos + 1, file, chunk, base)
        return buf[pos + 1], pos + 2
    if tag == INTEGER_EXT:
        if pos + 5 > end:
            raise _truncated("integer", 4, end - pos - 1, pos + 1, file, chunk, base)
        return _I32.unpack_from(buf, pos + 1)[0], pos + 5
    raise FormatError(f"expected an integer, found tag {tag}", file=file, chunk=chunk,
                      offset=base + pos)


def _read_pid(buf, pos, end, file, chunk, base):
    if pos >= end:
        raise _truncated("pid", 1, 0, pos, file, chunk, base)
    tag = buf[pos]
    if tag != PID_EXT and tag != NEW_PID_EXT:
        raise FormatError(f"expected a pid, found tag {tag}", file=file, chunk=chunk,
                          offset=base + pos)
    node, p = _read_atom(buf, pos + 1, end, file, chunk, base)
    if tag == PID_EXT:
        if p + 9 > end:
            raise _truncated("PID_EXT", 9, end - p, p, file, chunk, base)
        i, s = struct.unpack_from(">II", buf, p)
        return Pid(node, i, s, buf[p + 8]), p + 9
    if p + 12 > end:
        raise _truncated("NEW_PID_EXT", 12, end - p, p, file, chunk, base)
    i, s, c = struct.unpack_from(">III", buf, p)
    return Pid(node, i, s, c), p + 12


def _decode_body(buf, pos, end, max_depth, file, chunk, base):
    """The iterative decoder over ``bytes``: returns ``(term, position after it)``.

    The innermost open container is kept in locals (``kind``, ``items``, ``left``,
    ``extra``); the outer ones are on ``stack``, whose bottom entry is the top level
    (``items is None``), so ``len(stack)`` is the nesting depth.
    """
    stack: list = []
    kind = -1
    items = None
    left = 0
    extra = None
    u16 = _U16.unpack_from
    u32 = _U32.unpack_from
    i32 = _I32.unpack_from
    latin1_atoms = _LATIN1_ATOMS
    utf8_atoms = _UTF8_ATOMS
    while True:
        if pos >= end:
            raise _truncated("term tag", 1, 0, pos, file, chunk, base)
        tag = buf[pos]
        pos += 1
        if tag == SMALL_INTEGER_EXT:
            if pos >= end:
                raise _truncated("SMALL_INTEGER_EXT", 1, 0, pos, file, chunk, base)
            val = buf[pos]
            pos += 1
        elif tag == SMALL_TUPLE_EXT:
            if pos >= end:
                raise _truncated("SMALL_TUPLE_EXT arity", 1, 0, pos, file, chunk, base)
            n = buf[pos]
            pos += 1
            if n:
                if n > end - pos:
                    raise _truncated(f"tuple of {n} elements", n, end - pos, pos, file,
                                     chunk, base)
                if len(stack) >= max_depth:
                    raise _too_deep(max_depth, pos - 2, file, chunk, base)
                stack.append((kind, items, left, extra))
                kind = _K_TUPLE
                items = []
                left = n
                continue
            val = ()
        elif tag == ATOM_EXT:
            if pos + 2 > end:
                raise _truncated("atom length", 2, end - pos, pos, file, chunk, base)
            n = u16(buf, pos)[0]
            pos += 2
            if pos + n > end:
                raise _truncated("atom", n, end - pos, pos, file, chunk, base)
            raw = buf[pos:pos + n]
            val = latin1_atoms.get(raw)
            if val is None:
                val = _new_atom(raw, False, pos - 3, file, chunk, base)
            pos += n
        elif tag == LIST_EXT:
            if pos + 4 > end:
                raise _truncated("list length", 4, end - pos, pos, file, chunk, base)
            n = u32(buf, pos)[0]
            pos += 4
            if n + 1 > end - pos:
                raise _truncated(f"list of {n} elements", n + 1, end - pos, pos, file, chunk,
                                 base)
            if len(stack) >= max_depth:
                raise _too_deep(max_depth, pos - 5, file, chunk, base)
            stack.append((kind, items, left, extra))
            kind = _K_LIST
            items = []
            left = n + 1
            continue
        elif tag == NIL_EXT:
            val = []
        elif tag == INTEGER_EXT:
            if pos + 4 > end:
                raise _truncated("INTEGER_EXT", 4, end - pos, pos, file, chunk, base)
            val = i32(buf, pos)[0]
            pos += 4
        elif tag == SMALL_ATOM_UTF8_EXT or tag == SMALL_ATOM_EXT:
            if pos >= end:
                raise _truncated("atom length", 1, 0, pos, file, chunk, base)
            n = buf[pos]
            pos += 1
            if pos + n > end:
                raise _truncated("atom", n, end - pos, pos, file, chunk, base)
            raw = buf[pos:pos + n]
            utf8 = tag == SMALL_ATOM_UTF8_EXT
            val = (utf8_atoms if utf8 else latin1_atoms).get(raw)
            if val is None:
                val = _new_atom(raw, utf8, pos - 2, file, chunk, base)
            pos += n
        elif tag == STRING_EXT:
            if pos + 2 > end:
                raise _truncated("string length", 2, end - pos, pos, file, chunk, base)
            n = u16(buf, pos)[0]
            pos += 2
            if pos + n > end:
                raise _truncated("string", n, end - pos, pos, file, chunk, base)
            val = list(buf[pos:pos + n])
            pos += n
        elif tag == ATOM_UTF8_EXT:
            if pos + 2 > end:
                raise _truncated("atom length", 2, end - pos, pos, file, chunk, base)
            n = u16(buf, pos)[0]
            pos += 2
            if pos + n > end:
                raise _truncated("atom", n, end - pos, pos, file, chunk, base)
            raw = buf[pos:pos + n]
            val = utf8_atoms.get(raw)
            if val is None:
                val = _new_atom(raw, True, pos - 3, file, chunk, base)
            pos += n
        elif tag == BINARY_EXT:
            if pos + 4 > end:
                raise _truncated("binary length", 4, end - pos, pos, file, chunk, base)
            n = u32(buf, pos)[0]
            pos += 4
            if pos + n > end:
                raise _truncated("binary", n, end - pos, pos, file, chunk, base)
            val = buf[pos:pos + n]
            pos += n
        elif tag == MAP_EXT:
            if pos + 4 > end:
                raise _truncated("map arity", 4, end - pos, pos, file, chunk, base)
            n = u32(buf, pos)[0]
            pos += 4
            if n:
                if 2 * n > end - pos:
                    raise _truncated(f"map of {n} pairs", 2 * n, end - pos, pos, file,
                                     chunk, base)
                if len(stack) >= max_depth:
                    raise _too_deep(max_depth, pos - 5, file, chunk, base)
                stack.append((kind, items, left, extra))
                kind = _K_MAP
                items = []
                left = 2 * n
                extra = pos - 5
                continue
            val = Map._from_flat([])
        elif tag == NEW_FLOAT_EXT:
            if pos + 8 > end:
                raise _truncated("NEW_FLOAT_EXT", 8, end - pos, pos, file, chunk, base)
            val = _F64.unpack_from(buf, pos)[0]
            if not math.isfinite(val):
                raise FormatError("float is not finite", file=file, chunk=chunk,
                                  offset=base + pos - 1)
            pos += 8
        elif tag == SMALL_BIG_EXT or tag == LARGE_BIG_EXT:
            if tag == SMALL_BIG_EXT:
                if pos + 2 > end:
                    raise _truncated("SMALL_BIG_EXT header", 2, end - pos, pos, file, chunk,
                                     base)
                n = buf[pos]
                pos += 1
            else:
                if pos + 5 > end:
                    raise _truncated("LARGE_BIG_EXT header", 5, end - pos, pos, file, chunk,
                                     base)
                n = u32(buf, pos)[0]
                pos += 4
            sign = buf[pos]
            pos += 1
            if sign > 1:
                raise FormatError(f"bignum sign byte is {sign}", file=file, chunk=chunk,
                                  offset=base + pos - 1)
            if pos + n > end:
                raise _truncated("bignum digits", n, end - pos, pos, file, chunk, base)
            val = int.from_bytes(buf[pos:pos + n], "little")
            if sign:
                val = -val
            pos += n
        elif tag == LARGE_TUPLE_EXT:
            if pos + 4 > end:
                raise _truncated("LARGE_TUPLE_EXT arity", 4, end - pos, pos, file, chunk,
                                 base)
            n = u32(buf, pos)[0]
            pos += 4
            if n:
                if n > end - pos:
                    raise _truncated(f"tuple of {n} elements", n, end - pos, pos, file,
                                     chunk, base)
                if len(stack) >= max_depth:
                    raise _too_deep(max_depth, pos - 5, file, chunk, base)
                stack.append((kind, items, left, extra))
                kind = _K_TUPLE
                items = []
                left = n
                continue
            val = ()
        elif tag == BIT_BINARY_EXT:
            if pos + 5 > end:
                raise _truncated("BIT_BINARY_EXT header", 5, end - pos, pos, file, chunk,
                                 base)
            n = u32(buf, pos)[0]
            bits = buf[pos + 4]
            pos += 5
            if bits < 1 or bits > 8 or (n == 0 and bits != 8):
                raise FormatError(f"bitstring: {bits} bits in the last of {n} bytes",
                                  file=file, chunk=chunk, offset=base + pos - 1)
            if pos + n > end:
                raise _truncated("bitstring", n, end - pos, pos, file, chunk, base)
            data = buf[pos:pos + n]
            pos += n
            if bits == 8:
                val = data
            else:
                last = data[-1] & ((0xFF << (8 - bits)) & 0xFF)
                if last != data[-1]:
                    data = data[:-1] + bytes((last,))
                val = BitBinary(data, bits)
        elif tag == FLOAT_EXT:
            if pos + 31 > end:
                raise _truncated("FLOAT_EXT", 31, end - pos, pos, file, chunk, base)
            text = buf[pos:pos + 31].split(b"\0", 1)[0]
            if not _FLOAT_TEXT.fullmatch(text):
                raise FormatError(f"FLOAT_EXT: not a float: {text[:40]!r}", file=file,
                                  chunk=chunk, offset=base + pos)
            val = float(text)
            if not math.isfinite(val):
                raise FormatError("float is not finite", file=file, chunk=chunk,
                                  offset=base + pos)
            pos += 31
        elif tag == EXPORT_EXT:
            mod, pos = _read_atom(buf, pos, end, file, chunk, base)
            fun, pos = _read_atom(buf, pos, end, file, chunk, base)
            if pos + 2 > end:
                raise _truncated("EXPORT_EXT arity", 2, end - pos, pos, file, chunk, base)
            if buf[pos] != SMALL_INTEGER_EXT:
                raise FormatError(f"EXPORT_EXT arity: expected SMALL_INTEGER_EXT, found tag "
                                  f"{buf[pos]}", file=file, chunk=chunk, offset=base + pos)
            val = ExportFun(mod, fun, buf[pos + 1])
            pos += 2
        elif tag == NEW_FUN_EXT or tag == FUN_EXT:
            start = pos - 1
            if tag == NEW_FUN_EXT:
                if pos + 29 > end:
                    raise _truncated("NEW_FUN_EXT header", 29, end - pos, pos, file, chunk,
                                     base)
                size = u32(buf, pos)[0]
                arity = buf[pos + 4]
                uniq = buf[pos + 5:pos + 21]
                index, nfree = struct.unpack_from(">II", buf, pos + 21)
                if size < 29 or pos + size > end:
                    raise _truncated(f"NEW_FUN_EXT of {size} bytes", size, end - pos, pos,
                                     file, chunk, base)
                fun_end = pos + size
                pos += 29
                mod, pos = _read_atom(buf, pos, end, file, chunk, base)
                old_index, pos = _read_int(buf, pos, end, file, chunk, base)
                old_uniq, pos = _read_int(buf, pos, end, file, chunk, base)
                pid, pos = _read_pid(buf, pos, end, file, chunk, base)
                fields = (mod, arity, uniq, index, old_index, old_uniq, pid, uniq, fun_end)
            else:
                if pos + 4 > end:
                    raise _truncated("FUN_EXT header", 4, end - pos, pos, file, chunk, base)
                nfree = u32(buf, pos)[0]
                pos += 4
                pid, pos = _read_pid(buf, pos, end, file, chunk, base)
                mod, pos = _read_atom(buf, pos, end, file, chunk, base)
                index, pos = _read_int(buf, pos, end, file, chunk, base)
                uniq, pos = _read_int(buf, pos, end, file, chunk, base)
                fields = (mod, None, uniq, index, index, uniq, pid, None, None)
            if nfree:
                if nfree > end - pos:
                    raise _truncated(f"fun with {nfree} free variables", nfree, end - pos,
                                     pos, file, chunk, base)
                if len(stack) >= max_depth:
                    raise _too_deep(max_depth, start, file, chunk, base)
                stack.append((kind, items, left, extra))
                kind = _K_FUN
                items = []
                left = nfree
                extra = fields
                continue
            val = _make_fun(fields, (), pos, file, chunk, base)
        elif tag == NEW_PID_EXT or tag == PID_EXT:
            val, pos = _read_pid(buf, pos - 1, end, file, chunk, base)
        elif tag == NEW_PORT_EXT or tag == PORT_EXT or tag == V4_PORT_EXT:
            node, pos = _read_atom(buf, pos, end, file, chunk, base)
            if tag == NEW_PORT_EXT:
                if pos + 8 > end:
                    raise _truncated("NEW_PORT_EXT", 8, end - pos, pos, file, chunk, base)
                i, c = struct.unpack_from(">II", buf, pos)
                pos += 8
            elif tag == PORT_EXT:
                if pos + 5 > end:
                    raise _truncated("PORT_EXT", 5, end - pos, pos, file, chunk, base)
                i = u32(buf, pos)[0]
                c = buf[pos + 4]
                pos += 5
            else:
                if pos + 12 > end:
                    raise _truncated("V4_PORT_EXT", 12, end - pos, pos, file, chunk, base)
                i, c = struct.unpack_from(">QI", buf, pos)
                pos += 12
            val = Port(node, i, c)
        elif tag == NEWER_REFERENCE_EXT or tag == NEW_REFERENCE_EXT:
            if pos + 2 > end:
                raise _truncated("reference length", 2, end - pos, pos, file, chunk, base)
            n = u16(buf, pos)[0]
            pos += 2
            node, pos = _read_atom(buf, pos, end, file, chunk, base)
            csize = 4 if tag == NEWER_REFERENCE_EXT else 1
            need = csize + 4 * n
            if pos + need > end:
                raise _truncated("reference", need, end - pos, pos, file, chunk, base)
            c = u32(buf, pos)[0] if csize == 4 else buf[pos]
            pos += csize
            ids = struct.unpack_from(f">{n}I", buf, pos)
            pos += 4 * n
            val = Reference(node, c, ids)
        elif tag == REFERENCE_EXT:
            node, pos = _read_atom(buf, pos, end, file, chunk, base)
            if pos + 5 > end:
                raise _truncated("REFERENCE_EXT", 5, end - pos, pos, file, chunk, base)
            val = Reference(node, buf[pos + 4], (u32(buf, pos)[0],))
            pos += 5
        elif tag == ATOM_CACHE_REF:
            raise FormatError("ATOM_CACHE_REF is only valid in the distribution protocol",
                              file=file, chunk=chunk, offset=base + pos - 1)
        elif tag == LOCAL_EXT:
            raise UnsupportedError("LOCAL_EXT (node-local term encoding) cannot be decoded",
                                   file=file, chunk=chunk, offset=base + pos - 1)
        elif tag == COMPRESSED:
            raise FormatError("compressed term inside a term", file=file, chunk=chunk,
                              offset=base + pos - 1)
        else:
            raise FormatError(f"unknown external term tag {tag}", file=file, chunk=chunk,
                              offset=base + pos - 1)

        # Deliver ``val`` to the innermost open container, closing the full ones.
        while True:
            if items is None:
                return val, pos
            items.append(val)
            left -= 1
            if left:
                break
            if kind == _K_TUPLE:
                val = tuple(items)
            elif kind == _K_LIST:
                tail = items.pop()
                ttail = type(tail)
                if ttail is list:
                    if tail:
                        items.extend(tail)
                    val = items
                elif not items:
                    val = tail
                elif ttail is ImproperList:
                    val = ImproperList(tuple(items) + tail.items, tail.tail)
                else:
                    val = ImproperList(tuple(items), tail)
            elif kind == _K_MAP:
                val = Map._from_flat(items)
                if val is None:
                    raise FormatError("map has a repeated key", file=file, chunk=chunk,
                                      offset=base + extra)
            else:
                val = _make_fun(extra, tuple(items), pos, file, chunk, base)
            kind, items, left, extra = stack.pop()


def _too_deep(max_depth, pos, file, chunk, base):
    return LimitError(f"terms nested deeper than {max_depth}", file=file, chunk=chunk,
                      offset=base + pos)


def _make_fun(fields, free_vars, pos, file, chunk, base):
    mod, arity, uniq, index, old_index, old_uniq, pid, md5, expect_end = fields
    if expect_end is not None and expect_end != pos:
        raise FormatError(f"NEW_FUN_EXT: size field says the fun ends at "
                          f"{base + expect_end}, it ends at {base + pos}", file=file,
                          chunk=chunk, offset=base + pos)
    return LocalFun(mod, arity, uniq, index, old_index, old_uniq, pid, free_vars, md5)


# ---------------------------------------------------------------------------
# Text: io_lib:format("~w", [T]) on OTP 25
# ---------------------------------------------------------------------------

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


def _int_text(n: int) -> str:
    """Decimal text of any int (Python's str() refuses very long ints by default)."""
    if -(1 << 12000) < n < (1 << 12000):
        return str(n)
    if n < 0:
        return "-" + _int_text(-n)
    # Divide and conquer on powers of ten; depth is log2(digits), so recursion is fine.
    digits = int(n.bit_length() * 0.30103) + 1
    half = digits // 2
    hi, lo = divmod(n, 10 ** half)
    return _int_text(hi) + _int_text(lo).zfill(half) if hi else _int_text(lo)


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
    pairs = m._pairs
    if len(pairs) <= 32:
        if len(pairs) < 2:
            return pairs
        return tuple(sorted(pairs, key=lambda kv: _ExactKey(kv[0])))
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
            append(_int_text(t))
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
            append(_int_text(int(t)))
        else:
            raise TypeError(f"not an Erlang term: {type(t).__name__}")
    return "".join(out)


# ---------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------

_JSON_INT_MAX = 2**53 - 1
_INT_ONLY = {int}


def _json_pid(p: Pid) -> dict:
    return {"node": str(p.node), "id": p.id, "serial": p.serial, "creation": p.creation}


def to_json(term):
    """The JSON value (dicts, lists, str, int, float) of a term; see the module docstring."""
    # Iterative post-order build: ``work`` holds terms to convert and (builder, n) marks.
    out: list = []
    work: list = [(term, None)]
    while work:
        t, build = work.pop()
        if build is not None:
            fn, n = build
            vals = out[len(out) - n:] if n else []
            del out[len(out) - n:]
            out.append(fn(vals))
            continue
        tt = type(t)
        if tt is Atom:
            out.append(str(t))
        elif tt is int:
            out.append(t if -_JSON_INT_MAX <= t <= _JSON_INT_MAX else {"int": _int_text(t)})
        elif tt is float:
            out.append(t)
        elif tt is bytes:
            try:
                out.append({"binary": t.decode("utf-8"), "encoding": "utf8"})
            except UnicodeDecodeError:
                out.append({"binary": base64.b64encode(t).decode("ascii"),
                            "encoding": "base64"})
        elif tt is BitBinary:
            out.append({"bitstring": base64.b64encode(t.data).decode("ascii"),
                        "bits": t.bits})
        elif tt is Pid:
            out.append({"pid": _json_pid(t)})
        elif tt is Port:
            out.append({"port": {"node": str(t.node), "id": t.id, "creation": t.creation}})
        elif tt is Reference:
            out.append({"reference": {"node": str(t.node), "creation": t.creation,
                                      "ids": list(t.ids)}})
        elif tt is ExportFun:
            out.append({"fun": {"module": str(t.module), "function": str(t.function),
                                "arity": t.arity}})
        else:
            if tt is list:
                # A string (a list of small integers) maps to itself: copy it in one step.
                if t and type(t[0]) is int and set(map(type, t)) == _INT_ONLY \
                        and -_JSON_INT_MAX <= min(t) and max(t) <= _JSON_INT_MAX:
                    out.append(list(t))
                    continue
                kids, fn = t, list
            elif tt is tuple:
                kids, fn = t, _json_tuple
            elif tt is ImproperList:
                kids = t.items + (t.tail,)
                fn = _json_improper
            elif tt is Map:
                kids = [x for kv in t._pairs for x in kv]
                fn = _json_map
            elif tt is LocalFun:
                kids = t.free_vars
                fn = _json_fun_builder(t)
            elif isinstance(t, Atom):
                out.append(str(t))
                continue
            elif isinstance(t, int) and not isinstance(t, bool):
                work.append((int(t), None))
                continue
            else:
                raise TypeError(f"not an Erlang term: {type(t).__name__}")
            work.append((None, (fn, len(kids))))
            for i in range(len(kids) - 1, -1, -1):
                work.append((kids[i], None))
    return out[0]


def _json_tuple(vals):
    return {"tuple": vals}


def _json_improper(vals):
    return {"improper_list": vals[:-1], "tail": vals[-1]}


def _json_map(vals):
    return {"map": [[vals[i], vals[i + 1]] for i in range(0, len(vals), 2)]}


def _json_fun_builder(f: LocalFun):
    def build(vals):
        return {"fun": {
            "module": str(f.module), "arity": f.arity, "index": f.index,
            "uniq": f.uniq.hex() if isinstance(f.uniq, bytes) else f.uniq,
            "old_index": f.old_index, "old_uniq": f.old_uniq,
            "md5": f.md5.hex() if f.md5 is not None else None,
            "pid": _json_pid(f.pid), "free_vars": vals}}
    return build


# ---------------------------------------------------------------------------
# Term order
# ---------------------------------------------------------------------------

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
            xs = sorted(x._pairs, key=lambda kv: _ExactKey(kv[0]))
            ys = sorted(y._pairs, key=lambda kv: _ExactKey(kv[0]))
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
