"""One decoder per chunk id, each returning typed immutable records.

Every decoder takes the chunk's bytes (a memoryview) and raises a
:class:`~beaminspect.errors.BeamError` with the chunk id and the offset within the
chunk's data for anything malformed.  Decoders are called on first use by
:class:`beaminspect.module.BeamModule`; nothing here is decoded eagerly.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from itertools import repeat
from typing import NamedTuple

from beaminspect import terms
from beaminspect.errors import FormatError, LimitError, TruncatedError
from beaminspect.format.reader import Reader

#: The largest inflated literal table accepted (the loader allocates what LitT claims).
MAX_LITERAL_TABLE = 64 * 1024 * 1024

# ``tuple.__new__(Record, values)`` builds a NamedTuple record without the Python-level
# ``__new__`` call; used with map() over whole tables.
_new_tuple = tuple.__new__


# ---------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------

class FunctionEntry(NamedTuple):
    """An ExpT or LocT entry: a function and its entry label."""

    name: str
    arity: int
    label: int

    @property
    def mfa(self) -> str:
        return f"{self.name}/{self.arity}"


class Import(NamedTuple):
    """An ImpT entry: an external function the module calls."""

    module: str
    function: str
    arity: int

    def __str__(self) -> str:
        return f"{self.module}:{self.function}/{self.arity}"


class Lambda(NamedTuple):
    """A FunT entry.  ``arity`` includes the free variables; ``index`` is the fun's
    index in the module; ``old_uniq`` is ignored by the module MD5."""

    name: str
    arity: int
    label: int
    index: int
    num_free: int
    old_uniq: int

    @property
    def user_arity(self) -> int:
        return self.arity - self.num_free


@dataclass(frozen=True)
class CodeHeader:
    """The Code chunk header and where the instructions start (offset within the chunk)."""

    header_size: int
    instruction_set: int
    max_opcode: int
    label_count: int
    function_count: int
    code_offset: int


@dataclass(frozen=True)
class LineTable:
    """The Line chunk: ``items[i]`` is ``(file_index, line)`` for ``line i`` operands
    (item 0 is the unknown location), ``names[0]`` is the module's own source file."""

    version: int
    flags: int
    instruction_count: int
    items: tuple[tuple[int, int], ...]
    names: tuple[str, ...]

    def lookup(self, index: int) -> tuple[str, int] | None:
        """``(file, line)`` for a ``line`` operand, or None for 0 / out of range."""
        if index <= 0 or index >= len(self.items):
            return None
        f, line = self.items[index]
        name = self.names[f] if f < len(self.names) else "?"
        return (name, line)


#: Type bit names per Type chunk version (bit i = names[i]).
_TYPE_BITS = {
    1: ("atom", "bitstring", "bs_context", "cons", "float", "fun", "integer", "map", "nil",
        "pid", "port", "reference", "tuple"),
    2: ("atom", "bitstring", "bs_context", "cons", "float", "fun", "integer", "map", "nil",
        "pid", "port", "reference", "tuple"),
    3: ("atom", "bitstring", "cons", "float", "fun", "integer", "map", "nil", "pid", "port",
        "reference", "tuple"),
    4: ("atom", "bitstring", "cons", "float", "fun", "integer", "map", "nil", "pid", "port",
        "reference", "tuple", "record"),
}


@dataclass(frozen=True)
class BeamType:
    """One entry of the Type chunk: the possible types, and integer range or bitstring unit."""

    types: tuple[str, ...]
    is_any: bool
    min: int | None = None
    max: int | None = None
    unit: int | None = None

    def __str__(self) -> str:
        if self.is_any:
            base = "any"
        elif not self.types:
            base = "none"
        else:
            base = "|".join(self.types)
        extra = []
        if self.min is not None or self.max is not None:
            lo = "-inf" if self.min is None else str(self.min)
            hi = "+inf" if self.max is None else str(self.max)
            extra.append(f"{lo}..{hi}")
        if self.unit is not None:
            extra.append(f"unit:{self.unit}")
        return f"{base}({', '.join(extra)})" if extra else base


