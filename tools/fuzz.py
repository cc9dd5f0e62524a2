#!/usr/bin/env python3
"""Mutation fuzzing of beaminspect: hostile ``.beam`` files must give a ``BeamError``.

    python tools/fuzz.py [--long] [--seconds N] [--seed S] [--corpus DIR ...]

Every sample (``samples/**/*.beam``) and a random subset of the installed OTP beams
per round is mutated (bit flips, insertions, deletions, truncation at chunk
boundaries, bad sizes and counts, swapped / duplicated / dropped chunks, zlib and gzip
bombs, deeply nested terms, random bytes, compact-term mutations inside ``Code``).
Each mutant runs in one of a few long-lived worker processes under an address-space
limit and a wall-clock timeout:

* ``beaminspect.load(data).decode_all()`` must return or raise ``BeamError``;
* the command line (``show --json``, ``disasm --json``, ``check --otp 25``, ``diff``
  of the original against the mutant, those that exist) must exit 0, 1 or 2, print no
  traceback, and exit 2 only with exactly one ``beaminspect: FILE: ...`` line.

A worker that dies or runs past the timeout is replaced and its input recorded as a
crash.  Crashing inputs are minimised (drop chunks, then cut byte ranges while the
failure keeps its signature) and saved as ``tests/regressions/<sha1>.beam``.

The mutators are importable (tests put ``tools/`` on ``sys.path``)::

    import fuzz
    for m in fuzz.generate(seed=1, sources=[...], count=100): ...
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import gzip
import hashlib
import io
import multiprocessing
import os
import random
import resource
import struct
import sys
import tempfile
import time
import traceback
import zlib
from dataclasses import dataclass, field
from multiprocessing.connection import wait as mp_wait

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

SAMPLES_GLOB = os.path.join(ROOT, "samples", "**", "*.beam")
OTP_GLOB = "/usr/lib/erlang/lib/*/ebin/*.beam"
REGRESSIONS = os.path.join(ROOT, "tests", "regressions")

#: Per-input limits.
TIME_LIMIT = 2.0
MEMORY_LIMIT = 256 * 1024 * 1024

U32 = struct.Struct(">I")


# ---------------------------------------------------------------------------
# Container helpers (self-contained: they must work on inputs the library refuses)
# ---------------------------------------------------------------------------

def split_chunks(data: bytes) -> list[tuple[bytes, bytes]] | None:
    """The chunks of a well-formed container as ``(id, data)``, or None."""
    if len(data) < 12 or data[:4] != b"FOR1" or data[8:12] != b"BEAM":
        return None
    end = min(len(data), 8 + U32.unpack_from(data, 4)[0])
    pos = 12
    out = []
    while pos + 8 <= end:
        cid = data[pos:pos + 4]
        size = U32.unpack_from(data, pos + 4)[0]
        if pos + 8 + size > end:
            return None
        out.append((cid, data[pos + 8:pos + 8 + size]))
        pos += 8 + ((size + 3) & ~3)
    return out


def join_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    """A well-formed container holding ``chunks`` (ids and sizes as given)."""
    body = bytearray(b"BEAM")
    for cid, data in chunks:
        body += cid + U32.pack(len(data)) + data + b"\0" * (-len(data) % 4)
    return b"FOR1" + U32.pack(len(body)) + bytes(body)


def chunk_headers(data: bytes) -> list[tuple[int, bytes, int]]:
    """``(header offset, id, size)`` for each chunk of a well-formed container."""
    out = []
    pos = 12
    end = min(len(data), 8 + U32.unpack_from(data, 4)[0]) if len(data) >= 8 else 0
    while pos + 8 <= end:
        size = U32.unpack_from(data, pos + 4)[0]
        out.append((pos, data[pos:pos + 4], size))
        pos += 8 + ((size + 3) & ~3)
    return out


def cenc(tag: int, value: int) -> bytes:
    """Compact-term encoding of a non-negative ``value`` with raw tag number ``tag``."""
    if value < 16:
        return bytes([(value << 4) | tag])
    if value < 2048:
        return bytes([((value >> 8) << 5) | 0x08 | tag, value & 0xFF])
    n = max(2, (value.bit_length() + 7) // 8)
    raw = value.to_bytes(n, "big")
    if n <= 8:
        return bytes([((n - 2) << 5) | 0x18 | tag]) + raw
    return bytes([0xF8 | tag]) + cenc(0, n - 9) + raw


def etf_nested(kind: str, depth: int) -> bytes:
    """An external term nested ``depth`` levels deep (version byte included)."""
    if kind == "list":
        return b"\x83" + b"l\x00\x00\x00\x01" * depth + b"j" + b"j" * depth
    if kind == "tuple":
        return b"\x83" + b"h\x01" * depth + b"j"
    # map: #{[] => #{[] => ...}}
    return b"\x83" + b"t\x00\x00\x00\x01j" * depth + b"j"


def literal_chunk(terms: list[bytes], claimed: int | None = None) -> bytes:
    """A LitT chunk (OTP 25 form) holding external terms (without version byte handling)."""
    table = U32.pack(len(terms)) + b"".join(U32.pack(len(t)) + t for t in terms)
    return U32.pack(len(table) if claimed is None else claimed) + zlib.compress(table)


_BOMBS: dict[str, bytes] = {}
_MB = 1 << 20


def _deflate_bomb(first: bytes, size: int) -> tuple[bytes, bytes]:
    """Raw deflate data for ``first`` followed by zeros up to ``size`` bytes (a multiple
    of 1 MiB), and the whole content's first MiB.  After a full flush the deflater
    starts afresh, so one compressed MiB of zeros is repeated instead of compressing
    gigabytes."""
    head = first + b"\0" * (_MB - len(first))
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = [c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)]
    zero_piece = c.compress(b"\0" * _MB) + c.flush(zlib.Z_FULL_FLUSH)
    out.append(zero_piece * (size // _MB - 1))
    out.append(c.flush(zlib.Z_FINISH))
    return b"".join(out), head


def zlib_bomb(size: int) -> bytes:
    """zlib data inflating to ``size`` zero bytes (~size/1000 bytes, built in well under
    a second)."""
    key = f"z{size}"
    if key not in _BOMBS:
        raw, head = _deflate_bomb(b"", size)
        adler = zlib.adler32(head)
        zeros = b"\0" * _MB
        for _ in range(size // _MB - 1):
            adler = zlib.adler32(zeros, adler)
        _BOMBS[key] = b"\x78\xda" + raw + U32.pack(adler)
    return _BOMBS[key]


def gzip_bomb(size: int) -> bytes:
    """A gzip file whose content starts like a BEAM file and inflates to ``size`` bytes."""
    key = f"g{size}"
    if key not in _BOMBS:
        raw, head = _deflate_bomb(b"FOR1" + U32.pack(size - 8) + b"BEAM", size)
        crc = zlib.crc32(head)
        zeros = b"\0" * _MB
        for _ in range(size // _MB - 1):
            crc = zlib.crc32(zeros, crc)
        header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
        _BOMBS[key] = header + raw + struct.pack("<II", crc, size & 0xFFFFFFFF)
    return _BOMBS[key]


# ---------------------------------------------------------------------------
# Mutators: each takes (rng, original bytes) and returns the mutant
# ---------------------------------------------------------------------------

HUGE = (0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0x10000000, 0xFFFFFFF0)


def _bad_number(rng: random.Random, n: int) -> int:
    return rng.choice([0, 1, n - 1 if n else 0, n + 1, n + 4, n * 2 + 7, rng.choice(HUGE)]) \
        & 0xFFFFFFFF


def m_bitflip(rng, data):
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def m_insert(rng, data):
    i = rng.randrange(len(data) + 1)
    return data[:i] + rng.randbytes(rng.randint(1, 16)) + data[i:]


def m_delete(rng, data):
    i = rng.randrange(len(data))
    n = rng.randint(1, max(1, min(64, len(data) - i)))
    return data[:i] + data[i + n:]


def m_truncate(rng, data):
    cuts = [0, 4, 8, 12]
    for pos, _cid, size in chunk_headers(data):
        cuts += [pos, pos + 4, pos + 8, pos + 8 + size, pos + 8 + ((size + 3) & ~3)]
    cut = rng.choice(cuts) + rng.choice([0, 0, 0, -1, 1])
    return data[:max(0, cut)]


def m_form_size(rng, data):
    return data[:4] + U32.pack(_bad_number(rng, len(data) - 8)) + data[8:]


def m_chunk_size(rng, data):
    heads = chunk_headers(data)
    if not heads:
        return m_bitflip(rng, data)
    pos, _cid, size = rng.choice(heads)
    return data[:pos + 4] + U32.pack(_bad_number(rng, size)) + data[pos + 8:]


#: Where each table keeps its counts: chunk id -> offsets of u32 fields.
COUNT_FIELDS = {
    b"AtU8": (0,), b"Atom": (0,), b"ImpT": (0,), b"ExpT": (0,), b"LocT": (0,), b"FunT": (0,),
    b"LitT": (0,), b"Line": (0, 4, 8, 12, 16), b"Type": (0, 4), b"Code": (0, 4, 8, 12, 16),
}


def m_table_count(rng, data):
    chunks = split_chunks(data)
    cands = [i for i, (cid, body) in enumerate(chunks or ()) if cid in COUNT_FIELDS]
    if not cands:
        return m_bitflip(rng, data)
    i = rng.choice(cands)
    cid, body = chunks[i]
    if cid == b"LitT" and rng.random() < 0.5 and len(body) > 4:
        # the count inside the compressed table
        try:
            table = zlib.decompress(body[4:])
        except zlib.error:
            return m_bitflip(rng, data)
        if len(table) >= 4:
            n = U32.unpack_from(table, 0)[0]
            table = U32.pack(_bad_number(rng, n)) + table[4:]
            chunks[i] = (cid, U32.pack(len(table)) + zlib.compress(table))
            return join_chunks(chunks)
    off = rng.choice(COUNT_FIELDS[cid])
    if off + 4 > len(body):
        return m_bitflip(rng, data)
    n = U32.unpack_from(body, off)[0]
    chunks[i] = (cid, body[:off] + U32.pack(_bad_number(rng, n)) + body[off + 4:])
    return join_chunks(chunks)


def m_swap_chunks(rng, data):
    chunks = split_chunks(data)
    if not chunks or len(chunks) < 2:
        return m_bitflip(rng, data)
    i, j = rng.sample(range(len(chunks)), 2)
    chunks[i], chunks[j] = chunks[j], chunks[i]
    return join_chunks(chunks)


def m_duplicate_chunk(rng, data):
    chunks = split_chunks(data)
    if not chunks:
        return m_bitflip(rng, data)
    c = rng.choice(chunks)
    if rng.random() < 0.5:
        # a damaged copy: the loader uses the last one
        body = bytearray(c[1])
        if body:
            body[rng.randrange(len(body))] ^= 0xFF
        c = (c[0], bytes(body))
    chunks.insert(rng.randrange(len(chunks) + 1), c)
    return join_chunks(chunks)


def m_drop_chunk(rng, data):
    chunks = split_chunks(data)
    if not chunks:
        return m_bitflip(rng, data)
    del chunks[rng.randrange(len(chunks))]
    return join_chunks(chunks)


def m_litt_bomb(rng, data):
    chunks = split_chunks(data)
    if chunks is None:
        return m_bitflip(rng, data)
    size = rng.choice([1 << 28, 1 << 30])
    kind = rng.randrange(3)
    if kind == 0:    # claims little, inflates to a lot
        lit = U32.pack(rng.choice([0x40, 1000, 1 << 16])) + zlib_bomb(size)
    elif kind == 1:  # claims huge
        lit = U32.pack(rng.choice(HUGE)) + zlib.compress(b"\0\0\0\0")
    else:            # claims exactly what it inflates to (beyond the library's limit)
        lit = U32.pack(size) + zlib_bomb(size)
    chunks = [c for c in chunks if c[0] != b"LitT"] + [(b"LitT", lit)]
    return join_chunks(chunks)


def m_gzip_bomb(rng, data):
    if rng.random() < 0.3:
        return gzip.compress(data, mtime=0)[:rng.randrange(10, 64)]  # truncated gzip
    return gzip_bomb(rng.choice([1 << 28, 1 << 30]))


def m_gzip_wrap(rng, data):
    """A mutant inside gzip: the same checks must hold after inflation."""
    inner = pick_mutator(rng, exclude=("gzip_bomb", "gzip_wrap", "litt_bomb"))[1](rng, data)
    if isinstance(inner, tuple):
        inner = inner[1]
    return gzip.compress(inner, compresslevel=1, mtime=0)


def m_deep_term(rng, data):
    chunks = split_chunks(data)
    if chunks is None:
        return m_bitflip(rng, data)
    depth = rng.choice([10_001, 100_000, 1_000_000])
    term = etf_nested(rng.choice(["list", "tuple", "map"]), depth)
    where = rng.choice([b"Attr", b"CInf", b"Dbgi", b"LitT", b"Meta", b"Docs"])
    if where == b"LitT":
        body = literal_chunk([term])
    else:
        body = term
    chunks = [c for c in chunks if c[0] != where] + [(where, body)]
    return join_chunks(chunks)


def m_random(rng, data):
    n = rng.choice([0, 1, 11, 12, 13, 64, 1024])
    if rng.random() < 0.5:
        return rng.randbytes(n)
    body = b"BEAM" + rng.randbytes(n)
    return b"FOR1" + U32.pack(len(body)) + body


def _instructions(code: bytes):
    """``(start, opcode, operand spans)`` for each instruction of a valid Code chunk."""
    from beaminspect.format.compact import decode_operand
    from beaminspect.format.opcodes import ARITIES
    hsize = U32.unpack_from(code, 0)[0]
    pos = 4 + hsize
    out = []
    while pos < len(code):
        opc = code[pos]
        arity = ARITIES[opc]
        if arity < 0:
            break
        start = pos
        pos += 1
        spans = []
        for _ in range(arity):
            op, end = decode_operand(code, pos, len(code))
            spans.append((pos, end, op))
            pos = end
        out.append((start, opc, spans))
        if opc == 3:
            break
    return out


def m_code(rng, data):
    """Compact-term and opcode mutations inside the Code chunk."""
    chunks = split_chunks(data)
    idx = [i for i, c in enumerate(chunks or ()) if c[0] == b"Code"]
    if not idx:
        return m_bitflip(rng, data)
    ci = idx[0]
    code = chunks[ci][1]
    try:
        instrs = _instructions(code)
    except Exception:  # noqa: BLE001 - an already damaged chunk: fall back to bytes
        return m_bitflip(rng, data)
    with_ops = [ins for ins in instrs if ins[2]]
    if not with_ops:
        return m_bitflip(rng, data)
    start, opc, spans = rng.choice(with_ops)
    a, b, op = rng.choice(spans)
    hdr = struct.unpack_from(">IIIII", code, 0)
    label_count = hdr[3]
    kind = rng.randrange(9)
    kind_name = ("tag", "list", "atom", "label", "literal", "typed", "opcode", "header",
                 "integer")[kind]
    if kind == 0:    # another tag, same value bytes
        first = (code[a] & ~7) | rng.randrange(8)
        new = bytes([first]) + code[a + 1:b]
    elif kind == 1:  # an extended list with a huge count
        new = cenc(7, 1) + cenc(0, rng.choice([1 << 20, 1 << 31, 1 << 62, 1 << 100]))
    elif kind == 2:  # atom index out of range
        new = cenc(2, rng.choice([255, 4096, 1 << 31, 1 << 40]))
    elif kind == 3:  # label out of range
        new = cenc(5, label_count + rng.choice([0, 1, 1000, 1 << 33]))
    elif kind == 4:  # literal index out of range
        new = cenc(7, 4) + cenc(0, rng.choice([1000, 1 << 31, 1 << 64]))
    elif kind == 5:  # typed register with a bad type index / bad register tag
        new = cenc(7, 5) + cenc(rng.choice([3, 4, 0, 2]), 0) + cenc(0, rng.choice([999, 1 << 40]))
    elif kind == 6:  # unknown / obsolete / future opcode
        opbyte = rng.choice([0, 14, 17, 27, 181, 184, 200, 255])
        new = None
        code = code[:start] + bytes([opbyte]) + code[start + 1:]
    elif kind == 7:  # header highest opcode
        newmax = rng.choice([0, 150, 168, 169, 180, 181, 184, 255, 0xFFFFFFFF])
        code = code[:12] + U32.pack(newmax) + code[16:]
        new = None
    else:            # integers: huge or nested length
        new = rng.choice([cenc(1, 1 << 200), cenc(0, 1 << 70), bytes([0xF8]) + cenc(0, 1 << 40),
                          bytes([0xF9]) + bytes([0xF8]), cenc(7, 0) + b"\0" * 8,
                          cenc(7, rng.choice([6, 7, 15]))])
    if new is not None:
        code = code[:a] + new + code[b:]
    chunks[ci] = (b"Code", code)
    return kind_name, join_chunks(chunks)


def m_table_entry(rng, data):
    """An entry of ImpT / ExpT / LocT / FunT with an atom index, arity or label out of range."""
    chunks = split_chunks(data)
    cands = [i for i, c in enumerate(chunks or ()) if c[0] in (b"ImpT", b"ExpT", b"LocT", b"FunT")
             and len(c[1]) >= 16]
    if not cands:
        return m_bitflip(rng, data)
    i = rng.choice(cands)
    cid, body = chunks[i]
    rec = 24 if cid == b"FunT" else 12
    n = (len(body) - 4) // rec
    if n == 0:
        return m_bitflip(rng, data)
    e = 4 + rec * rng.randrange(n)
    f = e + 4 * rng.randrange(rec // 4)
    val = rng.choice([0, 255, 256, 1000, 0x7FFFFFFF, 0xFFFFFFFF])
    chunks[i] = (cid, body[:f] + U32.pack(val) + body[f + 4:])
    return join_chunks(chunks)


def m_atoms(rng, data):
    """Atom table damage: bad UTF-8, a length past the end, a long form."""
    chunks = split_chunks(data)
    idx = [i for i, c in enumerate(chunks or ()) if c[0] == b"AtU8"]
    if not idx:
        return m_bitflip(rng, data)
    i = idx[0]
    body = bytearray(chunks[i][1])
    kind = rng.randrange(3)
    if kind == 0 and len(body) > 6:
        body[5 + rng.randrange(min(8, len(body) - 5))] = 0xFF
    elif kind == 1 and len(body) > 4:
        body[4] = 0xFF
    else:
        body[0:4] = struct.pack(">i", -struct.unpack_from(">i", body, 0)[0])
    chunks[i] = (b"AtU8", bytes(body))
    return join_chunks(chunks)


MUTATORS: list[tuple[str, object, int]] = [
    ("bitflip", m_bitflip, 12),
    ("insert", m_insert, 5),
    ("delete", m_delete, 5),
    ("truncate", m_truncate, 6),
    ("form_size", m_form_size, 2),
    ("chunk_size", m_chunk_size, 6),
    ("table_count", m_table_count, 8),
    ("table_entry", m_table_entry, 6),
    ("atoms", m_atoms, 3),
    ("swap_chunks", m_swap_chunks, 3),
    ("duplicate_chunk", m_duplicate_chunk, 4),
    ("drop_chunk", m_drop_chunk, 5),
    ("litt_bomb", m_litt_bomb, 2),
    ("gzip_bomb", m_gzip_bomb, 1),
    ("gzip_wrap", m_gzip_wrap, 2),
    ("deep_term", m_deep_term, 2),
    ("random", m_random, 2),
    ("code", m_code, 16),
]


def pick_mutator(rng: random.Random, exclude=()):
    items = [(n, f, w) for n, f, w in MUTATORS if n not in exclude]
    total = sum(w for _n, _f, w in items)
    x = rng.uniform(0, total)
    for n, f, w in items:
        x -= w
        if x <= 0:
            return n, f
    return items[-1][0], items[-1][1]


@dataclass
class Mutant:
    source: str      # path of the original
    mutator: str     # name of the (first) mutator applied
    data: bytes
    seed: int

    @property
    def sha1(self) -> str:
        return hashlib.sha1(self.data).hexdigest()


def mutate(rng: random.Random, data: bytes, exclude=()) -> tuple[str, bytes]:
    name, fn = pick_mutator(rng, exclude)
    out = fn(rng, data)
    if isinstance(out, tuple):  # (sub-kind, data)
        name = f"{name}:{out[0]}"
        out = out[1]
    if rng.random() < 0.1 and name not in ("gzip_bomb", "gzip_wrap", "litt_bomb", "random") \
            and out:
        out = m_bitflip(rng, out)
        name += "+bitflip"
    return name, out


def generate(seed: int, sources: list[str], count: int, exclude=()):
    """``count`` mutants of ``sources`` (paths), deterministic for a seed."""
    rng = random.Random(seed)
    cache: dict[str, bytes] = {}
    for k in range(count):
        src = sources[k % len(sources)] if k < len(sources) else rng.choice(sources)
        if src not in cache:
            with open(src, "rb") as f:
                cache[src] = f.read()
        s = rng.randrange(1 << 30)
        name, data = mutate(random.Random(s), cache[src], exclude)
        yield Mutant(src, name, data, s)


# ---------------------------------------------------------------------------
# The checks (run inside a worker)
# ---------------------------------------------------------------------------

def _signature_of(exc: BaseException) -> str:
    """``Type at file:line`` of the innermost frame inside the package."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = ""
    for fr in reversed(tb):
        if os.sep + "beaminspect" + os.sep in fr.filename:
            where = f"{os.path.relpath(fr.filename, ROOT)}:{fr.lineno}"
            break
    if not where and tb:
        where = f"{os.path.basename(tb[-1].filename)}:{tb[-1].lineno}"
    return f"{type(exc).__name__} at {where}"


