"""The disassembler against OTP 27's and OTP 29's own ``beam_disasm``, on every beam
each release ships (its Erlang lib tree and its Elixir), in that release's VM.

The comparison is test_disasm_oracle's (function names, arities, entries, opcode
names, external call targets and literal operands, function by function); what
differs is only how the newer ``beam_disasm`` prints some instructions, which the
Erlang side maps back to opcode names: ``raise`` and the float instructions as
``{bif, Name, {f,0}, Args, Dst}``, OTP 29's ``is_any_native_record`` as
``{test, is_record, Fail, Src}`` (one operand, not a list), binary-matching tests with a destination (such as
``bs_start_match3``) as ``{test, Op, Fail, Live, Args, Dst}``, and the ``[]`` flags of ``bs_match`` commands as
``{literal, []}``.
"""

from __future__ import annotations

import pytest

from beaminspect import terms
from otp import require_otp
from test_disasm_oracle import SUMMARY_MODULE, _diff_hint, _expected, summarise

pytestmark = [pytest.mark.otp, pytest.mark.slow]

#: Floors, well under what each release ships (OTP 27 + Elixir 1.18: 1,259 beams,
#: 65,965 functions; OTP 29 + Elixir 1.20: 1,303 beams).
MIN_FILES = 1_000
MIN_FUNCTIONS = 50_000

_AS_BIF = "N =:= raise; N =:= fadd; N =:= fsub; N =:= fmul; N =:= fdiv; N =:= fnegate"


def summary_module() -> str:
    """test_disasm_oracle's Erlang side, with the newer releases' forms mapped."""
    src = SUMMARY_MODULE
    first_name = "name(I) when is_atom(I) -> I;"
    name_anchor = "name({bif, _, _, Args, _}) ->"
    walk_anchor = "walk({bif, N, F, Args, R}, Acc) ->"
    assert first_name in src and name_anchor in src and walk_anchor in src, \
        "test_disasm_oracle's Erlang module changed: update the anchors"
    src = src.replace(first_name, "name({test, is_record, _, Src}) when not is_list(Src) ->"
                      " is_any_native_record;\n" + first_name, 1)
    src = src.replace(name_anchor,
                      f"name({{bif, N, _, _, _}}) when {_AS_BIF} -> N;\n"
                      "name(T) when element(1, T) =:= test, tuple_size(T) > 5 -> element(2, T);\n"
                      + name_anchor, 1)
    src = src.replace(walk_anchor,
                      f"walk({{bif, N, F, Args, R}}, Acc) when {_AS_BIF} -> walk([F, Args, R], Acc);\n"
                      "walk({commands, Cs}, Acc) -> walk(nil_flags(Cs), Acc);\n"
                      + walk_anchor, 1)
    return src + ("\nnil_flags({literal, []}) -> nil;\n"
                  "nil_flags(T) when is_tuple(T) -> list_to_tuple(nil_flags(tuple_to_list(T)));\n"
                  "nil_flags(L) when is_list(L) -> [nil_flags(X) || X <- L];\n"
                  "nil_flags(X) -> X.\n")


@pytest.mark.parametrize("number", [27, 29], ids=lambda n: f"otp{n}")
def test_every_function_agrees_with_the_release_beam_disasm(number, tmp_path):
    release = require_otp(number)
    files = release.otp_beams() + release.elixir_beams()
    source = tmp_path / "disasm_summary.erl"
    source.write_text(summary_module(), encoding="utf-8")
    body = ("[Src | Beams] = Files, {ok, M, Bin} = compile:file(Src, [binary, report]), "
            "{module, M} = code:load_binary(M, Src, Bin), M:run(Beams, Out)")
    answers = release.run_erl(body, [str(source)] + files, timeout=1200,
                              decoder=lambda b: terms.decode(b, max_size=1 << 30))
    assert len(answers) == len(files)
    functions = 0
    disagreements = []
    for path, (status, data) in zip(files, answers):
        if status != "ok":
            disagreements.append(f"{path}: beam_disasm failed: {data!r}")
            continue
        want = [_expected(row) for row in data]
        got = summarise(path)
        if len(got) != len(want):
            disagreements.append(f"{path}: {len(got)} functions, beam_disasm has {len(want)}")
        for g, w in zip(got, want):
            functions += 1
            for what, gv, wv in zip(("name", "arity", "entry", "opcodes", "external calls",
                                     "literals"), g, w):
                if gv != wv:
                    disagreements.append(f"{path}: {w[0]}/{w[1]}: {what} differ: "
                                         f"{_diff_hint(gv, wv)}")
                    break
    summary = (f"OTP {release.otp_version}: compared {len(files)} files, {functions} "
               f"functions; {len(disagreements)} disagreements")
    assert not disagreements, summary + "\n" + "\n".join(disagreements[:20])
    assert len(files) >= MIN_FILES and functions >= MIN_FUNCTIONS, summary
    print(summary)
