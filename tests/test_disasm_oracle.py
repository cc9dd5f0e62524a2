"""The disassembler against OTP's own beam_disasm, over every sample, OTP and Elixir beam.

One ``erl`` disassembles every file with ``beam_disasm:file/1`` and writes, per
function, a compact summary: name, arity, entry label, the opcode names (normalised to
genop.tab names: beam_disasm shows ``{test,Op,...}``, ``{bif,...}``, ``{gc_bif,...}``
and ``{arithfbif,Op,...}``), the external call targets and the literal operands.
"""

from __future__ import annotations

import pytest

import beaminspect
from beaminspect.code.disasm import ExtFunc, Literal
from beaminspect.terms import Atom
from corpus import SAMPLE_BEAMS
from otp import ELIXIR_BEAMS, OTP_BEAMS, _erl_string, needs_erl, run_erl

pytestmark = [needs_erl, pytest.mark.otp, pytest.mark.slow]

CORPUS = tuple(SAMPLE_BEAMS + OTP_BEAMS + ELIXIR_BEAMS)

#: Floors, well under what the installed OTP alone holds (785 beams; with Elixir:
#: 62,000 functions, 2,100,000 instructions, 120,000 calls, 59,000 literals).
MIN_FILES = 700
MIN_FUNCTIONS = 30_000
MIN_INSTRUCTIONS = 800_000
MIN_CALLS = 50_000
MIN_LITERALS = 20_000

#: The Erlang side, compiled (funs given to ``erl -eval`` would run interpreted, about
#: a hundred times slower than beam_disasm itself).
SUMMARY_MODULE = r"""
-module(disasm_summary).
-export([run/2]).

run(Files, Out) ->
    R = [case beam_disasm:file(F) of
             {beam_file, _, _, _, _, Code} -> {ok, [function(C) || C <- Code]};
             Error -> {error, iolist_to_binary(io_lib:format("~p", [Error]))}
         end || F <- Files],
    ok = file:write_file(Out, term_to_binary(R)).

function({function, N, A, E, Code}) ->
    Ops = iolist_to_binary(lists:join(" ", [atom_to_binary(name(I)) || I <- Code])),
    Found = lists:reverse(lists:foldl(fun walk/2, [], Code)),
    {N, A, E, Ops, [X || {ext, X} <- Found], [V || {lit, V} <- Found]}.

%% beam_disasm's forms -> genop.tab opcode names.
name(I) when is_atom(I) -> I;
name({test, Op, _, _}) -> Op;
name({test, Op, _, _, _}) -> Op;
name({bif, _, _, Args, _}) -> list_to_atom("bif" ++ integer_to_list(length(Args)));
name({gc_bif, _, _, _, Args, _}) -> list_to_atom("gc_bif" ++ integer_to_list(length(Args)));
name({arithfbif, Op, _, _, _}) -> Op;
name(T) -> element(1, T).

%% External call targets and literal operands, in operand order.  beam_disasm keeps
%% only the name of a bif; a float literal is shown as {float, F}.
walk({extfunc, M, F, A}, Acc) -> [{ext, {M, F, A}} | Acc];
walk({literal, V}, Acc) -> [{lit, V} | Acc];
walk({float, V}, Acc) when is_float(V) -> [{lit, V} | Acc];
walk({tr, _, _}, Acc) -> Acc;
walk({bif, N, F, Args, R}, Acc) -> walk([F, Args, R], [{ext, {bif, N, length(Args)}} | Acc]);
walk({gc_bif, N, F, L, Args, R}, Acc) ->
    walk([F, L, Args, R], [{ext, {bif, N, length(Args)}} | Acc]);
walk(T, Acc) when is_tuple(T) -> walk(tuple_to_list(T), Acc);
walk([H | T], Acc) -> walk(T, walk(H, Acc));
walk(_, Acc) -> Acc.
"""


def summary_body(source: str) -> str:
    return (f"{{ok, M, Bin}} = compile:file({_erl_string(source)}, [binary, report]), "
            f"{{module, M}} = code:load_binary(M, {_erl_string(source)}, Bin), "
            "M:run(Files, Out)")

