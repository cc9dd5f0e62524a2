"""The disassembler on hand-assembled modules: instructions OTP 25 cannot compile
(update_record, bs_match, executable_line, debug_line, and OTP 29's bif3 and native
record instructions, 185 to 191), name resolution, bad input
(exact chunk, offset and function), and the ``disasm`` command."""

from __future__ import annotations

import json
import random
import struct
import zlib

import pytest
from typer.testing import CliRunner

import beaminspect
from beaminspect.format.chunks import BeamType
from beaminspect.cli.app import app
from beaminspect.code.disasm import (ExtFunc, FunRef, Label, Literal, LocalFunc, Loc, Reg,
                                disassemble, get_instructions)
from beaminspect.errors import BeamError, FormatError, TruncatedError
from beaminspect.format.opcodes import BY_NAME, HIGHEST
from beaminspect.terms import Atom

# ---------------------------------------------------------------------------
# A small assembler
# ---------------------------------------------------------------------------

TAGS = {"u": 0, "i": 1, "a": 2, "x": 3, "y": 4, "f": 5, "h": 6}


def _int_bytes(value: int, signed: bool) -> bytes:
    n = 1
    while True:
        try:
            return value.to_bytes(n, "big", signed=signed)
        except OverflowError:
            n += 1


def enc(tag: str, value: int) -> bytes:
    """One compact term of a basic tag."""
    t = TAGS[tag]
    if 0 <= value < 16:
        return bytes([(value << 4) | t])
    if 0 <= value < 2048:
        return bytes([((value >> 3) & 0xE0) | 0x08 | t, value & 0xFF])
    raw = _int_bytes(value, signed=True)
    if tag != "i" and raw[0] == 0 and len(raw) > 1 and value >= 0:
        raw = raw  # keep a leading zero byte: unsigned values are read unsigned anyway
    if len(raw) < 2:
        raw = b"\x00" + raw if value >= 0 else b"\xff" + raw
    assert len(raw) <= 8
    return bytes([((len(raw) - 2) << 5) | 0x18 | t]) + raw


def u(v): return enc("u", v)
def i(v): return enc("i", v)
def a(v): return enc("a", v)
def x(v): return enc("x", v)
def y(v): return enc("y", v)
def f(v): return enc("f", v)
def lst(*items): return bytes([0x17]) + u(len(items)) + b"".join(items)
def lit(n): return bytes([0x47]) + u(n)
def tr(reg, t): return bytes([0x57]) + reg + u(t)
def fr(n): return bytes([0x27]) + u(n)
def alloc(*pairs): return bytes([0x37]) + u(len(pairs)) + b"".join(u(k) + u(n) for k, n in pairs)


def op(name: str, *operands: bytes) -> bytes:
    o = BY_NAME[name]
    assert o.arity == len(operands), name
    return bytes([o.number]) + b"".join(operands)


ATOMS = ["tiny", "f", "g", "copy", "ensure_at_least", "integer", "entry", "lists",
         "reverse", "erlang", "+", "ok", "-f/1-fun-0-", "string", "point", "x",
         "external"]
A = {name: n + 1 for n, name in enumerate(ATOMS)}


def _chunk(cid: bytes, data: bytes) -> bytes:
    return cid + struct.pack(">I", len(data)) + data + b"\0" * (-len(data) % 4)


def _etf_small_tuple(*elems: bytes) -> bytes:
    return bytes([104, len(elems)]) + b"".join(elems)


def _etf_atom(s: str) -> bytes:
    b = s.encode()
    return bytes([119, len(b)]) + b


def _etf_small_int(n: int) -> bytes:
    return bytes([97, n])


LITERAL = b"\x83" + _etf_small_tuple(_etf_atom("ok"), _etf_small_int(42))

