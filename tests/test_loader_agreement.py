"""``beaminspect check`` against the real loader: ``erlang:prepare_loading/2`` of OTP 25.

A fixed-seed corpus of mutants (tools/fuzz.py's mutators over the samples and some OTP
beams) is written to disk, each under its module's file name, and one ``erl`` answers
``erlang:prepare_loading(Module, Binary)`` for all of them.  Then:

(a) every file the VM accepts is read by ``beaminspect.load(...).decode_all()``;
(b) ``check_file(path, 25, loader_only=True)`` gives the VM's verdict (loads / refused) on every file.

Classes of mutants left out, and why:

* ``litt_bomb``, ``gzip_bomb``: the loader allocates the size a literal table claims
  (and inflates a gzip file whole) before it checks anything; gigabyte claims abort or
  swamp the test VM instead of giving an answer.
* ``deep_term``: terms nested beyond the library's depth limit (10,000) in chunks the
  loader never decodes (Attr, CInf, Dbgi...) load in the VM and are refused by the
  library on purpose; (a) cannot hold for them.

Every file's answer comes with the loader's own message (``prepare_loading`` only says
``badfile``; the loader writes the reason to the logger, which the ``erl`` side reads
back after each file), so a disagreement names the loader check it is about.

Operand kinds (``code:tag`` mutants, and bit flips that change a tag) are judged by the
tables of ``beaminspect/loader/rules/otp25.json``, measured on this OTP 25 by
tools/gen_loader_rules.py on probes built from unmutated modules (not from this corpus).

A list count near 2**31, 2**32 or 2**62 (``code:list``) wraps around in the loader's C
``int`` arity: the operand loop ends early and the count stays in the operand's place as
an untagged integer, judged like any other operand.  check models that wrap-around (it
says "loads" where the VM loads such a file), because the loader's answer is
deterministic and the file does load: refusing it would be a disagreement, not caution.
One case is not modelled, see ``NOT_MODELLED``.

(c) for each release with a VM at hand (25 on the host, 27 and 29 in the cached roots of
tests/otp.py), every beam the release ships gets from ``check_file(path, N)`` the verdict
of that release's own prepare_loading (with the rules of rules/otpN.json).
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys

import pytest

from corpus import ROOT, SAMPLE_BEAMS
from otp import HAVE_ERL, OTP_BEAMS

sys.path.insert(0, os.path.join(ROOT, "tools"))
import fuzz  # noqa: E402

import beaminspect  # noqa: E402
from beaminspect.loader.check import check_file  # noqa: E402

pytestmark = [
    pytest.mark.otp,
    pytest.mark.skipif(not HAVE_ERL, reason="Erlang/OTP (erl) is not installed; the loader "
                       "agreement test asks the real VM"),
]

EXCLUDED = ("litt_bomb", "gzip_bomb", "deep_term")
SEED = 2024
COUNT = 1000

#: check's verdicts left out of the agreement, with the reason.  ``list_as_label``: an
#: extended list whose count wraps around, in place of a ``label`` instruction's number
#: (1 mutant of this corpus, a ``code:list`` of release_handler_1): the VM loads it, but
#: which label it then counts as defined is not known, so check refuses it on purpose.
#: ``literal_table_over_limit``: a literal table claiming more than beaminspect inflates
#: (64 MB; a mutated size field): the loader allocates whatever is claimed and loads
#: the file, beaminspect refuses on purpose rather than allocate gigabytes.
NOT_MODELLED = ("list_as_label", "literal_table_over_limit")

#: Mutants whose verdict is known to differ from the VM's and not modelled yet, keyed by
#: the first 16 hex digits of the file's SHA-256 (the corpus is deterministic, but a
#: new sample shifts which mutant has which index), each with what differs.  Printed,
#: not hidden: the count is in the output.
KNOWN_OPEN = {
    "55cecd786e1626f8": (
        "logger_config.beam",
        "a bit flip turns fmove's float-register destination into an x register: OTP 25 "
        "has no specific fmove for two registers ('no specific operation found'); the "
        "measured rules judge each operand alone, and fmove's kinds depend on the pair"),
    "3546439388fb721b": (
        "Elixir.HlExLoopReentered.beam",
        "a line instruction's index becomes an integer too large for a word (2^70): OTP "
        "25 loads it; the library reads the index as out of the Line table and check "
        "refuses it with the rule measured on a line that follows func_info (func_line "
        "wants an untagged integer); what index the loader takes from such an operand is "
        "not modelled"),
}


def _known_open(path: str) -> bool:
    with open(path, "rb") as f:
        key = hashlib.sha256(f.read()).hexdigest()[:16]
    if key in KNOWN_OPEN:
        name, why = KNOWN_OPEN[key]
        print(f"\nknown open: {name} ({key}): {why}")
        return True
    return False


#: (a) runs over every mutant of the corpus.
PARSE_COUNT = COUNT

# One line per file, appended as soon as it is known: a file that crashes the VM
# (OTP 25's JIT aborts on a few malformed instruction streams) loses no earlier answer.
# The loader's message reaches the logger after prepare_loading/2 has returned (it is
# sent when the caller is scheduled out), so after a refusal the log file is polled
# until it grows (at most a second; a refusal without a message leaves the text empty).
from gen_loader_rules import PREPARE_LOADING as PREPARE  # noqa: E402



def _ask_vm(files: list[str], workdir: str) -> dict[str, tuple[str, str]]:
    """``prepare_loading``'s answer per file: "ok", "error ..." or "vm crash", with the
    loader's message (empty when it said nothing)."""
    answers: dict[str, tuple[str, str]] = {}
    left = list(files)
    round_ = 0
    while left:
        round_ += 1
        listing = os.path.join(workdir, f"files{round_}.eterm")
        out = os.path.join(workdir, f"out{round_}.txt")
        log = os.path.join(workdir, f"log{round_}.txt")
        with open(listing, "w", encoding="utf-8") as f:
            f.write("[" + ",\n".join('"' + p + '"' for p in left) + "].\n")
        expr = f'List = "{listing}", Out = "{out}", Log = "{log}", ' + PREPARE
        proc = subprocess.run(["erl", "-noshell", "-noinput", "-eval", expr],
                              capture_output=True, timeout=600)
        done = {}
        if os.path.exists(out):
            with open(out, encoding="utf-8", errors="replace") as f:
                for line in f:
                    path, answer, said = line.rstrip("\n").split("\t", 2)
                    done[path] = (answer, said)
        answers.update(done)
        rest = [p for p in left if p not in done]
        if rest:
            # the file being loaded when the VM died
            answers[rest[0]] = ("vm crash", proc.stderr.decode(errors="replace").strip()[-200:])
            rest = rest[1:]
        left = rest
    return answers


