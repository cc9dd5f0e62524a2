"""Will the runtime system load this file?  A static model of the OTP loader.

:func:`check_file` predicts what ``erlang:prepare_loading(Module, Binary)`` of a given
OTP release answers for a file, without running Erlang.  ``Module`` is the module
name taken from the file name (``foo.beam`` -> ``foo``), as ``code:load_file/1``
passes it; for bytes without a name the name check is skipped.

The model follows the loader's own steps (erts/emulator/beam/beam_file.c and
beam_load.c) and uses its words for the reasons:

1. the container: ``FOR1``, a form size that fits, ``BEAM``, and chunks whose padded
   size fits ("corrupt file header"); the last chunk of an id is used, an empty chunk
   counts as missing;
2. the Code header (size, instruction set 0), the atom table (``AtU8``; a file with
   only ``Atom`` must be re-compiled), ImpT, ExpT, FunT, LitT (inflated, each literal
   decoded), Line (version 0) and Type (the release's version; the first entry must be
   "any");
3. the module name, and the highest opcode against the release's;
4. every instruction: a known opcode, operands the loader's reader accepts (atom,
   label, literal, register and type indexes in range, no float or unknown extended
   operand, integers normalised), lists only last, the ``label [line] func_info
   label`` shape of function starts, ``int_code_end``; obsolete opcodes the release
   refuses; labels defined once and every referenced label defined.

5. after reading, what the loader's transformation rules (``ops.tab``) and specific
   instructions (jit/asm_load.c) make of each operand: the kinds of operand refused at
   each position of each generic instruction (``bad tag N for destination``, ``no
   specific operation found``...), BIF imports that are not BIFs, line indexes and line
   table size, fun indexes and free-variable counts, the function count.  The kinds come
   from the release's data file ``beaminspect/loader/rules/otpN.json`` (see
   :mod:`beaminspect.loader.rules`), measured on that release's VM by
   tools/gen_loader_rules.py; releases without one get the reader's checks of step 4
   and the line checks only.

The bytes are read with the format layer (:class:`~beaminspect.format.reader.Reader`,
:func:`~beaminspect.format.container.read_container`, the tag and extended-kind numbers
of :mod:`beaminspect.format.compact`, opcodes by name from
:mod:`beaminspect.format.opcodes`); per-release facts come from :mod:`beaminspect.otp`.
What stays here are the loader's own, stricter rules: how it fails (one reason per
table), signed sizes, padded chunks, word-sized operand values.
"""

from __future__ import annotations

import functools
import os
import struct
import zlib
from dataclasses import dataclass

from beaminspect import terms
from beaminspect import otp as releases
from beaminspect.errors import BeamError, LimitError, NotBeamError
from beaminspect.format import compact
from beaminspect.format.chunks import MAX_LITERAL_TABLE
from beaminspect.format.container import MAX_INFLATED_SIZE, gunzip, read_container
from beaminspect.format.opcodes import BY_NAME, OPCODES
from beaminspect.format.reader import Reader
from beaminspect.loader import rules as loader_rules
from beaminspect.otp import (DEFAULT_FEATURES, KNOWN_FEATURES, REFUSED_SINCE,
                             TYPE_VERSION_BY_RELEASE)

__all__ = ["Verdict", "check_file", "check_bytes", "TYPE_VERSION_BY_RELEASE",
           "KNOWN_FEATURES", "DEFAULT_FEATURES"]

#: Registers the loader accepts (MAX_REG).
MAX_REG = 1024
#: Largest arity (MAX_ARG).
MAX_ARG = 255
#: Smallest release whose compiler output the loader still takes (the header's
#: highest opcode must be at least that release's ``swap``; checked from OTP 26 on).
_MIN_SMALL, _MAX_SMALL = -(1 << 59), (1 << 59) - 1

PLEASE_RECOMPILE = "please re-compile this module with an Erlang/OTP {otp} compiler"

#: Obsolete opcodes the loader still translates into current instructions.
_STILL_LOADED = frozenset({"allocate_zero", "allocate_heap_zero", "put_literal",
                           "bs_start_match2", "bs_save2", "bs_restore2", "bs_context_to_binary",
                           "fclearerror", "fcheckerror", "recv_mark", "recv_set",
                           "bs_init2", "bs_init_bits", "bs_bits_to_bytes", "bs_add",
                           "bs_append", "bs_private_append", "bs_utf8_size", "bs_utf16_size",
                           "bs_put_utf8", "bs_put_utf16", "bs_put_utf32", "bs_put_integer",
                           "bs_put_binary", "bs_put_float", "bs_put_string", "make_fun2"})

def _op(name: str) -> int:
    return BY_NAME[name].number


_OP_LABEL, _OP_FUNC_INFO, _OP_INT_CODE_END, _OP_LINE = (
    _op("label"), _op("func_info"), _op("int_code_end"), _op("line"))
_OP_MOVE = _op("move")
_OP_BIF0 = _op("bif0")
#: call_last, call_only, call_ext_last, call_ext_only: a ``line`` before them may go.
_OP_CALL_LAST, _OP_CALL_ONLY = _op("call_last"), _op("call_only")
_OP_CALL_EXT_LAST, _OP_CALL_EXT_ONLY = _op("call_ext_last"), _op("call_ext_only")