# Function f/1 (labels 1, 2) and g/1 (labels 3, 4).  The comments give the offsets
# within the Code chunk (header: 4 + 16 bytes).
F_HEAD = [
    op("label", u(1)),
    op("line", u(1)),
    op("func_info", a(A["tiny"]), a(A["f"]), u(1)),
    op("label", u(2)),
    op("line", u(2)),
]
F_BODY = [
    op("update_record", a(A["copy"]), u(3), x(0), x(0), lst(u(2), x(1))),
    op("bs_match", f(1), x(0), lst(a(A["ensure_at_least"]), u(32), u(8),
                                   a(A["integer"]), u(2), a(0), u(8), u(1), x(1))),
    op("executable_line", u(1), u(5)),
    op("debug_line", a(A["entry"]), u(2), u(1), u(1)),
    op("call", u(1), f(4)),
    op("call_ext", u(1), u(0)),
    op("gc_bif2", f(0), u(2), u(1), x(0), i(1), x(0)),
    op("move", lit(0), x(0)),
    op("make_fun3", u(0), x(0), lst(x(1))),
    op("test_heap", alloc((0, 3), (1, 0)), u(1)),
    op("is_integer", f(1), tr(x(0), 0)),
    op("fmove", fr(0), y(1)),
    op("bs_put_string", u(3), u(0)),
    op("bs_match_string", f(1), x(0), u(16), u(1)),
    op("bs_create_bin", f(0), u(0), u(1), u(8), x(0),
       lst(a(A["string"]), u(1), u(8), a(0), u(0), i(3))),
    op("select_val", x(0), f(1), lst(a(A["ok"]), f(4), i(-1), f(4))),
    op("move", i(-5000), x(2)),
    # OTP 29 (genop.tab's "# OTP 29" section: bif3 and the native records).
    op("bif3", f(1), u(1), x(0), x(1), x(2), x(0)),
    op("is_any_native_record", f(1), x(0)),
    op("is_native_record", f(1), x(0), a(A["tiny"]), a(A["point"])),
    op("get_record_elements", f(1), x(0), lst(a(A["x"]), x(1))),
    op("put_record", f(0), a(A["point"]), a(0), x(0), u(2), lst(a(A["x"]), i(7))),
    op("is_record_accessible", f(1), x(0), a(A["external"])),
    op("get_record_field", f(0), x(0), lit(0), a(A["x"]), x(3)),
    op("return"),
]
G = [
    op("label", u(3)),
    op("func_info", a(A["tiny"]), a(A["g"]), u(1)),
    op("label", u(4)),
    op("return"),
]
END = [op("int_code_end")]


def code_chunk(instrs=None, *, labels=5, functions=2, max_opcode=HIGHEST) -> bytes:
    if instrs is None:
        instrs = F_HEAD + F_BODY + G + END
    header = struct.pack(">IIIII", 16, 0, max_opcode, labels, functions)
    return header + b"".join(instrs)


def build_beam(code: bytes | None = None, *, atoms=ATOMS, literals=(LITERAL,),
               imports=((A["lists"], A["reverse"], 2), (A["erlang"], A["+"], 2)),
               lambdas=((A["-f/1-fun-0-"], 2, 4, 0, 1, 0),), strings=b"abc",
               types=((1 << 6, 0, 255),), lines=(10, 11)) -> bytes:
    if code is None:
        code = code_chunk()
    atu8 = struct.pack(">I", len(atoms)) + b"".join(
        bytes([len(s.encode())]) + s.encode() for s in atoms)
    impt = struct.pack(">I", len(imports)) + b"".join(struct.pack(">III", *e) for e in imports)
    expt = struct.pack(">I", 1) + struct.pack(">III", A["f"], 1, 2)
    loct = struct.pack(">I", 1) + struct.pack(">III", A["g"], 1, 4)
    funt = struct.pack(">I", len(lambdas)) + b"".join(struct.pack(">IIIIII", *e) for e in lambdas)
    table = struct.pack(">I", len(literals)) + b"".join(
        struct.pack(">I", len(t)) + t for t in literals)
    litt = struct.pack(">I", len(table)) + zlib.compress(table)
    items = b"".join(enc("i", n) for n in lines)
    line = struct.pack(">IIIII", 0, 0, len(lines), len(lines), 0) + items
    typ = struct.pack(">II", 1, len(types)) + b"".join(
        struct.pack(">Hqq", bits, lo, hi) for bits, lo, hi in types)
    body = b"BEAM" + b"".join(_chunk(cid, data) for cid, data in (
        (b"AtU8", atu8), (b"Code", code), (b"StrT", strings), (b"ImpT", impt),
        (b"ExpT", expt), (b"FunT", funt), (b"LitT", litt), (b"LocT", loct),
        (b"Line", line), (b"Type", typ)))
    return b"FOR1" + struct.pack(">I", len(body)) + body


