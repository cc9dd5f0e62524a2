"""Test-only encoder for compact-term operands.

Produces the smallest encoding, byte for byte what OTP's ``beam_asm`` emits: one byte
for 0..15, two bytes for 16..2047, otherwise the big-endian bytes (with a leading
zero byte when the top bit is set, so the value stays positive), at least two bytes
for negative integers, and the nested ``u`` length beyond eight bytes.
"""

from __future__ import annotations

from beaminspect.format.compact import (
    ALLOC, EXT_ALLOC, EXT_FR, EXT_LIST, EXT_LITERAL, EXT_TR, FR, LIST, LITERAL, TAG_NUMBERS,
    TR, Operand,
)

_Z = TAG_NUMBERS["z"]
_U = TAG_NUMBERS["u"]


def _long_form(tag: int, data: bytes) -> bytes:
    n = len(data)
    if 2 <= n <= 8:
        return bytes([((n - 2) << 5) | 0x18 | tag]) + data
    return bytes([0xF8 | tag]) + encode_tagged(_U, n - 9) + data


def _positive_bytes(n: int) -> bytes:
    data = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return b"\x00" + data if data[0] & 0x80 else data


def _negative_bytes(n: int) -> bytes:
    if n >= -0x8000:
        return (n & 0xFFFF).to_bytes(2, "big")
    size = ((-n).bit_length() + 7) // 8
    data = (n & ((1 << (8 * size)) - 1)).to_bytes(size, "big")
    return data if data[0] & 0x80 else b"\xff" + data


def encode_tagged(tag: int, n: int) -> bytes:
    """One raw compact term: tag number 0..7 and an integer value."""
    if n < 0:
        if tag != TAG_NUMBERS["i"]:
            raise ValueError(f"negative value {n} for tag {tag}")
        return _long_form(tag, _negative_bytes(n))
    if n < 16:
        return bytes([(n << 4) | tag])
    if n < 0x800:
        return bytes([((n >> 3) & 0xE0) | tag | 0x08, n & 0xFF])
    return _long_form(tag, _positive_bytes(n))


def encode(op: Operand) -> bytes:
    tag, value = op
    if tag in ("u", "i", "a", "x", "y", "f", "h"):
        return encode_tagged(TAG_NUMBERS[tag], value)
    if tag == LIST:
        return (encode_tagged(_Z, EXT_LIST) + encode_tagged(_U, len(value))
                + b"".join(encode(item) for item in value))
    if tag == FR:
        return encode_tagged(_Z, EXT_FR) + encode_tagged(_U, value)
    if tag == ALLOC:
        out = [encode_tagged(_Z, EXT_ALLOC), encode_tagged(_U, len(value))]
        for kind, count in value:
            out += [encode_tagged(_U, kind), encode_tagged(_U, count)]
        return b"".join(out)
    if tag == LITERAL:
        return encode_tagged(_Z, EXT_LITERAL) + encode_tagged(_U, value)
    if tag == TR:
        reg, type_index = value
        return encode_tagged(_Z, EXT_TR) + encode(reg) + encode_tagged(_U, type_index)
    raise ValueError(f"cannot encode {op!r}")
