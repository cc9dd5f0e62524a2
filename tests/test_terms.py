"""External term format: known encodings, Map semantics, ~w text, JSON, term order,
round trips through a test encoder, hostile input, and OTP as the oracle."""

from __future__ import annotations

import glob
import json
import os
import shutil
import struct
import subprocess
import tracemalloc
import zlib

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from beaminspect.errors import BeamError, FormatError, LimitError, TruncatedError, UnsupportedError
from beaminspect.terms import (Atom, BitBinary, ExportFun, ImproperList, LocalFun, Map, Pid,
                               Port, Reference, compare_terms, decode, decode_at,
                               format_term, term_sort_key, to_json)
from etf_encode import encode, encode_body

H = bytes.fromhex
NODE = Atom("nonode@nohost")

# term_to_binary output of OTP 25 (erl -noshell), with the ~w text it printed.
KNOWN = [
    ("836101", 1, "1"),
    ("8362FFFFFFFB", -5, "-5"),
    ("836E0900000000000000000040", 2**70, "1180591620717411303424"),
    ("836E0901000000000000000040", -(2**70), "-1180591620717411303424"),
    ("83463FF8000000000000", 1.5, "1.5"),
    ("8363312E3530303030303030303030303030303030303030652B30300000000000", 1.5, "1.5"),
    ("836803640001616B00036162634D00000002040120",
     (Atom("a"), [97, 98, 99], BitBinary(b"\x01\x20", 4)), "{a,[97,98,99],<<1,2:4>>}"),
    ("836C0000000161016102", ImproperList((1,), 2), "[1|2]"),
    ("8374000000026400016161016C00000001640001786A6102",
     Map([(Atom("a"), 1), ([Atom("x")], 2)]), "#{a => 1,[x] => 2}"),
    ("835864000D6E6F6E6F6465406E6F686F7374000000090000000000000000",
     Pid(NODE, 9, 0, 0), "<0.9.0>"),
    ("835A000364000D6E6F6E6F6465406E6F686F73740000000000003790B38000027B182E36",
     Reference(NODE, 0, (0x3790, 0xB3800002, 0x7B182E36)),
     "#Ref<0.2065182262.3011510274.14224>"),
    ("835964000D6E6F6E6F6465406E6F686F73740000000000000000", Port(NODE, 0, 0), "#Port<0.0>"),
    ("83716400056C697374736400036D61706102",
     ExportFun(Atom("lists"), Atom("map"), 2), "fun lists:map/2"),
    ("837706E697A5E69CAC", Atom("日本"), "'\\x{65E5}\\x{672C}'"),
    ("8364000568E96C6C6F", Atom("héllo"), "héllo"),
    ("836A", [], "[]"),
    ("834D000000010320", BitBinary(b"\x20", 3), "<<1:3>>"),
    ("836D00000000", b"", "<<>>"),
]


@pytest.mark.parametrize("hexdata,term,text", KNOWN, ids=[k[2][:30] for k in KNOWN])
def test_known_encodings(hexdata, term, text):
    got = decode(H(hexdata))
    assert got == term
    assert format_term(got) == text
    assert type(got) is type(term)


def test_local_fun_from_otp():
    # term_to_binary(fun(X) -> X + 1 end) from erl -eval (an erl_eval closure).
    data = H("8370000000BD01065361AA461590D1BDF1EB62D1A6EB080000002A0000000164000865726C5F"
             "6576616C612A6200329B0D5864000D6E6F6E6F6465406E6F686F737400000009000000000000"
             "0000680661046A6400046E6F6E656400046E6F6E6574000000006C000000016805640006636C"
             "6175736561046C0000000168036400037661726104640001586A6A6C0000000168056400026F"
             "7061046400012B68036400037661726104640001586803640007696E7465676572610461016A"
             "6A")
    f = decode(data)
    assert isinstance(f, LocalFun)
    assert (f.module, f.arity, f.index, f.old_index, f.old_uniq) == ("erl_eval", 1, 42, 42,
                                                                     3316493)
    assert f.md5 == f.uniq == H("065361AA461590D1BDF1EB62D1A6EB08")
    assert f.pid == Pid(NODE, 9, 0, 0)
    (env,) = f.free_vars
    assert env[:4] == (4, [], Atom("none"), Atom("none")) and env[4] == Map()
    assert env[5][0][0] == Atom("clause")
    assert format_term(f) == "#Fun<erl_eval.42.3316493>"
    assert encode(f) == data