def offsets(instrs, start=20):
    out = []
    pos = start
    for ins in instrs:
        out.append(pos)
        pos += len(ins)
    return out


ALL = F_HEAD + F_BODY + G + END
OFFS = offsets(ALL)


@pytest.fixture(scope="module")
def tiny():
    return beaminspect.load(build_beam(), file="tiny.beam")


# ---------------------------------------------------------------------------
# Structure
# ---------------------------------------------------------------------------

def test_functions_are_grouped_as_beam_disasm_does(tiny):
    fs = disassemble(tiny)
    assert [(fn.mfa, fn.entry, fn.labels) for fn in fs] == [("f/1", 2, (1, 2)), ("g/1", 4, (3, 4))]
    f1, g1 = fs
    assert len(f1.instructions) == len(F_HEAD) + len(F_BODY)
    assert f1.instructions[0].name == "label" and f1.instructions[2].name == "func_info"
    assert f1.offset == 20 and g1.offset == OFFS[len(F_HEAD) + len(F_BODY)]
    assert [ins.offset for ins in f1.instructions + g1.instructions] == OFFS[:-1]
    assert f1.lines == (10, 11) and g1.lines is None
    assert tiny.functions == fs


def test_flat_stream_ends_with_int_code_end(tiny):
    stream = list(get_instructions(tiny))
    assert [ins.offset for ins in stream] == OFFS
    assert stream[-1].name == "int_code_end"
    assert stream[-1].offset + 1 == len(tiny.code)


def _values(tiny, name):
    return [ins.values for ins in get_instructions(tiny) if ins.name == name]


def test_update_record_181(tiny):
    (vals,) = _values(tiny, "update_record")
    assert vals == (Atom("copy"), 3, Reg("x", 0), Reg("x", 0), (2, Reg("x", 1)))
    assert isinstance(vals[0], Atom)
    ins = next(i for i in get_instructions(tiny) if i.opcode == 181)
    assert ins.text == "update_record {atom,copy} 3 {x,0} {x,0} [2,{x,1}]"


def test_bs_match_182_commands_resolved(tiny):
    (vals,) = _values(tiny, "bs_match")
    assert vals[:2] == (Label(1), Reg("x", 0))
    assert vals[2] == (Atom("ensure_at_least"), 32, 8, Atom("integer"), 2, [], 8, 1, Reg("x", 1))
    assert all(isinstance(v, Atom) for v in (vals[2][0], vals[2][3]))


def test_executable_line_183_and_debug_line_184(tiny):
    assert _values(tiny, "executable_line") == [(Loc("tiny.erl", 10), 5)]
    assert _values(tiny, "debug_line") == [(Atom("entry"), Loc("tiny.erl", 11), 1, 1)]
    assert BY_NAME["executable_line"].number == 183 and BY_NAME["debug_line"].number == 184


def test_newer_opcodes_in_table_are_all_known():
    assert HIGHEST == 191
    for n in range(181, HIGHEST + 1):
        o = beaminspect.format.opcodes.OPCODES[n]
        assert o is not None and o.number == n
    assert [beaminspect.format.opcodes.OPCODES[n].since for n in range(185, 192)] == [29] * 7