@dataclass(frozen=True)
class TypeTable:
    """The Type chunk.  ``entries`` is empty when the version is unknown (``known`` is
    False): the loader then ignores the chunk, and so does the disassembler."""

    version: int
    entries: tuple[BeamType, ...]
    known: bool = True

    def get(self, index: int) -> BeamType | None:
        if 0 <= index < len(self.entries):
            return self.entries[index]
        return None


# ---------------------------------------------------------------------------
# Decoders
# ---------------------------------------------------------------------------

def _compact_u(r: Reader, what: str) -> int:
    """A compact-term unsigned integer (tag u), as OTP 28 uses for long atom lengths."""
    start = r.pos
    b = r.u8(what)
    tag = b & 7
    if tag != 0:
        raise r.error(f"{what}: expected a u-tagged compact term, got tag {tag}", start)
    if not b & 0x08:
        return b >> 4
    if not b & 0x10:
        return ((b >> 5) << 8) | r.u8(what)
    n = b >> 5
    if n == 7:
        n = _compact_u(r, what) + 9
    else:
        n += 2
    if n > 8:
        raise r.error(f"{what}: length of {n} bytes is too large", start, LimitError)
    raw = r.take(n, what)
    return int.from_bytes(raw, "big")


def decode_atoms(view: memoryview, chunk: str, file: str | None) -> tuple[str, ...]:
    """AtU8 (UTF-8) or Atom (latin-1).  A negative count is OTP 28's long-atom form,
    where each length is a compact ``u`` term."""
    r = Reader(view, chunk=chunk, file=file)
    count = r.i32("atom count")
    long_form = count < 0
    if long_form:
        count = -count
    r.count(count, 1, "atom table")
    encoding = "latin-1" if chunk == "Atom" else "utf-8"
    out = []
    buf = r.buf
    if not long_form:
        raw = bytes(buf)
        size = len(raw)
        # Latin-1 maps each byte to one character, so when the text is ASCII (or the
        # table is latin-1) one decode of the whole chunk and string slices give every
        # atom; otherwise each atom is decoded on its own.
        text = raw.decode("latin-1") if encoding == "latin-1" or raw.isascii() else None
        pos = 4
        append = out.append
        for i in range(count):
            if pos >= size:
                raise TruncatedError(f"atom {i + 1} of {count} runs past the end", file=file,
                                     chunk=chunk, offset=pos)
            a = pos + 1
            pos = a + raw[pos]
            if pos > size:
                raise TruncatedError(f"atom {i + 1} of {count} runs past the end", file=file,
                                     chunk=chunk, offset=a - 1)
            if text is not None:
                append(text[a:pos])
                continue
            try:
                append(raw[a:pos].decode(encoding))
            except UnicodeDecodeError:
                raise FormatError(f"atom {i + 1} is not valid {encoding}", file=file, chunk=chunk,
                                  offset=a) from None
    else:
        for i in range(count):
            at = r.pos
            n = _compact_u(r, "atom length")
            raw = r.take(n, "atom text")
            try:
                out.append(bytes(raw).decode(encoding))
            except UnicodeDecodeError:
                raise FormatError(f"atom {i + 1} is not valid {encoding}", file=file, chunk=chunk,
                                  offset=at) from None
    if count == 0:
        raise FormatError("the atom table is empty (atom 1 must be the module name)", file=file,
                          chunk=chunk, offset=0)
    return tuple(out)


#: The name given to atom index 0 in a table entry.  The loader accepts index 0 there
#: (its atom table reserves slot 0 for ``[]``, which operands encode as atom 0).
ATOM_ZERO = "[]"