def test_old_forms():
    # PID_EXT, PORT_EXT, REFERENCE_EXT, NEW_REFERENCE_EXT, FUN_EXT, SMALL_ATOM_EXT
    node = b"s\x01n"
    pid = b"g" + node + struct.pack(">IIB", 7, 1, 2)
    assert decode(b"\x83" + pid) == Pid(Atom("n"), 7, 1, 2)
    assert decode(b"\x83f" + node + struct.pack(">IB", 5, 3)) == Port(Atom("n"), 5, 3)
    assert decode(b"\x83e" + node + struct.pack(">IB", 5, 3)) == Reference(Atom("n"), 3, (5,))
    assert decode(b"\x83r\x00\x02" + node + struct.pack(">BII", 1, 8, 9)) == \
        Reference(Atom("n"), 1, (8, 9))
    assert decode(b"\x83x" + node + struct.pack(">QI", 2**40, 3)) == Port(Atom("n"), 2**40, 3)
    fun = (b"\x83u" + struct.pack(">I", 1) + pid + b"d\x00\x01m" + b"a\x03" + b"b\x00\x00\x01\x00"
           + b"a\x07")
    f = decode(fun)
    assert f == LocalFun(Atom("m"), None, 256, 3, 3, 256, Pid(Atom("n"), 7, 1, 2), (7,), None)
    assert format_term(f) == "#Fun<m.3.256>"


def test_string_and_list_normalisation():
    # [1 | "ab"] written as LIST_EXT with a STRING_EXT tail is the proper list [1,97,98].
    assert decode(b"\x83l\x00\x00\x00\x01a\x01k\x00\x02ab") == [1, 97, 98]
    # [1 | [2 | x]] nested improper lists flatten.
    t = decode(b"\x83l\x00\x00\x00\x01a\x01l\x00\x00\x00\x01a\x02d\x00\x01x")
    assert t == ImproperList((1, 2), Atom("x"))
    # A LIST_EXT with no elements is just its tail.
    assert decode(b"\x83l\x00\x00\x00\x00d\x00\x01x") == Atom("x")
    # A bitstring with 8 bits in its last byte is a binary; unused bits are cleared.
    assert decode(b"\x83M\x00\x00\x00\x01\x08\xff") == b"\xff"
    assert decode(b"\x83M\x00\x00\x00\x01\x03\xff") == BitBinary(b"\xe0", 3)


def test_decode_at_walks_a_table():
    buf = b"xx" + encode_body(Atom("a")) + encode_body([1, 2]) + encode_body((3,))
    pos, out = 2, []
    while pos < len(buf):
        t, pos = decode_at(buf, pos)
        out.append(t)
    assert out == [Atom("a"), [1, 2], (3,)]
    mv = memoryview(buf)
    t, end = decode_at(mv, 2 + 4, end=len(buf))
    assert t == [1, 2] and buf[end:] == encode_body((3,))


# -- Map ----------------------------------------------------------------------

def test_map_semantics():
    m = Map([([1, 2], Atom("list")), (1, Atom("int")), (1.0, Atom("float")),
             (Map({Atom("k"): [0]}), Atom("map")), ((1.0,), Atom("tuple"))])
    assert len(m) == 5
    assert m[[1, 2]] == "list"
    assert m[1] == "int" and m[1.0] == "float"
    assert m[(1.0,)] == "tuple" and m.get((1,)) is None
    assert m[Map({Atom("k"): [0]})] == "map"
    assert m.get([9], "dflt") == "dflt"
    assert [1, 2] in m and [2, 1] not in m
    with pytest.raises(KeyError):
        m[[3]]
    assert list(m) == list(m.keys()) == [[1, 2], 1, 1.0, Map({Atom("k"): [0]}), (1.0,)]
    assert m.values()[0] == "list"
    reordered = Map(list(reversed(m.items())))
    assert reordered == m and hash(reordered) == hash(m)
    assert m != Map(list(m.items())[:4])
    assert Map({Atom("a"): 1}) != Map({Atom("a"): 2})
    assert {m: 1}[reordered] == 1
    assert Map([(Atom("a"), 1), (Atom("a"), 2)]).items() == ((Atom("a"), 2),)
    assert "Map(" in repr(m)


def test_map_repeated_key_is_format_error():
    data = b"\x83t\x00\x00\x00\x02" + b"a\x01a\x02" + b"a\x01a\x03"
    with pytest.raises(FormatError) as ei:
        decode(data, chunk="LitT", base_offset=100)
    assert ei.value.offset == 101 and ei.value.chunk == "LitT"
    # 1 and 1.0 are different keys.
    assert len(decode(b"\x83t\x00\x00\x00\x02a\x01a\x02F" + struct.pack(">d", 1.0) + b"a\x03")) == 2


# -- ~w text ------------------------------------------------------------------

@pytest.mark.parametrize("value,text", [
    (1.0, "1.0"), (0.1, "0.1"), (1e10, "1.0e10"), (1e-10, "1.0e-10"),
    (123456.789, "123456.789"), (1e15, "1.0e15"), (1.5e300, "1.5e300"), (-0.0, "-0.0"),
    (0.0, "0.0"), (5e-324, "5.0e-324"), (100.0, "100.0"), (0.001, "0.001"),
    (0.0001, "0.0001"), (12345678901234567.0, "1.2345678901234568e16"), (2.5e-5, "2.5e-5"),
    (9007199254740992.0, "9.007199254740992e15"), (9007199254740990.0, "9007199254740990.0"),
    (1.2e-4, "1.2e-4"), (3.5e3, "3.5e3"), (12345.0, "12345.0"), (1e6, "1.0e6"),
    (0.0015, "0.0015"), (-2.5, "-2.5"), (1.7976931348623157e308, "1.7976931348623157e308"),
])
def test_float_text(value, text):
    assert format_term(value) == text


