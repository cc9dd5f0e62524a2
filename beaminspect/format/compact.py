"""Compact-term operands, the encoding of instruction arguments in the Code chunk.

A compact term starts with a byte whose low 3 bits are the tag (``u i a x y f h z``).
The value follows in one of three forms:

* bit 3 clear: the value is ``byte >> 4`` (0..15), one byte in all;
* bit 3 set, bit 4 clear: ``(byte >> 5) << 8 | next byte`` (0..2047), two bytes;
* bits 3 and 4 set: ``n = byte >> 5``; for ``n < 7``, ``n + 2`` big-endian value bytes
  follow; for ``n == 7`` a nested ``u`` term gives ``L`` and ``L + 9`` bytes follow.

Values of tag ``i`` in the long form are two's complement; all other values are
unsigned.  Tag ``z`` introduces an extended term whose value selects the kind:
1 list, 2 float register, 3 allocation list, 4 literal, 5 typed register (0, an inline
float, has been refused by the loader since R16B).

Raw values are kept raw: ``a`` 0 is ``[]`` and ``f`` 0 is "no fail label", left to the
name resolver.  :func:`decode_operand` is the hot path of the disassembler: the
one-byte forms (the large majority) are a single lookup in a table of preallocated
:class:`Operand` values, and so are the two-byte forms of the basic tags.

Errors are :class:`~beaminspect.errors.TruncatedError`,
:class:`~beaminspect.errors.FormatError` or :class:`~beaminspect.errors.LimitError`
whose ``offset`` is the absolute position in ``buf`` of the compact term that could not
be read; the caller adds the chunk id and file with ``BeamError.with_context``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from beaminspect.errors import FormatError, LimitError, TruncatedError

__all__ = [
    "Operand", "decode_operand", "decode_operands",
    "U", "I", "A", "X", "Y", "F", "H", "Z", "LIST", "FR", "ALLOC", "LITERAL", "TR",
    "TAG_NAMES", "TAG_NUMBERS", "EXT_FLOAT", "EXT_LIST", "EXT_FR", "EXT_ALLOC",
    "EXT_LITERAL", "EXT_TR", "ALLOC_WORDS", "ALLOC_FLOATS", "ALLOC_FUNS",
    "MAX_INTEGER_BYTES", "ONE_BYTE", "TWO_BYTE", "OPERAND_SIZE", "decode_long",
    "skip_long",
]

# -- tags -------------------------------------------------------------------------
#: Basic tags (the value is an ``int``).
U, I, A, X, Y, F, H = "u", "i", "a", "x", "y", "f", "h"
#: The raw extended tag; never the tag of a decoded :class:`Operand`.
Z = "z"
#: Extended forms: ``LIST`` value is a tuple of Operands, ``FR`` an int (float register
#: number), ``ALLOC`` a tuple of ``(kind, count)`` pairs, ``LITERAL`` an int (index into
#: the literal table), ``TR`` a pair ``(register Operand 'x' or 'y', type index)``.
LIST, FR, ALLOC, LITERAL, TR = "list", "fr", "alloc", "literal", "tr"

#: Raw 3-bit tag number -> tag name.
TAG_NAMES = (U, I, A, X, Y, F, H, Z)
TAG_NUMBERS = {name: num for num, name in enumerate(TAG_NAMES)}

#: Extended (``z``) kinds.
EXT_FLOAT, EXT_LIST, EXT_FR, EXT_ALLOC, EXT_LITERAL, EXT_TR = range(6)
#: Kinds in an allocation list.
ALLOC_WORDS, ALLOC_FLOATS, ALLOC_FUNS = 0, 1, 2

#: Longest integer accepted, in bytes (a 64 KiB integer has ~157,000 decimal digits;
#: the compiler stores integers of 2**128 and beyond as literals anyway).
MAX_INTEGER_BYTES = 1 << 16

_TAG_U, _TAG_I, _TAG_X, _TAG_Y, _TAG_Z = 0, 1, 3, 4, 7


class Operand(NamedTuple):
    """One decoded operand: ``tag`` (see the module constants) and its raw ``value``."""

    tag: str
    value: Any


_new = tuple.__new__


def _make(tag: str, value) -> Operand:
    return _new(Operand, (tag, value))


def _build_one_byte() -> tuple:
    table = []
    for b in range(256):
        tag = b & 7
        table.append(None if (b & 8) or tag == _TAG_Z else _make(TAG_NAMES[tag], b >> 4))
    return tuple(table)


def _build_two_byte() -> tuple:
    # Indexed by (first byte << 8) | second byte; only first bytes with bit 3 set,
    # bit 4 clear and a basic tag are filled in.
    table = [None] * 65536
    for b0 in range(256):
        tag = b0 & 7
        if (b0 & 0x18) != 0x08 or tag == _TAG_Z:
            continue
        name = TAG_NAMES[tag]
        high = (b0 >> 5) << 8
        base = b0 << 8
        for b1 in range(256):
            table[base | b1] = _make(name, high | b1)
    return tuple(table)


#: First byte -> ready Operand for the one-byte forms of the basic tags, else None.
#: Public for decoders that inline the fast path (see :mod:`beaminspect.code.disasm`).
ONE_BYTE = _ONE = _build_one_byte()
#: ``(first byte << 8) | second byte`` -> ready Operand for the two-byte forms of the
#: basic tags, else None (consult only when ``first byte & 0x18 == 0x08``).
TWO_BYTE = _TWO = _build_two_byte()


def _build_operand_size() -> tuple:
    sizes = []
    for b in range(256):
        if b & 7 == _TAG_Z:
            sizes.append(0)
        elif not b & 0x08:
            sizes.append(1)
        elif not b & 0x10:
            sizes.append(2)
        else:
            sizes.append(0)
    return tuple(sizes)


#: First byte -> the size in bytes of a compact term of a basic tag in its one- or
#: two-byte form (1 or 2), else 0 (the long forms and the extended terms, whose size
#: takes :data:`decode_long`).  For walking past operands without decoding them.
OPERAND_SIZE = _SIZE = _build_operand_size()


# -- slow paths -------------------------------------------------------------------
def _read_tagged(buf, pos: int, end: int) -> tuple[int, int, int]:
    """Read any compact term's raw tag number and value: ``(tag, value, new_pos)``."""
    if pos >= end:
        raise TruncatedError("compact term: no bytes left", offset=pos)
    b = buf[pos]
    tag = b & 7
    if not b & 0x08:
        return tag, b >> 4, pos + 1
    if not b & 0x10:
        if pos + 1 >= end:
            raise TruncatedError("compact term: two-byte form cut short", offset=pos)
        return tag, ((b >> 5) << 8) | buf[pos + 1], pos + 2
    n = b >> 5
    p = pos + 1
    if n < 7:
        count = n + 2
    else:
        # The length is itself a 'u' term.  One that needs the nested form again
        # would exceed any limit, so it is refused here without recursing.
        if p >= end:
            raise TruncatedError("compact term: length prefix missing", offset=pos)
        lb = buf[p]
        if lb & 7 != _TAG_U:
            raise FormatError(f"compact term: length prefix has tag '{TAG_NAMES[lb & 7]}', "
                              "expected 'u'", offset=pos)
        if lb >> 5 == 7 and lb & 0x18 == 0x18:
            raise LimitError("compact term: integer length needs a nested length",
                             offset=pos)
        _ltag, length, p = _read_tagged(buf, p, end)
        count = length + 9
        if count > MAX_INTEGER_BYTES:
            raise LimitError(f"compact term: {count}-byte integer exceeds the limit of "
                             f"{MAX_INTEGER_BYTES} bytes", offset=pos)
    if p + count > end:
        raise TruncatedError(f"compact term: {count} value bytes needed, {max(end - p, 0)} left",
                             offset=pos)
    value = int.from_bytes(buf[p:p + count], "big", signed=(tag == _TAG_I))
    return tag, value, p + count