def cli_commands() -> list[str]:
    from beaminspect.cli import app as cli
    names = []
    for c in cli.app.registered_commands:
        names.append(c.name or c.callback.__name__.replace("_", "-"))
    return names


def _run_cli(argv: list[str]) -> tuple[int, str, str]:
    from beaminspect.cli import app as cli
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(argv)
    return rc, out.getvalue(), err.getvalue()


def check_input(data: bytes, original: str | None, path: str, commands: list[str],
                use_cli: bool) -> list[tuple[str, str, float]]:
    """Run every check on one input; a list of failures ``(signature, detail, seconds)``
    (empty when all is well).  The last entry is always the timing ``("", "", seconds)``."""
    import beaminspect
    failures = []
    t0 = time.perf_counter()
    steps = []
    try:
        beaminspect.load(data, file=path).decode_all()
    except beaminspect.BeamError:
        pass
    except RecursionError as e:
        failures.append((_signature_of(e), "RecursionError in the API", 0.0))
    except Exception as e:  # noqa: BLE001 - this is what we are looking for
        failures.append((_signature_of(e), f"{type(e).__name__}: {e}"[:300], 0.0))
    steps.append(("api", time.perf_counter() - t0))
    if use_cli:
        with open(path, "wb") as f:
            f.write(data)
        runs = []
        if "show" in commands:
            runs.append(("show", ["show", "--json", "-j", "1", path], (0, 2)))
        if "disasm" in commands:
            runs.append(("disasm", ["disasm", "--json", path], (0, 2)))
        if "check" in commands:
            runs.append(("check", ["check", "--otp", "25", path], (0, 1, 2)))
        if "diff" in commands and original is not None:
            runs.append(("diff", ["diff", original, path], (0, 1, 2)))
        for name, argv, allowed in runs:
            t1 = time.perf_counter()
            try:
                rc, _out, err = _run_cli(argv)
            except BaseException as e:  # noqa: BLE001 - SystemExit or anything escaping main
                failures.append((f"cli {name}: {_signature_of(e)}",
                                 f"{type(e).__name__}: {e}"[:300], 0.0))
                continue
            finally:
                steps.append((name, time.perf_counter() - t1))
            if "Traceback" in err:
                failures.append((f"cli {name}: traceback", err[-500:], 0.0))
            elif rc not in allowed:
                first = err.strip().splitlines()[:1]
                failures.append((f"cli {name}: exit {rc}", first[0][:300] if first else "", 0.0))
            elif rc == 2:
                lines = err.strip().splitlines()
                if len(lines) != 1 or not lines[0].startswith(f"beaminspect: {path}: "):
                    failures.append((f"cli {name}: exit 2 with {len(lines)} error lines",
                                     err[:300], 0.0))
    total = time.perf_counter() - t0
    for name, secs in steps:
        if secs > TIME_LIMIT:
            failures.append((f"slow {name} (> {TIME_LIMIT:g} s)", f"{secs:.2f} s", secs))
    failures.append(("", "", total))
    return failures


