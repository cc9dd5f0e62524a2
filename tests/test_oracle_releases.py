"""Each release's own beams against that release's beam_lib: OTP 25 on the host, OTP 27
(Debian 13) and OTP 29 (Debian unstable) in the roots of tools/otp-roots.sh (`make
oracles`; without them those cases skip, saying so).

For every beam the release ships (its Erlang lib tree and its Elixir lib tree) and every
sample built by it, ``beaminspect.load`` must give the module name, the MD5, the
labeled exports, the imports (beam_lib sorts them) and the atoms (in AtU8 order) that the
release's ``beam_lib`` gives.  One VM per release answers for all files.
"""

from __future__ import annotations

import os
import time

import pytest

import beaminspect
from corpus import release_samples
from otp import require_otp

pytestmark = pytest.mark.otp

RELEASES = (25, 27, 29)

# At least this many beams in the release's (Erlang lib, Elixir lib) trees: Debian's
# OTP 25 ships 785 + Elixir 1.14 422, OTP 27.3.4 811 + Elixir 1.18 448, OTP 29.1.2 856 +
# Elixir 1.20 447.  A floor, so that the sweep cannot pass on an empty or broken tree.
FLOORS = {25: (700, 350), 27: (750, 400), 29: (800, 400)}
SAMPLE_FLOOR = 16   # the modules of samples/src

BEAM_LIB_ANSWERS = r"""
Get = fun(F, What) ->
          case beam_lib:chunks(F, [What]) of
              {ok, {_, [{_, V}]}} -> V;
              {error, beam_lib, R} -> {error, unicode:characters_to_binary(io_lib:format("~tp", [R]))}
          end
      end,
One = fun(F) ->
          try
              Mod = case beam_lib:chunks(F, []) of
                        {ok, {M, []}} -> M;
                        {error, beam_lib, R0} -> {error, unicode:characters_to_binary(io_lib:format("~tp", [R0]))}
                    end,
              MD5 = case beam_lib:md5(F) of
                        {ok, {_, D}} -> D;
                        {error, beam_lib, R1} -> {error, unicode:characters_to_binary(io_lib:format("~tp", [R1]))}
                    end,
              {Mod, MD5, Get(F, labeled_exports), Get(F, imports), Get(F, atoms)}
          catch C:E ->
              {error, unicode:characters_to_binary(io_lib:format("~tp:~tp", [C, E]))}
          end
      end,
ok = file:write_file(Out, term_to_binary([One(F) || F <- Files]))
"""

FIELDS = ("module", "md5", "exports", "imports", "atoms")


def _error(v) -> bool:
    return isinstance(v, tuple) and len(v) == 2 and v[0] == "error" and isinstance(v[1], bytes)


def _theirs(answer) -> dict:
    if _error(answer):
        return {f: answer for f in FIELDS}
    mod, md5, exports, imports, atoms = answer
    conv = {
        "module": lambda v: str(v),
        "md5": lambda v: v.hex(),
        "exports": lambda v: sorted((str(f), a, l) for f, a, l in v),
        "imports": lambda v: sorted((str(m), str(f), a) for m, f, a in v),
        "atoms": lambda v: [(i, str(a)) for i, a in v],
    }
    raw = dict(zip(FIELDS, (mod, md5, exports, imports, atoms)))
    return {k: (v if _error(v) else conv[k](v)) for k, v in raw.items()}


def _ours(path: str) -> dict:
    try:
        m = beaminspect.load(path)
        return {
            "module": str(m.name),
            "md5": m.md5.hex(),
            "exports": sorted((str(e.name), e.arity, e.label) for e in m.exports),
            "imports": sorted((str(i.module), str(i.function), i.arity) for i in m.imports),
            "atoms": [(i, str(a)) for i, a in enumerate(m.atoms, 1)],
        }
    except beaminspect.BeamError as e:
        return {f: ("error", str(e)) for f in FIELDS}


def _short(v, limit=300) -> str:
    if isinstance(v, list) and len(v) > 8:
        text = f"{len(v)} items: {v[:4]!r}..."
    else:
        text = repr(v)
    return text if len(text) <= limit else text[:limit] + "..."


def _diff(ours, theirs) -> str:
    """Where two answers for one field part, said briefly."""
    if isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            extra = [x for x in ours if x not in theirs][:3]
            missing = [x for x in theirs if x not in ours][:3]
            return (f"{len(ours)} vs beam_lib {len(theirs)}; only ours {extra!r}, "
                    f"only beam_lib {missing!r}")
        for i, (a, b) in enumerate(zip(ours, theirs)):
            if a != b:
                return f"item {i}: ours {a!r}, beam_lib {b!r}"
    return f"ours {_short(ours)}, beam_lib {_short(theirs)}"


def compare(release, paths: list[str]) -> list[tuple[str, str, str]]:
    """(file, field, how) for every field where beaminspect and beam_lib part."""
    answers = release.run_erl(BEAM_LIB_ANSWERS, paths, timeout=900)
    assert len(answers) == len(paths)
    out = []
    for path, answer in zip(paths, answers):
        theirs, ours = _theirs(answer), _ours(path)
        for f in FIELDS:
            if ours[f] != theirs[f]:
                out.append((path, f, _diff(ours[f], theirs[f])))
    return out


def _report(release, what: str, paths, disagreements, seconds: float) -> None:
    files = len({p for p, _, _ in disagreements})
    print(f"\nOTP {release.otp_version} ({what}): {len(paths)} files compared in "
          f"{seconds:.1f} s, {len(disagreements)} disagreements in {files} files")
    for path, f, how in disagreements[:40]:
        print(f"  {path}: {f}: {how}")


@pytest.fixture(scope="module", params=RELEASES, ids=lambda n: f"otp{n}")
def release(request):
    return require_otp(request.param)


@pytest.mark.slow
def test_release_lib_trees_agree_with_their_beam_lib(release):
    erl, ex = release.otp_beams(), release.elixir_beams()
    floor_erl, floor_ex = FLOORS[int(release.otp_release)]
    print(f"\nOTP {release.otp_version}: {len(erl)} beams in {release.lib_dir}, "
          f"{len(ex)} in {release.elixir_lib}")
    assert len(erl) >= floor_erl, f"only {len(erl)} beams under {release.lib_dir}"
    assert len(ex) >= floor_ex, f"only {len(ex)} beams under {release.elixir_lib}"
    paths = erl + ex
    t = time.monotonic()
    disagreements = compare(release, paths)
    _report(release, "Erlang and Elixir lib trees", paths, disagreements, time.monotonic() - t)
    assert disagreements == [], (
        f"{len(disagreements)} disagreements with OTP {release.otp_release}'s beam_lib, "
        f"first: {disagreements[:5]}")


def test_release_samples_agree_with_their_beam_lib(release):
    paths = release_samples(release.otp_release)
    if not paths and release.otp_release != "25":
        pytest.skip(f"no samples/otp{release.otp_release}/ beams: run make samples "
                    "with the roots built (make oracles)")
    assert len(paths) >= SAMPLE_FLOOR, f"only {len(paths)} samples for OTP {release.otp_release}"
    t = time.monotonic()
    disagreements = compare(release, paths)
    _report(release, "samples", paths, disagreements, time.monotonic() - t)
    assert disagreements == [], (
        f"{len(disagreements)} disagreements with OTP {release.otp_release}'s beam_lib, "
        f"first: {disagreements[:5]}")
