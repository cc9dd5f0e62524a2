"""Dbgi, Docs, ExCk and Meta decode to what OTP's binary_to_term gives."""

import pytest

import beaminspect
from corpus import SAMPLE_BEAMS
from otp import ELIXIR_BEAMS, OTP_BEAMS, needs_erl, run_erl

pytestmark = [needs_erl, pytest.mark.otp]

FILES = tuple(SAMPLE_BEAMS + OTP_BEAMS[::10] + ELIXIR_BEAMS[::6])

BODY = r"""
Chunk = fun(F, Id) ->
            case beam_lib:chunks(F, [Id], [allow_missing_chunks]) of
                {ok, {_, [{_, missing_chunk}]}} -> none;
                {ok, {_, [{_, Bin}]}} -> {some, binary_to_term(Bin)};
                _ -> none
            end
        end,
R = [{F, [Chunk(F, Id) || Id <- ["Dbgi", "Docs", "ExCk", "Meta"]]} || F <- Files],
ok = file:write_file(Out, term_to_binary(R))
"""


def test_term_chunks_agree_with_binary_to_term():
    result = run_erl(BODY, list(FILES))
    compared = 0
    for f, values in result:
        path = "".join(map(chr, f))
        m = beaminspect.load(path)
        for want, got in zip(values, (m._term_chunk("Dbgi"), m.docs, m.exck, m.meta)):
            if want == "none":
                assert got is None, path
            else:
                assert got == want[1], path
                compared += 1
    assert compared > 100, compared