def _sources() -> list[str]:
    rng = random.Random(SEED)
    small = [p for p in OTP_BEAMS if os.path.getsize(p) < 60_000]
    return SAMPLE_BEAMS + rng.sample(small, min(40, len(small)))


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory):
    base = tmp_path_factory.mktemp("agreement")
    files = []
    kinds = {}
    mutants = fuzz.generate(SEED, _sources(), COUNT, exclude=EXCLUDED)
    for k, m in enumerate(mutants):
        d = base / f"{k:04d}"
        d.mkdir()
        path = str(d / os.path.basename(m.source))
        with open(path, "wb") as f:
            f.write(m.data)
        files.append(path)
        kinds[path] = m.mutator
    answers = _ask_vm(files, str(base))
    crashed = [p for p in files if answers[p][0] == "vm crash"]
    if crashed:
        print(f"\n{len(crashed)} mutants crash the OTP 25 VM itself (left out):")
        for p in crashed:
            print(f"  {kinds[p]}: {p}: {answers[p][1]}")
    return [(p, kinds[p], *answers[p]) for p in files if answers[p][0] != "vm crash"]


#: Chunks the loader never decodes (damage there loads; the library reports it).
NOT_READ_BY_LOADER = {"LocT", "Dbgi", "Abst", "Docs", "ExCk", "Meta"}


