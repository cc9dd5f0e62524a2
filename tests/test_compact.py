"""Compact-term operands: every form, hostile input, OTP's encoder and OTP's own beams."""

from __future__ import annotations

import glob
import shutil
import struct
import subprocess
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beaminspect.format.compact import (
    ALLOC, FR, LIST, LITERAL, MAX_INTEGER_BYTES, TAG_NAMES, TR, Operand, decode_operand,
    decode_operands,
)
from beaminspect.errors import BeamError, FormatError, LimitError, TruncatedError
from beaminspect.format.opcodes import ARITIES, BY_NAME, HIGHEST
from compact_encode import encode, encode_tagged

BASIC = ("u", "i", "a", "x", "y", "f", "h")


def decode_all(data: bytes):
    op, pos = decode_operand(data, 0, len(data))
    assert pos == len(data), f"{data.hex()} decoded {pos} of {len(data)} bytes"
    return op


# -- the four forms, for every basic tag -------------------------------------------
@pytest.mark.parametrize("tag", BASIC)
@pytest.mark.parametrize("value,size", [
    (0, 1), (1, 1), (15, 1),                       # value in the first byte
    (16, 2), (255, 2), (256, 2), (2047, 2),        # 3 + 8 bits
    (2048, 3), (0x7FFF, 3), (0x8000, 4),           # n + 2 bytes, zero byte before top bit
    (2**55 - 1, 8), (2**63 - 1, 9),                # largest n < 7 forms
    (2**63, 11), (2**64, 11),                      # nested length: 9 bytes
    (2**80, 13), (2**300, 41), (2**2000, 254),     # nested length in the two-byte form
])
def test_basic_forms(tag, value, size):
    data = encode(Operand(tag, value))
    assert len(data) == size
    assert data[0] & 7 == TAG_NAMES.index(tag)
    assert decode_all(data) == Operand(tag, value)


@pytest.mark.parametrize("data,expected", [
    (b"\x00", ("u", 0)),
    (b"\x03", ("x", 0)),
    (b"\x13", ("x", 1)),
    (b"\xf4", ("y", 15)),
    (b"\x02", ("a", 0)),                            # nil, kept raw
    (b"\x05", ("f", 0)),                            # no fail label, kept raw
    (b"\x2d\x07", ("f", 263)),
    (b"\xe8\xff", ("u", 2047)),
    (b"\x19\xff\xff", ("i", -1)),
    (b"\x19\x08\x00", ("i", 2048)),
    (b"\x18\xff\xff", ("u", 65535)),                # only 'i' is two's complement
    (b"\x1a\xff\xff", ("a", 65535)),
    (b"\x39\x00\x80\x00", ("i", 0x8000)),
    (b"\x39\xff\x7f\xff", ("i", -0x8001)),
    (b"\x08\x05", ("u", 5)),                        # longer than needed is accepted
    (b"\x18\x00\x05", ("u", 5)),
    (b"\xf8\x00" + b"\x00" * 8 + b"\x01", ("u", 1)),
    (b"\xf9\x00" + b"\xff" * 9, ("i", -1)),
])
def test_exact_bytes(data, expected):
    assert decode_all(data) == expected


@pytest.mark.parametrize("value", [
    -1, -2, -15, -16, -128, -129, -2048, -0x8000, -0x8001, -2**31, -2**31 - 1,
    -2**63, -2**63 - 1, -2**64, -(2**1000), -(2**1000) + 1,
])
def test_negative_integers(value):
    data = encode(Operand("i", value))
    assert len(data) >= 3                           # negatives always use the long form
    assert decode_all(data) == ("i", value)


@pytest.mark.parametrize("value", [2**64 - 1, 2**127, 2**128 + 12345, 3**500])
def test_big_unsigned(value):
    for tag in ("u", "a", "x", "h"):
        assert decode_all(encode(Operand(tag, value))) == (tag, value)


# -- extended forms -------------------------------------------------------------------
@pytest.mark.parametrize("op", [
    Operand(LIST, ()),
    Operand(LIST, (Operand("i", 1), Operand("f", 10), Operand("a", 3), Operand("f", 12))),
    Operand(LIST, (Operand(LITERAL, 3), Operand(TR, (Operand("x", 2), 5)),
                   Operand("i", -(2**100)), Operand("f", 3000))),
    Operand(LIST, tuple(Operand("u", n) for n in range(300))),
    Operand(FR, 0), Operand(FR, 1023),
    Operand(ALLOC, ()),
    Operand(ALLOC, ((0, 3),)),
    Operand(ALLOC, ((0, 5000), (1, 2), (2, 1))),
    Operand(LITERAL, 0), Operand(LITERAL, 70000),
    Operand(TR, (Operand("x", 0), 1)),
    Operand(TR, (Operand("y", 1023), 2047)),
    Operand(TR, (Operand("x", 5000), 2**40)),
])
def test_extended_forms(op):
    data = encode(op)
    assert data[0] & 7 == 7
    assert decode_all(data) == op


