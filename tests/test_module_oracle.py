"""The module model against OTP's own beam_lib, over every sample and every OTP beam."""

import pytest

import beaminspect
from corpus import SAMPLE_BEAMS
from otp import ELIXIR_BEAMS, OTP_BEAMS, beam_lib_info, needs_erl

pytestmark = [needs_erl, pytest.mark.otp]

CORPUS = tuple(SAMPLE_BEAMS + OTP_BEAMS + ELIXIR_BEAMS)


@pytest.fixture(scope="module")
def oracle():
    if not CORPUS:
        pytest.skip("no beam files found")
    return beam_lib_info(CORPUS)


def _fa(entries):
    return sorted((str(e.name), e.arity) for e in entries)


def test_corpus_is_large():
    # The installed OTP has about 785 beams; the check is meaningless on a handful.
    assert len(OTP_BEAMS) > 500


def test_every_file_agrees_with_beam_lib(oracle):
    disagreements = []
    for path in CORPUS:
        want = oracle[path]
        m = beaminspect.load(path)
        got = {
            "module": m.name,
            "md5": m.md5,
            "atoms": sorted((i + 1, a) for i, a in enumerate(m.atoms)),
            "exports": _fa(m.exports),
            "imports": sorted((i.module, i.function, i.arity) for i in m.imports),
            "labeled_locals": sorted((e.name, e.arity, e.label) for e in m.locals),
            "labeled_exports": sorted((e.name, e.arity, e.label) for e in m.exports),
        }
        missing = {k for k in ("labeled_locals", "labeled_exports", "atoms", "exports", "imports")
                   if isinstance(want[k], tuple)}
        if "labeled_locals" in missing:
            assert not m.has_chunk("LocT"), path
        want = {k: ([] if k in missing else v) for k, v in want.items()}
        expected = {
            "module": str(want["module"]),
            "md5": want["md5"],
            "atoms": sorted((i, str(a)) for i, a in want["atoms"]),
            "exports": sorted((str(f), a) for f, a in want["exports"]),
            "imports": sorted((str(mm), str(f), a) for mm, f, a in want["imports"]),
            "labeled_locals": sorted((str(f), a, l) for f, a, l in want["labeled_locals"]),
            "labeled_exports": sorted((str(f), a, l) for f, a, l in want["labeled_exports"]),
        }
        for key in got:
            if key in missing:
                continue
            if got[key] != expected[key]:
                disagreements.append((path, key))
        # Attr and CInf: beam_lib decodes them with binary_to_term, as we do.
        if not isinstance(want["attributes"], tuple):
            if m.attributes != want["attributes"]:
                disagreements.append((path, "attributes"))
        if not isinstance(want["compile_info"], tuple):
            if m.compile_info != want["compile_info"]:
                disagreements.append((path, "compile_info"))
        if list(m.literals) != want["literals"]:
            disagreements.append((path, "literals"))
    assert disagreements == [], f"{len(disagreements)} disagreements, first: {disagreements[:10]}"


def test_md5_is_what_the_vm_reports():
    """module_info(md5) from the running VM, for the samples (beam_lib:md5 is checked above)."""
    from otp import run_erl
    if not SAMPLE_BEAMS:
        pytest.skip("no samples")
    body = r"""
    R = [begin
            {ok, B} = file:read_file(F),
            {ok, {M, _}} = beam_lib:md5(B),
            code:purge(M), code:delete(M), code:purge(M),
            case code:load_binary(M, F, B) of
                {module, M} -> {F, M:module_info(md5)};
                Err -> {F, Err}
            end
         end || F <- Files],
    ok = file:write_file(Out, term_to_binary(R))
    """
    plain = [p for p in SAMPLE_BEAMS if "/pairs/" not in p and "/elixir/" not in p]
    result = run_erl(body, plain)
    checked = 0
    for f, md5 in result:
        path = "".join(map(chr, f))
        if isinstance(md5, bytes):
            assert beaminspect.load(path).md5 == md5, path
            checked += 1
    assert checked >= len(plain) // 2