def _read_u(buf, pos: int, end: int, what: str) -> tuple[int, int]:
    tag, value, p = _read_tagged(buf, pos, end)
    if tag != _TAG_U:
        raise FormatError(f"{what} has tag '{TAG_NAMES[tag]}', expected 'u'", offset=pos)
    return value, p


def _build_short_ext() -> dict:
    # (first byte << 16 | second byte << 8 | third byte) -> (Operand, length) for the
    # commonest extended terms in their shortest forms: a literal whose index is a
    # one-byte 'u' (two bytes in all), and a typed register whose register and type
    # index are one byte each (three bytes).  A literal is looked up by its first two
    # bytes with the third byte 0, see _decode_long.
    table = {}
    lit = (EXT_LITERAL << 4) | _TAG_Z
    tr = (EXT_TR << 4) | _TAG_Z
    for v in range(16):
        table[(lit << 16) | ((v << 4) << 8)] = (_make(LITERAL, v), 2)
    for rtag in (_TAG_X, _TAG_Y):
        for r in range(16):
            reg = _ONE[(r << 4) | rtag]
            for t in range(16):
                table[(tr << 16) | (((r << 4) | rtag) << 8) | (t << 4)] = (_make(TR, (reg, t)), 3)
    return table


_SHORT_EXT = _build_short_ext()
_LIT_BYTE = (EXT_LITERAL << 4) | _TAG_Z
_TR_BYTE = (EXT_TR << 4) | _TAG_Z