def _worker_main(conn, memory_limit: int, tmpdir: str, commands: list[str]) -> None:
    if memory_limit:
        try:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
        except (ValueError, OSError):
            pass
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))
    path = os.path.join(tmpdir, f"m{os.getpid()}.beam")
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        key, data, original, use_cli = msg
        try:
            res = check_input(data, original, path, commands, use_cli)
        except MemoryError:
            res = [("MemoryError (escaped the checks)", "", 0.0), ("", "", 0.0)]
        except BaseException as e:  # noqa: BLE001
            res = [(f"harness: {_signature_of(e)}", repr(e)[:300], 0.0), ("", "", 0.0)]
        conn.send((key, res))


class Worker:
    def __init__(self, ctx, memory_limit: int, tmpdir: str, commands: list[str]) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, memory_limit, tmpdir, commands),
                                daemon=True)
        self.proc.start()
        child.close()
        self.job = None
        self.started = 0.0

    def submit(self, job) -> None:
        self.job = job
        self.started = time.monotonic()
        self.conn.send(job)

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(1)
        self.conn.close()


@dataclass
class Report:
    tried: int = 0
    crashes: dict = field(default_factory=dict)   # signature -> list of (Mutant, detail)
    slowest: tuple = (0.0, None)
    seconds: float = 0.0
    by_mutator: dict = field(default_factory=dict)

    def add_crash(self, sig: str, mutant: Mutant, detail: str) -> None:
        self.crashes.setdefault(sig, []).append((mutant, detail))

    def text(self) -> str:
        lines = [f"inputs tried: {self.tried} in {self.seconds:.1f} s",
                 f"crashes: {sum(len(v) for v in self.crashes.values())} "
                 f"({len(self.crashes)} signatures)"]
        for sig, items in sorted(self.crashes.items(), key=lambda kv: -len(kv[1])):
            m, detail = items[0]
            lines.append(f"  {len(items):5d} x {sig}")
            lines.append(f"          e.g. {m.mutator} of {os.path.relpath(m.source, ROOT)}: "
                         f"{detail.splitlines()[0] if detail else ''}"[:200])
        secs, m = self.slowest
        if m is not None:
            lines.append(f"slowest input: {secs:.2f} s ({m.mutator} of "
                         f"{os.path.relpath(m.source, ROOT)}, {len(m.data)} bytes)")
        return "\n".join(lines)