@pytest.mark.parametrize("name,text", [
    ("Foo", "'Foo'"), ("hello world", "'hello world'"), ("it's", "'it\\'s'"),
    ("a\nb", "'a\\nb'"), ("a\\b", "'a\\\\b'"), ("", "''"), ("ok@x", "ok@x"), ("a.b", "'a.b'"),
    ("_x", "'_x'"), ("after", "'after'"), ("maybe", "maybe"), ("\xffx", "\xffx"),
    ("\xdfa", "\xdfa"), ("\xc0b", "'\xc0b'"), ("a\xd7", "'a\xd7'"), ("a\x7fb", "'a\\db'"),
    ("a\x01b", "'a\\001b'"), ("a\x80b", "'a\\200b'"), ("a\xa0b", "'a\xa0b'"),
    ("a\u0100b", "'a\\x{100}b'"), ("\U0001F600", "'\\x{1F600}'"), ('a"b', "'a\"b'"),
    ("tab\tx", "'tab\\tx'"), ("aÑb", "aÑb"),
])
def test_atom_text(name, text):
    assert format_term(Atom(name)) == text


@pytest.mark.parametrize("name,w,portable", [
    ("ok", "ok", "ok"), ("maybe", "maybe", "'maybe'"), ("else", "else", "'else'"),
    ("after", "'after'", "'after'"), ("\xdfa", "\xdfa", "'\\x{DF}a'"),
    ("a\x7fb", "'a\\db'", "'a\\x{7F}b'"), ("a\x01b", "'a\\001b'", "'a\\x{1}b'"),
    ("a\u0100", "'a\\x{100}'", "'a\\x{100}'"), ("it's", "'it\\'s'", "'it\\'s'"),
])
def test_one_atom_quoter_two_styles(name, w, portable):
    from beaminspect.terms.printer import atom_text
    from beaminspect.terms.source import dump_term
    assert atom_text(name) == format_term(Atom(name)) == w
    assert atom_text(name, portable=True) == dump_term(Atom(name)) == portable


def test_container_text():
    assert format_term(()) == "{}"
    assert format_term((Atom("a"), [1, [2]], b"\x01\x02")) == "{a,[1,[2]],<<1,2>>}"
    assert format_term(ImproperList((1, 2), Atom("t"))) == "[1,2|t]"
    assert format_term(Map()) == "#{}"
    m = Map([(Atom("b"), 1), (Atom("a"), 2), (1.0, Atom("y")), (1, Atom("x")),
             ([Atom("a")], Atom("z"))])
    assert format_term(m) == "#{1 => x,1.0 => y,a => 2,b => 1,[a] => z}"
    assert format_term(BitBinary(b"\x01\x20", 4)) == "<<1,2:4>>"
    assert format_term(ExportFun(Atom("erlang"), Atom("+"), 2)) == "fun erlang:'+'/2"
    assert len(format_term(3**20000)) == 9543  # past Python's int->str limit
    assert format_term(-(3**20000)) == "-" + format_term(3**20000)
    with pytest.raises(TypeError):
        format_term(True)
    with pytest.raises(TypeError):
        format_term("plain str")


def test_big_int_text_exact():
    n = 7**9000 + 12345
    # Compare against a reference built digit group by digit group.
    groups, m = [], n
    while m:
        m, r = divmod(m, 10**9)
        groups.append(r)
    ref = str(groups[-1]) + "".join(f"{g:09d}" for g in reversed(groups[:-1]))
    assert format_term(n) == ref


# -- JSON -----------------------------------------------------------------------

def test_json_mapping():
    pid = Pid(NODE, 9, 1, 2)
    term = (Atom("ok"), 1, 2**53, -(2**60), 1.5, [1, Atom("true")], b"hi", b"\xff\x00",
            BitBinary(b"\xe0", 3), ImproperList((1,), Atom("t")),
            Map([(Atom("k"), [Atom("v")]), ([1], 2)]), pid, Port(NODE, 3, 0),
            Reference(NODE, 0, (1, 2, 3)), ExportFun(Atom("lists"), Atom("map"), 2),
            LocalFun(Atom("m"), 1, b"\x01" * 16, 2, 3, 4, pid, (Atom("x"),), b"\x01" * 16))
    j = to_json(term)
    assert json.loads(json.dumps(j)) == j
    assert j == {"tuple": [
        "ok", 1, {"int": str(2**53)}, {"int": str(-(2**60))}, 1.5, [1, "true"],
        {"binary": "hi", "encoding": "utf8"}, {"binary": "/wA=", "encoding": "base64"},
        {"bitstring": "4A==", "bits": 3}, {"improper_list": [1], "tail": "t"},
        {"map": [["k", ["v"]], [[1], 2]]},
        {"pid": {"node": "nonode@nohost", "id": 9, "serial": 1, "creation": 2}},
        {"port": {"node": "nonode@nohost", "id": 3, "creation": 0}},
        {"reference": {"node": "nonode@nohost", "creation": 0, "ids": [1, 2, 3]}},
        {"fun": {"module": "lists", "function": "map", "arity": 2}},
        {"fun": {"module": "m", "arity": 1, "index": 2, "uniq": "01" * 16, "old_index": 3,
                 "old_uniq": 4, "md5": "01" * 16,
                 "pid": {"node": "nonode@nohost", "id": 9, "serial": 1, "creation": 2},
                 "free_vars": ["x"]}},
    ]}
    assert to_json(2**53 - 1) == 2**53 - 1 and to_json(-(2**53 - 1)) == -(2**53 - 1)