def test_extended_kind_in_two_byte_form_is_read():
    # The loader reads the z value like any other; a longer-than-needed kind is valid.
    assert decode_all(b"\x0f\x04\x20") == (LITERAL, 2)


def test_one_byte_forms_are_preallocated():
    first, _ = decode_operand(b"\x13", 0, 1)
    again, _ = decode_operand(bytearray(b"\x13"), 0, 1)
    assert first is again
    assert decode_operand(b"\x2d\x07", 0, 2)[0] is decode_operand(b"\x2d\x07", 0, 2)[0]


# -- positions, buffers, decode_operands --------------------------------------------
def test_absolute_positions_and_end_bound():
    ops = (Operand("x", 0), Operand("i", -70000), Operand(LIST, (Operand("a", 2),)),
           Operand("f", 2000), Operand(LITERAL, 9))
    body = b"".join(encode(o) for o in ops)
    data = b"JUNK" + body + b"\xff\xff"
    for buf in (data, memoryview(data), bytearray(data)):
        got, pos = decode_operands(buf, 4, 4 + len(body), len(ops))
        assert got == ops and pos == 4 + len(body)
        for arity in range(len(ops) + 1):
            got, pos = decode_operands(buf, 4, 4 + len(body), arity)
            assert got == ops[:arity]
    # end is honoured even though buf goes on.
    with pytest.raises(TruncatedError):
        decode_operands(data, 4, 4 + len(body) - 1, len(ops))


@pytest.mark.parametrize("arity", [1, 2, 3])
def test_decode_operands_truncated_before_each_operand(arity):
    ops = (Operand("f", 300), Operand("x", 1), Operand("y", 2000))[:arity]
    body = b"".join(encode(o) for o in ops)
    assert decode_operands(body, 0, len(body), arity) == (ops, len(body))
    for cut in range(len(body)):
        with pytest.raises(TruncatedError):
            decode_operands(body, 0, cut, arity)


# -- hostile input --------------------------------------------------------------------
TRUNCATION_CASES = [
    Operand("f", 300), Operand("i", -1), Operand("i", 2**63), Operand("u", 2**2000),
    Operand("i", -(2**1000)), Operand(LIST, (Operand("i", 7), Operand("f", 3))),
    Operand(LIST, (Operand(LITERAL, 400), Operand(TR, (Operand("y", 3), 300)))),
    Operand(FR, 600), Operand(ALLOC, ((0, 4000), (1, 3))), Operand(LITERAL, 2**20),
    Operand(TR, (Operand("x", 2000), 4000)),
]


@pytest.mark.parametrize("op", TRUNCATION_CASES)
def test_truncation_at_every_byte(op):
    data = encode(op)
    for cut in range(len(data)):
        with pytest.raises(TruncatedError) as info:
            decode_operand(data + b"\x00" * 4, 0, cut)   # bytes beyond end are not read
        assert info.value.offset is not None and 0 <= info.value.offset <= cut


def test_float_operand_refused():
    with pytest.raises(FormatError, match="obsolete") as info:
        decode_operand(b"\x00" * 3 + b"\x07" + b"\x00" * 8, 3, 12)
    assert info.value.offset == 3


@pytest.mark.parametrize("kind", [6, 7, 15, 2000])
def test_unknown_extended_kind(kind):
    data = encode_tagged(7, kind) + b"\x00" * 4
    with pytest.raises(FormatError, match="extended tag"):
        decode_operand(data, 0, len(data))


@pytest.mark.parametrize("data,match", [
    (b"\x17\x13\x03", "list length"),                 # count tagged x
    (b"\x17\x10\x17\x00", "nested"),                  # list inside a list
    (b"\x57\x02\x00", "typed register"),              # atom as typed register
    (b"\x57\x03\x13", "type index"),                  # type index tagged x
    (b"\x37\x10\x30\x10", "allocation kind"),         # kind 3
    (b"\x47\x01", "literal index"),                   # literal index tagged i
    (b"\x27\x03", "float register"),
    (b"\xf8\x01" + b"\x00" * 20, "length prefix"),    # nested length tagged i
])
def test_malformed_extended(data, match):
    with pytest.raises(FormatError, match=match):
        decode_operand(data, 0, len(data))