def _atom(atoms: tuple[str, ...], index: int, chunk: str, file, offset: int) -> str:
    if 0 <= index <= len(atoms):
        return ATOM_ZERO if index == 0 else atoms[index - 1]
    raise FormatError(f"atom index {index} out of range (0..{len(atoms)})", file=file, chunk=chunk,
                      offset=offset)


def _table(view: memoryview, chunk: str, file, record: int):
    r = Reader(view, chunk=chunk, file=file)
    n = r.u32("entry count")
    r.count(n, record, f"{chunk} table")
    return n, view[4:4 + n * record]


def _names(atoms, indices, chunk: str, file, record: int, field: int) -> list:
    """The atoms named by one field of each record (``indices``, in table order); an
    index out of range raises with the offset of that record's field."""
    if indices and max(indices) > len(atoms):
        for i, a in enumerate(indices):
            _atom(atoms, a, chunk, file, 4 + record * i + field)
    names = (ATOM_ZERO,) + atoms
    return [names[a] for a in indices]


def decode_functions(view: memoryview, atoms, chunk: str, file) -> tuple[FunctionEntry, ...]:
    """ExpT or LocT."""
    n, body = _table(view, chunk, file, 12)
    flat = struct.unpack(f">{3 * n}I", body)
    names = _names(atoms, flat[0::3], chunk, file, 12, 0)
    return tuple(map(_new_tuple, repeat(FunctionEntry), zip(names, flat[1::3], flat[2::3])))


def decode_imports(view: memoryview, atoms, file) -> tuple[Import, ...]:
    n, body = _table(view, "ImpT", file, 12)
    flat = struct.unpack(f">{3 * n}I", body)
    # Check every module index before any function index, as entries are read in order.
    if flat and max(flat[0::3] + flat[1::3]) > len(atoms):
        for i in range(n):
            off = 4 + 12 * i
            _atom(atoms, flat[3 * i], "ImpT", file, off)
            _atom(atoms, flat[3 * i + 1], "ImpT", file, off + 4)
    names = (ATOM_ZERO,) + atoms
    return tuple(map(_new_tuple, repeat(Import),
                     zip([names[a] for a in flat[0::3]], [names[a] for a in flat[1::3]],
                         flat[2::3])))


def decode_lambdas(view: memoryview, atoms, file) -> tuple[Lambda, ...]:
    n, body = _table(view, "FunT", file, 24)
    flat = struct.unpack(f">{6 * n}I", body)
    names = _names(atoms, flat[0::6], "FunT", file, 24, 0)
    return tuple(map(_new_tuple, repeat(Lambda),
                     zip(names, flat[1::6], flat[2::6], flat[3::6], flat[4::6], flat[5::6])))


def literal_table_bytes(view: memoryview, file, limit: int = MAX_LITERAL_TABLE) -> memoryview:
    """The LitT table (``u32 count, count x (u32 size, term)``), inflated if compressed.

    OTP 25-27: ``u32 uncompressed size`` + zlib data.  OTP 28+: a leading ``u32 0``
    then the table uncompressed.  The claimed size is checked against ``limit`` before
    anything is inflated, and inflation never produces more than the claim.
    """
    r = Reader(view, chunk="LitT", file=file)
    claimed = r.u32("uncompressed size")
    if claimed == 0:
        return view[4:]
    if claimed > limit:
        raise LimitError(f"literal table claims {claimed} bytes uncompressed (limit {limit})",
                         file=file, chunk="LitT", offset=0)
    d = zlib.decompressobj()
    try:
        out = d.decompress(view[4:], claimed)
    except zlib.error as e:
        raise FormatError(f"corrupt zlib data: {e}", file=file, chunk="LitT", offset=4) from None
    if d.unconsumed_tail:
        raise LimitError(f"literal table inflates beyond the {claimed} bytes it claims", file=file,
                         chunk="LitT", offset=4)
    if not d.eof and len(out) < claimed:
        # A stream cut short after the claimed bytes is taken, as the loader takes it.
        raise TruncatedError("zlib data ends early", file=file, chunk="LitT", offset=len(view))
    return memoryview(out)