def test_vm_accepted_files_parse(verdicts):
    failures = []
    for path, kind, answer, _said in verdicts:
        if int(os.path.basename(os.path.dirname(path))) >= PARSE_COUNT:
            continue
        if answer == "ok" and not _known_open(path):
            try:
                beaminspect.load(path).decode_all()
            except beaminspect.BeamError as e:
                if e.chunk in NOT_READ_BY_LOADER:
                    continue
                if isinstance(e, beaminspect.LimitError):
                    continue  # the library's own bounds (a claimed size): on purpose
                if kind.startswith("code:list"):
                    continue  # the loader's int wrap-around: the library refuses such lists
                failures.append(f"{kind}: {e}")
    assert not failures, "\n".join(failures[:20])


def _compare(verdicts):
    agreed, false_refusals, false_accepts, left_out = 0, [], [], 0
    for path, kind, answer, said in verdicts:
        vm_loads = answer == "ok"
        v = check_file(path, 25, loader_only=True)
        if v.code in NOT_MODELLED or _known_open(path):
            left_out += 1
            continue
        if v.loads == vm_loads:
            agreed += 1
        elif vm_loads:
            false_refusals.append(f"{kind}: {path}: VM loads it; check: {v.reason}")
        else:
            false_accepts.append(f"{kind}: {path}: VM {answer} ({said or 'no message'}); "
                                 "check: loads")
    n = len(verdicts) - left_out
    print(f"\nloader agreement: {agreed}/{n} files ({100.0 * agreed / n:.1f}%), "
          f"{sum(1 for *_x, a, _s in verdicts if a == 'ok')} accepted by the VM, "
          f"{left_out} not modelled ({', '.join(NOT_MODELLED)})")
    return false_refusals, false_accepts


def test_check_never_refuses_what_the_vm_loads(verdicts):
    """Every refusal of ``check`` is one the VM makes too."""
    false_refusals, _ = _compare(verdicts)
    assert not false_refusals, "\n".join(false_refusals[:30])


def test_check_agrees_with_prepare_loading(verdicts):
    """The verdict (loads / refused) of ``check --otp 25`` is the VM's on every file."""
    false_refusals, false_accepts = _compare(verdicts)
    disagreements = false_refusals + false_accepts
    assert not disagreements, "\n".join(disagreements[:30])


def test_the_loader_explains_its_refusals(verdicts):
    """The erl side captures the loader's message: nearly every refusal comes with one
    (a missing message would leave a disagreement unexplained)."""
    refused = [said for _p, _k, answer, said in verdicts if answer != "ok"]
    assert refused
    silent = sum(1 for said in refused if not said)
    assert silent <= len(refused) // 20, f"{silent} of {len(refused)} refusals without a message"


# -- every beam of every release, on each release's loader ---------------------------

def _corpora() -> dict[str, list[str]]:
    """The beams each release ships (its OTP and Elixir libraries), for the releases at
    hand, and the bundled samples (built by OTP 25, 27 and 29, and Elixir 1.14, 1.18
    and 1.20)."""
    import glob

    from otp import otp
    out = {}
    for n in (25, 27, 29):
        rel = otp(n)
        if rel.available:
            out[f"OTP {n}"] = rel.otp_beams() + rel.elixir_beams()
    out["samples"] = sorted(glob.glob(os.path.join(ROOT, "samples", "**", "*.beam"),
                                      recursive=True))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("release", [25, 27, 29])