#: Opcode -> position of the BIF import of bif0..bif3 and gc_bif1..gc_bif3.
_BIF_OPERAND = {BY_NAME[name].number: pos for name, pos in (
    ("bif0", 0), ("bif1", 1), ("bif2", 1), ("bif3", 1),
    ("gc_bif1", 2), ("gc_bif2", 2), ("gc_bif3", 2)) if name in BY_NAME}
#: Opcode -> position of its ImpT index operand (call_ext*, bif*, gc_bif*).
_IMPORT_OPERAND = {_op("call_ext"): 1, _op("call_ext_last"): 1, _op("call_ext_only"): 1,
                   **_BIF_OPERAND}

#: Raw compact-term tag numbers (format/compact.py).
_TAG_U, _TAG_I, _TAG_A, _TAG_X, _TAG_Y, _TAG_F, _TAG_H, _TAG_Z = (
    compact.TAG_NUMBERS[t] for t in compact.TAG_NAMES)


@dataclass(frozen=True)
class Verdict:
    """``loads``: whether the release's loader takes the file; ``reason``: the loader's
    words when it refuses; ``code``: a stable identifier of the reason."""

    loads: bool
    reason: str | None = None
    code: str | None = None

    def to_dict(self) -> dict:
        return {"loads": self.loads, "reason": self.reason, "code": self.code}