def test_huge_list_count_fails_before_reading_or_allocating():
    data = encode_tagged(7, 1) + encode_tagged(0, 2**30) + b"\x00" * 100
    tracemalloc.start()
    # The count is checked against the bytes left first: the error names the count
    # (not an element past the end), and nothing sized by the count is allocated.
    with pytest.raises(TruncatedError, match="1073741824"):
        decode_operand(data, 0, len(data))
    with pytest.raises(TruncatedError):
        decode_operand(encode_tagged(7, 3) + encode_tagged(0, 2**30), 0, 12)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 256 * 1024


def test_integer_length_limit():
    ok = encode(Operand("u", 2 ** (8 * MAX_INTEGER_BYTES - 9)))
    assert decode_all(ok) == ("u", 2 ** (8 * MAX_INTEGER_BYTES - 9))
    too_long = b"\xf9" + encode_tagged(0, MAX_INTEGER_BYTES - 8)
    with pytest.raises(LimitError):
        decode_operand(too_long + b"\x00" * 16, 0, len(too_long) + 16)
    # A length that itself needs the nested form is refused without recursing.
    with pytest.raises(LimitError):
        decode_operand(b"\xf8" * 5000, 0, 5000)


def test_random_junk_raises_only_beam_errors():
    rnd = __import__("random").Random(1234)
    for _ in range(3000):
        data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 24)))
        try:
            decode_operands(data, 0, len(data), 3)
        except BeamError as exc:
            assert exc.offset is not None


# -- round trip ---------------------------------------------------------------------------
_ints = st.one_of(st.integers(-2**70, 2**70), st.integers(-2**3000, 2**3000),
                  st.integers(-20, 3000))
_nat = st.one_of(st.integers(0, 3000), st.integers(0, 2**80), st.integers(0, 2**2100))
_basic = st.one_of(
    st.builds(Operand, st.just("i"), _ints),
    st.builds(Operand, st.sampled_from(["u", "a", "x", "y", "f", "h"]), _nat),
)
_reg = st.builds(Operand, st.sampled_from(["x", "y"]), _nat)
_element = st.one_of(
    _basic,
    st.builds(Operand, st.just(LITERAL), _nat),
    st.builds(Operand, st.just(FR), _nat),
    st.builds(lambda r, t: Operand(TR, (r, t)), _reg, _nat),
    st.builds(lambda p: Operand(ALLOC, tuple(p)),
              st.lists(st.tuples(st.integers(0, 2), _nat), max_size=4)),
)
_operand = st.one_of(_element,
                     st.builds(lambda xs: Operand(LIST, tuple(xs)), st.lists(_element, max_size=12)))


@settings(max_examples=400, deadline=None)
@given(st.lists(_operand, min_size=1, max_size=6), st.binary(max_size=3))
def test_round_trip(ops, prefix):
    body = b"".join(encode(o) for o in ops)
    data = prefix + body
    assert decode_operands(data, len(prefix), len(data), len(ops)) == (tuple(ops), len(data))
    op, pos = decode_operand(data, len(prefix), len(data))
    assert op == ops[0] and pos == len(prefix) + len(encode(ops[0]))


# -- oracle: OTP's beam_asm:encode/2 ----------------------------------------------------
ORACLE_VALUES = sorted(set(
    [0, 1, 15, 16, 17, 255, 256, 2047, 2048, 2049, 0x7FFF, 0x8000, 0xFFFF, 0x10000]
    + [2**k + d for k in range(16, 260, 7) for d in (-1, 0, 1)]
    + [2**2000, 3**700]
))
ORACLE_NEGATIVE = sorted(set(
    [-1, -2, -15, -16, -127, -128, -129, -255, -256, -2047, -2048, -0x8000, -0x8001]
    + [-(2**k) + d for k in range(16, 260, 7) for d in (-1, 0, 1)] + [-(2**2000)]
))