def literal_count(view: memoryview, file, limit: int = MAX_LITERAL_TABLE) -> int:
    """The number of literals in LitT, reading only the table's first four bytes: for a
    compressed table, only as much zlib data as gives those bytes is inflated.

    The same limits as :func:`literal_table_bytes` apply to the claimed size, and the
    count must fit in it (five bytes at least per literal); the literals themselves are
    not checked (:class:`LiteralTable` does that when they are read).
    """
    r = Reader(view, chunk="LitT", file=file)
    claimed = r.u32("uncompressed size")
    if claimed == 0:
        t = Reader(view[4:], chunk="LitT", file=file)
        n = t.u32("literal count")
        t.count(n, 5, "literal table")
        return n
    if claimed > limit:
        raise LimitError(f"literal table claims {claimed} bytes uncompressed (limit {limit})",
                         file=file, chunk="LitT", offset=0)
    d = zlib.decompressobj()
    try:
        head = d.decompress(view[4:], 4)
    except zlib.error as e:
        raise FormatError(f"corrupt zlib data: {e}", file=file, chunk="LitT", offset=4) from None
    if len(head) < 4:
        if d.eof or not d.unconsumed_tail:
            raise TruncatedError("zlib data ends early", file=file, chunk="LitT",
                                 offset=len(view))
    t = Reader(head, chunk="LitT", file=file, end=min(claimed, 4))
    n = t.u32("literal count")
    if n * 5 > claimed - 4:
        raise TruncatedError(
            f"literal table claims {n} entries ({n * 5} bytes) but only {claimed - 4} bytes "
            "remain", file=file, chunk="LitT", offset=4)
    return n


class LiteralTable:
    """The literal table, decoding each literal on first access."""

    __slots__ = ("_data", "_offsets", "_cache", "_file", "_base")

    def __init__(self, data: memoryview, file, base: int) -> None:
        self._data = data
        self._file = file
        self._base = base  # offset of the table inside the chunk when stored uncompressed
        r = Reader(data, chunk="LitT", file=file)
        n = r.u32("literal count")
        r.count(n, 5, "literal table")
        offsets = []
        for _ in range(n):
            size = r.u32("literal size")
            offsets.append((r.pos, size))
            r.take(size, "literal")
        self._offsets = tuple(offsets)
        self._cache: dict[int, object] = {}

    def __len__(self) -> int:
        return len(self._offsets)

    def __getitem__(self, index: int):
        if not isinstance(index, int):
            return [self[i] for i in range(len(self))[index]]
        try:
            return self._cache[index]
        except KeyError:
            pass
        if index < 0:
            index += len(self._offsets)
        pos, size = self._offsets[index]
        value = terms.decode(self._data[pos:pos + size], file=self._file, chunk="LitT",
                             base_offset=self._base + pos)
        self._cache[index] = value
        return value

    def __iter__(self):
        for i in range(len(self._offsets)):
            yield self[i]

    def raw(self, index: int) -> bytes:
        pos, size = self._offsets[index]
        return bytes(self._data[pos:pos + size])


def decode_code_header(view: memoryview, file) -> CodeHeader:
    r = Reader(view, chunk="Code", file=file)
    hsize = r.u32("header size")
    if hsize < 16:
        raise FormatError(f"header size {hsize} is smaller than 16", file=file, chunk="Code",
                          offset=0)
    r.need(hsize, "Code header")
    iset = r.u32("instruction set")
    max_op = r.u32("highest opcode")
    labels = r.u32("label count")
    funcs = r.u32("function count")
    return CodeHeader(hsize, iset, max_op, labels, funcs, 4 + hsize)