class _Refused(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _refuse(code: str, reason: str):
    raise _Refused(code, reason)


_I32 = struct.Struct(">i")


class _R(Reader):
    """The format layer's reader, failing the way the loader's ``LoadAssert`` does: a
    read past the end refuses the file with the reason of the table being read.
    ``pos`` counts from the start of ``buf``."""

    __slots__ = ("fail",)

    def __init__(self, buf, pos: int, end: int, fail: tuple[str, str]) -> None:
        super().__init__(buf, 0, end)
        self.pos = pos
        self.fail = fail

    def bad(self):
        raise _Refused(*self.fail)

    def need(self, n: int, what: str = "data") -> None:
        if n < 0 or self.pos + n > self.end:
            raise _Refused(*self.fail)

    def take(self, n: int, what: str = "data") -> bytes:
        return bytes(super().take(n, what))

    def tagged(self):
        """``(tag, value, size)`` as the loader's ``beamreader_read_tagged``: ``size`` is 0
        when the value fits a word; tag 8 ("o") marks an overflowing non-integer."""
        b = self.u8()
        tag = b & 7
        if not b & 0x08:
            return tag, b >> 4, 0
        if not b & 0x10:
            return tag, ((b >> 5) << 8) | self.u8(), 0
        n = b >> 5
        if n < 7:
            count = n + 2
        else:
            ptag, plen, psize = self.tagged()
            if ptag != _TAG_U or psize or plen >= 0x7FFFFFFF - 9:
                self.bad()
            count = plen + 9
        raw = self.take(count)
        if count <= 8:
            word = int.from_bytes(raw, "big")
            if tag == _TAG_I:
                v = int.from_bytes(raw, "big", signed=True)
                if _MIN_SMALL <= v <= _MAX_SMALL:
                    return tag, v, 0
            elif word < (1 << 63):
                return tag, word, 0
        if tag == _TAG_U:
            return _TAG_U_BIG, None, count
        if tag != _TAG_I:
            return _TAG_OVERFLOW, None, count
        return tag, int.from_bytes(raw, "big", signed=True), count


def _check_table_count(count: int, minimum: int, item_size: int) -> bool:
    return minimum <= count < (1 << 30) // item_size


# ---------------------------------------------------------------------------
# Container and tables (beam_file.c: beamfile_read)
# ---------------------------------------------------------------------------

def _chunks(data: bytes) -> dict[bytes, memoryview]:
    """The chunks the loader uses, by id (the last of an id), read with
    :func:`~beaminspect.format.container.read_container` after the loader's stricter
    header rules: a signed form size that fits, and every chunk padded to 4 bytes."""
    hdr = ("corrupt_file_header", "corrupt file header")
    if len(data) < 8 or data[:4] != b"FOR1":
        _refuse(*hdr)
    form_size = _I32.unpack_from(data, 4)[0]
    if form_size < 4 or form_size > len(data) - 8:
        _refuse(*hdr)
    try:
        container = read_container(data[:8 + form_size], "<check>")
    except NotBeamError:
        _refuse("not_beam", "not a BEAM file: IFF form type is not 'BEAM'")
    except BeamError:
        _refuse(*hdr)
    found: dict[bytes, memoryview] = {}
    end = 8 + form_size
    for info in container.chunks:
        if info.size > 0x7FFFFFFF or info.offset + ((info.size + 3) & ~3) > end:
            _refuse(*hdr)
        found[info.id.encode("latin-1")] = container.view(info)
    return found


def _atoms(view, otp: int) -> list[str]:
    r = _R(view, 0, len(view), ("corrupt_atom_table", "corrupt atom table"))
    count = r.i32()
    long_counts = False
    if count < 0 and otp >= releases.LONG_ATOM_COUNTS_SINCE:
        long_counts, count = True, -count
    if not _check_table_count(count, 1, 8):
        r.bad()
    out = []
    for _ in range(count):
        if long_counts:
            tag, n, size = r.tagged()
            if tag != 0 or size:
                r.bad()
        else:
            n = r.u8()
        raw = r.take(n)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            r.bad()
        if len(text) > 255:
            r.bad()
        out.append(text)
    return out


def _imports(view, natoms: int) -> list[tuple[int, int, int]]:
    r = _R(view, 0, len(view), ("corrupt_import_table", "corrupt import table"))
    count = r.i32()
    if not _check_table_count(count, 0, 24):
        r.bad()
    out = []
    for _ in range(count):
        m, f, a = r.i32(), r.i32(), r.i32()
        if not (0 <= m <= natoms and 0 <= f <= natoms and 0 <= a <= MAX_ARG):
            r.bad()
        out.append((m, f, a))
    return out


def _exports(view, natoms: int) -> list[tuple[int, int, int]]:
    r = _R(view, 0, len(view), ("corrupt_export_table", "corrupt export table"))
    count = r.i32()
    if not _check_table_count(count, 0, 24):
        r.bad()
    out = []
    for _ in range(count):
        a, arity, label = r.i32(), r.i32(), r.i32()
        if not (0 <= a <= natoms and 0 <= arity <= MAX_ARG and label >= 0):
            r.bad()
        out.append((a, arity, label))
    return out


def _lambdas(view, natoms: int) -> list[tuple[int, int]]:
    """``(label, number of free variables)`` of each FunT entry."""
    r = _R(view, 0, len(view), ("corrupt_lambda_table", "corrupt lambda table"))
    count = r.i32()
    if not _check_table_count(count, 0, 40):
        r.bad()
    labels = []
    for _ in range(count):
        a, _arity, label, _index, _nfree, _uniq = (r.i32() for _ in range(6))
        if not (0 <= a <= natoms and label >= 0):
            r.bad()
        labels.append((label, _nfree))
    # The module MD5 walks the table in 24-byte steps and refuses a remainder.
    if (len(view) - 4) % 24:
        r.bad()
    return labels


def _literals(view, otp: int) -> int:
    fail = ("corrupt_literal_table", "corrupt literal table")
    r = _R(view, 0, len(view), fail)
    claimed = r.i32()
    if claimed == 0 and otp >= releases.LITT_UNCOMPRESSED_SINCE:
        # OTP 28+: a size of 0, then the table itself, not compressed.
        return _literal_entries(bytes(view[4:]), fail)
    if claimed < 0:
        _refuse("literal_table_too_large",
                f"the literal table claims {claimed & 0xFFFFFFFF} bytes: the loader would "
                "fail to allocate them")
    if claimed > MAX_LITERAL_TABLE:
        # Not the loader's refusal (it allocates what is claimed): beaminspect's bound.
        _refuse("literal_table_over_limit",
                f"the literal table claims {claimed} bytes uncompressed (beaminspect "
                f"inflates at most {MAX_LITERAL_TABLE})")
    d = zlib.decompressobj()
    try:
        table = d.decompress(bytes(view[4:]), claimed + 1)
    except zlib.error:
        _refuse(*fail)
    except MemoryError:
        _refuse("literal_table_too_large",
                f"not enough memory to inflate the {claimed} bytes the literal table claims")
    # The loader takes a stream cut short once it has given the claimed size (the
    # checksum after the data is not needed; measured on OTP 25's prepare_loading).
    if len(table) > claimed or (not d.eof and len(table) < claimed):
        _refuse(*fail)
    return _literal_entries(table, fail)


def _literal_entries(table: bytes, fail: tuple[str, str]) -> int:
    """The number of literals of an (inflated) table, each checked to decode."""
    t = _R(table, 0, len(table), fail)
    count = t.i32()
    if not _check_table_count(count, 0, 16):
        t.bad()
    for _ in range(count):
        size = t.i32()
        raw = t.take(size)
        if not _term_ok(raw):
            t.bad()
    return count


def _term_ok(raw: bytes) -> bool:
    """Whether ``raw`` starts with one complete external term (trailing bytes are
    ignored, as the loader's ``erts_decode_ext_size`` does)."""
    if not raw or raw[0] != terms.VERSION_MAGIC:
        return False
    try:
        if len(raw) > 1 and raw[1] == 80:
            terms.decode(raw)
        else:
            terms.decode_at(raw, 1)
    except (BeamError, RecursionError):
        return False
    return True


def _lines(view) -> tuple[int, int] | None:
    """The numbers of line items and of line instructions, or None when the loader
    ignores the chunk (a version it does not know)."""
    r = _R(view, 0, len(view), ("corrupt_line_table", "corrupt line table"))
    if r.i32() != 0:
        return None
    _flags, ninstr, nitems, nnames = r.i32(), r.i32(), r.i32(), r.i32()
    if not (_check_table_count(nitems, 0, 8) and _check_table_count(nnames, 0, 8)):
        r.bad()
    i = 0
    while i < nitems:
        tag, v, size = r.tagged()
        if tag == 2:
            if v > nnames + 1:
                r.bad()
        elif tag == 1:
            if size or v < 0:
                r.bad()
            i += 1
        else:
            r.bad()
    for _ in range(nnames):
        n = struct.unpack(">h", r.take(2))[0]
        raw = r.take(n)
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            r.bad()
    return nitems, ninstr


def _types(view, otp: int) -> int | None:
    """The number of type entries, or None when the loader ignores the chunk."""
    r = _R(view, 0, len(view), ("corrupt_type_table", "corrupt type table"))
    version = r.i32()
    if version not in releases.TYPE_VERSIONS_READ_BY_RELEASE.get(otp, ()):
        return None
    count = r.i32()
    if not _check_table_count(count, 1, 24):
        r.bad()
    first = None
    for i in range(count):
        raw = r.take(2)
        bits = (raw[0] << 8) | raw[1]
        if version == 1:
            extra = r.take(16)
            lo, hi = struct.unpack(">qq", extra)
            entry = (bits, lo, hi)
        else:
            nbits = 12 if version == 3 else (13 if version == 4 else 13)
            lo = hi = None
            if bits >> nbits & 1:
                lo = struct.unpack(">q", r.take(8))[0]
            if bits >> (nbits + 1) & 1:
                hi = struct.unpack(">q", r.take(8))[0]
            if bits >> (nbits + 2) & 1:
                r.take(1)
            entry = (bits & ((1 << nbits) - 1), lo, hi)
        if i == 0:
            first = entry
        elif entry[0] == 0:
            r.bad()         # none(): no value has it (measured: "corrupt type table")
    bits, lo, hi = first
    any_bits = {1: 0x1FFF, 2: 0x1FFF, 3: 0xFFF, 4: 0x1FFF}[version]
    if bits != any_bits or (lo is not None and hi is not None and lo <= hi):
        r.bad()
    return count


# ---------------------------------------------------------------------------
# Operands after reading: ops.tab transformations and asm_load.c checks
# ---------------------------------------------------------------------------

#: Raw tag number -> the loader's operand kind (see loader_rules); extended operands
#: and the special values (atom 0 is nil, label 0 is "no label") are set while reading.
_KIND_OF_TAG = ("u", "i", "a", "x", "y", "f", None, None, None, "u", "o")

#: The only BIFs ops.tab gives bif0 a specific instruction for (self/0, node/0).
_BIF0 = {("erlang", "self", 0), ("erlang", "node", 0)}
_OP_MAKE_FUN2, _OP_MAKE_FUN3 = _op("make_fun2"), _op("make_fun3")
#: Internal tags past the eight raw ones: a non-integer value too large for a word, an
#: extended list's count (an untagged integer to the loader), an untagged integer too
#: large for a word (the loader's TAG_o).
_TAG_OVERFLOW, _TAG_LIST_COUNT, _TAG_U_BIG = 8, 9, 10


class _Operands:
    """The checks the loader makes after reading an instruction, for one module.

    * ``loader_rules.REFUSED``: the kinds of operand no transformation or specific
      instruction of the release takes at a position of a generic instruction, with the
      loader's message (``bad tag N for destination``, ``bad tag N for general source``,
      ``bad tag N; expected 0``, ``no specific operation found``...);
    * the BIF operand of ``bif*``/``gc_bif*`` must name a BIF (asm_load.c, type ``b``:
      "import N not a BIF"); ``bif0`` exists only for ``self/0`` and ``node/0``;
    * a ``line`` index must be below the Line chunk's item count (asm_load.c,
      ``add_line_entry``: "line instruction index overflow");
    * a ``make_fun2``/``make_fun3`` index must be below the FunT count (the loader emits
      ``i_lambda_error`` with an overflow operand, refused as "bad tag 14; expected 0").

    The first three rules need the release's measured tables; releases without them get
    only the line rule.
    """

    __slots__ = ("refused", "atoms_taken", "bifs", "atoms", "imports", "nfree",
                 "nline_items", "nline_instrs", "li", "last_loc", "pending", "previous")

    def __init__(self, otp: int, atoms: list[str], imports: list, nfree: list[int],
                 nline_items: int, nline_instrs: int) -> None:
        rules = loader_rules.for_release(otp)
        self.refused = None if rules is None else rules.refused
        self.atoms_taken = {} if rules is None else rules.atoms
        self.bifs = None if rules is None else rules.bifs
        self.atoms = atoms
        self.imports = imports
        self.nfree = nfree
        self.nline_items = nline_items
        self.nline_instrs = nline_instrs
        self.li = 0              # line entries emitted so far
        self.last_loc = None     # location of the last one
        self.pending = None      # (location, instruction before the line)
        self.previous = None     # (opcode, args) of the previous instruction

    def _named_atom(self, opc: int, pos: int, index: int) -> bool:
        taken = self.atoms_taken.get(opc, {}).get(pos, ())
        return 0 < index <= len(self.atoms) and self.atoms[index - 1] in taken

    def _line_entry(self, loc: int, forced: bool) -> None:
        """asm_load.c ``add_line_entry``: a location equal to the previous one is not
        stored again, except for the line of a function start (``func_line``)."""
        if not forced and self.li and self.last_loc == loc:
            return
        if self.li >= self.nline_instrs:
            _refuse("line_table", f"op line: line instruction table overflow "
                    f"({self.li}/{self.nline_instrs})")
        self.li += 1
        self.last_loc = loc

    def _lines(self, opc: int, args: list, kinds: list) -> None:
        if self.pending is not None:
            loc, before = self.pending
            self.pending = None
            # ops.tab: "move S x0 | line Loc | call_last/call_only/call_ext_last/
            # call_ext_only (not a BIF) => move S x0 | call..." drops the line.
            dropped = (before is not None and before[0] == _OP_MOVE
                       and before[1][1] == (_TAG_X, 0)
                       and opc in (_OP_CALL_LAST, _OP_CALL_ONLY, _OP_CALL_EXT_LAST,
                                   _OP_CALL_EXT_ONLY))
            if dropped and opc in (_OP_CALL_EXT_LAST, _OP_CALL_EXT_ONLY):
                index = args[1][1]
                dropped = args[1][0] == _TAG_U and index < len(self.imports) \
                    and self.imports[index] not in (self.bifs or ())
            if not dropped:
                self._line_entry(loc, forced=opc == _OP_FUNC_INFO)
        if opc == _OP_LINE and kinds and kinds[0] == "u" and self.nline_items:
            self.pending = (args[0][1], self.previous)
        self.previous = (opc, args)

    def check(self, opc: int, args: list, kinds: list) -> None:
        if opc == _OP_BS_MATCH:
            self._bs_match(args)
        if opc == _OP_LINE and kinds and kinds[0] == "u" and self.nline_items \
                and args[0][1] >= self.nline_items:
            _refuse("line_index", f"op line: line instruction index overflow "
                    f"({args[0][1]}/{self.nline_items})")
        if self.nline_items:
            self._lines(opc, args, kinds)
        if self.refused is None:
            return
        rules = self.refused.get(opc)
        if rules:
            for pos, kind in enumerate(kinds):
                words = rules.get(pos, {}).get(kind) if kind is not None else None
                if words is not None and kind == "a" and self._named_atom(opc, pos, args[pos][1]):
                    continue  # a transformation rule names this atom (ops.tab: a==am_...)
                if words is not None:
                    _refuse("operand_kind", f"op {OPCODES[opc].name} (operand {pos + 1}, "
                            f"{_KIND_NAMES[kind]}): " + words)
        pos = _BIF_OPERAND.get(opc)
        if pos is not None and pos < len(args) and kinds[pos] == "u" \
                and args[pos][1] < len(self.imports):
            index = args[pos][1]
            mfa = self.imports[index]
            if opc == _OP_BIF0 and mfa not in _BIF0:
                _refuse("not_a_bif", f"op bif0: import {index} ({_mfa(mfa)}): no specific "
                        "operation found")
            if mfa not in self.bifs:
                _refuse("not_a_bif", f"op {OPCODES[opc].name}: import {index} not a BIF "
                        f"({_mfa(mfa)})")
        if opc in (_OP_MAKE_FUN2, _OP_MAKE_FUN3) and kinds and kinds[0] == "u":
            index = args[0][1]
            name = OPCODES[opc].name
            lambda_error = "op i_lambda_error: t: bad tag 14; expected 0"
            if index >= len(self.nfree):
                _refuse("bad_lambda", f"op {name}: fun index {index} is not in the fun table "
                        f"({len(self.nfree)} entries): {lambda_error}")
            if opc == _OP_MAKE_FUN3 and len(kinds) > 2 and kinds[2] == "u" \
                    and args[2][1] != self.nfree[index]:
                _refuse("bad_lambda", f"op {name}: {args[2][1]} free variables, the fun table "
                        f"says {self.nfree[index]}: {lambda_error}")


    def _bs_match(self, args: list) -> None:
        """bs_match's command list, as the loader's generator walks it: each command an
        atom it knows, followed by that command's operands."""
        items = args[3:] if len(args) > 2 and args[2][0] == _TAG_LIST_COUNT else []
        i = 0
        while i < len(items):
            tag, v = items[i]
            if tag != _TAG_A or v == 0:
                _refuse("bs_match", "bs_match: invalid operands (corrupt BEAM file?)")
            name = self.atoms[v - 1] if v <= len(self.atoms) else None
            n = _BS_MATCH_COMMANDS.get(name)
            if n is None:
                _refuse("bs_match", f"bs_match: invalid sub instruction '{name}' (is this "
                        "BEAM file generated by a future version of Erlang/OTP?)")
            i += 1 + n
        if i != len(items):
            _refuse("bs_match", "bs_match: invalid operands (corrupt BEAM file?)")


#: bs_match's commands and the number of operands each takes (OTP 26 and later).
_BS_MATCH_COMMANDS = {"ensure_at_least": 2, "ensure_exactly": 1, "=:=": 3, "integer": 5,
                      "binary": 5, "skip": 1, "get_tail": 3}
_OP_BS_MATCH = BY_NAME["bs_match"].number if "bs_match" in BY_NAME else -1

_KIND_NAMES = {"u": "untagged integer", "i": "integer", "a": "atom", "n": "nil",
               "x": "x register", "y": "y register", "f": "label", "p": "no label",
               "q": "literal", "l": "float register", "o": "integer too large"}


def _mfa(mfa) -> str:
    return "{}:{}/{}".format(*mfa) if mfa else "?"


# ---------------------------------------------------------------------------
# Code (beam_file.c: beamcodereader_read_next / beamcodereader_next)
# ---------------------------------------------------------------------------

def _code(code, otp: int, natoms: int, nlits: int, ntypes: int | None, nimports: int,
          operands: _Operands | None = None):
    """Read every instruction as the loader's reader does (and, with ``operands``, apply
    the release's operand rules to it).  Returns the defined labels, the referenced
    labels, the entry labels and the number of functions."""
    fail = ("invalid_opcode", "invalid opcode")
    hsize = _I32.unpack_from(code, 0)[0]
    label_count = _I32.unpack_from(code, 12)[0]
    r = _R(code, 4 + hsize, len(code), fail)
    max_opcode = releases.max_opcode(otp)
    refused = _refused_opcodes(otp)
    defined: list[int] = []
    referenced: set[int] = set()
    entries: set[int] = set()
    nfuncs = 0
    data = bytes(code)
    end = len(data)

    def read_op():
        p = r.pos
        if p >= end:
            r.bad()
        opc = data[p]
        r.pos = p + 1
        if not 0 < opc <= max_opcode:
            r.bad()
        info = OPCODES[opc]
        arity = info.arity
        args = []
        kinds = []
        i = 0
        while i < arity:
            # The one- and two-byte forms, nearly every operand, are read here, as
            # the reader's tagged() reads them; the longer forms by tagged() itself.
            p = r.pos
            b = data[p] if p < end else 0x18
            if not b & 0x08:
                tag, v, size = b & 7, b >> 4, 0
                r.pos = p + 1
            elif not b & 0x10 and p + 1 < end:
                tag, v, size = b & 7, ((b >> 5) << 8) | data[p + 1], 0
                r.pos = p + 2
            else:
                tag, v, size = r.tagged()
            kind = _KIND_OF_TAG[tag]
            # The tags by how often they occur.
            if tag == _TAG_X or tag == _TAG_Y:
                if v >= MAX_REG:
                    r.bad()
            elif tag == _TAG_U:
                pass
            elif tag == _TAG_A:
                if not v:
                    kind = "n"
                elif v > natoms:
                    r.bad()
            elif tag == _TAG_F:        # label
                if not v:
                    kind = "p"
                else:
                    if v >= label_count:
                        r.bad()
                    referenced.add(v)
            elif tag == _TAG_I:        # integer: a bignum must be normalised
                if size:
                    kind = "q"  # a bignum becomes a literal
                if size and abs(v) < (1 << (8 * (size - 2))) and not (
                        v < 0 and abs(v) == 1 << (8 * size - 1)):
                    r.bad()
            elif tag == _TAG_OVERFLOW:   # no instruction takes one
                r.bad()
            elif tag == _TAG_H:        # character tag: "Unrecognized tag"
                r.bad()
            elif tag == _TAG_Z:
                if v == compact.EXT_LIST:
                    if i + 1 != arity:
                        r.bad()
                    ctag, n, csize = r.tagged()
                    if ctag != _TAG_U or csize:
                        r.bad()
                    wrapped = (arity + n + (1 << 31)) % (1 << 32) - (1 << 31)
                    if n > len(code) and wrapped > i + 1:
                        r.bad()
                    # The loader adds the count to a C int: a count near 2**31 (or
                    # 2**32) wraps around and ends the operand loop early.
                    arity = wrapped
                    # The count stays in the operand's place as an untagged integer.
                    tag, v, kind = _TAG_LIST_COUNT, n, "u"
                elif v == compact.EXT_FR:
                    ctag, n, csize = r.tagged()
                    if ctag != _TAG_U or n >= MAX_REG:
                        r.bad()
                    kind = "l"
                elif v == compact.EXT_ALLOC:
                    ctag, n, csize = r.tagged()
                    if ctag != _TAG_U or n > 3:
                        r.bad()
                    kind = "u"  # the loader turns an allocation list into a word count
                    for _ in range(n):
                        ktag, what, _s = r.tagged()
                        ntag, num, _s2 = r.tagged()
                        if ktag != _TAG_U or ntag != _TAG_U or what > compact.ALLOC_FUNS \
                                or num > 0x7FFFFFFF // 6:
                            r.bad()
                    if n:
                        # No operand rule applies to a non-empty list: OTP 25, 27 and 29
                        # refuse a bs_start_match3 given one as an invalid opcode, not
                        # for its destination's kind.
                        kind = None
                elif v == compact.EXT_LITERAL:
                    ctag, n, csize = r.tagged()
                    if ctag != _TAG_U or n >= nlits:
                        r.bad()
                    kind = "q"
                elif v == compact.EXT_TR:
                    rtag, _reg, _rs = r.tagged()
                    if rtag not in (_TAG_X, _TAG_Y):
                        r.bad()
                    ttag, ti, _ts = r.tagged()
                    if ttag != _TAG_U:
                        r.bad()
                    if ntypes is not None and ti >= ntypes:
                        r.bad()
                    kind = "x" if rtag == _TAG_X else "y"
                else:          # 0: float (gone since R16B), others unknown
                    r.bad()
            args.append((tag, v))
            kinds.append(kind)
            i += 1
        pos = _IMPORT_OPERAND.get(opc)
        if pos is not None and pos < len(args):
            tag, v = args[pos]
            if tag in (_TAG_U, _TAG_LIST_COUNT) and v >= nimports:
                _refuse("invalid_import", f"op {info.name}: invalid import table index {v}")
        if operands is not None:
            operands.check(opc, args, kinds)
        return opc, args

    def define(args) -> None:
        tag, lbl = args[0]
        if tag == _TAG_LIST_COUNT:
            # An extended list where a label number belongs.  The loader takes it (the
            # count stays as an untagged integer), but what it then records as defined
            # is not modelled: refuse, with a code of its own, rather than guess.
            _refuse("list_as_label", f"label defined by an extended list (count {lbl}): "
                    "not modelled")
        elif tag != _TAG_U:
            r.bad()
        defined.append(lbl)

    while True:
        opc, args = read_op()
        if opc == _OP_LABEL:
            # The loader looks ahead for "label [line] func_info label" to find
            # function starts; the code must not end right after a label.
            define(args)
            nxt, nargs = read_op()
            if nxt == _OP_LINE:
                nxt, nargs = read_op()
            if nxt == _OP_INT_CODE_END:
                r.bad()
            if nxt == _OP_FUNC_INFO:
                eop, eargs = read_op()
                if eop != _OP_LABEL:
                    r.bad()
                define(eargs)
                entries.add(eargs[0][1])
                nfuncs += 1
            else:
                if nxt == _OP_LABEL:
                    define(nargs)
                if nxt in refused:
                    _opcode_refused(nxt, otp)
            continue
        if opc == _OP_INT_CODE_END:
            break
        if opc in refused:
            _opcode_refused(opc, otp)
    return defined, referenced, entries, nfuncs


@functools.lru_cache(maxsize=None)
def _refused_opcodes(otp: int) -> frozenset:
    """The opcodes :func:`_opcode_refused` refuses on release ``otp``."""
    out = set()
    for info in OPCODES:
        if info is not None:
            try:
                _opcode_refused(info.number, otp)
            except _Refused:
                out.add(info.number)
    return frozenset(out)


def _opcode_refused(opc: int, otp: int) -> None:
    info = OPCODES[opc]
    if info.obsolete and info.name not in _STILL_LOADED:
        _refuse("obsolete_opcode", f"op {info.name}: " + PLEASE_RECOMPILE.format(otp=otp))
    since = REFUSED_SINCE.get(info.name)
    if since is not None and otp >= since:
        _refuse("obsolete_opcode", f"op {info.name}: " + PLEASE_RECOMPILE.format(otp=otp)
                + " or update your Erlang/OTP version")


# ---------------------------------------------------------------------------
# The verdict
# ---------------------------------------------------------------------------

def _predict(data: bytes, otp: int, module_name: str | None) -> None:
    if data[:2] == b"\x1f\x8b":
        try:
            data = gunzip(data, "<check>")
        except LimitError:
            _refuse("file_too_large", f"the gzip data inflates beyond {MAX_INFLATED_SIZE} bytes "
                    "(beaminspect inflates at most that much)")
        except BeamError:
            _refuse("corrupt_file_header", "corrupt file header")
    chunks = _chunks(data)

    def get(cid: bytes):
        v = chunks.get(cid)
        return v if v is not None and len(v) > 0 else None

    code = get(b"Code")
    if code is None:
        _refuse("missing_code_chunk", "missing code chunk")
    cr = _R(code, 0, len(code), ("corrupt_code_chunk", "corrupt code chunk"))
    hsize = cr.i32()
    if hsize < 0 or len(code) - 4 < hsize:
        cr.bad()
    cr.end = 4 + hsize
    if cr.i32() != 0:
        cr.bad()
    max_op, label_count, _nfunc = cr.i32(), cr.i32(), cr.i32()

    atu8 = get(b"AtU8")
    if atu8 is None:
        if get(b"Atom") is not None:
            _refuse("obsolete_atom_table", PLEASE_RECOMPILE.format(otp=otp))
        _refuse("missing_atom_table", "missing atom table")
    atoms = _atoms(atu8, otp)
    natoms = len(atoms)
    imp = get(b"ImpT")
    if imp is None:
        _refuse("missing_import_table", "missing import table")
    imports = _imports(imp, natoms)
    nimports = len(imports)
    exp = get(b"ExpT")
    if exp is None:
        _refuse("missing_export_table", "missing export table")
    _exports(exp, natoms)  # validates the table; the loader needs nothing else from it here
    lambdas = _lambdas(get(b"FunT"), natoms) if get(b"FunT") is not None else []
    nlits = _literals(get(b"LitT"), otp) if get(b"LitT") is not None else 0
    # The loader adds item 0 ("no location") in front of the file's items.
    line_counts = _lines(get(b"Line")) if get(b"Line") is not None else None
    nline_items = 0 if line_counts is None else line_counts[0] + 1
    nline_instrs = 0 if line_counts is None else line_counts[1]
    ntypes = _types(get(b"Type"), otp) if get(b"Type") is not None else None

    for cid, what in ((b"Attr", "module attributes"), (b"CInf", "compilation information")):
        view = get(cid)
        if view is not None and not _term_ok(bytes(view)):
            _refuse("bad_" + cid.decode().lower(),
                    f"bad external term representation of {what}")

    if module_name is not None and atoms[0] != module_name:
        _refuse("module_name", f"module name in object code is {atoms[0]}")
    highest = releases.max_opcode(otp)
    if max_op > highest or max_op < 0:
        _refuse("later_version",
                f"This BEAM file was compiled for a later version of the runtime system than "
                f"the current (Erlang/OTP {otp}). To fix this, "
                + PLEASE_RECOMPILE.format(otp=otp)
                + f". (Use of opcode {max_op & 0xFFFFFFFF}; this emulator supports only up "
                  f"to {highest}.)")
    if otp >= releases.MIN_OPCODE_CHECK_SINCE and max_op < _op("swap"):
        _refuse("old_version", "This BEAM file was compiled for an old version of the "
                "runtime system. To fix this, please re-compile this module with "
                "Erlang/OTP 24 or later.")

    def name(index: int) -> str | None:
        return atoms[index - 1] if 0 < index <= natoms else None

    operands = _Operands(otp, atoms, [(name(m), name(f), a) for m, f, a in imports],
                         [nfree for _label, nfree in lambdas], nline_items, nline_instrs)
    defined, referenced, entries, nfuncs = _code(code, otp, natoms, nlits, ntypes, nimports,
                                                 operands)
    seen: set[int] = set()
    for lbl in defined:
        if lbl in seen or lbl >= label_count or lbl == 0:
            _refuse("bad_label", f"label {lbl} defined more than once or out of range")
        seen.add(lbl)
    for lbl in sorted(referenced):
        if lbl not in seen:
            _refuse("undefined_label", f"undefined label {lbl}")
    for lbl, _nfree in lambdas:
        if lbl not in seen:
            _refuse("bad_lambda", f"fun refers to undefined label {lbl}")
    if nfuncs > _nfunc:
        _refuse("too_many_functions", "too many functions")
    if nfuncs < _nfunc:
        _refuse("too_few_functions",
                f"too few functions ({nfuncs}) in module (header said {_nfunc})")


def _features(data: bytes, otp: int, enabled) -> None:
    """``code:load_file/1`` of OTP 25 refuses a module compiled with features the runtime
    has not enabled: ``{error, {features_not_allowed, Features}}`` (the Meta chunk lists
    them; prepare_loading itself does not look).  Later releases load it."""
    if otp > releases.RUNTIME_FEATURE_CHECK_UNTIL:
        return
    try:
        c = read_container(data, "<check>")
        info = c.find("Meta")
        meta = None if info is None else terms.decode(c.view(info), chunk="Meta")
    except BeamError:
        return                  # the loader never decodes Meta
    if not isinstance(meta, list):
        return
    used: list[str] = []
    for item in meta:
        if isinstance(item, tuple) and len(item) == 2 and item[0] == "enabled_features" \
                and isinstance(item[1], list):
            used += [str(f) for f in item[1] if isinstance(f, str)]
    allowed = DEFAULT_FEATURES.get(otp, set()) | set(enabled)
    refused = [f for f in used if f not in allowed]
    if refused:
        unknown = [f for f in refused if f not in KNOWN_FEATURES.get(otp, set())]
        hint = (f"; OTP {otp} does not know {', '.join(unknown)}" if unknown else
                f"; start the runtime with -enable-feature {' '.join(refused)}")
        _refuse("features_not_allowed",
                f"features_not_allowed: [{','.join(refused)}]{hint}")


def check_bytes(data: bytes, otp: int = 25, module_name: str | None = None,
                enabled_features=(), loader_only: bool = False) -> Verdict:
    """The verdict for a file's bytes (``module_name``: the name the loader is given).
    Unless ``loader_only``, the features ``code:load_file`` checks after
    ``prepare_loading`` are checked too, with ``enabled_features`` enabled in the runtime."""
    try:
        _predict(bytes(data), otp, module_name)
        if not loader_only:
            _features(bytes(data), otp, enabled_features)
    except _Refused as e:
        return Verdict(False, e.reason, e.code)
    return Verdict(True)


def check_file(source, otp: int = 25, *, enabled_features=(), loader_only: bool = False
               ) -> Verdict:
    """The verdict of OTP ``otp``'s ``erlang:prepare_loading(Module, Binary)``.

    ``source``: a path (the module name is the file name without ``.beam``), bytes, or a
    :class:`~beaminspect.module.BeamModule` (its file name gives the module name when it
    has one).  ``enabled_features``: features the runtime enables (``-enable-feature``);
    ``loader_only``: model prepare_loading alone, without code:load_file's feature check.
    Raises :class:`~beaminspect.errors.BeamError` only when a path cannot be read.
    """
    from beaminspect.module import BeamModule, read_file_bytes
    if isinstance(source, (bytes, bytearray, memoryview)):
        return check_bytes(bytes(source), otp, None, enabled_features, loader_only)
    if isinstance(source, BeamModule):
        raw = source.container.data
        name = None
        if source.file and source.file.endswith(".beam"):
            name = os.path.basename(source.file)[:-5]
        return check_bytes(raw, otp, name, enabled_features, loader_only)
    path = os.fspath(source)
    data = read_file_bytes(path)
    name = os.path.basename(path)
    if name.endswith(".beam"):
        name = name[:-5]
    return check_bytes(data, otp, name, enabled_features, loader_only)
