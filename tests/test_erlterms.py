"""Term-file parser: file:consult/1 as the oracle, malformed input, limits, writer."""

from __future__ import annotations

import glob
import os
import shutil
import struct
import subprocess

import pytest
from hypothesis import given, settings, strategies as st

from beaminspect.errors import BeamError, FormatError, LimitError
from beaminspect.terms.source import (MAX_DEPTH, as_text, dump_term, dump_terms, parse_bytes,
                                  parse_file, parse_terms)
from beaminspect.terms import Atom, BitBinary, ImproperList, Map

HAVE_ERL = shutil.which("erl") is not None
otp = pytest.mark.otp
needs_erl = pytest.mark.skipif(not HAVE_ERL, reason="Erlang/OTP (erl) is not installed")

OTP_TERM_FILES = sorted(glob.glob("/usr/lib/erlang/lib/*/ebin/*.app")
                        + glob.glob("/usr/lib/erlang/lib/*/ebin/*.appup")
                        + glob.glob("/usr/lib/elixir/lib/*/ebin/*.app")
                        + glob.glob("/usr/lib/erlang/releases/*/*.rel")
                        + glob.glob("/usr/lib/erlang/releases/RELEASES"))

TRICKY = {
    "numbers": "1. -1. 1_000_000. 16#FF_ff. 2#1010. 36#zZ. $a. $\\n. $\\x{1F600}. -$a.\n"
               "1.5. -0.0. 1.0e10. 2.5E+3. 1_0.0_1e1_0. 123456789012345678901234567890.\n"
               "+7. -(3). 0.1. 1.0e-300. 4.9e-324.\n",
    "atoms": "abc. 'Quoted'. 'with space'. 'a\\'b'. 'tab\\there'. '\\x{e9}t\\x{e9}'. a@b.\n"
             "'fun'. 'end'. maybe. else. 'ünïcødé'. ok_1. '\\^a'. '\\101'. 'a\\zb'.\n",
    "strings": '"plain". "esc\\"aped\\\\". "multi\nline". "a" "b" "c". "". "\\x{263A} \\t".\n'
               '"\\s\\d\\e\\v\\b\\f\\r". "\\1\\12\\123\\1234". "ünïcødé". "\\x41\\x{42}".\n',
    "containers": "{}. []. {a}. [1,2|3]. [1|[2|[3]]]. [a|b]. {[], {[]}, [[]]}.\n"
                  "#{}. #{a => 1, \"k\" => [v], {t} => #{}}. #{1 => a, 1.0 => b, 1 => c}.\n"
                  "{ok, % comment inside\n  value}. %% trailing comment\n",
    "binaries": '<<>>. <<"abc">>. <<1,2,255>>. <<256>>. <<-1>>. <<1:16>>. <<1:16/little>>.\n'
                '<<"ab"/utf16>>. <<"é"/utf8>>. <<$a/utf32-little>>. <<1.5/float>>.\n'
                '<<1.5:32/float>>. <<-1:32/signed-big>>. <<1:4, 15:4>>. <<"a" "b">>.\n'
                '<<1:1/unit:8>>. <<"x":16>>.\n',
    "appup_like": '{"1.1",\n [{"1.0", [{update, srv, {advanced, []}, brutal_purge, '
                  'soft_purge, [dep]}, {load_module, m}]},\n'
                  '  {<<"^1\\\\.0\\\\.[0-9]+$">>, [restart_application]}],\n'
                  ' [{"1.0", [{apply, {io, format, ["down~n"]}}]}]}.\n',
    "sys_config": "[{kernel, [{logger_level, info}, {inet_dist_listen_min, 9100}]},\n"
                  " {myapp, [{pool, #{size => 10, overflow => -1}},\n"
                  "          {ratio, 0.75}, {name, <<\"svc\">>}, {path, \"/var/lib\"}]}].\n",
    "whitespace": "\t\r\n  1 .\n\n%only a comment\n2.%no space after dot needed\n3.",
    "empty": "",
    "comments_only": "% nothing here\n%% at all\n",
    "latin1_coding": "%% -*- coding: latin-1 -*-\n{caf\xe9, \"\xe9\"}.\n",
}

