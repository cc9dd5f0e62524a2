"""Instructions, functions and name resolution for the Code chunk.

The disassembler is a pipeline in one pass over the code:

1. raw decode: opcode byte, then ``arity`` compact-term operands
   (:func:`beaminspect.format.compact.decode_operands`; the trailing ``list`` operand of the
   variable-length instructions -- ``select_val``, ``put_map_assoc``, ``bs_create_bin``,
   ``bs_match``, ``update_record``... -- is decoded in full by it);
2. name resolution: each raw :class:`~beaminspect.format.compact.Operand` becomes a value
   (:class:`Reg`, :class:`Label`, ``Atom``, :class:`ExtFunc`, :class:`Literal`, ...);
3. grouping into :class:`Function` records the way OTP's ``beam_disasm`` groups them:
   the labels (and ``line`` instructions) just before a ``func_info`` belong to the
   function that ``func_info`` opens, and a function runs until the next one's.

Local call targets are resolved once every function's entry label is known.

An :class:`Instruction` keeps the raw operands (``args``), the resolved values
(``values``) and its display form (``text``), so a diff can compare values and show
text.  The module's :class:`InstructionTable` makes each distinct instruction's
operands, values and text once (copies share them) and gives the JSON form the
``disasm --json`` writer uses; the listing and the JSON are both rendered from it.

Resolution of operand values:

============================  ==================================================
raw operand                   value
============================  ==================================================
``u``, ``i``, ``h``           ``int``
``a`` N (N > 0)               ``Atom`` (atom N of the atom table)
``a`` 0                       ``[]``
``x``, ``y``, ``fr``          :class:`Reg` (``type`` None)
``tr``                        :class:`Reg` whose ``type`` is the Type chunk entry
                              (None when the chunk's version is not known)
``f`` N (N > 0)               :class:`Label`; ``f`` 0 (no fail label) is ``None``
``literal``                   :class:`Literal` (the decoded term)
``list``                      ``tuple`` of resolved elements
``alloc``                     ``tuple`` of ``(kind, count)`` pairs, kind one of
                              ``"words"``, ``"floats"``, ``"funs"``
============================  ==================================================

and, by position, for the opcodes that say so: the import index of ``call_ext``,
``call_ext_last``, ``call_ext_only``, ``bif0..3`` and ``gc_bif1..3`` is an
:class:`ExtFunc`; the FunT index of ``make_fun2`` / ``make_fun3`` a :class:`FunRef`;
the label of ``call`` / ``call_last`` / ``call_only`` a :class:`LocalFunc` (a
:class:`Label` when it is no function's entry); the location of ``line``,
``executable_line`` and ``debug_line`` a :class:`Loc` (None for 0); the StrT offset of
``bs_put_string`` and ``bs_match_string`` and of the ``string`` segments of
``bs_create_bin`` the ``bytes`` they address.

Bad input raises :class:`~beaminspect.errors.BeamError` (``FormatError`` or
``TruncatedError``) with ``chunk="Code"``, the byte offset within the Code chunk and,
when known, the ``name/arity`` of the function being decoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from json.encoder import encode_basestring as _enc
from typing import Iterator, NamedTuple

from beaminspect.format.compact import (ONE_BYTE, OPERAND_SIZE, TWO_BYTE, Operand, decode_operands,
                                        skip_long)
from beaminspect.errors import BeamError, FormatError, TruncatedError
from beaminspect.gcpause import paused_gc
from beaminspect.format.opcodes import ARITIES, NAMES
from beaminspect.terms import Atom, format_term

__all__ = [
    "Label", "Reg", "ExtFunc", "LocalFunc", "FunRef", "Literal", "Loc",
    "Instruction", "Function", "disassemble", "get_instructions", "format_value",
    "json_value", "instruction_text", "InstructionTable",
]


# ---------------------------------------------------------------------------
# Resolved operand values
# ---------------------------------------------------------------------------

class Label(NamedTuple):
    """A label operand (``f`` tag, non-zero)."""

    number: int

    def __str__(self) -> str:
        return f"{{f,{self.number}}}"


class Reg(NamedTuple):
    """A register: kind ``'x'``, ``'y'`` or ``'fr'``; ``type`` is the Type chunk entry
    (a :class:`~beaminspect.format.chunks.BeamType`) for a typed register, else None."""

    kind: str
    index: int
    type: object | None = None

    def __str__(self) -> str:
        if self.type is None:
            return f"{{{self.kind},{self.index}}}"
        return f"{{tr,{{{self.kind},{self.index}}},{self.type}}}"


class ExtFunc(NamedTuple):
    """An imported function (ImpT entry)."""

    module: str
    function: str
    arity: int

    def __str__(self) -> str:
        return f"{format_term(Atom(self.module))}:{format_term(Atom(self.function))}/{self.arity}"


class LocalFunc(NamedTuple):
    """The target of a local call: the function whose entry label it is."""

    name: str
    arity: int
    label: int

    def __str__(self) -> str:
        return f"{format_term(Atom(self.name))}/{self.arity}"


class FunRef(NamedTuple):
    """A ``make_fun2`` / ``make_fun3`` operand: FunT entry ``index``."""

    index: int
    name: str
    arity: int
    num_free: int

    def __str__(self) -> str:
        return f"{{fun,{self.index},{format_term(Atom(self.name))}/{self.arity}}}"


class Literal(NamedTuple):
    """A literal-table operand, decoded."""

    value: object

    def __str__(self) -> str:
        return f"{{literal,{format_term(self.value)}}}"


class Loc(NamedTuple):
    """A source location from the Line chunk."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