# -- term order -------------------------------------------------------------------

def test_term_order_classes():
    pid = Pid(NODE, 1, 0, 0)
    ordered = [-5, 1.5, 2, Atom("a"), Atom("b"), Reference(NODE, 0, (1,)),
               ExportFun(Atom("m"), Atom("f"), 1), Port(NODE, 1, 0), pid, (), (9,), (1, 1),
               Map(), Map({Atom("a"): 1}), [], [1], ImproperList((1, 2), 3), [1, 2], [1, 3],
               BitBinary(b"\x00", 1), b"\x00", b"\x00\x00", b"\x01"]
    shuffled = ordered[::2][::-1] + ordered[1::2]
    assert sorted(shuffled, key=term_sort_key) == ordered
    assert compare_terms(1, 1.0) == 0 and compare_terms(1, 1.0, exact=True) == -1
    assert compare_terms(ImproperList((1,), 2), [1, 2]) == -1  # 2 (number) < [2]
    assert compare_terms(Map({1: Atom("a")}), Map({1.0: Atom("a")})) == -1
    assert compare_terms(Map({Atom("a"): 2}), Map({Atom("b"): 1})) == -1


def test_deep_terms_no_recursion():
    n = 100_000
    deep = decode(b"\x83" + b"h\x01" * n + b"j", max_depth=n + 1)
    other = decode(b"\x83" + b"h\x01" * n + b"a\x01", max_depth=n + 1)
    assert compare_terms(deep, other) == 1  # [] > 1 at the bottom
    text = format_term(deep)
    assert text == "{" * n + "[]" + "}" * n
    j = to_json(deep)
    for _ in range(n):
        j = j["tuple"][0]
    assert j == []
    m = Map([(deep, 1), (other, 2)])
    assert m[deep] == 1 and m[other] == 2


# -- hostile input -------------------------------------------------------------

SAMPLES = [
    (Atom("ok"), [1, 2**70, -(2**300), 1.5, b"bin", BitBinary(b"\xa0", 3)]),
    Map([(Atom("a"), [Atom("x"), ImproperList((1,), 2)]), ([1], "é".encode())]),
    [Atom("日本"), Pid(NODE, 1, 2, 3), Port(NODE, 2**40, 1), Reference(NODE, 5, (1, 2, 3))],
    (ExportFun(Atom("m"), Atom("f"), 3),
     LocalFun(Atom("m"), 2, b"u" * 16, 1, 1, 99, Pid(NODE, 1, 2, 3), (Atom("v"), [1]), b"u" * 16),
     LocalFun(Atom("m"), None, 7, 1, 1, 7, Pid(NODE, 1, 2, 3), (1,), None)),
    list(range(300)) + [list(b"string")],
]


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("idx", range(len(SAMPLES)))
def test_truncation_at_every_byte(idx, compressed):
    data = encode(SAMPLES[idx], compressed=compressed)
    assert decode(data) == SAMPLES[idx]
    for cut in range(len(data)):
        with pytest.raises((TruncatedError, FormatError)) as ei:
            decode(data[:cut], chunk="Attr", base_offset=8)
        assert ei.value.chunk == "Attr"
        assert ei.value.offset is not None and 8 <= ei.value.offset <= 8 + len(data)


def test_trailing_bytes_rejected():
    with pytest.raises(FormatError) as ei:
        decode(b"\x83a\x01\x00")
    assert ei.value.offset == 3


def test_huge_claimed_counts_fail_before_allocating():
    # Counts are checked against the bytes left before anything sized by them exists.
    for head in (b"l\xff\xff\xff\xff", b"i\xff\xff\xff\xff", b"t\xff\xff\xff\xff",
                 b"m\xff\xff\xff\xff", b"o\xff\xff\xff\xff\x00", b"k\xff\xff",
                 b"M\xff\xff\xff\xff\x03"):
        tracemalloc.start()
        with pytest.raises(TruncatedError):
            decode(b"\x83" + head + b"a\x01a\x02")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 256 * 1024, head


def test_million_deep_list():
    n = 1_000_000
    data = b"\x83" + b"l\x00\x00\x00\x01" * n + b"j" + b"j" * n
    with pytest.raises(LimitError) as ei:
        decode(data, chunk="Dbgi")
    # Refused at the default depth limit: the offset is that of level 10 000.
    assert ei.value.chunk == "Dbgi" and ei.value.offset == 1 + 10_000 * 5
    deep = decode(data, max_depth=n)
    depth = 0
    while deep:
        deep = deep[0]
        depth += 1
    assert depth == n
    with pytest.raises(LimitError):
        decode(b"\x83" + b"h\x01" * n + b"j")