# Reduce every term to int / list / tuple shapes that ~w prints unambiguously: atoms,
# floats, binaries and maps are tagged (maps sorted by the printed key).
ORACLE = r"""
W = fun W(A) when is_atom(A) -> {'$a', atom_to_binary(A, utf8)};
        W(F) when is_float(F) -> {'$f', <<F:64/float>>};
        W(I) when is_integer(I) -> I;
        W(B) when is_binary(B) -> {'$b', binary_to_list(B)};
        W(B) when is_bitstring(B) -> S = bit_size(B) rem 8, <<H:(bit_size(B) - S)/bits,
                                        L:S>> = B, {'$bits', binary_to_list(H), L, S};
        W([]) -> [];
        W([H|T]) -> [W(H)|W(T)];
        W(T) when is_tuple(T) -> list_to_tuple([W(E) || E <- tuple_to_list(T)]);
        W(M) when is_map(M) ->
            {'$m', lists:sort([{iolist_to_binary(io_lib:format("~w", [W(K)])), W(K), W(V)}
                               || {K, V} <- maps:to_list(M)])};
        W(_) -> '$other'
    end,
[In, Out] = init:get_plain_arguments(),
{ok, Files} = file:consult(In),
Lines = [case file:consult(F) of
             {ok, Ts} -> io_lib:format("~w~n", [{ok, W(Ts)}]);
             {error, _} -> "error\n"
         end || F <- Files],
ok = file:write_file(Out, Lines),
halt().
"""


def canon(term) -> str:
    """Python side of the oracle: the same reduction, printed like ``~w``."""
    if isinstance(term, Atom):
        return "{'$a',<<" + ",".join(map(str, str(term).encode())) + ">>}"
    if isinstance(term, bool):
        raise TypeError(term)
    if isinstance(term, int):
        return str(term)
    if isinstance(term, float):
        return "{'$f',<<" + ",".join(map(str, struct.pack(">d", term))) + ">>}"
    if isinstance(term, bytes):
        return "{'$b',[" + ",".join(map(str, term)) + "]}"
    if isinstance(term, BitBinary):
        whole = term.data[:-1]
        last = term.data[-1] >> (8 - term.bits)
        return "{'$bits',[" + ",".join(map(str, whole)) + f"],{last},{term.bits}}}"
    if isinstance(term, list):
        return "[" + ",".join(canon(t) for t in term) + "]"
    if isinstance(term, ImproperList):
        return "[" + ",".join(canon(t) for t in term.items) + "|" + canon(term.tail) + "]"
    if isinstance(term, tuple):
        return "{" + ",".join(canon(t) for t in term) + "}"
    if isinstance(term, Map):
        entries = sorted((canon(k), canon(v)) for k, v in term.items())
        return "{'$m',[" + ",".join(
            "{<<" + ",".join(map(str, k.encode())) + ">>," + k + "," + v + "}"
            for k, v in entries) + "]}"
    raise TypeError(type(term))


def consult_all(paths: list[str], work) -> list[str]:
    """``file:consult/1`` of every path in one erl process; one line per path."""
    listing = work / "files.txt"
    listing.write_text("".join(dump_term(os.fspath(p)) + ".\n" for p in paths))
    out = work / "oracle.txt"
    script = " ".join(ORACLE.split("\n"))
    subprocess.run(["erl", "-noshell", "-eval", script, "-extra", str(listing), str(out)],
                   check=True, capture_output=True, timeout=300)
    lines = out.read_text("utf-8").splitlines()
    assert len(lines) == len(paths)
    return lines


def ours(path) -> str:
    try:
        return "{ok," + canon(parse_file(path)) + "}"
    except BeamError:
        return "error"


@otp
@needs_erl
def test_consult_oracle_on_otp_files_and_tricky_corpus(tmp_path):
    assert len(OTP_TERM_FILES) >= 40
    tricky = []
    for name, text in TRICKY.items():
        p = tmp_path / f"{name}.config"
        p.write_bytes(text.encode("latin-1" if "latin-1" in text else "utf-8"))
        tricky.append(p)
    paths = [*OTP_TERM_FILES, *map(str, tricky)]
    expected = consult_all(paths, tmp_path)
    mismatches = [(p, e, o) for p, e in zip(paths, expected) if (o := ours(p)) != e]
    assert mismatches == []
    assert all(line.startswith("{ok,") for line in expected)
    n_app = sum(p.endswith(".app") for p in OTP_TERM_FILES)
    n_appup = sum(p.endswith(".appup") for p in OTP_TERM_FILES)
    print(f"consult oracle agreed on {n_app} .app, {n_appup} .appup, "
          f"{len(OTP_TERM_FILES) - n_app - n_appup} release files, {len(tricky)} tricky")


def test_simple_values():
    [t] = parse_terms('{app, "1.0", [a|b], <<"x">>, #{k => 1}, -2, $z, 1.5}.')
    assert t[0] == Atom("app") and isinstance(t[0], Atom)
    assert t[1] == [49, 46, 48] and as_text(t[1]) == "1.0"
    assert t[2] == ImproperList((Atom("a"),), Atom("b"))
    assert t[3] == b"x"
    assert t[4] == Map([(Atom("k"), 1)])
    assert t[5:] == (-2, ord("z"), 1.5)