# ---------------------------------------------------------------------------
# Display forms
# ---------------------------------------------------------------------------

def _fmt_bytes(b: bytes) -> str:
    return "{string," + format_term(b) + "}"


def format_value(arg: Operand, value) -> str:
    """The display form of one resolved operand (``arg`` is its raw operand)."""
    if value is None:
        return "{f,0}" if arg.tag == "f" else "none"
    t = type(value)
    if t is int:
        tag = arg.tag
        if tag == "i":
            return f"{{integer,{value}}}"
        if tag == "h":
            return f"{{char,{value}}}"
        return str(value)
    if t is tuple:
        if arg.tag == "alloc":
            return "{alloc,[" + ",".join(f"{{{k},{n}}}" for k, n in value) + "]}"
        items = arg.value if arg.tag == "list" else ()
        if len(items) != len(value):
            items = (Operand("u", 0),) * len(value)
        return "[" + ",".join(format_value(a, v) for a, v in zip(items, value)) + "]"
    if t is list:
        return "nil"
    if t is bytes:
        return _fmt_bytes(value)
    if t is Atom:
        try:
            return _ATOM_TEXT[value]
        except KeyError:
            text = _ATOM_TEXT[value] = "{atom," + format_term(value) + "}"
            return text
    return str(value)


#: Display forms of atoms, shared by all modules (atoms recur across modules).
_ATOM_TEXT: dict[str, str] = {}


def json_value(arg: Operand, value):
    """The JSON form of one resolved operand: ``int`` stays a number, a missing fail
    label is ``null``, a ``list`` operand is an array of its elements, anything else is
    its display string (see :func:`format_value`)."""
    if value is None:
        return None
    t = type(value)
    if t is int:
        return value if arg.tag == "u" else format_value(arg, value)
    if t is tuple and arg.tag == "list" and len(arg.value) == len(value):
        return [json_value(a, v) for a, v in zip(arg.value, value)]
    return format_value(arg, value)


def instruction_text(name: str, args: tuple, values: tuple) -> str:
    """The display form of an instruction: its name, then each operand's
    :func:`format_value`, separated by spaces."""
    if not values:
        return name
    return name + " " + " ".join([format_value(a, v) for a, v in zip(args, values)])


# ---------------------------------------------------------------------------
# Instructions and functions
# ---------------------------------------------------------------------------