OTP29 = [
    ("bif3", (Label(1), ExtFunc("erlang", "+", 2), Reg("x", 0), Reg("x", 1), Reg("x", 2),
              Reg("x", 0)),
     "bif3 {f,1} erlang:'+'/2 {x,0} {x,1} {x,2} {x,0}"),
    ("is_any_native_record", (Label(1), Reg("x", 0)), "is_any_native_record {f,1} {x,0}"),
    ("is_native_record", (Label(1), Reg("x", 0), Atom("tiny"), Atom("point")),
     "is_native_record {f,1} {x,0} {atom,tiny} {atom,point}"),
    ("get_record_elements", (Label(1), Reg("x", 0), (Atom("x"), Reg("x", 1))),
     "get_record_elements {f,1} {x,0} [{atom,x},{x,1}]"),
    ("put_record", (None, Atom("point"), [], Reg("x", 0), 2, (Atom("x"), 7)),
     "put_record {f,0} {atom,point} nil {x,0} 2 [{atom,x},{integer,7}]"),
    ("is_record_accessible", (Label(1), Reg("x", 0), Atom("external")),
     "is_record_accessible {f,1} {x,0} {atom,external}"),
    ("get_record_field", (None, Reg("x", 0), Literal((Atom("ok"), 42)), Atom("x"), Reg("x", 3)),
     "get_record_field {f,0} {x,0} {literal,{ok,42}} {atom,x} {x,3}"),
]


@pytest.mark.parametrize("name,values,text", OTP29, ids=[t[0] for t in OTP29])
def test_otp29_instructions_185_to_191(tiny, name, values, text):
    (ins,) = [i for i in get_instructions(tiny) if i.name == name]
    assert ins.opcode == BY_NAME[name].number and 185 <= ins.opcode <= 191
    assert ins.values == values
    assert ins.text == text


def test_otp29_module_loads_on_29_only(tiny):
    """Opcode 191 is OTP 29's: OTP 28 refuses the module for it.  OTP 29 takes the
    opcode; what it refuses in this module is its bs_put_string, binary construction of
    compilers before OTP 25 that OTP 28 and later no longer load."""
    from beaminspect.loader.check import check_bytes
    data = build_beam()
    verdict = check_bytes(data, 28, "tiny", (), True)
    assert not verdict.loads and "191" in verdict.reason
    v29 = check_bytes(data, 29, "tiny", (), True)
    assert not v29.loads and v29.reason.startswith("op bs_put_string:")


def test_copies_of_an_instruction_share_its_table_entry(tiny):
    """The instruction table makes each distinct instruction's operands, values and
    text once: repetitions share the same objects, and ``text`` is their display form."""
    from beaminspect.code.disasm import instruction_text
    stream = list(get_instructions(tiny))
    for ins in stream:
        assert ins.text == instruction_text(ins.name, ins.args, ins.values)
    by_bytes: dict = {}
    code = bytes(tiny.code)
    for ins, nxt in zip(stream, stream[1:]):
        if ins.name in ("label", "line"):
            continue
        first = by_bytes.setdefault(code[ins.offset:nxt.offset], ins)
        assert first.args is ins.args and first.values is ins.values
        assert first.text is ins.text


def test_calls_resolve_to_functions_imports_and_bifs(tiny):
    assert _values(tiny, "call") == [(1, LocalFunc("g", 1, 4))]
    assert _values(tiny, "call_ext") == [(1, ExtFunc("lists", "reverse", 2))]
    assert _values(tiny, "gc_bif2") == [(None, 2, ExtFunc("erlang", "+", 2), Reg("x", 0), 1,
                                         Reg("x", 0))]


