"""A small external term format encoder for tests (the library only decodes).

Picks the tags OTP 25's ``term_to_binary/1`` picks: SMALL_INTEGER_EXT / INTEGER_EXT /
SMALL_BIG_EXT / LARGE_BIG_EXT, NEW_FLOAT_EXT, ATOM_EXT for latin1 atoms and
SMALL_ATOM_UTF8_EXT / ATOM_UTF8_EXT for the others, STRING_EXT for short lists of bytes,
NEW_PID_EXT, NEW_PORT_EXT (V4_PORT_EXT for ids above 32 bits), NEWER_REFERENCE_EXT,
NEW_FUN_EXT (FUN_EXT for a fun without ``md5``), EXPORT_EXT.
"""

from __future__ import annotations

import struct
import zlib

from beaminspect.terms import (Atom, BitBinary, ExportFun, ImproperList, LocalFun, Map, Pid,
                               Port, Reference)


def encode(term, *, compressed: bool = False) -> bytes:
    body = encode_body(term)
    if compressed:
        return b"\x83P" + struct.pack(">I", len(body)) + zlib.compress(body)
    return b"\x83" + body


def encode_body(term) -> bytes:
    out = bytearray()
    _enc(term, out)
    return bytes(out)


def _atom(a: str, out: bytearray) -> None:
    try:
        raw = a.encode("latin-1")
        out += b"d" + struct.pack(">H", len(raw)) + raw
        return
    except UnicodeEncodeError:
        pass
    raw = a.encode("utf-8")
    if len(raw) < 256:
        out += b"w" + bytes((len(raw),)) + raw
    else:
        out += b"v" + struct.pack(">H", len(raw)) + raw


def _int(n: int, out: bytearray) -> None:
    if 0 <= n < 256:
        out += bytes((97, n))
    elif -(2**31) <= n < 2**31:
        out += b"b" + struct.pack(">i", n)
    else:
        mag = abs(n)
        digits = mag.to_bytes((mag.bit_length() + 7) // 8, "little")
        sign = 1 if n < 0 else 0
        if len(digits) < 256:
            out += bytes((110, len(digits), sign)) + digits
        else:
            out += b"o" + struct.pack(">IB", len(digits), sign) + digits


def _pid(p: Pid, out: bytearray) -> None:
    out += b"X"
    _atom(p.node, out)
    out += struct.pack(">III", p.id, p.serial, p.creation)


def _enc(t, out: bytearray) -> None:
    tt = type(t)
    if tt is Atom:
        _atom(t, out)
    elif tt is int:
        _int(t, out)
    elif tt is float:
        out += b"F" + struct.pack(">d", t)
    elif tt is tuple:
        if len(t) < 256:
            out += bytes((104, len(t)))
        else:
            out += b"i" + struct.pack(">I", len(t))
        for x in t:
            _enc(x, out)
    elif tt is list:
        if not t:
            out += b"j"
        elif len(t) < 65536 and all(type(x) is int and 0 <= x < 256 for x in t):
            out += b"k" + struct.pack(">H", len(t)) + bytes(t)
        else:
            out += b"l" + struct.pack(">I", len(t))
            for x in t:
                _enc(x, out)
            out += b"j"
    elif tt is ImproperList:
        out += b"l" + struct.pack(">I", len(t.items))
        for x in t.items:
            _enc(x, out)
        _enc(t.tail, out)
    elif tt is bytes:
        out += b"m" + struct.pack(">I", len(t)) + t
    elif tt is BitBinary:
        out += b"M" + struct.pack(">IB", len(t.data), t.bits) + t.data
    elif tt is Map:
        out += b"t" + struct.pack(">I", len(t))
        for k, v in t.items():
            _enc(k, out)
            _enc(v, out)
    elif tt is Pid:
        _pid(t, out)
    elif tt is Port:
        if t.id < 2**32:
            out += b"Y"
            _atom(t.node, out)
            out += struct.pack(">II", t.id, t.creation)
        else:
            out += b"x"
            _atom(t.node, out)
            out += struct.pack(">QI", t.id, t.creation)
    elif tt is Reference:
        out += b"Z" + struct.pack(">H", len(t.ids))
        _atom(t.node, out)
        out += struct.pack(f">I{len(t.ids)}I", t.creation, *t.ids)
    elif tt is ExportFun:
        out += b"q"
        _atom(t.module, out)
        _atom(t.function, out)
        out += bytes((97, t.arity))
    elif tt is LocalFun:
        if t.md5 is not None:
            rest = bytearray()
            _atom(t.module, rest)
            _int(t.old_index, rest)
            _int(t.old_uniq, rest)
            _pid(t.pid, rest)
            for x in t.free_vars:
                _enc(x, rest)
            head = struct.pack(">B16sII", t.arity, t.uniq, t.index, len(t.free_vars))
            out += b"p" + struct.pack(">I", 4 + len(head) + len(rest)) + head + rest
        else:
            out += b"u" + struct.pack(">I", len(t.free_vars))
            _pid(t.pid, out)
            _atom(t.module, out)
            _int(t.index, out)
            _int(t.uniq, out)
            for x in t.free_vars:
                _enc(x, out)
    else:
        raise TypeError(f"cannot encode {type(t).__name__}")