def run_inputs(inputs, *, workers: int = 2, timeout: float = 2 * TIME_LIMIT + 6,
               memory_limit: int = MEMORY_LIMIT, cli_every: int = 1,
               deadline: float | None = None, on_result=None) -> Report:
    """Run every mutant of ``inputs`` through the checks in ``workers`` processes."""
    ctx = multiprocessing.get_context("fork")
    report = Report()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="beamfuzz") as tmpdir:
        from beaminspect.cli.app import app  # noqa: F401 - import before forking
        commands = cli_commands()
        pool = [Worker(ctx, memory_limit, tmpdir, commands) for _ in range(workers)]
        it = iter(inputs)
        pending: dict[int, Mutant] = {}
        k = 0
        exhausted = False

        def feed(w: Worker) -> None:
            nonlocal k, exhausted
            if exhausted or (deadline is not None and time.monotonic() > deadline):
                exhausted = True
                return
            try:
                m = next(it)
            except StopIteration:
                exhausted = True
                return
            k += 1
            pending[k] = m
            original = m.source if m.source and os.path.exists(m.source) \
                and not m.source.startswith(REGRESSIONS) else None
            w.submit((k, m.data, original, k % cli_every == 0))

        for w in pool:
            feed(w)
        while any(w.job is not None for w in pool):
            busy = [w for w in pool if w.job is not None]
            now = time.monotonic()
            wait_for = max(0.05, min(w.started + timeout - now for w in busy))
            ready = mp_wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], wait_for)
            for i, w in enumerate(pool):
                if w.job is None:
                    continue
                key = w.job[0]
                m = pending[key]
                result = None
                if w.conn in ready:
                    try:
                        _key, result = w.conn.recv()
                    except (EOFError, OSError):
                        result = None
                if result is None and (w.proc.sentinel in ready or not w.proc.is_alive()
                                       or time.monotonic() - w.started > timeout):
                    if w.proc.is_alive():
                        sig = f"timeout (> {timeout:g} s, worker killed)"
                    else:
                        code = w.proc.exitcode
                        sig = f"worker died (exit {code})"
                    w.kill()
                    result = [(sig, "", time.monotonic() - w.started),
                              ("", "", time.monotonic() - w.started)]
                    pool[i] = w = Worker(ctx, memory_limit, tmpdir, commands)
                if result is None:
                    continue
                report.tried += 1
                stats = report.by_mutator.setdefault(m.mutator.split("+")[0], [0, 0])
                stats[0] += 1
                total = result[-1][2]
                if total > report.slowest[0]:
                    report.slowest = (total, m)
                for sig, detail, _secs in result[:-1]:
                    stats[1] += 1
                    report.add_crash(sig, m, detail)
                if on_result is not None:
                    on_result(m, result)
                del pending[key]
                w.job = None
                feed(w)
        for w in pool:
            try:
                w.conn.send(None)
            except (OSError, BrokenPipeError):
                pass
            w.proc.join(2)
            if w.proc.is_alive():
                w.kill()
    report.seconds = time.monotonic() - t0
    return report