def _decode_long(buf, pos: int, end: int, in_list: bool = False) -> tuple[Operand, int]:
    """Everything but the one-byte basic forms."""
    if pos + 2 < end:
        b = buf[pos]
        if b == _LIT_BYTE:
            hit = _SHORT_EXT.get((b << 16) | (buf[pos + 1] << 8))
            if hit is not None:
                return hit[0], pos + 2
        elif b == _TR_BYTE:
            hit = _SHORT_EXT.get((b << 16) | (buf[pos + 1] << 8) | buf[pos + 2])
            if hit is not None:
                return hit[0], pos + 3
    tag, value, p = _read_tagged(buf, pos, end)
    if tag != _TAG_Z:
        if p == pos + 2:
            return _TWO[(buf[pos] << 8) | buf[pos + 1]], p
        return _new(Operand, (TAG_NAMES[tag], value)), p
    if value == EXT_LIST:
        if in_list:
            raise FormatError("list operand nested in a list", offset=pos)
        count, p = _read_u(buf, p, end, "list length")
        if count > end - p:
            raise TruncatedError(f"list of {count} elements needs at least {count} bytes, "
                                 f"{end - p} left", offset=pos)
        items = []
        one = _ONE
        two = _TWO
        for _ in range(count):
            if p < end:
                b = buf[p]
                op = one[b]
                if op is not None:
                    items.append(op)
                    p += 1
                    continue
                if b & 0x18 == 0x08 and p + 1 < end:
                    op = two[(b << 8) | buf[p + 1]]
                    if op is not None:
                        items.append(op)
                        p += 2
                        continue
            op, p = _decode_long(buf, p, end, True)
            items.append(op)
        return _new(Operand, (LIST, tuple(items))), p
    if value == EXT_LITERAL:
        index, p = _read_u(buf, p, end, "literal index")
        return _new(Operand, (LITERAL, index)), p
    if value == EXT_TR:
        rpos = p
        rtag, reg, p = _read_tagged(buf, p, end)
        if rtag != _TAG_X and rtag != _TAG_Y:
            raise FormatError(f"typed register has tag '{TAG_NAMES[rtag]}', expected 'x' or 'y'",
                              offset=rpos)
        if p == rpos + 1:
            reg_op = _ONE[buf[rpos]]
        elif p == rpos + 2:
            reg_op = _TWO[(buf[rpos] << 8) | buf[rpos + 1]]
        else:
            reg_op = _new(Operand, (TAG_NAMES[rtag], reg))
        type_index, p = _read_u(buf, p, end, "type index")
        return _new(Operand, (TR, (reg_op, type_index))), p
    if value == EXT_FR:
        reg, p = _read_u(buf, p, end, "float register")
        return _new(Operand, (FR, reg)), p
    if value == EXT_ALLOC:
        count, p = _read_u(buf, p, end, "allocation list length")
        if 2 * count > end - p:
            raise TruncatedError(f"allocation list of {count} entries needs at least "
                                 f"{2 * count} bytes, {end - p} left", offset=pos)
        pairs = []
        for _ in range(count):
            kpos = p
            kind, p = _read_u(buf, p, end, "allocation kind")
            if kind > ALLOC_FUNS:
                raise FormatError(f"unknown allocation kind {kind}", offset=kpos)
            number, p = _read_u(buf, p, end, "allocation count")
            pairs.append((kind, number))
        return _new(Operand, (ALLOC, tuple(pairs))), p
    if value == EXT_FLOAT:
        raise FormatError("float operands are obsolete (refused by the loader since R16B)",
                          offset=pos)
    raise FormatError(f"unknown extended tag {value}", offset=pos)


