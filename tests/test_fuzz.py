"""Hostile input: a short fixed-seed fuzzing run, and properties of the term decoders
on arbitrary bytes (only BeamError may escape)."""

from __future__ import annotations

import itertools
import os
import random
import struct
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus import ROOT, SAMPLE_BEAMS

sys.path.insert(0, os.path.join(ROOT, "tools"))
import fuzz  # noqa: E402

from beaminspect import BeamError, terms  # noqa: E402
from beaminspect.format.compact import decode_operand, decode_operands  # noqa: E402


#: The short run: a fixed number of mutants of a fixed seed (the work, not a clock, bounds it).
SHORT_RUN_INPUTS = 200
#: Per-input watchdog: only a hang trips it, never a slow machine.
HANG_SECONDS = 120


def test_short_fuzz_run_finds_no_crash():
    rng = random.Random(7)
    samples, otp = fuzz.sources(None, rng, 12, 120_000)
    stream = itertools.islice(fuzz.mutant_stream(7, samples, otp, 12), SHORT_RUN_INPUTS)
    for size in (1 << 28, 1 << 30):   # built once here, not in every worker
        fuzz.zlib_bomb(size)
        fuzz.gzip_bomb(size)
    report = fuzz.run_inputs(stream, workers=2, timeout=HANG_SECONDS, cli_every=2)
    # The run's own "slow" signatures measure the clock; what counts is errors and hangs.
    report.crashes = {sig: v for sig, v in report.crashes.items() if not sig.startswith("slow ")}
    print("\n" + report.text())
    assert report.tried == SHORT_RUN_INPUTS
    assert not report.crashes, report.text()


def test_mutators_are_deterministic():
    a = [m.data for m in fuzz.generate(3, SAMPLE_BEAMS[:5], 30)]
    b = [m.data for m in fuzz.generate(3, SAMPLE_BEAMS[:5], 30)]
    assert a == b


def test_bombs_inflate_to_their_size():
    import zlib
    bomb = fuzz.zlib_bomb(1 << 28)
    d = zlib.decompressobj()
    total = 0
    data = bomb
    while data:
        total += len(d.decompress(data, 1 << 24))
        data = d.unconsumed_tail
    assert total == 1 << 28 and d.eof and len(bomb) < 1 << 19


ETF_PREFIXES = st.sampled_from([b"\x83", b"\x83l", b"\x83h", b"\x83t", b"\x83P", b"\x83m",
                                b"\x83n", b"\x83o", b"\x83w", b"\x83v", b"\x83q", b"\x83r",
                                b"\x83Z", b"\x83p", b"\x83M", b"\x83X", b"\x83Y", b"\x83F"])


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(prefix=ETF_PREFIXES, body=st.binary(max_size=64))
def test_etf_decoder_raises_only_beam_error(prefix, body):
    try:
        terms.decode(prefix + body)
    except BeamError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.integers(0, 70))
def test_etf_decoder_on_mutated_terms(noise, where):
    good = bytes([131]) + b"h\x03d\x00\x02okl\x00\x00\x00\x02a\x01b\x00\x00\x01\x00jt\x00\x00" \
        b"\x00\x01a\x02F@\t!\xfbTD-\x18"
    assert terms.decode(good) is not None
    where = min(where, len(good))
    for data in (good[:where] + noise, good[:where] + noise + good[where:],
                 good[:where] + good[where + 1:]):
        try:
            terms.decode(data)
        except BeamError:
            pass


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=0, max_size=48), st.integers(0, 8))
def test_compact_decoder_raises_only_beam_error(data, arity):
    try:
        decode_operand(data, 0, len(data))
    except BeamError:
        pass
    try:
        decode_operands(data, 0, len(data), arity)
    except BeamError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 7), st.integers(0, 1 << 80), st.binary(max_size=8))
def test_compact_decoder_on_encoded_values(tag, value, tail):
    data = fuzz.cenc(tag, value) + tail
    try:
        op, end = decode_operand(data, 0, len(data))
    except BeamError:
        return
    assert end <= len(data)


def test_nested_terms_hit_the_depth_limit():
    for kind in ("list", "tuple", "map"):
        try:
            terms.decode(fuzz.etf_nested(kind, 100_000))
        except BeamError as e:
            assert e.kind == "limit"
        else:
            raise AssertionError(f"{kind} nested 100000 deep was accepted")


def test_check_verdict_on_hostile_bytes():
    from beaminspect.loader.check import check_bytes
    for data in (b"", b"FOR1", b"FOR1" + struct.pack(">I", 4) + b"BEAM", fuzz.gzip_bomb(1 << 28)):
        assert not check_bytes(data, 25).loads
