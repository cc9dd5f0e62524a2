"""``check`` (beaminspect.loader.check): the loader verdict rules, on samples and hand-mutated
copies of them, and the ``check`` command.

The mutants are built from the samples by editing one operand, table entry or header
field; each test names the loader check it is about and asserts check's exact reason.
Their agreement with the real VM is tested on a whole corpus in test_loader_agreement.py.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys

import pytest

from corpus import ROOT, SAMPLE_BEAMS, sample
from otp import OTP_BEAMS

sys.path.insert(0, os.path.join(ROOT, "tools"))
import fuzz  # noqa: E402

from beaminspect import BeamError  # noqa: E402
from beaminspect.loader.check import check_bytes, check_file  # noqa: E402
from beaminspect.format.opcodes import OPCODES  # noqa: E402


def _read(name: str) -> bytes:
    with open(sample(name), "rb") as f:
        return f.read()


def _chunk(data: bytes, cid: bytes) -> bytes:
    return [d for i, d in fuzz.split_chunks(data) if i == cid][0]


def _with_chunk(data: bytes, cid: bytes, new: bytes) -> bytes:
    return fuzz.join_chunks([(i, new if i == cid else d) for i, d in fuzz.split_chunks(data)])


def _find(data: bytes, name: str, where=lambda spans: True):
    """``(start, spans)`` of the first instruction ``name`` in Code matching ``where``."""
    for start, opc, spans in fuzz._instructions(_chunk(data, b"Code")):
        if OPCODES[opc].name == name and where(spans):
            return start, spans
    raise LookupError(name)


def _replace_operand(data: bytes, name: str, pos: int, new: bytes, where=lambda s: True):
    code = _chunk(data, b"Code")
    _start, spans = _find(data, name, where)
    a, b, _op = spans[pos]
    return _with_chunk(data, b"Code", code[:a] + new + code[b:])


def _sample_with(opname: str, where=lambda spans: True) -> tuple[str, bytes]:
    """The first sample (module name, bytes) with an instruction ``opname``."""
    for path in SAMPLE_BEAMS + sorted(OTP_BEAMS, key=os.path.getsize)[:300]:
        name = os.path.basename(path)[:-5]
        with open(path, "rb") as f:
            data = f.read()
        try:
            _find(data, opname, where)
        except (LookupError, TypeError):
            continue
        return name, data
    pytest.skip(f"no sample has {opname}")


def _verdict(data: bytes, name: str = "bi_records", otp: int = 25):
    return check_bytes(data, otp, name)


# -- the samples ---------------------------------------------------------------------

@pytest.mark.parametrize("path", SAMPLE_BEAMS, ids=os.path.basename)
def test_samples_load_on_otp_25(path):
    assert check_file(path, 25).loads


# -- operand kinds (loader_rules.REFUSED) --------------------------------------------

def test_destination_must_be_a_register():
    data = _replace_operand(_read("bi_records"), "move", 1, fuzz.cenc(2, 1),
                            where=lambda s: s[1][2].tag == "x")
    v = _verdict(data)
    assert not v.loads and v.code == "operand_kind"
    assert v.reason == "op move (operand 2, atom): op i_move: sd: bad tag 2 for destination"


def test_source_must_not_be_a_label():
    data = _replace_operand(_read("bi_records"), "move", 0, fuzz.cenc(5, 1))
    v = _verdict(data)
    assert not v.loads
    assert v.reason == "op move (operand 1, label): op i_move: sd: bad tag 5 for general source"


def test_untagged_operand_must_be_untagged():
    data = _replace_operand(_read("bi_records"), "test_heap", 0, fuzz.cenc(1, 3))
    v = _verdict(data)
    assert not v.loads
    assert v.reason.endswith("op test_heap: It: bad tag 1; expected 0")


def test_no_specific_operation():
    # is_tuple's fail label replaced by a y register: no rule of ops.tab applies.
    name, data = _sample_with("is_tuple")
    v = _verdict(_replace_operand(data, "is_tuple", 0, fuzz.cenc(4, 0)), name)
    assert not v.loads
    assert v.reason.endswith("no specific operation found")


def test_a_named_atom_taken_where_other_atoms_are_not():
    # bs_start_match4 takes the atoms no_fail and resume, not any atom (ops.tab:
    # "bs_start_match4 a==am_no_fail ...").
    name, data = _sample_with("bs_start_match4")
    v = _verdict(_replace_operand(data, "bs_start_match4", 0, fuzz.cenc(2, 1)), name)
    assert not v.loads
    assert "op bs_start_match4 a " in v.reason and v.reason.endswith("no specific operation found")


def test_other_releases_get_no_operand_rules():
    data = _replace_operand(_read("bi_records"), "move", 1, fuzz.cenc(2, 1),
                            where=lambda s: s[1][2].tag == "x")
    assert check_bytes(data, 26, "bi_records").code != "operand_kind"


# -- BIF imports ---------------------------------------------------------------------

def _import_index(data: bytes, opname: str, pos: int) -> int:
    _start, spans = _find(data, opname)
    return spans[pos][2].value


@pytest.mark.parametrize("opname,pos", [("gc_bif1", 2), ("gc_bif2", 2), ("bif1", 1),
                                        ("bif2", 1)])
def test_bif_import_must_be_a_bif(opname, pos):
    for name in ("bi_records", "bi_numbers", "bi_binaries", "bi_flow", "bi_funs"):
        data = _read(name)
        try:
            index = _import_index(data, opname, pos)
        except LookupError:
            continue
        imp = bytearray(_chunk(data, b"ImpT"))
        at = 4 + 12 * index + 8
        arity = struct.unpack_from(">I", imp, at)[0]
        struct.pack_into(">I", imp, at, arity + 7)   # erlang:F/A+7: not a BIF
        v = _verdict(_with_chunk(data, b"ImpT", bytes(imp)), name)
        assert not v.loads and v.code == "not_a_bif"
        assert v.reason.startswith(f"op {opname}: import {index} not a BIF (erlang:")
        return
    pytest.skip(f"no sample uses {opname}")


# -- line, fun and function counts ---------------------------------------------------

def test_line_index_overflow():
    data = _read("bi_records")
    line = _chunk(data, b"Line")
    nitems = struct.unpack_from(">I", line, 12)[0]
    v = _verdict(_replace_operand(data, "line", 0, fuzz.cenc(0, nitems + 1),
                                  where=lambda s: s[0][2].value > 0))
    assert not v.loads and v.code == "line_index"
    assert v.reason == f"op line: line instruction index overflow ({nitems + 1}/{nitems + 1})"


def test_line_table_overflow():
    data = _read("bi_records")
    line = bytearray(_chunk(data, b"Line"))
    struct.pack_into(">I", line, 8, 2)  # room for two line instructions only
    v = _verdict(_with_chunk(data, b"Line", bytes(line)))
    assert not v.loads and v.code == "line_table"
    assert v.reason == "op line: line instruction table overflow (2/2)"


def test_nil_line_is_dropped():
    # ops.tab: "line n => _": a line whose location is [] is no line at all.
    data = _replace_operand(_read("bi_records"), "line", 0, fuzz.cenc(2, 0))
    assert _verdict(data).loads


def test_too_few_functions():
    data = _read("bi_records")
    code = bytearray(_chunk(data, b"Code"))
    nfunc = struct.unpack_from(">I", code, 16)[0]
    struct.pack_into(">I", code, 16, nfunc + 1)
    v = _verdict(_with_chunk(data, b"Code", bytes(code)))
    assert not v.loads and v.code == "too_few_functions"
    assert v.reason == f"too few functions ({nfunc}) in module (header said {nfunc + 1})"


def test_make_fun3_free_variables_must_match_the_fun_table():
    data = _read("bi_funs")
    _start, spans = _find(data, "make_fun3")
    index = spans[0][2].value
    funt = bytearray(_chunk(data, b"FunT"))
    at = 4 + 24 * index + 16
    nfree = struct.unpack_from(">I", funt, at)[0]
    struct.pack_into(">I", funt, at, nfree + 1)
    v = _verdict(_with_chunk(data, b"FunT", bytes(funt)), "bi_funs")
    assert not v.loads and v.code == "bad_lambda"
    assert v.reason.endswith("op i_lambda_error: t: bad tag 14; expected 0")


def test_oversized_untagged_integer_is_read():
    # call's arity operand is dropped by ops.tab ("call Ar Func => i_call Func"): an
    # untagged integer too large for a word there loads.
    name, data = _sample_with("call")
    assert _verdict(_replace_operand(data, "call", 0, fuzz.cenc(0, 1 << 70)), name).loads


def test_wrapped_list_count_is_an_untagged_operand():
    # A list count of 2**32 wraps the loader's int arity back: the count is then the
    # operand, an untagged integer where move wants a register.
    data = _replace_operand(_read("bi_records"), "move", 1,
                            fuzz.cenc(7, 1) + fuzz.cenc(0, 1 << 32),
                            where=lambda s: s[1][2].tag == "x")
    v = _verdict(data)
    assert not v.loads
    assert v.reason == ("op move (operand 2, untagged integer): op i_move: sd: bad tag 0 "
                        "for destination")


# -- releases ------------------------------------------------------------------------

def test_otp_24_refuses_opcodes_of_otp_25():
    v = check_file(sample("bi_nif"), 24)   # uses opcode 179 (nif_start)
    assert not v.loads and v.code == "later_version"
    assert "(Use of opcode 179; this emulator supports only up to 176.)" in v.reason


def test_otp_20_refuses_opcodes_of_otp_21_and_later():
    v = check_file(sample("bi_records"), 20)
    assert not v.loads and v.code == "later_version"
    assert "this emulator supports only up to 159" in v.reason


def test_otp_26_header_refused_by_25():
    data = _read("bi_records")
    code = bytearray(_chunk(data, b"Code"))
    struct.pack_into(">I", code, 8, 182)
    v = _verdict(_with_chunk(data, b"Code", bytes(code)))
    assert not v.loads and v.code == "later_version"


# -- unreadable input ----------------------------------------------------------------

def test_missing_file_raises_beam_error(tmp_path):
    with pytest.raises(BeamError):
        check_file(str(tmp_path / "nothing.beam"), 25)


@pytest.mark.parametrize("data", [b"", b"FOR1", b"\x1f\x8b\x08", b"FOR1\0\0\0\4BEAM",
                                  b"\xff" * 64])
def test_junk_gives_a_verdict(data):
    v = check_bytes(data, 25)
    assert not v.loads and v.reason


# -- the command ---------------------------------------------------------------------

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "beaminspect", "check", *args],
                          capture_output=True, text=True, cwd=ROOT)


def test_cli_samples_load():
    r = _cli(*SAMPLE_BEAMS[:5], "--otp", "25")
    assert r.returncode == 0, r.stdout + r.stderr


def test_cli_later_opcodes_refused(tmp_path):
    data = _read("bi_records")
    code = bytearray(_chunk(data, b"Code"))
    struct.pack_into(">I", code, 8, 182)
    path = tmp_path / "bi_records.beam"
    path.write_bytes(_with_chunk(data, b"Code", bytes(code)))
    r = _cli(str(path), "--otp", "25")
    assert r.returncode == 1
    assert "compiled for a later version of the runtime system" in r.stdout
    assert "this emulator supports only up to 180" in r.stdout


def test_cli_json(tmp_path):
    data = _replace_operand(_read("bi_records"), "move", 1, fuzz.cenc(2, 1),
                            where=lambda s: s[1][2].tag == "x")
    path = tmp_path / "bi_records.beam"
    path.write_bytes(data)
    r = _cli(str(path), sample("bi_nif"), "--otp", "25", "--json")
    assert r.returncode == 1
    text = r.stdout.strip()
    docs = json.loads(text) if text.startswith("[") else [json.loads(x) for x in text.splitlines()]
    by_file = {d["file"]: d for d in docs}
    bad = by_file[str(path)]
    assert bad["loads"] is False and bad["code"] == "operand_kind"
    assert bad["reason"].endswith("bad tag 2 for destination")
    assert by_file[sample("bi_nif")]["loads"] is True


# -- features: what code:load_file checks after prepare_loading ------------------

FEATURE_SRC = """-module(feat).
-feature(maybe_expr, enable).
-export([f/1]).
f(X) -> maybe {ok, Y} ?= X, Y end.
"""


@pytest.mark.otp
@pytest.mark.skipif(shutil.which("erl") is None, reason="Erlang/OTP (erl) is not installed")
def test_features_agree_with_code_load_file(tmp_path):
    (tmp_path / "feat.erl").write_text(FEATURE_SRC)
    subprocess.run(["erlc", "-o", str(tmp_path), str(tmp_path / "feat.erl")], check=True)
    beam = str(tmp_path / "feat.beam")
    # The logger's report of a failed load would share standard output with the answer.
    expr = ('logger:remove_handler(default), '
            'io:format("~p~n", [code:load_file(feat)]), halt().')
    for flags, enabled in (([], ()), (["-enable-feature", "maybe_expr"], ("maybe_expr",))):
        out = subprocess.run(["erl", *flags, "-noshell", "-pa", str(tmp_path), "-eval", expr],
                             capture_output=True, text=True, timeout=60).stdout.strip()
        vm_loads = out == "{module,feat}"
        v = check_file(beam, 25, enabled_features=enabled)
        assert v.loads == vm_loads, (flags, out, v)
        if not vm_loads:
            assert out == "{error,{features_not_allowed,[maybe_expr]}}"
            assert v.code == "features_not_allowed" and "maybe_expr" in v.reason
    # prepare_loading alone does not look at features.
    assert check_file(beam, 25, loader_only=True).loads
    # From OTP 26 on, code:load_file no longer checks features (OTP-18445).
    for n in (26, 27, 28, 29):
        assert check_file(beam, n).loads, n


@pytest.mark.parametrize("release", [27, 29])
def test_later_releases_load_modules_whatever_the_runtime_features(release, tmp_path):
    """OTP 27 and 29 load a module compiled with maybe_expr even with the feature
    disabled in the runtime, and check says so."""
    from otp import require_otp
    rel = require_otp(release)
    with rel.scratch() as s:
        src = s.write("feat.erl", FEATURE_SRC)
        d = os.path.dirname(src)
        proc = rel.run(["sh", "-c", f"cd {d} && erlc feat.erl && erl -noshell "
                        "-disable-feature maybe_expr -eval "
                        "'io:format(\"~p~n\", [code:load_file(feat)]), halt().'"])
        assert proc.stdout.strip() == "{module,feat}", proc.stdout + proc.stderr
        assert check_file(s.host("feat.beam"), release).loads