def test_every_release_beam_agrees_with_each_loader(release, tmp_path):
    """Every beam that OTP 25, 27 and 29 ship (with their Elixir) and every sample gets
    from ``check_file(path, release)`` the verdict of OTP ``release``'s own
    prepare_loading: its own files, and the older and newer releases' (OTP 29 refuses
    the binary construction instructions of compilers before OTP 25, which Elixir 1.14's
    beams, built by OTP 24, use)."""
    import shutil
    import tempfile

    import gen_loader_rules
    from otp import require_otp
    rel = require_otp(release)
    corpora = _corpora()
    base = None if rel.on_host else os.path.join(rel.root, "tmp")
    with tempfile.TemporaryDirectory(prefix="agreement-", dir=base) as workdir:
        origin = {}
        for name, files in corpora.items():
            for i, p in enumerate(files):
                q = p
                if rel.vm_path(p) is None:          # outside the release's root: copied in
                    d = os.path.join(workdir, "in", str(len(origin)))
                    os.makedirs(d)
                    q = os.path.join(d, os.path.basename(p))
                    shutil.copyfile(p, q)
                origin[q] = (name, p)
        answers = gen_loader_rules.ask(rel, [(q,) for q in origin], workdir)
        counts: dict[str, list[int]] = {}
        disagreements = []
        for q, (name, p) in origin.items():
            vm_loads = answers[q][0] == "ok"
            v = check_file(q, release, loader_only=True)
            c = counts.setdefault(name, [0, 0])
            c[1] += 1
            if v.loads == vm_loads:
                c[0] += 1
            else:
                disagreements.append(f"{p}: VM {answers[q][0]} {answers[q][1][:200]}; "
                                     f"check: {v.reason or 'loads'}")
    print(f"\nOTP {release}'s loader: " + "; ".join(
        f"{name} {ok}/{n}" for name, (ok, n) in counts.items()))
    assert sum(n for _ok, n in counts.values()) > 100
    assert not disagreements, "\n".join(disagreements[:30])


@pytest.mark.parametrize("release", [25, 27, 29])
def test_legacy_binary_construction_per_release(release, tmp_path):
    """The binary construction instructions of compilers before OTP 25 (bs_init2,
    bs_put_string, bs_add...), one module each, assembled by the host's OTP 25 compiler:
    loaded by OTP 25 and 27, refused by OTP 29, as check says for each."""
    import subprocess

    from beaminspect.otp import LEGACY_BINARY_OPS
    from otp import require_otp
    rel = require_otp(release)
    out = tmp_path / "probes"
    out.mkdir()
    init = "{bs_init2,{f,0},8,0,1,{field_flags,[]},{x,1}}"
    flags = "{field_flags,[]}"
    bodies = {
        "bs_init2": [init],
        "bs_init_bits": ["{bs_init_bits,{f,0},8,0,1,{field_flags,[]},{x,0}}"],
        "bs_add": ["{bs_add,{f,0},[{x,0},{integer,8},1],{x,0}}"],
        "bs_append": ["{bs_append,{f,0},{integer,8},0,1,8,{x,0},{field_flags,[]},{x,0}}"],
        "bs_private_append": ["{bs_private_append,{f,0},{integer,8},8,{x,0},"
                              "{field_flags,[]},{x,0}}"],
        "bs_utf8_size": ["{bs_utf8_size,{f,0},{x,0},{x,0}}"],
        "bs_utf16_size": ["{bs_utf16_size,{f,0},{x,0},{x,0}}"],
        "bs_put_string": [init, '{bs_put_string,1,{string,"a"}}'],
        "bs_put_integer": [init, f"{{bs_put_integer,{{f,0}},{{integer,8}},1,{flags},{{x,0}}}}"],
        "bs_put_binary": [init, f"{{bs_put_binary,{{f,0}},{{atom,all}},8,{flags},{{x,0}}}}"],
        "bs_put_float": [init, f"{{bs_put_float,{{f,0}},{{integer,64}},1,{flags},{{x,0}}}}"],
        "bs_put_utf8": [init, f"{{bs_put_utf8,{{f,0}},{flags},{{x,0}}}}"],
        "bs_put_utf16": [init, f"{{bs_put_utf16,{{f,0}},{flags},{{x,0}}}}"],
        "bs_put_utf32": [init, f"{{bs_put_utf32,{{f,0}},{flags},{{x,0}}}}"],
        "control": [],
    }
    assert set(bodies) - {"control"} <= LEGACY_BINARY_OPS
    asm = []
    for name, body in bodies.items():
        m = f"p_{name}"
        code = ",".join(["{label,1}", f"{{func_info,{{atom,{m}}},{{atom,f}},1}}", "{label,2}",
                         *body, "return"])
        asm.append(f'{{"{out}/{m}.beam", {{{m}, [{{f,1}}], [], [{{function, f, 1, 2, '
                   f'[{code}]}}], 3}}}}')
    expr = ("[begin {ok, M, B} = compile:forms(A, [from_asm, binary, no_postopt]), "
            "ok = file:write_file(F, B) end || {F, A} <- [" + ",".join(asm) + "]], halt().")
    subprocess.run(["erl", "-noshell", "-eval", expr], check=True, capture_output=True,
                   timeout=300)
    import gen_loader_rules
    import tempfile
    base = None if rel.on_host else os.path.join(rel.root, "tmp")
    with tempfile.TemporaryDirectory(prefix="legacy-", dir=base) as workdir:
        files = []
        for name in bodies:
            src = out / f"p_{name}.beam"
            dst = os.path.join(workdir, src.name)
            import shutil
            shutil.copyfile(src, dst)
            files.append(dst)
        answers = gen_loader_rules.ask(rel, [(f,) for f in files], workdir)
        for f in files:
            vm = answers[f][0] == "ok"
            v = check_file(f, release, loader_only=True)
            assert v.loads == vm, (release, f, answers[f], v.reason)
            name = os.path.basename(f)[2:-5]
            assert vm == (name == "control" or release < 28), (release, name, answers[f])