class Instruction(NamedTuple):
    """One instruction.  ``offset`` is the byte offset of the opcode byte within the
    Code chunk's data; ``args`` the raw operands, ``values`` the resolved ones and
    ``text`` the display form, e.g. ``call_ext 2 lists:reverse/2`` (see
    :func:`instruction_text`).  Copies of one instruction within a module share their
    ``args``, ``values`` and ``text`` objects."""

    opcode: int
    name: str
    offset: int
    args: tuple
    values: tuple
    text: str

    def json_args(self) -> list:
        return [json_value(a, v) for a, v in zip(self.args, self.values)]


@dataclass(frozen=True)
class Function:
    """One function: its instructions from the labels before ``func_info`` through the
    instruction before the next function's first label."""

    name: str
    arity: int
    entry: int
    labels: tuple[int, ...]
    instructions: tuple[Instruction, ...]
    lines: tuple[int, int] | None
    offset: int
    #: The module's :class:`InstructionTable` (the display forms of its instructions).
    table: InstructionTable | None = field(default=None, compare=False, repr=False)

    @property
    def mfa(self) -> str:
        return f"{self.name}/{self.arity}"

    def __repr__(self) -> str:
        return (f"Function({self.mfa}, entry={self.entry}, "
                f"{len(self.instructions)} instructions)")


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------

_new = tuple.__new__

OP_LABEL, OP_FUNC_INFO, OP_INT_CODE_END = 1, 2, 3
OP_CALL, OP_CALL_LAST, OP_CALL_ONLY = 4, 5, 6
OP_LINE = 153

_ALLOC_KINDS = ("words", "floats", "funs")

# Operand kinds by position, for the opcodes whose operands are not resolved by tag
# alone.  None = by tag.
_IMPORT, _FUN, _LOCAL, _LINE, _STR, _STR_BITS, _BS_CREATE = range(7)


def _special_table() -> tuple:
    from beaminspect.format.opcodes import BY_NAME
    kinds = {
        "call": (None, _LOCAL),
        "call_last": (None, _LOCAL, None),
        "call_only": (None, _LOCAL),
        "call_ext": (None, _IMPORT),
        "call_ext_last": (None, _IMPORT, None),
        "call_ext_only": (None, _IMPORT),
        "bif0": (_IMPORT, None),
        "bif1": (None, _IMPORT, None, None),
        "bif2": (None, _IMPORT, None, None, None),
        "bif3": (None, _IMPORT, None, None, None, None),
        "gc_bif1": (None, None, _IMPORT, None, None),
        "gc_bif2": (None, None, _IMPORT, None, None, None),
        "gc_bif3": (None, None, _IMPORT, None, None, None, None),
        "make_fun2": (_FUN,),
        "make_fun3": (_FUN, None, None),
        "line": (_LINE,),
        "executable_line": (_LINE, None),
        "debug_line": (None, _LINE, None, None),
        "bs_put_string": (None, _STR),
        "bs_match_string": (None, None, None, _STR_BITS),
        "bs_create_bin": (None, None, None, None, None, _BS_CREATE),
    }
    table = [None] * 256
    for name, k in kinds.items():
        op = BY_NAME.get(name)
        if op is not None and op.arity == len(k):
            table[op.number] = k
    return tuple(table)


#: Opcode -> operand kinds by position, or None when every operand resolves by tag.
SPECIAL = _special_table()