def test_as_text():
    assert as_text([104, 105]) == "hi"
    assert as_text([]) == ""
    assert as_text(b"caf\xc3\xa9") == "café"
    assert as_text("str") == "str"
    assert as_text([104, Atom("x")]) is None
    assert as_text([-1]) is None
    assert as_text([0x110000]) is None
    assert as_text(b"\xff") is None
    assert as_text(Atom("a")) is None
    assert as_text(42) is None


MALFORMED = [
    ('{a, "unterminated.\n', "unterminated string", 1, 5),
    ("{a, b.\n", "unexpected '.'", 1, 6),
    ("{a, b", "unexpected end of file", 1, 6),
    ("[1, 2\n", "unexpected end of file", 2, 1),
    ("'open atom.\n", "unterminated atom", 1, 1),
    ("{ok, X}.\n", "variables are not allowed", 1, 6),
    ("[_].\n", "variables are not allowed", 1, 2),
    ('os:cmd("rm -rf /").\n', "remote function calls", 1, 3),
    ("\n\nspawn(fun() -> ok end).\n", "function calls", 3, 6),
    ("fun() -> ok end.\n", "fun expressions", 1, 1),
    ("fun lists:map/2.\n", "fun expressions", 1, 1),
    ("{a, 1 + 2}.\n", "operator '+'", 1, 7),
    ("{a, 1 div 2}.\n", "operator 'div'", 1, 7),
    ("- -1.\n", "unary", 1, 1),
    ("-a.\n", "unary", 1, 1),
    ("#rec{a = 1}.\n", "records are not allowed", 1, 1),
    ("#{a := 1}.\n", "':='", 1, 5),
    ("{a} {b}.\n", "unexpected", 1, 5),
    ("1\n", "unexpected end of file", 2, 1),
    ("case.\n", "reserved word", 1, 1),
    ("{a, 'é'} ; b.\n", "unexpected ';'", 1, 10),
    ("37#1.\n", "base", 1, 1),
    ("'\\x{110000}'.\n", "out of range", 1, 2),
    ('"\\xg".\n', "illegal \\x escape", 1, 2),
    ("1.0e999.\n", "out of range", 1, 1),
    ("<<1.5:8/float>>.\n", "float segments", 1, 3),
    ("<<X>>.\n", "variables", 1, 3),
    ("\u20ac.\n", "illegal character", 1, 1),
    ("'" + "a" * 256 + "'.\n", "atom too long", 1, 1),
    ("a.b.\n", "unexpected", 1, 2),
]


@pytest.mark.parametrize("text,message,line,column", MALFORMED)
def test_malformed_input_is_a_format_error_with_position(text, message, line, column):
    with pytest.raises(FormatError) as ei:
        parse_terms(text, file="bad.config")
    err = ei.value
    assert message in err.reason
    assert err.file == "bad.config"
    assert (err.line, err.column) == (line, column)
    assert err.offset == len(text.split("\n", line - 1)[-1][:0].encode()) + len(
        "\n".join(text.split("\n")[:line - 1]).encode()) + (1 if line > 1 else 0) + len(
        text.split("\n")[line - 1][:column - 1].encode())
    assert f"line {line}, column {column}" in str(err)


@otp
@needs_erl
def test_malformed_corpus_is_refused_by_consult_too(tmp_path):
    paths = []
    for i, (text, *_rest) in enumerate(MALFORMED):
        p = tmp_path / f"bad{i}.config"
        p.write_text(text)
        paths.append(str(p))
    expected = consult_all(paths, tmp_path)
    # fun lists:map/2 is a term for consult; we refuse it on purpose.
    accepted = [paths[i] for i, line in enumerate(expected) if line != "error"]
    assert [os.path.basename(p) for p in accepted] == [
        f"bad{[m[0] for m in MALFORMED].index('fun lists:map/2.' + chr(10))}.config"]


def test_nothing_is_evaluated(tmp_path):
    marker = tmp_path / "created"
    text = f'os:cmd("touch {marker}").\nfile:write_file("{marker}", "x").\n'
    for line in text.splitlines():
        with pytest.raises(FormatError):
            parse_terms(line)
    assert not marker.exists()


def test_byte_offsets_count_utf8_bytes():
    with pytest.raises(FormatError) as ei:
        parse_terms('{"ééé", X}.', file="u")
    assert ei.value.offset == 11 and ei.value.column == 9


