"""The external term format (``term_to_binary``): a bounds-checked decoder.

See :mod:`beaminspect.terms` for the mapping to Python types and the limits.
"""

from __future__ import annotations

import gc
import math
import re
import struct
import zlib

from beaminspect.errors import FormatError, LimitError, TruncatedError, UnsupportedError
from beaminspect.terms.types import (Atom, BitBinary, ExportFun, ImproperList, LocalFun, Map,
                                     Pid, Port, Reference)

__all__ = ["decode", "decode_at", "VERSION_MAGIC", "COMPRESSED", "DEFAULT_MAX_DEPTH",
           "DEFAULT_MAX_SIZE"]

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


def tuple_head_atoms(data, count: int, *, peek: int = 1024) -> tuple[str, ...] | None:
    """The first ``count`` elements of the tuple that the external term ``data`` holds,
    when they are atoms; None when the term is not such a tuple or cannot be read.

    Only the head is read: a compressed term has its first ``peek`` bytes inflated, so
    telling a debug info chunk's backend (``{debug_info_v1, Backend, Data}``) costs
    nothing like decoding its abstract code."""
    if len(data) < 2 or data[0] != VERSION_MAGIC:
        return None
    if data[1] == COMPRESSED:
        try:
            head = zlib.decompressobj().decompress(bytes(data[6:6 + peek]), peek)
        except zlib.error:
            return None
    else:
        head = bytes(data[1:1 + peek])
    if len(head) >= 2 and head[0] == SMALL_TUPLE_EXT:
        arity, pos = head[1], 2
    elif len(head) >= 5 and head[0] == LARGE_TUPLE_EXT:
        arity, pos = _U32.unpack_from(head, 1)[0], 5
    else:
        return None
    if arity < count:
        return None
    out = []
    for _ in range(count):
        if pos + 2 > len(head):
            return None
        tag = head[pos]
        if tag in (SMALL_ATOM_EXT, SMALL_ATOM_UTF8_EXT):
            n, pos = head[pos + 1], pos + 2
        elif tag in (ATOM_EXT, ATOM_UTF8_EXT) and pos + 3 <= len(head):
            n, pos = int.from_bytes(head[pos + 1:pos + 3], "big"), pos + 3
        else:
            return None
        if pos + n > len(head):
            return None
        raw = head[pos:pos + n]
        out.append(raw.decode("utf-8" if tag in (ATOM_UTF8_EXT, SMALL_ATOM_UTF8_EXT)
                              else "latin-1", "replace"))
        pos += n
    return tuple(out)


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
        elif tag == ATOM_UTF8_EXT or tag == ATOM_EXT:
            if pos + 2 > end:
                raise _truncated("atom length", 2, end - pos, pos, file, chunk, base)
            n = u16(buf, pos)[0]
            pos += 2
            if pos + n > end:
                raise _truncated("atom", n, end - pos, pos, file, chunk, base)
            raw = buf[pos:pos + n]
            utf8 = tag == ATOM_UTF8_EXT
            val = (utf8_atoms if utf8 else latin1_atoms).get(raw)
            if val is None:
                val = _new_atom(raw, utf8, pos - 3, file, chunk, base)
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
            val = Map.from_flat([])
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
                val = Map.from_flat(items)
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