def test_literals_funs_types_strings(tiny):
    assert _values(tiny, "move")[0] == (Literal((Atom("ok"), 42)), Reg("x", 0))
    assert _values(tiny, "make_fun3") == [(FunRef(0, "-f/1-fun-0-", 2, 1), Reg("x", 0),
                                           (Reg("x", 1),))]
    (vals,) = _values(tiny, "is_integer")
    assert vals[1] == Reg("x", 0, BeamType(("integer",), False, 0, 255))
    assert _values(tiny, "test_heap") == [((("words", 3), ("floats", 0)), 1)]
    assert _values(tiny, "fmove") == [(Reg("fr", 0), Reg("y", 1))]
    assert _values(tiny, "bs_put_string") == [(3, b"abc")]
    assert _values(tiny, "bs_match_string") == [(Label(1), Reg("x", 0), 16, b"bc")]
    (vals,) = _values(tiny, "bs_create_bin")
    assert vals[5] == (Atom("string"), 1, 8, [], b"abc", 3)
    assert _values(tiny, "select_val") == [(Reg("x", 0), Label(1),
                                            (Atom("ok"), Label(4), -1, Label(4)))]
    assert _values(tiny, "move")[1] == (-5000, Reg("x", 2))


def test_text_forms(tiny):
    texts = {ins.name: ins.text for ins in get_instructions(tiny)}
    assert texts["call"] == "call 1 g/1"
    assert texts["call_ext"] == "call_ext 1 lists:reverse/2"
    assert texts["gc_bif2"] == "gc_bif2 {f,0} 2 erlang:'+'/2 {x,0} {integer,1} {x,0}"
    assert texts["select_val"] == "select_val {x,0} {f,1} [{atom,ok},{f,4},{integer,-1},{f,4}]"
    assert texts["is_integer"] == "is_integer {f,1} {tr,{x,0},integer(0..255)}"
    assert texts["test_heap"] == "test_heap {alloc,[{words,3},{floats,0}]} 1"
    assert texts["bs_put_string"] == 'bs_put_string 3 {string,<<97,98,99>>}'
    assert texts["make_fun3"] == "make_fun3 {fun,0,'-f/1-fun-0-'/2} {x,0} [{x,1}]"
    assert texts["return"] == "return"
    assert texts["line"] == "line tiny.erl:11"


def test_unknown_type_chunk_version_gives_untyped_registers():
    data = build_beam()
    # Type chunk version 1 -> 99: the loader ignores it; so does the disassembler.
    pos = data.index(b"Type") + 8
    data = data[:pos] + struct.pack(">I", 99) + data[pos + 4:]
    m = beaminspect.load(data)
    (vals,) = _values(m, "is_integer")
    assert vals[1] == Reg("x", 0, None)


# ---------------------------------------------------------------------------
# Bad input: exact error, chunk, offset, function
# ---------------------------------------------------------------------------

def _error(code: bytes, **kw) -> BeamError:
    m = beaminspect.load(build_beam(code, **kw), file="bad.beam")
    with pytest.raises(BeamError) as info:
        disassemble(m)
    err = info.value
    assert err.chunk == "Code" and err.file == "bad.beam"
    return err


def _replace(index: int, new: bytes) -> bytes:
    instrs = list(ALL)
    instrs[index] = new
    return code_chunk(instrs)


BODY0 = len(F_HEAD)  # index of the first body instruction


@pytest.mark.parametrize("byte", [0, HIGHEST + 1, 255])
def test_unknown_opcode(byte):
    err = _error(_replace(BODY0, bytes([byte])))
    assert isinstance(err, FormatError)
    assert (err.offset, err.function) == (OFFS[BODY0], "f/1")
    assert f"unknown opcode {byte}" in err.reason


def test_a_label_past_the_modules_count_is_refused_after_a_larger_module():
    """Label operands come from a table shared by every module: a module with more
    labels, disassembled first, must not make a label valid in one with fewer."""
    big = beaminspect.load(build_beam(code_chunk(labels=200)), file="big.beam")
    assert disassemble(big)
    err = _error(_replace(BODY0, op("is_integer", f(5), x(0))))
    assert isinstance(err, FormatError) and err.offset == OFFS[BODY0]
    assert "label 5 out of range (1..4)" in err.reason


def test_unknown_opcode_before_any_function():
    err = _error(_replace(1, bytes([0])))
    assert isinstance(err, FormatError) and (err.offset, err.function) == (OFFS[1], None)