_BIFS = {"bif0", "bif1", "bif2", "bif3", "gc_bif1", "gc_bif2", "gc_bif3"}


def _walk(value, out: list) -> None:
    """Literal operand values in operand order (depth first), as the Erlang side walks."""
    t = type(value)
    if t is Literal:
        out.append(value.value)
    elif t is tuple:
        for v in value:
            _walk(v, out)


def summarise(path: str) -> list[tuple]:
    m = beaminspect.load(path)
    out = []
    for f in m.functions:
        ops, exts, lits = [], [], []
        for ins in f.instructions:
            ops.append(ins.name)
            bif = ins.name in _BIFS
            for v in ins.values:
                if type(v) is ExtFunc:
                    exts.append(("bif", v.function, v.arity) if bif else tuple(v))
                else:
                    _walk(v, lits)
        out.append((f.name, f.arity, f.entry, _canonical_ops(" ".join(ops)), exts, lits))
    return out


def _canonical_ops(ops: str) -> str:
    """The labels and ``line`` before ``func_info`` sorted: beam_disasm moves them from
    the end of the previous function and, for every function but the first, lists them
    in reverse (``line`` before ``label``); the disassembler keeps code order."""
    names = ops.split(" ")
    try:
        k = names.index("func_info")
    except ValueError:
        return ops
    return " ".join(sorted(names[:k]) + names[k:])


def _expected(row) -> list[tuple]:
    name, arity, entry, ops, exts, lits = row
    return (str(name), arity, entry, _canonical_ops(ops.decode() if isinstance(ops, bytes) else ops),
            [tuple(str(x) if isinstance(x, Atom) else x for x in e) for e in exts], list(lits))


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    if len(CORPUS) < MIN_FILES:
        pytest.skip(f"only {len(CORPUS)} beam files found")
    source = tmp_path_factory.mktemp("erl") / "disasm_summary.erl"
    source.write_text(SUMMARY_MODULE, encoding="utf-8")
    return run_erl(summary_body(str(source)), list(CORPUS), timeout=1200)


def test_every_function_agrees_with_beam_disasm(oracle):
    assert len(oracle) == len(CORPUS)
    files = functions = instructions = calls = literals = 0
    disagreements = []
    for path, answer in zip(CORPUS, oracle):
        status, data = answer
        if status != "ok":
            disagreements.append(f"{path}: beam_disasm failed: {data!r}")
            continue
        want = [_expected(row) for row in data]
        got = summarise(path)
        files += 1
        if len(got) != len(want):
            disagreements.append(f"{path}: {len(got)} functions, beam_disasm has {len(want)}")
        for g, w in zip(got, want):
            functions += 1
            instructions += g[3].count(" ") + 1
            calls += len(w[4])
            literals += len(w[5])
            for what, gv, wv in zip(("name", "arity", "entry", "opcodes", "external calls",
                                     "literals"), g, w):
                if gv != wv:
                    disagreements.append(f"{path}: {w[0]}/{w[1]}: {what} differ: "
                                         f"{_diff_hint(gv, wv)}")
                    break
    summary = (f"compared {files} files, {functions} functions, {instructions} instructions, "
               f"{calls} external calls, {literals} literal operands; "
               f"{len(disagreements)} disagreements")
    assert not disagreements, summary + "\n" + "\n".join(disagreements[:20])
    assert files >= MIN_FILES and functions >= MIN_FUNCTIONS \
        and instructions >= MIN_INSTRUCTIONS and calls >= MIN_CALLS \
        and literals >= MIN_LITERALS, summary
    print(summary)


def _diff_hint(got, want) -> str:
    if isinstance(got, str) and isinstance(want, str):
        got, want = got.split(), want.split()
    if isinstance(got, list) and isinstance(want, list):
        for i, (a, b) in enumerate(zip(got, want)):
            if a != b:
                return f"at {i}: {a!r} vs beam_disasm {b!r}"
        return f"lengths {len(got)} vs beam_disasm {len(want)}"
    return f"{got!r} vs beam_disasm {want!r}"