def test_compressed_size_limit():
    with pytest.raises(LimitError) as ei:
        decode(b"\x83P" + struct.pack(">I", 2**31) + zlib.compress(b"a\x01"), chunk="Dbgi")
    assert ei.value.offset == 2
    with pytest.raises(FormatError):
        decode(b"\x83P\x00\x00\x00\x00" + zlib.compress(b""))
    with pytest.raises(FormatError):
        decode(b"\x83P\x00\x00\x00\x02" + b"not zlib at all")
    with pytest.raises(FormatError):  # inflates to more than declared
        decode(b"\x83P\x00\x00\x00\x02" + zlib.compress(b"a\x01a\x01"))
    with pytest.raises(TruncatedError):  # inflates to less than declared
        decode(b"\x83P\x00\x00\x00\x09" + zlib.compress(b"a\x01"))
    with pytest.raises(FormatError):  # garbage after the stream
        decode(b"\x83P\x00\x00\x00\x02" + zlib.compress(b"a\x01") + b"xx")
    with pytest.raises(FormatError) as ei:  # error inside the inflated data
        decode(b"\x83P\x00\x00\x00\x02" + zlib.compress(b"\xfe\x01"), base_offset=10)
    assert ei.value.offset == 16 and "inflated" in ei.value.reason


def _zlib_bomb(total: int = 1 << 30) -> bytes:
    """A valid zlib stream of ``total`` zero bytes (about 1 MB for 1 GB), built from one
    repeated full-flush block instead of compressing a gigabyte."""
    block = bytes(1 << 20)
    c = zlib.compressobj(9)
    first = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    unit = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    end = c.flush()[:-4]
    adler = ((total % 65521) << 16) | 1  # adler32 of zeros
    return first + unit * (total // len(block) - 1) + end + struct.pack(">I", adler)


def test_zlib_bomb_bounded_memory():
    bomb = _zlib_bomb()
    assert len(bomb) < 2 << 20
    for claimed in (100, 8 << 20):
        tracemalloc.start()
        try:
            with pytest.raises(FormatError):
                decode(b"\x83P" + struct.pack(">I", claimed) + bomb)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 3 * claimed + (8 << 20)  # bounded by the claim, not by 1 GB


def test_bad_tag_offset():
    with pytest.raises(FormatError) as ei:
        decode(b"\x83h\x02a\x01\xff", chunk="LitT", base_offset=40, file="x.beam")
    e = ei.value
    assert (e.offset, e.chunk, e.file) == (40 + 5, "LitT", "x.beam")
    assert "tag 255" in e.reason and "x.beam" in str(e)
    with pytest.raises(FormatError) as ei:
        decode(b"\x84a\x01", base_offset=3)
    assert ei.value.offset == 3
    with pytest.raises(TruncatedError):
        decode(b"")


@pytest.mark.parametrize("data,cls", [
    (b"\x83w\x02\xc3\x28", FormatError),                  # invalid UTF-8 (SMALL_ATOM_UTF8_EXT)
    (b"\x83v\x00\x02\xff\xfe", FormatError),              # invalid UTF-8 (ATOM_UTF8_EXT)
    (b"\x83R\x00", FormatError),                          # ATOM_CACHE_REF
    (b"\x83y\x00\x00", UnsupportedError),                 # LOCAL_EXT
    (b"\x83F\x7f\xf8\x00\x00\x00\x00\x00\x00", FormatError),  # NaN
    (b"\x83c" + b"1.5e+00zz".ljust(31, b"\0"), FormatError),  # bad FLOAT_EXT text
    (b"\x83c" + b"inf".ljust(31, b"\0"), FormatError),
    (b"\x83c" + b"1" * 31 + b"", FormatError),            # 31 digits: not finite? still valid
    (b"\x83M\x00\x00\x00\x01\x00\x00", FormatError),      # bitstring with 0 bits
    (b"\x83M\x00\x00\x00\x01\x09\x00", FormatError),      # bitstring with 9 bits
    (b"\x83n\x01\x02\x05", FormatError),                  # bignum sign 2
    (b"\x83q" + b"d\x00\x01m" * 2 + b"b\x00\x00\x00\x01", FormatError),  # export arity tag
    (b"\x83X" + b"a\x01" + bytes(12), FormatError),       # pid node not an atom
    (b"\x83d\x01\x00" + b"a" * 256, FormatError),         # atom longer than 255 characters
    (b"\x83P" + b"\x00", TruncatedError),
])
def test_invalid_values(data, cls):
    if data.startswith(b"\x83c" + b"1" * 31):
        assert decode(data) == 1.1111111111111111e30
        return
    with pytest.raises(cls):
        decode(data)


def test_new_fun_size_mismatch():
    f = LocalFun(Atom("m"), 0, b"u" * 16, 1, 1, 9, Pid(NODE, 1, 2, 3), (), b"u" * 16)
    data = bytearray(encode(f))
    data[2:6] = struct.pack(">I", struct.unpack(">I", data[2:6])[0] - 1)
    with pytest.raises(FormatError):
        decode(bytes(data))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60))