# ---------------------------------------------------------------------------
# Minimising a crashing input
# ---------------------------------------------------------------------------

def _fails_same(data: bytes, source: str, sig: str, runner) -> bool:
    return sig in runner(data, source)


def make_runner(memory_limit: int = MEMORY_LIMIT):
    """A function ``(data, source) -> set of failure signatures`` using one worker."""
    def run(data: bytes, source: str) -> set[str]:
        m = Mutant(source, "min", data, 0)
        rep = run_inputs([m], workers=1, memory_limit=memory_limit)
        return set(rep.crashes)
    return run


def minimise(data: bytes, source: str, sig: str, runner, budget: int = 200) -> bytes:
    """Remove chunks, then halve byte ranges, while the failure keeps its signature."""
    tries = 0

    def still(d: bytes) -> bool:
        nonlocal tries
        tries += 1
        return _fails_same(d, source, sig, runner)

    chunks = split_chunks(data)
    if chunks is not None:
        i = 0
        while i < len(chunks) and tries < budget:
            trial = chunks[:i] + chunks[i + 1:]
            cand = join_chunks(trial)
            if still(cand):
                chunks, data = trial, cand
            else:
                i += 1
    n = len(data) // 2
    while n >= 1 and tries < budget:
        i = 0
        progressed = False
        while i < len(data) and tries < budget:
            cand = data[:i] + data[i + n:]
            if cand and still(cand):
                data = cand
                progressed = True
            else:
                i += n
        if not progressed:
            n //= 2
    return data


