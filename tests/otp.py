"""Asking the installed Erlang/OTP (the tests' oracle).

Each helper starts one ``erl`` for a whole batch of files (a VM start costs about a
second), has it write ``term_to_binary`` of its answer to a file, and decodes that.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import tempfile

import pytest

HAVE_ERL = shutil.which("erl") is not None
needs_erl = pytest.mark.skipif(not HAVE_ERL, reason="Erlang/OTP (erl) is not installed; "
                               "OTP oracle tests need it (CI installs erlang-nox)")

OTP_BEAMS = sorted(glob.glob("/usr/lib/erlang/lib/*/ebin/*.beam"))
ELIXIR_BEAMS = sorted(glob.glob("/usr/lib/elixir/lib/*/ebin/*.beam"))


def _erl_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_erl(body: str, inputs: list[str], timeout: int = 600):
    """Run ``body`` in a fresh ``erl`` with ``Files`` bound to ``inputs`` and ``Out`` to an
    output path; ``body`` must write ``term_to_binary(Result)`` to ``Out``.  Returns the
    decoded result."""
    from beaminspect import terms

    with tempfile.TemporaryDirectory() as d:
        listing = os.path.join(d, "files.eterm")
        out = os.path.join(d, "out.bin")
        with open(listing, "w", encoding="utf-8") as f:
            f.write("[" + ",\n".join(_erl_string(p) for p in inputs) + "].\n")
        expr = (f"{{ok, [Files]}} = file:consult({_erl_string(listing)}), "
                f"Out = {_erl_string(out)}, {body}, halt().")
        proc = subprocess.run(["erl", "-noshell", "-noinput", "-eval", expr],
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not os.path.exists(out):
            raise RuntimeError(f"erl failed ({proc.returncode}): {proc.stdout}\n{proc.stderr}")
        with open(out, "rb") as f:
            return terms.decode(f.read(), max_size=1 << 30)


BEAM_LIB_INFO = r"""
Get = fun(F, What) ->
          case beam_lib:chunks(F, [What]) of
              {ok, {_, [{_, V}]}} -> V;
              {error, beam_lib, R} -> {error, R}
          end
      end,
Lits = fun(F) ->
          case beam_lib:chunks(F, ["LitT"]) of
              {ok, {_, [{_, <<0:32, T/binary>>}]}} -> T1 = T, ok;
              {ok, {_, [{_, <<_:32, Z/binary>>}]}} -> T1 = zlib:uncompress(Z), ok;
              _ -> T1 = none
          end,
          case T1 of
              none -> [];
              <<N:32, Rest/binary>> ->
                  (fun Loop(0, _, Acc) -> lists:reverse(Acc);
                       Loop(K, <<S:32, B:S/binary, R/binary>>, Acc) ->
                           Loop(K - 1, R, [binary_to_term(B) | Acc])
                   end)(N, Rest, [])
          end
       end,
R = [begin
        {ok, {M, MD5}} = beam_lib:md5(F),
        {F, M, MD5,
         Get(F, atoms), Get(F, exports), Get(F, imports), Get(F, labeled_locals),
         Get(F, labeled_exports), Get(F, attributes), Get(F, compile_info), Lits(F)}
     end || F <- Files],
ok = file:write_file(Out, term_to_binary(R))
"""


@functools.lru_cache(maxsize=8)
def beam_lib_info(files: tuple[str, ...]) -> dict:
    """For each file: what beam_lib says (module, md5, atoms, exports, ...)."""
    result = run_erl(BEAM_LIB_INFO, list(files))
    keys = ("module", "md5", "atoms", "exports", "imports", "labeled_locals", "labeled_exports",
            "attributes", "compile_info", "literals")
    out = {}
    for row in result:
        path = "".join(map(chr, row[0])) if isinstance(row[0], list) else row[0]
        out[path] = dict(zip(keys, row[1:]))
    return out