@pytest.mark.parametrize("name, new, what", [
    ("atom", op("move", a(99), x(0)), "atom index 99"),
    ("label", op("jump", f(5)), "label 5"),
    ("literal", op("move", lit(1), x(0)), "literal index 1"),
    ("import", op("call_ext", u(1), u(2)), "import index 2"),
    ("fun", op("make_fun3", u(1), x(0), lst()), "fun index 1"),
    ("type", op("is_integer", f(1), tr(x(0), 1)), "type index 1"),
    ("line", op("line", u(3)), "line index 3"),
    ("call label tag", op("call", u(1), u(4)), "call target label"),
])
def test_index_out_of_range(name, new, what):
    err = _error(_replace(BODY0 + 1, new))
    assert isinstance(err, FormatError), name
    assert (err.offset, err.function) == (OFFS[BODY0 + 1], "f/1"), name
    assert what in err.reason, err.reason


def test_string_past_the_string_table_is_unknown_not_an_error():
    """The loader does not check string operands against StrT (such a file loads, as
    tests/test_loader_agreement.py shows), so the string resolves to None."""
    m = beaminspect.load(build_beam(_replace(BODY0 + 1, op("bs_put_string", u(4), u(0)))),
                         file="s.beam")
    ins = [i for fn in disassemble(m) for i in fn.instructions if i.name == "bs_put_string"]
    assert ins and ins[0].values[1] is None


def test_operand_running_past_the_chunk():
    code = code_chunk(F_HEAD + [op("move", x(0), x(1))])
    code = code[:-1]  # the last operand is missing
    err = _error(code)
    assert isinstance(err, TruncatedError)
    # A missing operand is reported where it should start.
    assert (err.offset, err.function) == (len(code), "f/1")


def test_long_operand_cut_short():
    cut = op("move", i(-5000), x(2))[:2]  # opcode, first byte of a 3-byte integer
    code = code_chunk(F_HEAD + [cut])
    err = _error(code)
    assert isinstance(err, TruncatedError)
    assert (err.offset, err.function) == (OFFS[BODY0] + 1, "f/1")


def test_code_not_ending_with_int_code_end():
    code = code_chunk(F_HEAD + F_BODY + G)
    err = _error(code)
    assert isinstance(err, TruncatedError) and "int_code_end" in err.reason
    assert (err.offset, err.function) == (len(code), "g/1")


def test_func_info_without_entry_label():
    err = _error(code_chunk(F_HEAD[:3] + [op("return")] + G + END))
    assert isinstance(err, FormatError) and err.function == "f/1" and err.offset == OFFS[2]


def test_func_info_with_bad_operands():
    err = _error(_replace(2, op("func_info", a(A["tiny"]), u(2), u(1))))
    assert isinstance(err, FormatError) and err.offset == OFFS[2]


def test_random_corruption_raises_only_beam_errors():
    rng = random.Random(1234)
    base = bytearray(code_chunk())
    for _ in range(400):
        code = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            code[rng.randrange(20, len(code))] = rng.randrange(256)
        if rng.random() < 0.3:
            code = code[:rng.randrange(20, len(code))]
        m = beaminspect.load(build_beam(bytes(code)))
        try:
            disassemble(m)
        except BeamError as e:
            assert e.chunk in ("Code", "LitT"), e
            assert e.offset is not None


# ---------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture()
def tiny_path(tmp_path):
    p = tmp_path / "tiny.beam"
    p.write_bytes(build_beam())
    return str(p)


def test_cli_listing(tiny_path):
    res = runner.invoke(app, ["disasm", tiny_path])
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "function f/1 (entry label 2), lines 10-11" in out
    assert "function g/1 (entry label 4)\n" in out
    assert "\nL2:\n" in out and "    ; tiny.erl:10\n" in out
    assert "    call 1 g/1\n" in out
    assert "    update_record {atom,copy} 3 {x,0} {x,0} [2,{x,1}]\n" in out