def test_junk_raises_only_beam_errors(junk):
    for data in (b"\x83" + junk, b"\x83P" + junk, junk):
        try:
            decode(data)
        except BeamError as exc:
            assert exc.offset is not None


# -- round trips through the test encoder ----------------------------------------

u32 = st.integers(0, 2**32 - 1)
atoms = st.one_of(
    st.sampled_from(["ok", "error", "true", "undefined", "Foo", "", "héllo", "日本", "a b"]),
    st.text(max_size=12), st.text(alphabet="\xc0\xff\xe9abc", max_size=255),
).map(Atom)
nodes = st.sampled_from(["nonode@nohost", "a@b", "n\u00e9@h"]).map(Atom)
pids = st.builds(Pid, nodes, u32, u32, u32)
bitbins = st.builds(
    lambda data, bits: BitBinary(data[:-1] + bytes((data[-1] & (0xFF << (8 - bits)) & 0xFF,)),
                                 bits),
    st.binary(min_size=1, max_size=8), st.integers(1, 7))
scalars = st.one_of(
    atoms, st.integers(-300, 300), st.integers(), st.integers(-(2**3400), 2**3400),
    st.floats(allow_nan=False, allow_infinity=False), st.binary(max_size=20), bitbins, pids,
    st.builds(Port, nodes, st.integers(0, 2**64 - 1), u32),
    st.builds(Reference, nodes, u32, st.lists(u32, min_size=1, max_size=5).map(tuple)),
    st.builds(ExportFun, atoms, atoms, st.integers(0, 255)),
    st.just([]), st.lists(st.integers(0, 255), max_size=10),
)


def _not_list(t):
    return type(t) not in (list, ImproperList)


def _containers(children):
    return st.one_of(
        st.lists(children, max_size=6),
        st.lists(children, max_size=6).map(tuple),
        st.builds(lambda items, tail: ImproperList(tuple(items), tail),
                  st.lists(children, min_size=1, max_size=4), children.filter(_not_list)),
        st.lists(st.tuples(children, children), max_size=5).map(Map),
        st.builds(lambda md5, fv, a, i, ou: LocalFun(Atom("m"), a, md5, i, i, ou,
                                                     Pid(NODE, 1, 2, 3), tuple(fv), md5),
                  st.binary(min_size=16, max_size=16), st.lists(children, max_size=3),
                  st.integers(0, 255), st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1)),
        st.builds(lambda fv, i, u: LocalFun(Atom("old"), None, u, i, i, u, Pid(NODE, 4, 5, 6),
                                            tuple(fv), None),
                  st.lists(children, max_size=3), st.integers(0, 2**31 - 1),
                  st.integers(0, 2**31 - 1)),
    )


terms = st.recursive(scalars, _containers, max_leaves=40)


@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(terms)
def test_round_trip(term):
    data = encode(term)
    got = decode(data)
    assert got == term
    assert encode(got) == data
    assert format_term(got) == format_term(term)
    assert decode(encode(term, compressed=True)) == term
    assert compare_terms(got, term) == 0
    json.dumps(to_json(got))


@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(terms, st.data())
def test_mutations_raise_only_beam_errors(term, data):
    raw = bytearray(encode(term))
    i = data.draw(st.integers(1, len(raw) - 1))
    raw[i] = data.draw(st.integers(0, 255))
    try:
        decode(bytes(raw))
    except BeamError:
        pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(terms, min_size=2, max_size=5))
def test_sort_key_is_consistent(items):
    s = sorted(items, key=term_sort_key)
    for a, b in zip(s, s[1:]):
        assert compare_terms(a, b) <= 0
        assert compare_terms(b, a) >= 0


# -- OTP as the oracle ------------------------------------------------------------

HAVE_ERL = shutil.which("erl") is not None and shutil.which("escript") is not None
needs_erl = pytest.mark.skipif(not HAVE_ERL, reason="Erlang/OTP (erl, escript) is not "
                               "installed; the OTP oracle tests need it")