def decode_lines(view: memoryview, file) -> LineTable:
    r = Reader(view, chunk="Line", file=file)
    version = r.u32("version")
    if version != 0:
        return LineTable(version, 0, 0, ((0, 0),), ())
    flags = r.u32("flags")
    ninstr = r.u32("line instruction count")
    nitems = r.u32("item count")
    nnames = r.u32("name count")
    r.count(nitems, 1, "line items")
    r.count(nnames, 2, "file names")
    items = [(0, 0)]
    findex = 0
    buf = r.buf
    while len(items) <= nitems:
        at = r.pos
        b = r.u8("line item")
        tag = b & 7
        if not b & 0x08:
            val = b >> 4
        elif not b & 0x10:
            val = ((b >> 5) << 8) | r.u8("line item")
        else:
            n = (b >> 5) + 2
            if n > 8:
                raise r.error("line item value too large", at, LimitError)
            val = int.from_bytes(r.take(n, "line item"), "big")
        if tag == 1:  # i: a line in the current file
            items.append((findex, val))
        elif tag == 2:  # a: switch file
            # The loader counts the implicit module file with the names and then tests
            # index <= count (beam_file.c, parse_line_chunk), so it takes one index past
            # the table: such an item keeps an unknown file name ("?"), as it loads.
            if val > nnames + 1:
                raise r.error(f"file index {val} out of range (0..{nnames + 1})", at)
            findex = val
        else:
            raise r.error(f"illegal line item tag {tag}", at)
    names = [""]
    for i in range(nnames):
        at = r.pos
        n = r.u16("file name length")
        raw = r.take(n, "file name")
        try:
            names.append(bytes(raw).decode("utf-8"))
        except UnicodeDecodeError:
            raise r.error(f"file name {i + 1} is not valid UTF-8", at) from None
    del buf
    return LineTable(version, flags, ninstr, tuple(items), tuple(names))


def decode_types(view: memoryview, file) -> TypeTable:
    """The Type chunk, versions 1 (OTP 25) to 4 (OTP 29).  An unknown version gives an
    empty table with ``known=False`` (the loader ignores it the same way)."""
    r = Reader(view, chunk="Type", file=file)
    version = r.u32("version")
    if version not in _TYPE_BITS:
        return TypeTable(version, (), known=False)
    count = r.u32("type count")
    names = _TYPE_BITS[version]
    nbits = len(names)
    any_mask = (1 << nbits) - 1
    r.count(count, 18 if version == 1 else 2, "type table")
    out = []
    buf = r.buf
    for _ in range(count):
        bits = r.u16("type bits")
        types = tuple(names[i] for i in range(nbits) if bits >> i & 1)
        is_any = (bits & any_mask) == any_mask
        lo = hi = unit = None
        if version == 1:
            lo_raw, hi_raw = struct.unpack(">qq", r.take(16, "type range"))
            if lo_raw <= hi_raw:
                lo, hi = lo_raw, hi_raw
        else:
            if bits >> nbits & 1:
                lo = struct.unpack(">q", r.take(8, "lower bound"))[0]
            if bits >> (nbits + 1) & 1:
                hi = struct.unpack(">q", r.take(8, "upper bound"))[0]
            if bits >> (nbits + 2) & 1:
                unit = r.u8("unit") + 1
        out.append(BeamType(types, is_any, lo, hi, unit))
    del buf
    return TypeTable(version, tuple(out))


def type_version_known(version: int) -> bool:
    """Whether :func:`decode_types` knows this Type chunk version."""
    return version in _TYPE_BITS


def decode_term_chunk(view: memoryview, chunk: str, file):
    """Attr, CInf, Meta, Docs, ExCk, Dbgi, Abst: one term in external format."""
    if len(view) == 0:
        return None
    if len(view) >= 2 and view[0] == terms.VERSION_MAGIC and view[1] != terms.COMPRESSED:
        # Like binary_to_term/1, bytes after the term are ignored.
        return terms.decode_at(view, 1, file=file, chunk=chunk, base_offset=0)[0]
    return terms.decode(view, file=file, chunk=chunk)