def test_cli_json(tiny_path):
    res = runner.invoke(app, ["disasm", "--json", tiny_path])
    assert res.exit_code == 0, res.output
    (line,) = res.stdout.splitlines()
    doc = json.loads(line)
    assert doc["module"] == "tiny" and doc["file"] == tiny_path
    assert [(fn["name"], fn["arity"], fn["entry"]) for fn in doc["functions"]] == \
        [("f", 1, 2), ("g", 1, 4)]
    ins = {i["op"]: i for i in doc["functions"][0]["instructions"]}
    assert ins["call_ext"]["args"] == [1, "lists:reverse/2"]
    assert ins["select_val"]["args"] == ["{x,0}", "{f,1}",
                                         ["{atom,ok}", "{f,4}", "{integer,-1}", "{f,4}"]]
    assert ins["gc_bif2"]["args"][0] is None
    first = doc["functions"][0]["instructions"][0]
    assert first == {"op": "label", "args": [1], "offset": 20}


def test_cli_function_filter(tiny_path):
    res = runner.invoke(app, ["disasm", tiny_path, "--function", "g/1"])
    assert res.exit_code == 0
    assert "function g/1" in res.stdout and "function f/1" not in res.stdout


def test_cli_missing_function_exits_2(tiny_path):
    res = runner.invoke(app, ["disasm", tiny_path, "--function", "nope/3"])
    assert res.exit_code == 2
    assert res.stderr.strip() == "beaminspect: no module has a function nope/3"


def test_cli_bad_function_spec_is_a_usage_error(tiny_path, capsys):
    from beaminspect.cli.app import EXIT_USAGE, main
    assert main(["disasm", tiny_path, "--function", "nope"]) == EXIT_USAGE
    assert "NAME/ARITY" in capsys.readouterr().err


def test_cli_bad_file_one_line_exit_2(tmp_path, tiny_path):
    bad = tmp_path / "bad.beam"
    bad.write_bytes(build_beam(_replace(BODY0, bytes([0]))))
    res = runner.invoke(app, ["disasm", str(bad), tiny_path])
    assert res.exit_code == 2
    (err,) = res.stderr.strip().splitlines()
    assert err == (f"beaminspect: {bad}: chunk Code function f/1 at offset {OFFS[BODY0]}: "
                   "unknown opcode 0")
    assert "function g/1" in res.stdout  # the good file is still listed


# ---------------------------------------------------------------------------
# Listings: direct JSON text, parallel runs
# ---------------------------------------------------------------------------

def _listing_corpus(stride: int) -> list[str]:
    from corpus import SAMPLE_BEAMS
    from otp import ELIXIR_BEAMS, OTP_BEAMS
    return SAMPLE_BEAMS + OTP_BEAMS[::stride] + ELIXIR_BEAMS[::stride]


def _expected_json(m, functions=None) -> dict:
    """The documented ``disasm --json`` object, built from the instruction records."""
    funcs = m.functions if functions is None else functions
    return {"module": m.name, "file": m.file, "functions": [
        {"name": f.name, "arity": f.arity, "entry": f.entry,
         "lines": list(f.lines) if f.lines is not None else None,
         "instructions": [{"op": ins.name, "args": ins.json_args(), "offset": ins.offset}
                          for ins in f.instructions]}
        for f in funcs]}


def test_json_text_is_the_dumped_records(tiny):
    from beaminspect.render.disasm_text import module_json_text
    from beaminspect.render.json_out import dumps
    assert module_json_text(tiny) == dumps(_expected_json(tiny))
    g = [f for f in tiny.functions if f.name == "g"]
    assert module_json_text(tiny, g) == dumps(_expected_json(tiny, g))
    for path in _listing_corpus(11):
        try:
            m = beaminspect.load(path)
            m.functions
        except BeamError:
            continue
        assert module_json_text(m) == dumps(_expected_json(m)), path