ORACLE_SCRIPT = r"""
main(Files) ->
    Opts = [[], [compressed], [{minor_version, 0}], [{minor_version, 1}],
            [{minor_version, 2}], [deterministic], [{compressed, 9}, {minor_version, 1}]],
    [emit_term(T, O) || T <- terms(), O <- Opts],
    [emit_term(T, O) || T <- big_maps(), O <- Opts, O =/= [deterministic]],
    Mixed = mixed(),
    out(["sort", hex(term_to_binary(Mixed)), hex(term_to_binary(lists:sort(Mixed)))]),
    [beam(F) || F <- Files],
    ok.

emit_term(T, O) ->
    out(["term", hex(term_to_binary(T, O)), hex(w(T))]).

w(T) -> unicode:characters_to_binary(io_lib:format("~w", [T]), unicode, latin1).
hex(B) -> binary:encode_hex(B).
out(Fields) -> io:put_chars([lists:join($\t, Fields), $\n]).

beam(F) ->
    {ok, {_, [{compile_info, CInf}]}} = beam_lib:chunks(F, [compile_info]),
    out(["cinf", F, hex(w(CInf))]),
    case beam_lib:chunks(F, ["Attr"]) of
        {ok, {_, [{_, Attr}]}} -> out(["attr", F, hex(w(binary_to_term(Attr)))]);
        _ -> ok
    end,
    case beam_lib:chunks(F, ["LitT"]) of
        {ok, {_, [{_, <<_:32, Z/binary>>}]}} ->
            <<N:32, Lits/binary>> = zlib:uncompress(Z),
            lits(F, 0, N, Lits);
        _ -> ok
    end.

lits(_, N, N, <<>>) -> ok;
lits(F, I, N, <<Sz:32, Bin:Sz/binary, Rest/binary>>) ->
    out(["lit", F, integer_to_list(I), hex(w(binary_to_term(Bin)))]),
    lits(F, I + 1, N, Rest).

ipow(_, 0) -> 1;
ipow(B, E) -> B * ipow(B, E - 1).

funs() ->
    Y = 42,
    [fun lists:map/2, fun erlang:'+'/2, fun(X) -> X + Y end, fun() -> ok end].

terms() ->
    Floats = [1.0, 0.1, 1.0e10, -1.0e-10, 123456.789, 1.0e15, 1.0e16, 1.0e21, 1.0e22,
              1.5e300, -0.0, 0.0, 5.0e-324, 100.0, 0.001, 0.0001, 2.5e-5, 3.5e3,
              9007199254740992.0, 9007199254740990.0, 2.2250738585072014e-308,
              1.7976931348623157e308, math:pi(), -math:exp(1)]
        ++ [math:pow(10, E) || E <- lists:seq(-25, 25)]
        ++ [(rand:uniform() - 0.5) * math:pow(10, rand:uniform(600) - 300)
            || _ <- lists:seq(1, 300)],
    Ints = [0, 1, 255, 256, -1, -256, 2147483647, -2147483648, 2147483648,
            -2147483649, 1 bsl 63, 1 bsl 64, -(1 bsl 64), 1 bsl 2040, 1 bsl 2048,
            -(1 bsl 2048), ipow(7, 3000), -ipow(3, 20000) - 1],
    Atoms = [list_to_atom([C]) || C <- lists:seq(0, 255)]
        ++ [list_to_atom([$a, C]) || C <- lists:seq(0, 255)]
        ++ ['Foo', 'hello world', 'it\'s', '', 'ok@x', 'a.b', '_x', 'after', 'maybe',
            'else', 'cond', 'let', 'query', 'spec', true, false, undefined,
            list_to_atom([104, 233, 108, 108, 111]), list_to_atom([26085, 26412]),
            list_to_atom([128512]), list_to_atom("a" ++ [256] ++ "b"),
            list_to_atom(lists:duplicate(255, $z)),
            list_to_atom(lists:duplicate(255, 26085))],
    Lists = ["abc", [], [1, 2 | 3], [a | b], lists:seq(1, 300),
             lists:duplicate(70000, $x), [1000, 2000], [[[[]]]], [$a | <<"b">>],
             [1.5, "str", <<"bin">>]],
    Bins = [<<>>, <<1, 2, 3>>, <<"hello">>, <<1:1>>, <<255, 7:3>>,
            list_to_binary(lists:seq(0, 255)), <<0:7>>, binary:copy(<<"ab">>, 5000)],
    Tuples = [{}, {a}, {a, {b, {c, {d}}}}, list_to_tuple(lists:seq(1, 300)),
              {ok, [1.5, "str", <<"bin">>, #{x => [y]}]}],
    Maps = [#{}, #{a => 1}, #{b => 1, a => 2},
            #{1 => a, 1.0 => b, a => c, "s" => d, <<"b">> => e, {t} => f, [l] => g,
              #{k => v} => h, -1 => i, 2.5 => j, self() => k},
            #{#{a => 1} => #{b => #{c => []}}}],
    Others = [self(), make_ref(), hd(erlang:ports()), list_to_pid("<0.5.1>"),
              alias(), erlang:make_ref()] ++ funs(),
    Floats ++ Ints ++ Atoms ++ Lists ++ Bins ++ Tuples ++ Maps ++ Others ++
        [{Floats, Atoms, Maps}].

big_maps() ->
    [maps:from_list([{I, I} || I <- lists:seq(1, 33)]),
     maps:from_list([{I, {v, I}} || I <- lists:seq(1, 100)]),
     maps:from_list([{integer_to_list(I), I} || I <- lists:seq(1, 200)]
                    ++ [{list_to_atom("k" ++ integer_to_list(I)), I} || I <- lists:seq(1, 50)]
                    ++ [{I + 0.5, x} || I <- lists:seq(1, 40)]),
     #{nested => maps:from_list([{I, [I]} || I <- lists:seq(1, 40)])}].

mixed() ->
    [b, 1.5, 2, <<1:3>>, <<1>>, <<0, 1>>, [], [1], [1 | 2], [0, 5], {2}, {1, 1}, {0, 0, 0},
     #{}, #{a => 1}, #{a => 0, b => 0}, #{1 => x}, #{1.0 => x}, a, 'B', -7, 1 bsl 100,
     self(), make_ref(), hd(erlang:ports()), fun lists:map/2, "abc", "abd", "ab",
     <<"abc">>, {a, b}, {a, a}, [a | b], [a, b], -0.5, 3].
"""