@pytest.mark.otp
def test_encoder_matches_beam_asm(tmp_path):
    if shutil.which("erl") is None:
        pytest.skip("erl (Erlang/OTP) is not installed")
    cases = [(tag, v) for tag in range(7) for v in ORACLE_VALUES]
    cases += [(1, v) for v in ORACLE_NEGATIVE]
    cases += [(7, v) for v in range(6)]
    terms = tmp_path / "cases.txt"
    terms.write_text("[" + ",".join(f"{{{t},{v}}}" for t, v in cases) + "].\n")
    script = (
        f'{{ok,[L]}} = file:consult("{terms}"),'
        "[io:format(\"~s~n\", [binary:encode_hex(iolist_to_binary([beam_asm:encode(T, N)]))])"
        " || {T, N} <- L], halt().")
    res = subprocess.run(["erl", "-noshell", "-eval", script], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.split()
    assert len(lines) == len(cases)
    for (tag, value), hexed in zip(cases, lines):
        otp = bytes.fromhex(hexed)
        assert encode_tagged(tag, value) == otp, (tag, value)
        if tag != 7:
            assert decode_all(otp) == (TAG_NAMES[tag], value)


# -- OTP's own beam files -------------------------------------------------------------------
def _chunks(data: bytes) -> dict:
    assert data[:4] == b"FOR1" and data[8:12] == b"BEAM"
    pos, out = 12, {}
    while pos + 8 <= len(data):
        cid = data[pos:pos + 4].decode("latin-1")
        size = struct.unpack_from(">I", data, pos + 4)[0]
        out[cid] = (pos + 8, pos + 8 + size)
        pos += 8 + ((size + 3) & ~3)
    return out


def walk_code(data: bytes):
    """Yield (opcode, operands) for every instruction; check the chunk is used exactly."""
    start, end = _chunks(data)["Code"]
    header_size, _iset, max_op, _labels, functions = struct.unpack_from(">IIIII", data, start)
    assert max_op <= HIGHEST
    buf = memoryview(data)
    pos = start + 4 + header_size
    seen_functions = 0
    func_info = BY_NAME["func_info"].number
    code_end = BY_NAME["int_code_end"].number
    while True:
        assert pos < end, "Code chunk ends without int_code_end"
        opcode = buf[pos]
        arity = ARITIES[opcode]
        assert arity >= 0 and opcode <= max_op, f"opcode {opcode} at {pos}"
        ops, pos = decode_operands(buf, pos + 1, end, arity)
        yield opcode, ops
        seen_functions += opcode == func_info
        if opcode == code_end:
            break
    assert pos == end, f"int_code_end at {pos}, chunk ends at {end}"
    assert seen_functions == functions


def _flatten(ops):
    for op in ops:
        yield op
        if op.tag == LIST:
            yield from _flatten(op.value)
        elif op.tag == TR:
            yield op.value[0]


OTP_BEAMS = sorted(glob.glob("/usr/lib/erlang/lib/*/ebin/*.beam"))


@pytest.mark.otp
@pytest.mark.skipif(not OTP_BEAMS, reason="no OTP beam files under /usr/lib/erlang")
def test_every_otp_beam_code_chunk_decodes_exactly():
    kinds = set()
    for path in OTP_BEAMS:
        with open(path, "rb") as fh:
            data = fh.read()
        if data[:2] == b"\x1f\x8b":
            data = __import__("gzip").decompress(data)
        try:
            for _opcode, ops in walk_code(data):
                for tag, value in ops:
                    kinds.add(tag)
                    if tag == LIST:
                        kinds.update(item[0] for item in value)
        except (AssertionError, BeamError) as exc:
            raise AssertionError(f"{path}: {exc}") from exc
    assert len(OTP_BEAMS) > 100
    # OTP 25's compiler uses every operand kind but 'h' and the float register
    # is used at least by the float-heavy modules.
    assert {"u", "i", "a", "x", "y", "f", LIST, FR, ALLOC, LITERAL, TR} <= kinds


ERL_SOURCE = """
-module(ints).
-export([f/1, g/1]).
f(X) ->
    case X of
        -1 -> a; 200 -> b; 70000 -> c; -129 -> d;
        1180591620717411303424 -> e; -1180591620717411303424 -> g;
        -2147483648 -> h; -9223372036854775808 -> i;
        170141183460469231731687303715884105727 -> j;
        _ -> z
    end.
g(X) when is_integer(X) -> X + 340282366920938463463374607431768211456.
"""


@pytest.mark.otp
def test_compiled_module_integers(tmp_path):
    if shutil.which("erlc") is None:
        pytest.skip("erlc (Erlang/OTP) is not installed")
    src = tmp_path / "ints.erl"
    src.write_text(ERL_SOURCE)
    subprocess.run(["erlc", "-o", str(tmp_path), str(src)], check=True, timeout=120)
    data = (tmp_path / "ints.beam").read_bytes()
    ints = set()
    literals = 0
    for _opcode, ops in walk_code(data):
        for op in _flatten(ops):
            if op.tag == "i":
                ints.add(op.value)
            literals += op.tag == LITERAL
    assert {-1, 200, 70000, -129, 2**70, -(2**70), -2**31, -2**63, 2**127 - 1} <= ints
    # beam_asm stores integers of 2**128 and beyond as literals.
    assert 2**128 not in ints and literals >= 1