def test_listing_is_the_records_text(tiny):
    from beaminspect.render.disasm_text import module_text
    for m in [tiny] + [beaminspect.load(p) for p in _listing_corpus(97)]:
        want = [f"module {m.name} ({m.file}): {len(m.functions)} functions"]
        for f in m.functions:
            lines = [f"function {f.mfa} (entry label {f.entry})" + (
                "" if f.lines is None else f", lines {f.lines[0]}-{f.lines[1]}"
                if f.lines[0] != f.lines[1] else f", line {f.lines[0]}")]
            for ins in f.instructions:
                if ins.name == "label":
                    lines.append(f"L{ins.values[0]}:")
                elif ins.name == "line":
                    if ins.values[0] is not None:
                        lines.append(f"    ; {ins.values[0]}")
                else:
                    lines.append("    " + ins.text)
            want.append("\n".join(lines))
        assert module_text(m) == "\n\n".join(want), m.file


@pytest.mark.parametrize("as_json", [True, False])
def test_cli_parallel_output_is_the_serial_output(tiny_path, as_json):
    from beaminspect.parallel import MIN_FILES_FOR_POOL
    paths = [tiny_path] + _listing_corpus(40)
    if len(paths) < MIN_FILES_FOR_POOL:
        pytest.skip("not enough beams for a pool")
    opt = ["--json"] if as_json else []
    serial = runner.invoke(app, ["disasm", *opt, "-j", "1", *paths])
    parallel = runner.invoke(app, ["disasm", *opt, "-j", "2", *paths])
    assert serial.exit_code == parallel.exit_code
    assert serial.stdout == parallel.stdout
    assert serial.stderr == parallel.stderr


@pytest.mark.parametrize("jobs", [[], ["-j", "1"], ["-j2"], ["--jobs=2"]])
def test_entry_point_disasm_json_is_the_runner_output(tiny_path, tmp_path, jobs):
    """``disasm --json`` as a process (bytes written straight to standard output, then
    ``os._exit``) prints what the app prints under CliRunner, bad files and exit code
    included."""
    import subprocess
    import sys
    bad = tmp_path / "bad.beam"
    bad.write_bytes(b"FOR1\x00\x00\x00\x0cBEAMAtU8\x00\x00\x00\xff")
    paths = [tiny_path, str(bad)] + _listing_corpus(40)
    in_runner = runner.invoke(app, ["disasm", "--json", *jobs, *paths])
    proc = subprocess.run([sys.executable, "-m", "beaminspect", "disasm", "--json", *jobs,
                           *paths], capture_output=True, text=True, encoding="utf-8",
                          timeout=600)
    assert proc.returncode == in_runner.exit_code == 2
    assert proc.stdout == in_runner.stdout
    assert proc.stderr == in_runner.stderr


# ---------------------------------------------------------------------------
# Operand sizes
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("data", [
    bytes([0x57, 0x03, 0x10]),            # typed register {x,0}, type 1
    bytes([0x57, 0x0B, 0x40, 0x10]),      # typed register, two-byte register
    bytes([0x47, 0x50]),                  # literal 5
    bytes([0x47, 0x08, 0x20]),            # literal, two-byte index
    bytes([0x27, 0x30]),                  # float register 3
    bytes([0x17, 0x40, 0x02, 0x12, 0x47, 0x10, 0x03]),  # list of 4 with a literal
    bytes([0x17, 0x08, 0x00]),            # empty list, two-byte count
    bytes([0x37, 0x20, 0x00, 0x30, 0x10, 0x10]),  # allocation list
    bytes([0x18, 0x01, 0x02]),            # three-byte u
    bytes([0xF8, 0x00]) + bytes(9),       # nine-byte u (nested length)
])
def test_skip_long_finds_the_end_decode_finds(data):
    from beaminspect.format.compact import OPERAND_SIZE, decode_operand, skip_long
    tail = data + b"\x00\x10"
    assert OPERAND_SIZE[data[0]] == 0
    assert skip_long(tail, 0, len(tail)) == decode_operand(tail, 0, len(tail))[1] == len(data)