def _read_chunks(path: str) -> dict:
    with open(path, "rb") as fh:
        data = fh.read()
    assert data[:4] == b"FOR1" and data[8:12] == b"BEAM"
    pos, out = 12, {}
    while pos + 8 <= len(data):
        cid = data[pos:pos + 4].decode("latin-1")
        size = struct.unpack_from(">I", data, pos + 4)[0]
        out[cid] = data[pos + 8:pos + 8 + size]
        pos += 8 + ((size + 3) & ~3)
    return out


def _literals(litt: bytes) -> list:
    raw = zlib.decompress(litt[4:])
    assert len(raw) == struct.unpack_from(">I", litt)[0]
    n = struct.unpack_from(">I", raw)[0]
    pos, out = 4, []
    for _ in range(n):
        size = struct.unpack_from(">I", raw, pos)[0]
        out.append(decode(raw[pos + 4:pos + 4 + size], chunk="LitT", base_offset=pos + 4))
        pos += 4 + size
    return out


def _oracle_beams() -> list[str]:
    files = sorted(f for f in glob.glob("/usr/lib/erlang/lib/*/ebin/*.beam")
                   if not os.path.islink(f))
    step = max(1, len(files) // 36)
    return files[::step][:36]


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    if not HAVE_ERL:
        pytest.skip("Erlang/OTP (erl, escript) is not installed")
    script = tmp_path_factory.mktemp("otp") / "terms_oracle.escript"
    script.write_text("#!/usr/bin/env escript\n%%! -noshell\n" + ORACLE_SCRIPT)
    beams = _oracle_beams()
    proc = subprocess.run(["escript", str(script), *beams], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    rows = [line.split("\t") for line in proc.stdout.decode("latin-1").splitlines() if line]
    return rows


@pytest.mark.otp
@needs_erl
def test_otp_term_to_binary_oracle(oracle):
    rows = [r for r in oracle if r[0] == "term"]
    assert len(rows) > 5000
    bad = []
    for _, bin_hex, w_hex in rows:
        data = H(bin_hex)
        expected = H(w_hex).decode("latin-1")
        got = format_term(decode(data))
        if got != expected:
            bad.append((bin_hex[:80], expected[:200], got[:200]))
    assert not bad, f"{len(bad)} of {len(rows)} differ: {bad[:5]}"
    # The outermost tags OTP wrote cover the forms this decoder must read.
    tags = {chr(H(r[1])[1]) for r in rows}
    assert set("PcFdvwnohilkmMtXZYqpja") <= tags, sorted(tags)


@pytest.mark.otp
@needs_erl
def test_otp_sort_oracle(oracle):
    (row,) = [r for r in oracle if r[0] == "sort"]
    unsorted, expected = decode(H(row[1])), decode(H(row[2]))
    got = sorted(unsorted, key=term_sort_key)
    assert [format_term(t) for t in got] == [format_term(t) for t in expected]


@pytest.mark.otp
@needs_erl
def test_otp_beam_chunks_oracle(oracle):
    beams = _oracle_beams()
    assert len(beams) >= 30
    expect = {}
    for row in oracle:
        if row[0] in ("cinf", "attr"):
            expect[(row[0], row[1])] = H(row[2]).decode("latin-1")
        elif row[0] == "lit":
            expect[("lit", row[1], int(row[2]))] = H(row[3]).decode("latin-1")
    checked = 0
    for path in beams:
        chunks = _read_chunks(path)
        for kind, cid in (("cinf", "CInf"), ("attr", "Attr")):
            if (kind, path) in expect:
                got = format_term(decode(chunks[cid], file=path, chunk=cid))
                assert got == expect[(kind, path)], (path, cid)
                checked += 1
        if "LitT" in chunks:
            for i, lit in enumerate(_literals(chunks["LitT"])):
                assert format_term(lit) == expect[("lit", path, i)], (path, i)
                checked += 1
    assert checked == sum(1 for k in expect)
    assert checked > 300


@pytest.mark.otp
def test_large_debug_info_decodes():
    beams = sorted(glob.glob("/usr/lib/erlang/lib/stdlib-*/ebin/unicode_util.beam"))
    if not beams:
        pytest.skip("OTP's stdlib unicode_util.beam is not installed")
    dbgi = _read_chunks(beams[0]).get("Dbgi")
    if dbgi is None:
        pytest.skip("unicode_util.beam has no Dbgi chunk")
    term = decode(dbgi, file=beams[0], chunk="Dbgi")
    assert term[0] == "debug_info_v1" and term[1] == "erl_abstract_code"
    forms = term[2][0]
    assert forms[0][0] == "attribute" and len(forms) > 50