def save_regression(data: bytes, directory: str = REGRESSIONS) -> str:
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, hashlib.sha1(data).hexdigest() + ".beam")
    with open(path, "wb") as f:
        f.write(data)
    return path


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------

def sources(corpus_dirs: list[str] | None, rng: random.Random, otp_per_round: int,
            max_otp_size: int) -> tuple[list[str], list[str]]:
    samples = sorted(glob.glob(SAMPLES_GLOB, recursive=True))
    for d in corpus_dirs or ():
        samples += sorted(glob.glob(os.path.join(d, "**", "*.beam"), recursive=True))
    otp = [p for p in sorted(glob.glob(OTP_GLOB)) if os.path.getsize(p) <= max_otp_size]
    return samples, otp


def mutant_stream(seed: int, samples: list[str], otp: list[str], otp_per_round: int):
    """Rounds: every sample once, plus ``otp_per_round`` random OTP beams, each mutated."""
    rng = random.Random(seed)
    cache: dict[str, bytes] = {}
    rnd = 0
    while True:
        chosen = list(samples) + (rng.sample(otp, min(otp_per_round, len(otp))) if otp else [])
        rng.shuffle(chosen)
        for src in chosen:
            data = cache.get(src)
            if data is None:
                with open(src, "rb") as f:
                    data = f.read()
                if len(cache) < 400:
                    cache[src] = data
            s = rng.randrange(1 << 30)
            name, out = mutate(random.Random(s), data)
            yield Mutant(src, name, out, s)
        rnd += 1