class _Resolver(dict):
    """Memo of operand -> value for the operands resolved by tag alone (most of them:
    the same registers, atoms and labels recur throughout a module)."""

    def __init__(self, module, code_len: int) -> None:
        super().__init__()
        self.atoms = module.atoms
        self.natoms = len(self.atoms)
        header = module.code_header
        self.label_count = header.label_count
        self._literals = None
        self._module = module
        self._types = None
        self.line_table = module.line_table
        self.strings = None
        self._imports = None
        self._funs = None
        self._locs: dict[int, Loc | None] = {}

    # -- tables, fetched on first use ---------------------------------------
    @property
    def literals(self):
        if self._literals is None:
            self._literals = self._module.literals
        return self._literals

    @property
    def types(self):
        if self._types is None:
            self._types = self._module.types
        return self._types

    @property
    def imports(self) -> tuple:
        if self._imports is None:
            self._imports = tuple(_new(ExtFunc, (i.module, i.function, i.arity))
                                  for i in self._module.imports)
        return self._imports

    @property
    def funs(self) -> tuple:
        if self._funs is None:
            self._funs = tuple(_new(FunRef, (n, f.name, f.arity, f.num_free))
                               for n, f in enumerate(self._module.lambdas))
        return self._funs

    def string(self, offset: int, length: int) -> bytes:
        if self.strings is None:
            self.strings = self._module.strings
        if offset + length > len(self.strings):
            # The loader does not check string operands against StrT (the file loads),
            # so neither does the disassembler: the string is unknown.
            return None
        return self.strings[offset:offset + length]

    def release(self) -> None:
        """Forget the module (the memo stays usable for the operands in it)."""
        self._module = None

    # -- by tag -------------------------------------------------------------
    def __missing__(self, op: Operand):
        value = self.resolve(op)
        if op.tag != "list":
            self[op] = value
        return value

    def resolve(self, op: Operand):
        tag, v = op
        if tag == "x" or tag == "y" or tag == "fr":
            return _new(Reg, (tag, v, None))
        if tag == "u" or tag == "i" or tag == "h":
            return v
        if tag == "a":
            if v == 0:
                return []
            if v > self.natoms:
                raise FormatError(f"atom index {v} out of range (1..{self.natoms})")
            return Atom(self.atoms[v - 1])
        if tag == "f":
            if v == 0:
                return None
            if v >= self.label_count:
                raise FormatError(f"label {v} out of range (1..{self.label_count - 1})")
            return _new(Label, (v,))
        if tag == "literal":
            lits = self.literals
            if v >= len(lits):
                raise FormatError(f"literal index {v} out of range ({len(lits)} literals)")
            return _new(Literal, (lits[v],))
        if tag == "list":
            return tuple(map(self.__getitem__, v))
        if tag == "tr":
            reg, ti = v
            types = self.types
            t = None
            if types.known:
                t = types.get(ti)
                if t is None:
                    raise FormatError(f"type index {ti} out of range "
                                      f"({len(types.entries)} types)")
            return _new(Reg, (reg.tag, reg.value, t))
        if tag == "alloc":
            return tuple((_ALLOC_KINDS[k], n) for k, n in v)
        raise FormatError(f"unexpected operand tag {tag!r}")

    # -- by position --------------------------------------------------------
    def by_kind(self, kind: int, op: Operand):
        """The value of an operand of kind ``_IMPORT``, ``_FUN`` or ``_LINE``: like a
        value by tag, it depends on the operand alone."""
        if kind == _LINE:
            return self.loc(self._index(op, "line index"))
        if kind == _IMPORT:
            table, what, of = self.imports, "import", "imports"
        elif kind == _FUN:
            table, what, of = self.funs, "fun", "funs in FunT"
        else:
            raise ValueError(f"operand kind {kind} depends on more than the operand")
        i = self._index(op, what if kind == _IMPORT else "fun index")
        if i >= len(table):
            raise FormatError(f"{what} index {i} out of range ({len(table)} {of})")
        return table[i]

    def special(self, kinds: tuple, args: tuple) -> tuple:
        out = []
        for kind, op in zip(kinds, args):
            if kind is None:
                out.append(self[op])
            elif kind == _IMPORT or kind == _LINE or kind == _FUN:
                out.append(self.by_kind(kind, op))
            elif kind == _LOCAL:
                out.append(self[op] if op.tag == "f" else self._bad(op, "call target label"))
            elif kind == _STR:
                # bs_put_string Length Offset
                length = out[0] if type(out[0]) is int else self._bad(args[0], "string length")
                out.append(self.string(self._index(op, "string offset"), length))
            elif kind == _STR_BITS:
                # bs_match_string Fail Ctx Bits Offset
                bits = out[2] if type(out[2]) is int else self._bad(args[2], "bit count")
                out.append(self.string(self._index(op, "string offset"), (bits + 7) // 8))
            elif kind == _BS_CREATE:
                out.append(self.bs_create_list(op))
        return tuple(out)

    def _index(self, op: Operand, what: str) -> int:
        if op.tag != "u":
            self._bad(op, what)
        return op.value

    @staticmethod
    def _bad(op: Operand, what: str):
        raise FormatError(f"{what} has tag '{op.tag}', expected "
                          f"{'f' if what == 'call target label' else 'u'}")

    def loc(self, index: int) -> Loc | None:
        try:
            return self._locs[index]
        except KeyError:
            pass
        if index == 0:
            loc = None
        else:
            table = self.line_table
            if table is None or table.version != 0:
                # No usable Line chunk: the loader ignores line instructions.
                self._locs[index] = None
                return None
            n = len(table.items) - 1
            if index > n:
                raise FormatError(f"line index {index} out of range ({n} line items)")
            found = table.lookup(index)
            loc = None if found is None else _new(Loc, found)
        self._locs[index] = loc
        return loc

    def bs_create_list(self, op: Operand):
        if op.tag != "list":
            raise FormatError(f"bs_create_bin segment list has tag '{op.tag}', expected a list")
        items = op.value
        values = list(map(self.__getitem__, items))
        # Segments of six: Type Seg Unit Flags Value Size; a `string` segment's Value
        # is an offset into StrT and its Size the length in bytes.
        for i in range(0, len(items) - 5, 6):
            if values[i] == "string" and isinstance(values[i], Atom):
                off, size = items[i + 4], values[i + 5]
                if off.tag != "u" or type(size) is not int:
                    raise FormatError("bs_create_bin string segment needs an offset and a size")
                values[i + 4] = self.string(off.value, size)
        return tuple(values)


class _Memo(dict):
    """Operand -> its text by ``make(memo, operand)``, kept unless the operand is a list
    (``make`` is given the memo rather than holding it: no reference cycle)."""

    __slots__ = ("make",)

    def __init__(self, make) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, op: Operand) -> str:
        text = self.make(self, op)
        if op.tag != "list":
            self[op] = text
        return text


def _value_json(texts: _Memo, res: _Resolver, kept: dict, op: Operand, value) -> str:
    """The JSON text of :func:`json_value`, from a table's operand texts (``texts``,
    ``res``) and its JSON texts of other values (``kept``)."""
    if value is None:
        return "null"
    t = type(value)
    if t is int and op.tag == "u":
        return int.__repr__(value)
    if t is tuple and op.tag == "list" and len(op.value) == len(value):
        return "[" + ",".join([_value_json(texts, res, kept, a, v)
                               for a, v in zip(op.value, value)]) + "]"
    if op.tag != "list" and res.get(op) is value:
        return _enc(texts[op])
    hit = kept.get(id(value))
    if hit is not None and hit[0] is value:
        return hit[1]
    text = _enc(format_value(op, value))
    kept[id(value)] = (value, text)
    return text


#: The label operands, values and texts by number (index 0 unused), shared by every
#: module's :class:`InstructionTable`, and grown as modules need more, up to
#: ``_LABELS_MAX`` (OTP's largest module has about 9,000 labels; the labels of a module
#: with more resolve one by one).
_LABELS: tuple[list, list, list] = ([None], [None], [None])
_LABELS_MAX = 1 << 15


def _labels(count: int) -> tuple:
    """The label operands, values and texts for ``1`` .. ``count - 1``."""
    ops, values, texts = _LABELS
    for n in range(len(ops), count):
        ops.append(Operand("f", n))
        values.append(_new(Label, (n,)))
        texts.append("{f,%d}" % n)
    return ops[1:count], values[1:count], texts[1:count]


#: Opcode -> the start of its instructions' JSON: ``{"op":NAME,"args":[``.
_JSON_OPS = tuple(name and '{"op":' + _enc(name) + ',"args":[' for name in NAMES)


class InstructionTable:
    """A module's distinct instructions and operands and their display forms.

    The decoder makes each distinct operand's text once (:meth:`operand_text`) and each
    distinct instruction's ``args``, ``values`` and ``text`` once; copies of an
    instruction share those objects.  :meth:`json_prefix` gives the JSON of an
    instruction up to its offset, made from the same operand texts.  Every
    :class:`Function` of a module holds the module's table."""

    __slots__ = ("_res", "_texts", "_json_ops", "_json_values", "operand_text")

    def __init__(self, res: _Resolver) -> None:
        self._res = res
        # operand -> text and JSON text, for values by tag.  Nothing here refers back
        # to the table: a cycle would leave every module's table to the cyclic
        # collector instead of reference counting.
        texts = self._texts = _Memo(None)
        json_values = self._json_values = {}  # id(value) -> (value, JSON text)

        def operand_text(memo: _Memo, op: Operand) -> str:
            if op.tag == "list":
                # The elements' texts are kept, the list's own is not.
                return "[" + ",".join(map(memo.__getitem__, op.value)) + "]"
            return format_value(op, res[op])

        texts.make = operand_text
        self._json_ops = _Memo(lambda _memo, op: _value_json(texts, res, json_values, op, res[op]))
        #: The display form of an operand resolved by its tag alone.
        self.operand_text = texts.__getitem__

    def add_labels(self, count: int) -> None:
        """Enter the label operands ``{f,1}`` .. ``{f,count-1}`` with their values and
        texts, from :data:`_LABELS` (every module numbers its labels from 1, and they
        are the operands most often new to a module)."""
        ops, values, texts = _labels(count)
        self._res.update(zip(ops, values))
        self._texts.update(zip(ops, texts))

    def text(self, name: str, args: tuple, values: tuple) -> str:
        """:func:`instruction_text`, with the operand texts of this table."""
        if not values:
            return name
        return name + " " + " ".join([self.value_text(a, v) for a, v in zip(args, values)])

    def value_text(self, op: Operand, value) -> str:
        """:func:`format_value`, kept for the operands whose value is the one by tag."""
        if op.tag != "list" and value is not None and self._res.get(op) is value:
            return self._texts[op]
        return format_value(op, value)

    def value_json(self, op: Operand, value) -> str:
        """The JSON text of :func:`json_value`."""
        return _value_json(self._texts, self._res, self._json_values, op, value)

    def json_prefix(self, ins: Instruction) -> str:
        """``{"op":NAME,"args":[...],"offset":`` of an instruction."""
        opc = ins[0]
        if SPECIAL[opc] is None:
            # Every operand resolves by its tag: its JSON is kept by the operand.
            args = ",".join(map(self._json_ops.__getitem__, ins[3]))
        else:
            vj = self.value_json
            args = ",".join([vj(a, v) for a, v in zip(ins[3], ins[4])])
        return _JSON_OPS[opc] + args + '],"offset":'


def _decode(module) -> tuple[list[Instruction], list[int], list[int], InstructionTable]:
    """The flat instruction stream (through ``int_code_end``), the indices of the
    ``func_info`` instructions and of the local calls.

    This is the module's instruction table: within a module an instruction's operands,
    values and text depend only on its bytes, so all three are made once per distinct
    instruction and shared by its repetitions (about four in ten instructions repeat
    one seen before: moves, tests, allocations), and the operands' texts once per
    distinct operand.
    """
    code = bytes(module.code)
    file = module.file
    header = module.code_header
    end = len(code)
    pos = header.code_offset
    res = _Resolver(module, end)
    getv = res.__getitem__
    table = InstructionTable(res)
    gett = table.operand_text
    table.add_labels(min(header.label_count, _LABELS_MAX))
    special = SPECIAL
    names = NAMES
    arities = ARITIES
    one, two, decode_ops = ONE_BYTE, TWO_BYTE, decode_operands
    size, skip = OPERAND_SIZE, skip_long
    seen: dict[bytes, tuple] = {}
    seen_get = seen.get
    lines: dict[int, tuple] = {}  # line index -> (args, values, text)
    out: list[Instruction] = []
    append = out.append
    func_infos: list[int] = []
    calls: list[int] = []
    new = _new
    start = pos
    try:
        while True:
            start = pos
            if pos >= end:
                raise TruncatedError("code ends without int_code_end")
            opc = code[pos]
            arity = arities[opc]
            pos += 1
            if opc == OP_LABEL or opc == OP_LINE:
                # One 'u' operand, in its one- or two-byte form (all but corrupt files);
                # every label and most lines are distinct, so they skip the sharing.
                b = code[pos] if pos < end else 8
                if not b & 0x0F:
                    op = one[b]
                    pos += 1
                elif b & 0x1F == 0x08 and pos + 1 < end:
                    op = two[(b << 8) | code[pos + 1]]
                    pos += 2
                else:
                    op = None
                if op is not None:
                    v = op[1]
                    if opc == OP_LABEL:
                        append(new(Instruction, (opc, "label", start, (op,), (v,),
                                                 "label " + str(v))))
                        continue
                    hit = lines.get(v)
                    if hit is None:
                        loc = res.loc(v)
                        hit = lines[v] = ((op,), (loc,),
                                          "line none" if loc is None else "line " + str(loc))
                    append(new(Instruction, (opc, "line", start, *hit)))
                    continue
                pos = start + 1
            if arity > 0:
                # Find the end from the operands' first bytes and look the bytes up:
                # a copy of an instruction seen before needs no decoding.  (A hit is
                # exact whatever the skip found: those bytes decoded to that end.)
                try:
                    n = size[code[pos]]
                    p = pos + n if n else skip(code, pos, end)
                    if arity > 1:
                        n = size[code[p]]
                        p = p + n if n else skip(code, p, end)
                        if arity > 2:
                            for _ in range(arity - 2):
                                n = size[code[p]]
                                p = p + n if n else skip(code, p, end)
                    key = code[start:p]
                    hit = seen_get(key)
                except (IndexError, BeamError):
                    hit = None
                    p = -1
                if hit is not None:
                    pos = p
                    args, values, text = hit
                    if opc > OP_CALL_ONLY:
                        append(new(Instruction, (opc, names[opc], start, args, values, text)))
                        continue
                    miss = False
                else:
                    miss = True
            if arity > 0 and not miss:
                pass  # a copy of a local call, func_info...: all from the table
            elif arity > 0:
                args, pos = decode_ops(code, pos, end, arity)
                if pos != p:
                    # The skip found another end (or none): these bytes are new too.
                    key = code[start:pos]
                    hit = seen_get(key)
                if hit is None:
                    kinds = special[opc]
                    name = names[opc]
                    if kinds is None:
                        values = tuple(map(getv, args))
                        text = name + " " + " ".join(map(gett, args))
                    else:
                        values = res.special(kinds, args)
                        text = table.text(name, args, values)
                    hit = seen[key] = (args, values, text)
                args, values, text = hit
            elif arity == 0:
                args = values = ()
                text = names[opc]
            else:
                raise FormatError(f"unknown opcode {opc}")
            if opc <= OP_CALL_ONLY:
                if opc >= OP_CALL:
                    calls.append(len(out))
                elif opc == OP_FUNC_INFO:
                    m, f, a = values
                    if not isinstance(f, Atom) or not isinstance(m, Atom) \
                            or type(a) is not int or args[2].tag != "u":
                        raise FormatError("func_info needs two atoms and an arity")
                    func_infos.append(len(out))
                elif opc == OP_INT_CODE_END:
                    append(new(Instruction, (opc, names[opc], start, args, values, text)))
                    break
                elif opc == OP_LABEL and args[0].tag != "u":
                    raise FormatError(f"label operand must be an untagged integer, "
                                      f"not {args[0].tag}")
            append(new(Instruction, (opc, names[opc], start, args, values, text)))
    except BeamError as e:
        current = None
        if func_infos:
            fi = out[func_infos[-1]].values
            current = f"{fi[1]}/{fi[2]}"
        raise e.with_context(file=file, chunk="Code", offset=start, function=current) from None
    # The table outlives the decoding (every Function holds it) and needs no more of
    # the module: dropping it keeps the module out of a reference cycle, so that
    # reference counting frees it.
    res.release()
    return out, func_infos, calls, table


def _group(module, stream: list[Instruction], func_infos: list[int]) -> list[tuple]:
    """Function boundaries: ``(start, func_info index, end)`` per function."""
    file = module.file
    bounds = []
    floor = 0
    starts = []
    for k in func_infos:
        s = k
        while s > floor and stream[s - 1].opcode in (OP_LABEL, OP_LINE):
            s -= 1
        starts.append(s)
        floor = k + 1
    if starts and starts[0] != 0:
        bad = stream[0]
        raise FormatError(f"instruction {bad.name} before the first func_info", file=file,
                          chunk="Code", offset=bad.offset)
    if not starts and len(stream) > 1:
        bad = stream[0]
        raise FormatError("code has no func_info", file=file, chunk="Code", offset=bad.offset)
    last = len(stream) - 1  # the int_code_end
    for n, k in enumerate(func_infos):
        e = starts[n + 1] if n + 1 < len(starts) else last
        fi = stream[k]
        if k + 1 >= e or stream[k + 1].opcode != OP_LABEL:
            raise FormatError("func_info is not followed by the function's entry label",
                              file=file, chunk="Code", offset=fi.offset,
                              function=f"{fi.values[1]}/{fi.values[2]}")
        bounds.append((starts[n], k, e))
    return bounds


def _lines(instructions, own_file: str | None) -> tuple[int, int] | None:
    locs = [ins[4][0] for ins in instructions if ins[0] == OP_LINE]
    if not locs:
        return None
    locs = [loc for loc in locs if loc is not None]
    use = [loc[1] for loc in locs if loc[0] == own_file] \
        or [loc[1] for loc in locs if loc[0] != own_file]
    if not use:
        return None
    return (min(use), max(use))


@paused_gc
def disassemble(module) -> tuple[Function, ...]:
    """All functions of a :class:`~beaminspect.module.BeamModule`, in code order (the
    cyclic garbage collector paused meanwhile: see :mod:`beaminspect.gcpause`)."""
    return _disassemble(module)


def _disassemble(module) -> tuple[Function, ...]:
    stream, func_infos, calls, itable = _decode(module)
    bounds = _group(module, stream, func_infos)
    entries: dict[int, tuple[str, int]] = {}
    for s, k, e in bounds:
        fi = stream[k]
        entries[stream[k + 1].values[0]] = (str(fi.values[1]), fi.values[2])
    # Local calls: the label becomes the function it enters.  Identical calls share
    # their values (see _decode), and so do the replacements.
    replaced: dict[int, tuple] = {}
    for i in calls:
        ins = stream[i]
        old = ins[4]
        hit = replaced.get(id(old))
        if hit is None:
            label = old[1]
            target = entries.get(label.number) if label is not None else None
            if target is None:
                hit = (old, ins[5])
            else:
                values = list(old)
                values[1] = _new(LocalFunc, (target[0], target[1], label.number))
                values = tuple(values)
                hit = (values, itable.text(ins[1], ins[3], values))
            replaced[id(old)] = hit
        if hit[0] is not old:
            stream[i] = _new(Instruction, (ins[0], ins[1], ins[2], ins[3], *hit))
    table = module.line_table
    own_file = table.names[0] if table is not None and table.names else None
    out = []
    for s, k, e in bounds:
        fi = stream[k]
        body = tuple(stream[s:e])
        labels = tuple([ins[4][0] for ins in body if ins[0] == OP_LABEL])
        out.append(Function(str(fi.values[1]), fi.values[2], stream[k + 1].values[0],
                            labels, body, _lines(body, own_file), body[0].offset, itable))
    return tuple(out)


def get_instructions(module) -> Iterator[Instruction]:
    """The flat instruction stream through ``int_code_end``, local calls resolved
    (from the module's cached disassembly)."""
    funcs = module.functions
    for f in funcs:
        yield from f.instructions
    # int_code_end follows the last instruction of the last function.
    if funcs:
        last = funcs[-1].instructions[-1]
        arity = ARITIES[last.opcode]
        pos = last.offset + 1
        if arity:
            _args, pos = decode_operands(module.code, pos, len(module.code), arity)
    else:
        pos = module.code_header.code_offset
    yield _new(Instruction, (OP_INT_CODE_END, NAMES[OP_INT_CODE_END], pos, (), (),
                             NAMES[OP_INT_CODE_END]))