#: ``decode_long(buf, pos, end) -> (operand, position after it)``: the slow path of
#: :func:`decode_operand`, for a term not in :data:`ONE_BYTE` / :data:`TWO_BYTE` (it
#: accepts any form).
decode_long = _decode_long


def skip_long(buf, pos: int, end: int) -> int:
    """The position after the compact term at ``buf[pos]`` that is not in
    :data:`OPERAND_SIZE` (a long form or an extended term), found without building it.

    It trusts the bytes: a malformed term gives some position, not an error.  Callers
    decode (and so check) a term with :func:`decode_operand` before using it; use this
    only to find where a term ends.  Nothing here reads past ``end``.
    """
    size = _SIZE
    b = buf[pos]
    if b & 7 == _TAG_Z and not b & 0x08:
        kind = b >> 4
        p = pos + 1
        if p < end and (n := size[buf[p]]):
            if kind == EXT_LITERAL or kind == EXT_FR:
                return p + n
            if kind == EXT_TR:
                p += n
                if p < end and (k := size[buf[p]]):
                    return p + k
            elif kind == EXT_LIST:
                count = _value(buf, p, n)
                p += n
                for _ in range(count):
                    if p >= end:
                        return end
                    k = size[buf[p]]
                    # An element that is not short is rare: decode it (which refuses
                    # a list nested in a list, so nothing here recurses).
                    p = p + k if k else _decode_long(buf, p, end, True)[1]
                return p
    return _decode_long(buf, pos, end)[1]


def _value(buf, p: int, n: int) -> int:
    b = buf[p]
    return b >> 4 if n == 1 else ((b >> 5) << 8) | buf[p + 1]


# -- public API -------------------------------------------------------------------
def decode_operand(buf, pos: int, end: int,
                   _one=_ONE, _two=_TWO, _long=_decode_long) -> tuple[Operand, int]:
    """Decode the compact term at ``buf[pos]`` (absolute position, reading no further
    than ``end``) and return ``(operand, position after it)``."""
    if pos < end:
        b = buf[pos]
        op = _one[b]
        if op is not None:
            return op, pos + 1
        if b & 0x18 == 0x08 and pos + 1 < end:
            op = _two[(b << 8) | buf[pos + 1]]
            if op is not None:
                return op, pos + 2
    return _long(buf, pos, end)


def decode_operands(buf, pos: int, end: int, arity: int,
                    _one=_ONE, _two=_TWO, _long=_decode_long) -> tuple[tuple[Operand, ...], int]:
    """Decode ``arity`` consecutive operands; return ``(operands, position after them)``.

    A ``list`` operand carries its elements, so the result always has ``arity`` items.
    """
    if arity == 2:
        # The most common arity (move, is_* tests, get_hd...), unrolled.
        a = None
        if pos < end:
            b = buf[pos]
            a = _one[b]
            if a is not None:
                pos += 1
            elif b & 0x18 == 0x08 and pos + 1 < end:
                a = _two[(b << 8) | buf[pos + 1]]
                if a is not None:
                    pos += 2
        if a is None:
            a, pos = _long(buf, pos, end)
        if pos < end:
            b = buf[pos]
            op = _one[b]
            if op is not None:
                return (a, op), pos + 1
            if b & 0x18 == 0x08 and pos + 1 < end:
                op = _two[(b << 8) | buf[pos + 1]]
                if op is not None:
                    return (a, op), pos + 2
        op, pos = _long(buf, pos, end)
        return (a, op), pos
    if arity == 0:
        return (), pos
    ops = []
    append = ops.append
    for _ in range(arity):
        if pos < end:
            b = buf[pos]
            op = _one[b]
            if op is not None:
                append(op)
                pos += 1
                continue
            if b & 0x18 == 0x08 and pos + 1 < end:
                op = _two[(b << 8) | buf[pos + 1]]
                if op is not None:
                    append(op)
                    pos += 2
                    continue
        op, pos = _long(buf, pos, end)
        append(op)
    return tuple(ops), pos