@pytest.mark.slow
@pytest.mark.parametrize("release", [27, 29])
def test_mutants_of_a_release_agree_with_its_loader(release):
    """1,000 mutants (the same mutators and seed) of the samples that release's compiler
    built and of its own OTP beams, against its own prepare_loading: ``check --otp N``
    gives the VM's verdict on every mutant the VM answers (the ones that crash or hang
    the VM itself are counted and left out)."""
    import tempfile

    import gen_loader_rules
    from otp import require_otp
    rel = require_otp(release)
    rng = random.Random(SEED)
    small = [p for p in rel.otp_beams() if os.path.getsize(p) < 60_000]
    import glob
    sources = sorted(glob.glob(os.path.join(ROOT, "samples", f"otp{release}", "**",
                                            "*.beam"), recursive=True))
    sources += rng.sample(small, min(40, len(small)))
    mutants = fuzz.generate(SEED, sources, COUNT, exclude=EXCLUDED)
    base = None if rel.on_host else os.path.join(rel.root, "tmp")
    with tempfile.TemporaryDirectory(prefix="mutants-", dir=base) as workdir:
        files = {}
        for k, m in enumerate(mutants):
            d = os.path.join(workdir, f"{k:04d}")
            os.mkdir(d)
            path = os.path.join(d, os.path.basename(m.source))
            with open(path, "wb") as f:
                f.write(m.data)
            files[path] = m.mutator
        answers = gen_loader_rules.ask(rel, [(p,) for p in files], workdir)
        crashed, agreed, wrong = 0, 0, []
        for path, kind in files.items():
            answer, said = answers[path]
            if answer == "crash":
                crashed += 1
                continue
            v = check_file(path, release, loader_only=True)
            if v.loads == (answer == "ok"):
                agreed += 1
            else:
                wrong.append(f"{kind}: {os.path.basename(path)}: VM {answer} "
                             f"({gen_loader_rules.loader_words(said)[:160]}); check: "
                             f"{v.reason or 'loads'}")
    print(f"\nOTP {release} mutants: {agreed}/{agreed + len(wrong)} agree; {crashed} crash "
          "the VM itself")
    assert agreed + len(wrong) >= COUNT * 9 // 10
    assert not wrong, "\n".join(wrong[:30])