def fuzz(seed: int = 1, seconds: float = 20.0, max_inputs: int | None = None,
         corpus_dirs=None, workers: int | None = None, otp_per_round: int = 12,
         max_otp_size: int = 120_000, cli_every: int = 2, quiet: bool = True) -> Report:
    """A bounded fuzzing run (the short run tests use)."""
    rng = random.Random(seed)
    samples, otp = sources(corpus_dirs, rng, otp_per_round, max_otp_size)
    stream = mutant_stream(seed, samples, otp, otp_per_round)
    if max_inputs is not None:
        stream = (m for _, m in zip(range(max_inputs), stream))
    for size in (1 << 28, 1 << 30):  # build the bombs before the clock starts
        zlib_bomb(size)
        gzip_bomb(size)
    workers = workers or max(1, min(4, os.cpu_count() or 1))
    deadline = time.monotonic() + seconds
    return run_inputs(stream, workers=workers, deadline=deadline, cli_every=cli_every)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--long", action="store_true", help="run for about 10 minutes")
    ap.add_argument("--seconds", type=float, help="run time (default 20, or 600 with --long)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-inputs", type=int)
    ap.add_argument("--corpus", nargs="*", default=[], help="more directories of .beam files")
    ap.add_argument("--workers", type=int)
    ap.add_argument("--no-save", action="store_true", help="do not minimise and save crashes")
    args = ap.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else (600.0 if args.long else 20.0)
    report = fuzz(seed=args.seed, seconds=seconds, max_inputs=args.max_inputs,
                  corpus_dirs=args.corpus, workers=args.workers,
                  otp_per_round=40 if args.long else 12,
                  max_otp_size=400_000 if args.long else 120_000,
                  cli_every=1 if args.long else 2)
    print(report.text())
    if report.crashes and not args.no_save:
        runner = make_runner()
        for sig, items in sorted(report.crashes.items()):
            if sig.startswith("slow ") or sig.startswith("timeout"):
                # minimising a slow input would take as long as the run; keep it whole
                path = save_regression(items[0][0].data)
            else:
                m = items[0][0]
                small = minimise(m.data, m.source, sig, runner)
                path = save_regression(small)
            print(f"saved {os.path.relpath(path, ROOT)}  ({sig})")
    return 1 if report.crashes else 0


if __name__ == "__main__":
    sys.exit(main())