def test_deep_nesting_limit_without_recursion():
    for opener in ("[", "{", "#{a => ", "("):
        text = opener * 100_000
        with pytest.raises(LimitError) as ei:
            parse_terms(text, file="deep")
        assert ei.value.file == "deep"
        assert f"deeper than {MAX_DEPTH}" in ei.value.reason
    ok = "[" * MAX_DEPTH + "]" * MAX_DEPTH + "."
    [t] = parse_terms(ok)
    depth = 0
    while t:
        t, depth = t[0], depth + 1
    assert depth == MAX_DEPTH - 1
    with pytest.raises(LimitError):
        parse_terms("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + ".")


def test_size_limit(tmp_path):
    big = "[" + "1," * (8 * 1024 * 1024) + "1].\n"
    with pytest.raises(LimitError, match="larger than"):
        parse_terms(big, file="big")
    p = tmp_path / "big.config"
    p.write_text(big)
    with pytest.raises(LimitError):
        parse_file(p)


def test_huge_integer_literal_is_a_limit_error():
    with pytest.raises(LimitError):
        parse_terms("1" * 5000 + ".")
    assert parse_terms("16#" + "F" * 5000 + ".")[0] == 16 ** 5000 - 1


def test_invalid_utf8_and_latin1_coding():
    with pytest.raises(FormatError) as ei:
        parse_bytes(b'{a, "\xff"}.', file="x")
    assert ei.value.offset == 5
    assert parse_bytes(b'%% coding: latin-1\n{"\xe9"}.') == [([0xE9],)]
    assert parse_bytes('{"\u00e9"}.'.encode()) == [([0xE9],)]


def test_parse_file_missing(tmp_path):
    with pytest.raises(BeamError, match="cannot read"):
        parse_file(tmp_path / "nope.app")


# -- writing --------------------------------------------------------------------------


def test_dump_terms_strings_atoms_and_layout():
    appup = ("1.1", [("1.0", [(Atom("update"), Atom("my_srv"), (Atom("advanced"), []))]),
                     ("0.9", [(Atom("load_module"), Atom("m"))])],
             [("1.0", []), ("0.9", [])])
    text = dump_terms([appup])
    assert text.startswith('{"1.1",\n [{"1.0",')
    assert text.endswith("}.\n")
    assert all(len(line) <= 80 for line in text.splitlines())
    back = parse_terms(text)
    assert back[0][0] == [49, 46, 49]
    assert dump_terms(back) == text                     # printable lists print as strings
    assert dump_term(Atom("Cap")) == "'Cap'"
    assert dump_term(Atom("fun")) == "'fun'"
    assert dump_term(Atom("a b\n'")) == "'a b\\n\\''"
    assert dump_term(Atom("ok@host_1")) == "ok@host_1"
    assert dump_term([1, 2, 3]) == "[1,2,3]"
    assert dump_term([]) == "[]"
    assert dump_term("") == '""'
    assert dump_term(b"abc") == '<<"abc">>'
    assert dump_term(b"\x00\xff") == "<<0,255>>"
    assert dump_term(1e16) == "1.0e16"
    assert dump_term(True) == "true"
    with pytest.raises(TypeError):
        dump_term(None)
    with pytest.raises(ValueError):
        dump_term(float("nan"))


terms_strategy = st.recursive(
    st.one_of(
        st.integers(min_value=-2**70, max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=8).map(Atom).filter(lambda a: len(a) <= 255),
        st.binary(max_size=8),
        st.lists(st.integers(min_value=0, max_value=0x10FFFF).filter(
            lambda c: not 0xD800 <= c <= 0xDFFF), max_size=6),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.tuples(st.lists(children, min_size=1, max_size=3).map(tuple),
                  st.one_of(st.integers(), st.builds(tuple))).map(
            lambda p: ImproperList(*p)),
        st.lists(st.tuples(children, children), max_size=3).map(Map),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(terms_strategy, max_size=3))
def test_dump_then_parse_round_trips(terms):
    text = dump_terms(terms)
    assert text.isascii()
    assert parse_terms(text) == terms


@otp
@needs_erl
def test_dump_terms_output_is_read_back_by_consult(tmp_path):
    samples = [
        [("1.1", [("1.0", [(Atom("load_module"), Atom("m"))])], [("1.0", [])])],
        [Atom("Weird Atom"), Atom("\u00e9\u4e2d"), [0x1F600, 10, 34, 92], b"\x00\xff",
         ImproperList((1,), 2), Map([(1, Atom("a")), (1.0, Atom("b"))]), -0.0, 1e-300,
         2 ** 100, BitBinary(b"\xa0", 3), (), [], "str \"q\""],
        parse_terms(TRICKY["binaries"]),
    ]
    paths = []
    for i, terms in enumerate(samples):
        p = tmp_path / f"dump{i}.config"
        p.write_text(dump_terms(terms))
        paths.append(str(p))
    expected = consult_all(paths, tmp_path)
    for p, terms, line in zip(paths, samples, expected):
        normal = parse_terms(dump_terms(terms))
        assert line == "{ok," + canon(normal) + "}", p
